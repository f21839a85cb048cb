"""MariaDB -> S3 server on loopback -> PostgreSQL, compared row by row with the source."""

import datetime as dt
import decimal
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from warehouse_assets import demo
from warehouse_assets.lib.warehouse import LoadError
from warehouse_assets_tests.conftest import NPS_YAML, failure_text, table_yaml

NPS_YAML = NPS_YAML + """  - source: {schema}.channel
    target: raw_data.channel
    mode: full_refresh
    primary_key: [channel]
"""

NPS_COLUMNS = "id, created_at, modified_at, deleted, score"


pytestmark = pytest.mark.usefixtures("extract_path")  # every test: both readers


def _mysql(env) -> sa.Engine:
    return sa.create_engine(os.environ["SOURCE_DB_URL"])


def _pg(env) -> sa.Engine:
    return sa.create_engine(os.environ["WAREHOUSE_DB_URL"])


def _rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def _expected_nps(env, first: dt.date, last: dt.date) -> list[tuple]:
    start, end = dt.datetime.combine(first, dt.time()), dt.datetime.combine(last, dt.time())
    end += dt.timedelta(days=1)
    rows = _rows(
        _mysql(env),
        f"SELECT {NPS_COLUMNS} FROM {env.source_schema}.nps WHERE NOT deleted "
        f"AND modified_at >= '{start}' AND modified_at < '{end}' ORDER BY id",
    )
    return [(i, c, m, d, s) for i, c, m, d, s in rows]


def test_range_loads_exactly_the_source_rows_of_those_days(services_env):
    env = services_env
    demo.seed(os.environ["SOURCE_DB_URL"], schema=env.source_schema)
    first, _last = demo.demo_days()
    week_start, week_end = first + dt.timedelta(days=10), first + dt.timedelta(days=16)
    config = env.config(NPS_YAML)

    result = env.replicate(config, start=week_start.isoformat(), end=week_end.isoformat())
    assert result.success
    expected = _expected_nps(env, week_start, week_end)
    assert 50 < len(expected) < 600
    got = _rows(_pg(env), f"SELECT {NPS_COLUMNS} FROM raw_data.nps ORDER BY id")
    assert got == expected
    assert _rows(_pg(env), "SELECT channel FROM raw_data.channel ORDER BY channel") == [
        (c,) for c in sorted(demo.CHANNELS)
    ]
    # One staged object for the whole window, in the S3 bucket.
    store = env.resource("staging")
    keys = {o.key for o in store.list(f"staging/{env.source_schema}/nps")}
    assert keys == {
        f"staging/{env.source_schema}/nps/{week_start}_{week_end}.csv.gz",
        f"staging/{env.source_schema}/nps/{week_start}_{week_end}.manifest.json",
    }
    # Idempotent: the same range again leaves the same rows.
    env.replicate(config, start=week_start.isoformat(), end=week_end.isoformat())
    assert _rows(_pg(env), f"SELECT {NPS_COLUMNS} FROM raw_data.nps ORDER BY id") == expected


def test_updates_deletes_and_batch_duplicates(services_env):
    env = services_env
    demo.seed(os.environ["SOURCE_DB_URL"], schema=env.source_schema)
    first, last = demo.demo_days()
    config = env.config(NPS_YAML)
    env.replicate(config, start=first.isoformat(), end=last.isoformat())
    assert _rows(_pg(env), f"SELECT {NPS_COLUMNS} FROM raw_data.nps ORDER BY id") == _expected_nps(
        env, first, last
    )
    midnight = dt.datetime.combine(last, dt.time())  # exactly midnight: belongs to `last` only
    with _mysql(env).begin() as conn:
        conn.execute(sa.text(f"UPDATE {env.source_schema}.nps SET score = 0, modified_at = :m "
                             "WHERE id = 10"), {"m": midnight})
        conn.execute(sa.text(f"UPDATE {env.source_schema}.nps SET deleted = 1, modified_at = :m "
                             "WHERE id = 11"), {"m": midnight})
    env.replicate(config, start=last.isoformat())
    got = _rows(_pg(env), f"SELECT {NPS_COLUMNS} FROM raw_data.nps ORDER BY id")
    assert got == _expected_nps(env, first, last)
    assert (10, 0) in {(r[0], r[4]) for r in got} and 11 not in {r[0] for r in got}
    # The day before does not hold the midnight rows: re-running it changes nothing.
    env.replicate(config, start=(last - dt.timedelta(days=1)).isoformat())
    assert _rows(_pg(env), f"SELECT {NPS_COLUMNS} FROM raw_data.nps ORDER BY id") == got


