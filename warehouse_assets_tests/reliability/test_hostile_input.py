"""Odd and hostile source values through MariaDB -> S3 -> PostgreSQL, compared with the source."""

import dataclasses
import datetime as dt
import os
import urllib.parse

import pytest
import sqlalchemy as sa

from warehouse_assets_tests.conftest import failure_text, table_yaml
from warehouse_assets_tests.reliability.conftest import execute, rows, source_table
from warehouse_assets_tests.replication.test_services import ODD_YAML, _seed_odd

TABLE_YAML = table_yaml("t")
MEGABYTE_TEXT = ('한 "quoted", \\N\n\r\t😀 \'); DROP TABLE raw_data.odd; -- ' * 30_000)[:1_000_000]


@pytest.fixture(params=["connectorx", "pymysql"])
def env(request, services_env):
    """The services environment, reading the source by each extract path."""
    services_env.settings = dataclasses.replace(
        services_env.settings, source_fast_path=request.param == "connectorx")
    return services_env


def _source(env, sql: str) -> list[tuple]:
    with sa.create_engine(os.environ["SOURCE_DB_URL"], poolclass=sa.pool.NullPool).connect() as conn:
        conn.execute(sa.text("SET time_zone = '+00:00'"))
        return [tuple(r) for r in conn.execute(sa.text(sql)).all()]


def _target(sql: str = "SELECT * FROM raw_data.t ORDER BY id") -> list[tuple]:
    return rows(os.environ["WAREHOUSE_DB_URL"], sql)


def test_fidelity_list_and_a_megabyte_of_text(env):
    _seed_odd(env)
    execute(os.environ["SOURCE_DB_URL"],
            f"ALTER TABLE {env.source_schema}.odd MODIFY t MEDIUMTEXT")
    with sa.create_engine(os.environ["SOURCE_DB_URL"], poolclass=sa.pool.NullPool).begin() as conn:
        conn.execute(sa.text(f"INSERT INTO {env.source_schema}.odd (id, s, t, modified_at) "
                             "VALUES (100, :s, :t, '2026-11-01 23:59:59.999999')"),
                     {"s": "'); DROP TABLE raw_data.odd; --", "t": MEGABYTE_TEXT})
    assert env.replicate(env.config(ODD_YAML), start="2026-11-01").success
    source = _source(env, f"SELECT * FROM {env.source_schema}.odd ORDER BY id")
    assert _target("SELECT * FROM raw_data.odd ORDER BY id") == source
    assert source[-1][2] == MEGABYTE_TEXT and len(source) == 12


def _a_bad_row_fails(env, columns: str, good: str, bad: str, parts: list[str],
                    session: tuple[str, ...] = ()) -> None:
    """Table t loads its good row; adding the bad rows fails the run with a message holding every
    part, and the loaded table stays as it was."""
    source_table(env, columns, good, *session)
    config = env.config(TABLE_YAML)
    assert env.replicate(config, start="2026-11-01").success
    before = _target()
    assert len(before) == 1
    execute(os.environ["SOURCE_DB_URL"], *session,
            f"INSERT INTO {env.source_schema}.t VALUES {bad}")
    result = env.replicate(config, start="2026-11-01", raise_on_error=False)
    assert not result.success
    message = failure_text(result)
    for part in parts:
        assert part in message
    assert _target() == before


@pytest.mark.parametrize("sql_type, value", [
    ("DATETIME", "0000-00-00 00:00:00"),
    ("TIMESTAMP", "0000-00-00 00:00:00"),
    ("DATE", "0000-00-00"),
    ("DATE", "2026-00-10"),
    ("DATETIME", "2026-11-00 10:00:00"),
])
def test_zero_and_partial_dates_fail_naming_table_column_value_and_row(env, sql_type, value):
    _a_bad_row_fails(
        env, f"id INT PRIMARY KEY, v {sql_type} NULL, modified_at DATETIME NOT NULL",
        "(1, '2026-11-01', '2026-11-01 10:00')", f"(2, '{value}', '2026-11-01 11:00')",
        [f"{env.source_schema}.t.v", value, "id=2", "Set them to NULL or a real date"],
        session=("SET SESSION sql_mode = ''",))


