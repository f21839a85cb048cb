"""Schema drift: an added source column is added to the target; a longer VARCHAR is widened; a
dropped or retyped column fails saying what changed and what to do, with nothing loaded."""

import os

import pytest
import sqlalchemy as sa

from warehouse_assets.lib.staged import Column
from warehouse_assets.lib.warehouse import DuckDBDialect, PostgresDialect, canonical, holds
from warehouse_assets_tests.conftest import failure_text
from warehouse_assets_tests.reliability.conftest import execute, rows, source_table
from warehouse_assets_tests.reliability.test_hostile_input import TABLE_YAML

DAY = "2026-11-01"


def _columns() -> list[tuple]:
    return rows(os.environ["WAREHOUSE_DB_URL"],
                "SELECT column_name, data_type, character_maximum_length FROM "
                "information_schema.columns WHERE table_schema = 'raw_data' AND table_name = 't' "
                "ORDER BY ordinal_position")


def _state() -> tuple[list, list]:
    return _columns(), rows(os.environ["WAREHOUSE_DB_URL"], "SELECT * FROM raw_data.t ORDER BY id")


def _source() -> list[tuple]:
    schema = sa.make_url(os.environ["SOURCE_DB_URL"]).database
    return rows(os.environ["SOURCE_DB_URL"], f"SELECT * FROM {schema}.t ORDER BY id")


@pytest.fixture
def loaded(services_env):
    """raw_data.t loaded once from a source with id, score INT, note VARCHAR(10), modified_at."""
    env = services_env
    source_table(env, "id INT PRIMARY KEY, score INT, note VARCHAR(10), "
                 "modified_at DATETIME(6) NOT NULL",
                 f"(1, 5, 'a', '{DAY} 10:00'), (2, 7, NULL, '{DAY} 11:00')")
    config = env.config(TABLE_YAML)
    assert env.replicate(config, start=DAY).success
    return env, config


def test_added_column_and_longer_varchar_are_applied(loaded):
    env, config = loaded
    execute(os.environ["SOURCE_DB_URL"],
            f"ALTER TABLE {env.source_schema}.t ADD COLUMN extra DECIMAL(12,2) NULL, "
            "MODIFY note VARCHAR(200)",
            f"UPDATE {env.source_schema}.t SET extra = 1.25, note = REPEAT('n', 150), "
            f"modified_at = '{DAY} 12:00' WHERE id = 2")
    assert env.replicate(config, start=DAY).success
    assert _state() == (
        [("id", "integer", None), ("score", "integer", None),
         ("note", "character varying", 200), ("modified_at", "timestamp without time zone", None),
         ("extra", "numeric", None)],
        _source(),
    )


@pytest.mark.parametrize("change, expected", [
    ("DROP COLUMN score",
     ("column score is in the warehouse but no longer in the source: drop it "
     "(ALTER TABLE raw_data.t DROP COLUMN score) or restore it in the source")),
    ("MODIFY score VARCHAR(10)",
     ("column score is INTEGER in the warehouse but the source now sends VARCHAR(10): convert it "
     "(ALTER TABLE raw_data.t ALTER COLUMN score TYPE VARCHAR(10)), or drop raw_data.t and "
     "reload it, or restore the source's type")),
    ("MODIFY score BIGINT", ("column score is INTEGER in the warehouse but the source now sends "
                            "BIGINT")),
])
def test_dropped_or_retyped_column_fails_and_loads_nothing(loaded, change, expected):
    env, config = loaded
    before = _state()
    # An added column in the same change must not be added either: nothing half-way.
    execute(os.environ["SOURCE_DB_URL"],
            f"ALTER TABLE {env.source_schema}.t {change}, ADD COLUMN extra INT NULL",
            f"UPDATE {env.source_schema}.t SET modified_at = '{DAY} 13:00'")
    result = env.replicate(config, start=DAY, raise_on_error=False)
    assert not result.success
    message = failure_text(result)
    assert "raw_data.t: the source's columns changed and nothing was loaded." in message
    assert expected in message
    assert _state() == before


PORTABLE = ("SMALLINT", "INTEGER", "BIGINT", "BOOLEAN", "REAL", "DOUBLE PRECISION", "DATE", "TIME",
            "TIMESTAMP", "TEXT", "VARCHAR(200)", "NUMERIC(38,12)", "NUMERIC(20,0)")


@pytest.mark.parametrize("dialect", ["postgresql", "duckdb"])
def test_an_unchanged_table_never_reads_as_drift(dialect, postgres_db, tmp_path):
    """Every portable type, created by the dialect and read back from information_schema."""
    d = PostgresDialect() if dialect == "postgresql" else DuckDBDialect()
    url = postgres_db if dialect == "postgresql" else f"duckdb:///{tmp_path / 'w.duckdb'}"
    columns = tuple(Column(f"c{i}", t) for i, t in enumerate(PORTABLE))
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA s"))
        conn.execute(sa.text(d.create_table_sql("s", "t", columns, ())))
        existing = d.existing_columns(conn, "s", "t")
    assert [holds(existing[c.name], canonical(d.ddl_type(c.type))) for c in columns] == [
        True] * len(columns)
    assert not holds(existing["c2"], "NUMERIC(20,0)")  # BIGINT cannot take BIGINT UNSIGNED
