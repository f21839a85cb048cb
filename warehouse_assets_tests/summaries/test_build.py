"""Both summaries built on DuckDB and PostgreSQL from known inputs, compared with Python; failed
checks and SQL errors leave the previous table as it was and no build table behind."""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import dagster as dg
import pytest

from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.summaries.checks import IN_RANGE, NON_EMPTY, UNIQUE_KEY
from warehouse_assets_tests.conftest import failure_text
from warehouse_assets_tests.summaries.conftest import (
    materialize,
    nps_rows,
    session_rows,
    set_rows,
    tables_in,
)

NPS = "analytics/nps_summary"
CHANNEL = "analytics/channel_summary"


def expected_nps(rows: list[dict]) -> list[tuple]:
    """NPS per day computed in Python: exact decimals, halves rounded away from zero."""
    days: dict = defaultdict(list)
    for r in rows:
        days[r["created_at"].date()].append(r["score"])
    out = []
    for day, scores in sorted(days.items()):
        p, d = sum(s >= 9 for s in scores), sum(s <= 6 for s in scores)
        nps = (Decimal(100 * (p - d)) / len(scores)).quantize(Decimal("0.1"), ROUND_HALF_UP)
        out.append((day, len(scores), p, d, nps))
    return out


def expected_channels(sessions: list[dict], stamps: list[dict]) -> list[tuple]:
    """First and last channel per user by session time; no time sorts last; ties by sessionid."""
    ts = {s["sessionid"]: s["ts"] for s in stamps}
    by_user: dict = defaultdict(list)
    for s in sessions:
        t = ts.get(s["sessionid"])
        by_user[s["userid"]].append((t is None, t or 0, s["sessionid"], s["channel"]))
    return [(u, min(v)[3], max(v)[3]) for u, v in sorted(by_user.items())]


def summary(wh: Warehouse, table: str) -> list[tuple]:
    return wh.query(f"SELECT * FROM analytics.{table} ORDER BY 1")


def retried(result: dg.ExecuteInProcessResult) -> bool:
    return any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {e.check_name: {"passed": e.passed, **{k: v.value for k, v in e.metadata.items()}}
            for e in result.get_asset_check_evaluations()}


def test_summaries_match_python(warehouse: Warehouse) -> None:
    nps = nps_rows()
    sessions, stamps = session_rows()
    set_rows(warehouse, "raw_data.nps", nps)
    set_rows(warehouse, "raw_data.user_session_channel", sessions)
    set_rows(warehouse, "raw_data.session_timestamp", stamps)

    result = materialize(warehouse, [NPS, CHANNEL])
    assert result.success, failure_text(result)
    want_nps = expected_nps(nps)
    assert summary(warehouse, "nps_summary") == want_nps
    assert want_nps[0][4] == Decimal("6.3") and want_nps[1][4] == Decimal("-6.3")
    want_channels = expected_channels(sessions, stamps)
    assert summary(warehouse, "channel_summary") == want_channels
    assert any(first != last for _, first, last in want_channels)
    md = {e.materialization.asset_key.to_user_string(): e.materialization.metadata
          for e in result.get_asset_materialization_events()}
    assert md[NPS]["dagster/row_count"].value == len(want_nps)
    assert md[CHANNEL]["dagster/row_count"].value == len(want_channels)
    assert md[NPS]["replaced_table"].value is True  # the first build creates the table
    assert str(want_nps[0][0]) in md[NPS]["preview"].value
    found = checks(result)
    assert found[NON_EMPTY]["passed"] and found[UNIQUE_KEY]["duplicated_keys"] == 0

    # A rebuild after the inputs changed swaps the new rows into the same table.
    nps = nps_rows(seed=7, n=250)
    sessions, stamps = session_rows(seed=8, users=30)
    set_rows(warehouse, "raw_data.nps", nps)
    set_rows(warehouse, "raw_data.user_session_channel", sessions)
    set_rows(warehouse, "raw_data.session_timestamp", stamps)
    result = materialize(warehouse, [NPS, CHANNEL])
    assert result.success, failure_text(result)
    assert summary(warehouse, "nps_summary") == expected_nps(nps)
    assert summary(warehouse, "channel_summary") == expected_channels(sessions, stamps)
    assert not any(e.materialization.metadata["replaced_table"].value
                   for e in result.get_asset_materialization_events())
    assert tables_in(warehouse, "analytics") == ["channel_summary", "nps_summary"]