FIDELITY_DDL = """
CREATE TABLE {schema}.odd (
  id BIGINT PRIMARY KEY,
  s VARCHAR(200) NULL,
  t TEXT NULL,
  d DECIMAL(38,12) NULL,
  m DECIMAL(12,2) NULL,
  big BIGINT NULL,
  ubig BIGINT UNSIGNED NULL,
  dt6 DATETIME(6) NULL,
  ts TIMESTAMP(6) NULL,
  flag TINYINT(1) NULL,
  f DOUBLE NULL,
  day DATE NULL,
  modified_at DATETIME(6) NOT NULL
) CHARACTER SET utf8mb4
"""

ODD_VALUES = [
    "",
    'quote " inside',
    "comma, here",
    "new\nline and \r\n crlf",
    "tab\there",
    "back\\slash \\N",
    "\\N",
    "한국어 텍스트",
    "emoji 😀🚀",
    "NULL",
]


def _odd_rows() -> list[dict]:
    day = dt.datetime(2026, 11, 1, 12, 0, 0, 123456)
    rows = []
    for i, s in enumerate(ODD_VALUES, start=1):
        rows.append({
            "id": i, "s": s, "t": s * 3, "d": decimal.Decimal("12345678901234567890123456.123456789012"),
            "m": decimal.Decimal("-9999999999.99"), "big": 9223372036854775807,
            "ubig": 18446744073709551615, "dt6": day, "ts": day, "flag": 2, "f": 0.1 + 0.2,
            "day": dt.date(2026, 11, 1), "modified_at": day,
        })
    rows.append({"id": 99, "s": None, "t": None, "d": None, "m": None, "big": -9223372036854775808, "ubig": None,
                     "dt6": None, "ts": None, "flag": None, "f": None, "day": None, "modified_at": day})
    return rows


def _seed_odd(env) -> list[tuple]:
    engine = _mysql(env)
    with engine.begin() as conn:
        conn.execute(sa.text("SET time_zone = '+09:00'"))  # the writer's session is not UTC
        conn.execute(sa.text(FIDELITY_DDL.format(schema=env.source_schema)))
        cols = list(_odd_rows()[0])
        conn.execute(
            sa.text(f"INSERT INTO {env.source_schema}.odd ({', '.join(cols)}) VALUES "
                    f"({', '.join(':' + c for c in cols)})"),
            _odd_rows(),
        )
    with engine.connect() as conn:
        conn.execute(sa.text("SET time_zone = '+00:00'"))
        return [tuple(r) for r in conn.execute(sa.text(
            f"SELECT * FROM {env.source_schema}.odd ORDER BY id")).all()]


ODD_YAML = table_yaml("odd")


