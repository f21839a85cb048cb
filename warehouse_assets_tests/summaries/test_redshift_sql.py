"""Redshift cannot run here. Its build differs from PostgreSQL's in one place (no LOCK: Redshift's
LOCK would block readers, its serializable isolation stops a second concurrent build instead), so
the Redshift statements are checked as text and also run on PostgreSQL, Redshift's ancestor."""

from __future__ import annotations

import re

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets.lib.warehouse import PostgresDialect, RedshiftDialect, Warehouse
from warehouse_assets.summaries.build import build_summary, swap_sql
from warehouse_assets.summaries.config import load_summaries
from warehouse_assets_tests.summaries.conftest import INPUTS, nps_rows, set_rows
from warehouse_assets_tests.summaries.test_build import expected_nps

COLS = ["day", "responses", "promoters", "detractors", "nps"]
INSERT = ('INSERT INTO "analytics"."nps_summary" ("day", "responses", "promoters", "detractors", '
          '"nps") SELECT "day", "responses", "promoters", "detractors", "nps" FROM '
          '"analytics"."nps_summary__build_1"')


def test_swap_is_delete_and_insert_without_lock_or_truncate() -> None:
    redshift = swap_sql(RedshiftDialect(None), "analytics", "nps_summary", "nps_summary__build_1",
                        COLS, same_columns=True)
    assert redshift == ['DELETE FROM "analytics"."nps_summary"', INSERT,
                        'DROP TABLE "analytics"."nps_summary__build_1"']
    postgres = swap_sql(PostgresDialect(), "analytics", "nps_summary", "nps_summary__build_1",
                        COLS, same_columns=True)
    assert postgres == ['LOCK TABLE "analytics"."nps_summary" IN EXCLUSIVE MODE', *redshift]


def test_first_build_or_new_columns_renames_the_built_table() -> None:
    assert swap_sql(RedshiftDialect(None), "analytics", "nps_summary", "nps_summary__build_1",
                    COLS, same_columns=False) == [
        'DROP TABLE IF EXISTS "analytics"."nps_summary"',
        'ALTER TABLE "analytics"."nps_summary__build_1" RENAME TO "nps_summary"',
    ]


@pytest.fixture
def redshift_on_postgres(postgres_db: str) -> Warehouse:
    """The Redshift dialect's statements, sent to a PostgreSQL database."""
    wh = Warehouse(url=postgres_db.replace("postgresql+psycopg2://", "redshift+psycopg2://", 1))
    assert isinstance(wh.dialect, RedshiftDialect)
    with wh.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA raw_data"))
        conn.execute(sa.text(f"CREATE TABLE raw_data.nps ({INPUTS['raw_data.nps']})"))
    return wh


def test_redshift_statements_build_the_summary(redshift_on_postgres: Warehouse) -> None:
    wh = redshift_on_postgres
    spec = next(s for s in load_summaries() if s.target == "analytics.nps_summary")
    sent: list[str] = []
    sa.event.listen(wh.engine, "before_cursor_execute",  # %% is psycopg2's escaped %
                    lambda conn, cur, stmt, *a: sent.append(" ".join(stmt.replace("%%", "%").split())))
    for seed in (1, 2):
        set_rows(wh, "raw_data.nps", nps_rows(seed=seed))
        assert build_summary(wh, spec, dg.AssetKey(["analytics", "nps_summary"])).swapped
        assert wh.query("SELECT * FROM analytics.nps_summary ORDER BY 1") == expected_nps(
            nps_rows(seed=seed))
    writes = [re.sub(r"__build_[0-9a-f]{8}", "__build_1", s) for s in sent
              if s.startswith(("CREATE", "DELETE", "INSERT", "DROP", "ALTER")) and "analytics" in s]
    ctas = f'CREATE TABLE "analytics"."nps_summary__build_1" AS {" ".join(spec.select.split())}'
    assert writes == [
        'CREATE SCHEMA IF NOT EXISTS "analytics"', ctas,
        'DROP TABLE IF EXISTS "analytics"."nps_summary"',
        'ALTER TABLE "analytics"."nps_summary__build_1" RENAME TO "nps_summary"',
        'CREATE SCHEMA IF NOT EXISTS "analytics"', ctas,
        'DELETE FROM "analytics"."nps_summary"', INSERT,
        'DROP TABLE "analytics"."nps_summary__build_1"',
    ]
    assert not [s for s in sent if s.startswith(("LOCK", "TRUNCATE"))]