def test_empty_input_keeps_previous_table(warehouse: Warehouse) -> None:
    set_rows(warehouse, "raw_data.nps", nps_rows())
    assert materialize(warehouse, NPS).success
    before = summary(warehouse, "nps_summary")

    set_rows(warehouse, "raw_data.nps", [])
    result = materialize(warehouse, NPS)
    assert not result.success
    assert "non_empty failed" in failure_text(result)
    assert checks(result)[NON_EMPTY] == {"passed": False, "row_count": 0}
    assert not result.get_asset_materialization_events()
    assert summary(warehouse, "nps_summary") == before == expected_nps(nps_rows())
    assert tables_in(warehouse, "analytics") == ["nps_summary"]


SUMMARIES_YAML = """
summaries:
  - target: analytics.user_channel
    sql: user_channel.sql
    deps: [raw_data.user_session_channel]
    unique_key: [userid]
    ranges: {userid: [1, 1000]}
"""


@pytest.fixture
def user_channel_yaml(tmp_path: Path) -> Path:
    """A summary whose SELECT can yield duplicates or out-of-range keys, to make checks fail."""
    (tmp_path / "user_channel.sql").write_text(
        "SELECT userid, channel FROM raw_data.user_session_channel")
    path = tmp_path / "summaries.yaml"
    path.write_text(SUMMARIES_YAML)
    return path


GOOD = [{"userid": 1, "sessionid": "a", "channel": "Naver"},
        {"userid": 2, "sessionid": "b", "channel": "Google"}]


@pytest.mark.parametrize("bad_rows, check, figures", [
    ([{"userid": 1, "sessionid": "c", "channel": "Youtube"},
      {"userid": 1, "sessionid": "d", "channel": "Organic"},
      {"userid": 3, "sessionid": "e", "channel": "Google"},
      {"userid": 3, "sessionid": "f", "channel": "Google"}],
     UNIQUE_KEY, {"duplicated_keys": 2, "duplicate_rows": 3}),
    ([{"userid": 5000, "sessionid": "c", "channel": "Youtube"},
      {"userid": None, "sessionid": "d", "channel": "Youtube"}],
     IN_RANGE, {"userid_outside": 2}),
])
def test_failed_check_keeps_previous_table(warehouse: Warehouse, user_channel_yaml: Path,
                                           bad_rows: list[dict], check: str,
                                           figures: dict) -> None:
    set_rows(warehouse, "raw_data.user_session_channel", GOOD)
    assert materialize(warehouse, "analytics/user_channel", user_channel_yaml).success

    set_rows(warehouse, "raw_data.user_session_channel", GOOD + bad_rows)
    result = materialize(warehouse, "analytics/user_channel", user_channel_yaml)
    assert not result.success
    assert f"{check} failed" in failure_text(result) and not retried(result)
    found = checks(result)[check]
    assert not found["passed"] and figures.items() <= found.items()
    assert summary(warehouse, "user_channel") == [(1, "Naver"), (2, "Google")]
    assert tables_in(warehouse, "analytics") == ["user_channel"]


def test_sql_error_and_column_change(warehouse: Warehouse, user_channel_yaml: Path) -> None:
    set_rows(warehouse, "raw_data.user_session_channel", GOOD)
    assert materialize(warehouse, "analytics/user_channel", user_channel_yaml).success
    sql = user_channel_yaml.with_name("user_channel.sql")

    sql.write_text("SELECT userid, no_such_column FROM raw_data.user_session_channel")
    result = materialize(warehouse, "analytics/user_channel", user_channel_yaml)
    assert not result.success and "no_such_column" in failure_text(result)
    assert not retried(result)  # an SQL error gives the same answer on a second try
    assert summary(warehouse, "user_channel") == [(1, "Naver"), (2, "Google")]
    assert tables_in(warehouse, "analytics") == ["user_channel"]

    # A SELECT with other columns replaces the table itself.
    sql.write_text("SELECT userid, channel, sessionid FROM raw_data.user_session_channel")
    result = materialize(warehouse, "analytics/user_channel", user_channel_yaml)
    assert result.success, failure_text(result)
    (mat,) = result.get_asset_materialization_events()
    assert mat.materialization.metadata["replaced_table"].value is True
    assert summary(warehouse, "user_channel") == [(1, "Naver", "a"), (2, "Google", "b")]
    assert tables_in(warehouse, "analytics") == ["user_channel"]