def test_fidelity_every_value_survives(services_env, extract_path):
    env = services_env
    source = _seed_odd(env)
    result = env.replicate(env.config(ODD_YAML), start="2026-11-01")
    ran = {e.materialization.metadata["extract_path"].value
           for e in result.get_asset_materialization_events()
           if "extract_path" in e.materialization.metadata}
    assert ran == {extract_path}
    got = _rows(_pg(env), "SELECT * FROM raw_data.odd ORDER BY id")
    for g, e in zip(got, source):
        assert [(i, repr(a), repr(b)) for i, (a, b) in enumerate(zip(g, e)) if a != b] == []
    assert got == source
    by_id = {r[0]: r for r in got}
    assert by_id[1][1] == "" and by_id[99][1] is None  # '' stays '', NULL stays NULL
    assert by_id[7][1] == "\\N"  # the NULL marker as text is text
    assert by_id[1][9] == 2  # TINYINT(1) holding 2
    assert by_id[1][6] == 18446744073709551615
    # TIMESTAMP written as 12:00 by a +09:00 session is stored as 03:00 UTC.
    assert by_id[1][8] == dt.datetime(2026, 11, 1, 3, 0, 0, 123456)


def test_value_the_warehouse_cannot_hold_fails_naming_it(services_env):
    env = services_env
    env.replicate(env.config(NPS_YAML).__class__(tables=()), start=None)  # no-op, warms nothing
    with _mysql(env).begin() as conn:
        conn.execute(sa.text("SET SESSION sql_mode = ''"))
        conn.execute(sa.text(f"CREATE TABLE {env.source_schema}.zero (id INT PRIMARY KEY, "
                             "happened DATETIME NOT NULL, modified_at DATETIME NOT NULL)"))
        conn.execute(sa.text(f"INSERT INTO {env.source_schema}.zero VALUES "
                             "(1, '2026-11-01 10:00:00', '2026-11-01 10:00:00')"))
    yaml_text = ODD_YAML.replace(".odd", ".zero").replace("raw_data.zero", "raw_data.zero")
    config = env.config(yaml_text)
    env.replicate(config, start="2026-11-01")
    before = _rows(_pg(env), "SELECT * FROM raw_data.zero ORDER BY id")
    assert before == [(1, dt.datetime(2026, 11, 1, 10), dt.datetime(2026, 11, 1, 10))]
    with _mysql(env).begin() as conn:
        conn.execute(sa.text("SET SESSION sql_mode = ''"))
        conn.execute(sa.text(f"INSERT INTO {env.source_schema}.zero VALUES "
                             "(2, '0000-00-00 00:00:00', '2026-11-01 11:00:00')"))
    result = env.replicate(config, start="2026-11-01", raise_on_error=False)
    assert not result.success
    message = failure_text(result)
    assert f"{env.source_schema}.zero.happened" in message and "0000-00-00 00:00:00" in message
    assert "id=2" in message
    assert _rows(_pg(env), "SELECT * FROM raw_data.zero ORDER BY id") == before


def test_backfill_cli_partition_range_is_the_airflow_backfill(services_env, tmp_path):
    """`dagster asset materialize --partition-range` replaces `airflow dags backfill -s -e`."""
    env = services_env
    demo.seed(os.environ["SOURCE_DB_URL"], schema=env.source_schema)
    first, _ = demo.demo_days()
    start, end = first + dt.timedelta(days=3), first + dt.timedelta(days=9)
    yaml_path = tmp_path / "replication.yaml"
    yaml_path.write_text(NPS_YAML.replace("{schema}", env.source_schema))
    cmd = [
        sys.executable, "-m", "dagster", "asset", "materialize",
        "-m", "warehouse_assets.definitions",
        "--select", f"staging/{env.source_schema}/nps,raw_data/nps",
        "--partition-range", f"{start}...{end}",
    ]
    run_env = {**os.environ, "REPLICATION_YAML": str(yaml_path), "DAGSTER_HOME": str(tmp_path)}
    for _ in range(2):  # the second run must change nothing
        proc = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=300,
                              check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = _rows(_pg(env), f"SELECT {NPS_COLUMNS} FROM raw_data.nps ORDER BY id")
        assert got == _expected_nps(env, start, end)


def test_load_error_is_wrapped_with_table(services_env):
    assert issubclass(LoadError, RuntimeError)
