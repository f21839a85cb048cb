"""Landing files end to end, on the local folder + DuckDB and on the S3 server + PostgreSQL:
drop files, evaluate the sensor against a real Dagster instance, run what it requests, and
compare the warehouse with the files row by row."""

import csv
import datetime as dt
import gzip
import io
import json
from collections.abc import Iterator

import dagster as dg
import pytest

from warehouse_assets.config import load_config
from warehouse_assets.landing.assets import build_landing_assets
from warehouse_assets.landing.sensors import MAX_REQUESTS_PER_TICK, build_landing_sensors
from warehouse_assets_tests.conftest import failure_text

USC = "user_session_channel"
TS = "session_timestamp"
DAY1, DAY2 = "2024-03-01", "2024-03-02"


@pytest.fixture(params=["embedded_env", "services_env"])
def env(request: pytest.FixtureRequest):
    return request.getfixturevalue(request.param)


@pytest.fixture
def instance(tmp_path) -> Iterator[dg.DagsterInstance]:
    """A persistent instance (sensor contexts refuse an ephemeral one)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


class Landing:
    """The shipped landing config's assets and sensors, wired to one environment."""

    def __init__(self, env, instance: dg.DagsterInstance):
        self.env, self.instance = env, instance
        config = load_config()
        self.assets = {a.key.path[-1]: a for a in build_landing_assets(config)
                       if isinstance(a, dg.AssetsDefinition)}
        self.defs = dg.Definitions(
            assets=list(self.assets.values()),
            sensors=build_landing_sensors(config),
            resources=env.resources,
        )
        self.store = env.resource("staging")
        self.cursors: dict[str, str | None] = {USC: None, TS: None}
        self.run_keys: set[str] = set()

    def drop(self, table: str, day: str, name: str, text: str) -> str:
        key = f"landing/{table}/{day}/{name}"
        data = text.encode()
        self.store.write_bytes(key, gzip.compress(data) if name.endswith(".gz") else data)
        return key

    def tick(self, table: str) -> list[dg.RunRequest]:
        """One sensor evaluation; its cursor is kept as the daemon would keep it."""
        ctx = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursors[table], definitions=self.defs,
            resources={"staging": self.env.resources["staging"]},
        )
        result = self.defs.resolve_sensor_def(f"landing_{table}")(ctx)
        self.cursors[table] = result.cursor
        requests = list(result.run_requests or [])
        keys = {r.run_key for r in requests}
        assert not keys & self.run_keys, "a run key was requested twice"
        self.run_keys |= keys
        return requests

    def run(self, table: str, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [self.assets[table]],
            partition_key=request.partition_key,
            resources=self.env.resources,
            instance=self.instance,
            tags=request.tags,
            raise_on_error=False,
        )

    def rows(self, table: str) -> list[tuple]:
        return self.env.warehouse_rows(f"raw_data.{table}", order_by="sessionid")


def _usc(text: str) -> dict[str, tuple]:
    """The file's rows as the warehouse should hold them, keyed by sessionid (independent parse)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    return {s: (int(u) if u else None, s, c if c else None) for u, s, c in rows}


def _expected(*texts: str) -> list[tuple]:
    merged: dict[str, tuple] = {}
    for text in texts:  # in load order: a later file replaces an earlier one's rows
        merged.update(_usc(text))
    return [merged[k] for k in sorted(merged)]


DAY1_A = 'userid,sessionid,channel\n1,s01,Google\n2,s02,"Naver, ""paid"""\n3,s03,\n'
DAY1_B = "userid,sessionid,channel\n4,s04,카카오 🚀\n,s05,Youtube\n5,s02,Facebook\n"
DAY2_A = 'userid,sessionid,channel\n6,s06,"multi\nline"\n7,s07,Organic\n'
DAY2_A_V2 = "userid,sessionid,channel\n6,s06,Instagram\n8,s08,Organic\n"