def test_a_nul_character_fails_naming_table_column_value_and_row(env):
    _a_bad_row_fails(
        env, "id INT PRIMARY KEY, v TEXT NULL, modified_at DATETIME NOT NULL",
        "(1, 'fine', '2026-11-01 10:00')", "(2, CONCAT('a', CHAR(0), 'b'), '2026-11-01 11:00')",
        [f"{env.source_schema}.t.v", "'a\\x00b'", "id=2", "NUL character"])


def test_timestamp_and_datetime_with_a_non_utc_source_session(env, monkeypatch):
    """The source's sessions default to +09:00 (init_command): TIMESTAMP still leaves in UTC,
    DATETIME as written, and the day window compares UTC with UTC."""
    source_table(env, "id INT PRIMARY KEY, ts TIMESTAMP(6) NULL, dt DATETIME(6) NULL, "
                 "modified_at TIMESTAMP(6) NOT NULL",
                 "(1, '2026-11-01 23:30:00', '2026-11-01 23:30:00', '2026-11-01 23:30:00'), "
                 "(2, '2026-11-02 00:30:00', '2026-11-02 00:30:00', '2026-11-02 00:30:00'), "
                 "(3, '2026-10-31 15:30:00', '2026-10-31 15:30:00', '2026-10-31 15:30:00')",
                 "SET time_zone = '+00:00'")
    init = urllib.parse.quote("SET time_zone = '+09:00'")
    monkeypatch.setenv("SOURCE_DB_URL", f"{os.environ['SOURCE_DB_URL']}&init_command={init}")
    assert rows(os.environ["SOURCE_DB_URL"], "SELECT @@session.time_zone") == [("+09:00",)]
    assert env.replicate(env.config(TABLE_YAML), start="2026-11-01").success
    at = dt.datetime(2026, 11, 1, 23, 30)
    assert _target() == [(1, at, at, at)]


def test_null_in_a_primary_key_column_fails_naming_table_and_column(env):
    _a_bad_row_fails(
        env, "id INT NULL UNIQUE, v INT, modified_at DATETIME NOT NULL",
        "(1, 1, '2026-11-01 10:00')",
        "(NULL, 2, '2026-11-01 11:00'), (NULL, 3, '2026-11-01 12:00')",
        ["raw_data.t.id: 2 staged row(s)", f"from {env.source_schema}.t",
         "primary key column 'id'", "fix those rows in the source", "primary_key"])


def test_a_cursor_at_midnight_belongs_to_exactly_one_day(env):
    source_table(env, "id INT PRIMARY KEY, modified_at DATETIME(6)",
                 "(1, '2026-11-01 23:59:59.999999'), (2, '2026-11-02 00:00:00'), "
                 "(3, '2026-11-02 00:00:00.000001'), (4, '2026-11-03 00:00:00')")
    config = env.config(TABLE_YAML)
    assert env.replicate(config, start="2026-11-01").success
    assert [r[0] for r in _target()] == [1]
    store = env.resource("staging")
    staged = store.read_bytes(f"staging/{env.source_schema}/t/2026-11-01.manifest.json")
    assert b'"rows": 1' in staged
    assert env.replicate(config, start="2026-11-02").success
    assert [r[0] for r in _target()] == [1, 2, 3]
    staged = store.read_bytes(f"staging/{env.source_schema}/t/2026-11-02.manifest.json")
    assert b'"rows": 2' in staged


def test_a_hostile_source_column_name_arrives_quoted_and_injects_nothing(env):
    name = 'x"; DROP TABLE raw_data.keep; --'
    source_table(env, f"id INT PRIMARY KEY, `{name}` INT, "
                 "modified_at DATETIME", "(1, 1, '2026-11-01 10:00')")
    execute(os.environ["WAREHOUSE_DB_URL"], "CREATE SCHEMA raw_data",
            "CREATE TABLE raw_data.keep (id INT)", "INSERT INTO raw_data.keep VALUES (7)")
    result = env.replicate(env.config(TABLE_YAML), start="2026-11-01", raise_on_error=False)
    assert result.success, failure_text(result)
    assert _target("SELECT * FROM raw_data.keep") == [(7,)]
    assert _target("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                   "'raw_data' AND table_name = 't' ORDER BY ordinal_position") == [
        ("id",), (name,), ("modified_at",)]
    assert _target('SELECT id, "x""; DROP TABLE raw_data.keep; --" FROM raw_data.t') == [(1, 1)]