def test_each_file_version_is_requested_and_loaded_once(env, instance):
    lz = Landing(env, instance)
    lz.drop(USC, DAY1, "a.csv", DAY1_A)
    lz.drop(USC, DAY1, "b.csv.gz", DAY1_B)  # same day, same tick: one run; b (later) wins s02
    lz.drop(USC, DAY2, "a.csv.gz", DAY2_A)

    requests = lz.tick(USC)
    assert sorted(r.partition_key for r in requests) == [DAY1, DAY2]
    for request in requests:
        result = lz.run(USC, request)
        assert result.success, failure_text(result)
    assert lz.rows(USC) == _expected(DAY1_A, DAY1_B, DAY2_A)
    assert ("s02" in _usc(DAY1_A)) and lz.rows(USC)[1] == (5, "s02", "Facebook")

    md = result.asset_materializations_for_node("raw_data__user_session_channel")[0].metadata
    assert md["files"].value == f"landing/{USC}/{DAY2}/a.csv.gz"
    assert md["files_loaded"].value == 1 and md["rejected_files"].value == 0
    assert md["rows_staged"].value == 2

    # Evaluated again, or after a restart with the stored cursor: nothing new.
    assert lz.tick(USC) == []
    saved = lz.cursors[USC]
    assert lz.tick(USC) == [] and lz.cursors[USC] == saved

    # One file rewritten: exactly one request, for its day, and the new version is loaded.
    lz.drop(USC, DAY2, "a.csv.gz", DAY2_A_V2)
    requests = lz.tick(USC)
    assert [r.partition_key for r in requests] == [DAY2]
    assert lz.run(USC, requests[0]).success
    assert lz.rows(USC) == _expected(DAY1_A, DAY1_B, DAY2_A, DAY2_A_V2)
    assert lz.tick(USC) == []


def test_timestamps_plain_and_gzip_land_in_utc(env, instance):
    lz = Landing(env, instance)
    lz.drop(TS, DAY1, "part-0.csv", "sessionid,ts\nt1,2024-03-01 00:00:00\n"
                                     "t2,2024-03-01T23:59:59.999999\n")
    lz.drop(TS, DAY1, "part-1.csv.gz", "sessionid,ts\nt3,2024-03-01 09:30:00+09:00\n"
                                        "t4,2024-03-01T12:00:00Z\n")
    requests = lz.tick(TS)
    assert len(requests) == 1
    assert lz.run(TS, requests[0]).success
    ts = dt.datetime
    assert lz.rows(TS) == [
        ("t1", ts(2024, 3, 1)),
        ("t2", ts(2024, 3, 1, 23, 59, 59, 999999)),
        ("t3", ts(2024, 3, 1, 0, 30)),  # 09:30 in Seoul is 00:30 UTC
        ("t4", ts(2024, 3, 1, 12)),
    ]


def test_bad_file_fails_its_day_only_and_is_not_requested_again(env, instance):
    lz = Landing(env, instance)
    lz.drop(USC, DAY1, "good.csv", DAY1_A)
    lz.drop(USC, DAY2, "a.csv", DAY2_A_V2)
    bad = lz.drop(USC, DAY2, "b.csv", "userid,sessionid,channel\n9,s09,Google\nx12,s10,Naver\n")

    requests = {r.partition_key: r for r in lz.tick(USC)}
    assert lz.run(USC, requests[DAY1]).success
    result = lz.run(USC, requests[DAY2])
    assert not result.success
    text = failure_text(result)
    assert lz.store.uri(bad) in text
    assert "line 3, column userid: value 'x12' is not a valid INTEGER" in text
    # Nothing of that day is loaded (its good file neither); the other day stays loaded.
    assert lz.rows(USC) == _expected(DAY1_A)

    # The same bad version is never requested again ...
    assert lz.tick(USC) == []
    # ... and once it is fixed, its day is requested once and loads whole.
    lz.drop(USC, DAY2, "b.csv", "userid,sessionid,channel\n9,s09,Google\n12,s10,Naver\n")
    requests = lz.tick(USC)
    assert [r.partition_key for r in requests] == [DAY2]
    assert lz.run(USC, requests[0]).success
    assert lz.rows(USC) == _expected(
        DAY1_A, DAY2_A_V2, "userid,sessionid,channel\n9,s09,Google\n12,s10,Naver\n"
    )


def test_thousands_of_files_keep_the_cursor_small(embedded_env, instance):
    lz = Landing(embedded_env, instance)
    first = dt.date(2024, 1, 1)
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range(150)]
    for day in days:
        for n in range(20):
            lz.drop(USC, day, f"part-{n:04d}.csv", f"userid,sessionid,channel\n1,{day}-{n},x\n")
    # Not landing files of a partition: ignored, never requested.
    lz.drop(USC, "2020-01-01", "before-start-date.csv", DAY1_A)
    lz.store.write_bytes(f"landing/{USC}/{DAY1}/notes.txt", b"not a csv")
    lz.store.write_bytes(f"landing/{USC}/not-a-day/x.csv", b"userid")

    requested = []
    while batch := lz.tick(USC):
        assert len(batch) <= MAX_REQUESTS_PER_TICK
        requested += [r.partition_key for r in batch]
    assert requested == days  # every day once, oldest first, over two ticks
    assert len(lz.run_keys) == 150
    cursor = lz.cursors[USC]
    assert sorted(json.loads(cursor)) == days
    assert len(cursor) < 40 * len(days)  # ~36 bytes a day, whatever the files per day
