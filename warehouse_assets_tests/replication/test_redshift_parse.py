"""Every Redshift statement the project generates, parsed by sqlglot's `redshift` dialect: a
syntax error is caught here, not in production.

sqlglot (30.x) parses COPY, CREATE, DELETE ... USING, INSERT ... SELECT, ALTER and the
fingerprint's functions into real expressions. It cannot parse Redshift's `LOCK table` (it
falls back to an opaque Command, which checks nothing): LOCK is listed in UNPARSED and checked
as text in test_redshift_sql.py. It also reads COPY's bare flags pairwise (`GZIP MANIFEST` as one
parameter), so the test checks the options it does parse by name.
"""

from __future__ import annotations

import dataclasses

import pytest
import sqlglot
from sqlglot import exp

from warehouse_assets.lib.staged import Column
from warehouse_assets.lib.warehouse import RedshiftDialect
from warehouse_assets.reconcile.fingerprint import aggregates, digests
from warehouse_assets.summaries.build import swap_sql
from warehouse_assets_tests.replication.test_redshift_sql import COLUMNS, LOAD, STAGED

UNPARSED = ("LOCK ",)  # statements sqlglot only reads as an opaque Command
D = RedshiftDialect("arn:aws:iam::123:role/copy")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parse(sql: str, params: dict | None = None) -> exp.Expression:
    """sql with psycopg2's %(name)s parameters as the literals the driver sends."""
    for name, value in (params or {}).items():
        sql = sql.replace(f"%({name})s", _literal(value))
    tree = sqlglot.parse_one(sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
    if isinstance(tree, exp.Command):
        assert sql.startswith(UNPARSED), f"sqlglot could not parse: {sql}"
    return tree


def _statements() -> list[tuple[str, dict]]:
    merge_all = dataclasses.replace(LOAD, delete_missing=True, staged=(dataclasses.replace(
        STAGED, manifest=dataclasses.replace(STAGED.manifest,
                                             window=("2026-11-01T00:00:00+00:00",
                                                     "2026-11-02T00:00:00+00:00"))),))
    replace = dataclasses.replace(LOAD, mode="replace", soft_delete="deleted")
    cols = ["id", "created_at", "modified_at", "deleted", "comment", "body"]
    stmts = [
        D.create_table_sql("raw_data", "nps", COLUMNS, ("id",)),
        D.create_stage_sql("stage_nps", COLUMNS),
        *D.merge_sql(LOAD, "stage_nps"),
        *D.merge_sql(merge_all, "stage_nps"),
        *D.replace_sql(replace, "stage_c"),
        *swap_sql(D, "analytics", "nps_summary", "nps_summary__build_1", cols, same_columns=True),
        *swap_sql(D, "analytics", "nps_summary", "nps_summary__build_1", cols, same_columns=False),
        f"DELETE FROM \"raw_data\".\"nps\" WHERE {D.soft_deleted(LOAD)}",
        'LOCK "raw_data"."nps"',
    ]
    typed = [Column("id", "BIGINT", False), Column("at", "TIMESTAMP"), Column("day", "DATE"),
             Column("Note", "VARCHAR(10)")]
    stmts.append(f'SELECT {aggregates("redshift", typed)} FROM "raw_data"."nps"')
    stmts.append(f'SELECT {digests("redshift", typed[:1], typed)} FROM "raw_data"."nps"')
    out = [(s, {}) for s in stmts]
    out.append(D.copy_sql('"stage_nps"', COLUMNS, "s3://b/p/2026-11-01.copy-manifest.json"))
    return out


@pytest.mark.parametrize("sql,params", _statements(), ids=lambda v: str(v)[:40])
def test_statement_parses_as_redshift(sql, params):
    parse(sql, params)


def test_copy_manifest_statement_parses_with_its_options():
    sql, params = D.copy_sql('"stage_nps"', COLUMNS, "s3://b/p/2026-11-01.copy-manifest.json")
    tree = parse(sql, params)
    assert isinstance(tree, exp.Copy)
    assert tree.this.this.name == "stage_nps"
    assert [c.name for c in tree.this.expressions] == [c.name for c in COLUMNS]
    assert [f.name for f in tree.args["files"]] == ["s3://b/p/2026-11-01.copy-manifest.json"]
    assert tree.args["credentials"].args["iam_role"].name == "arn:aws:iam::123:role/copy"
    words = sql.split()
    assert "MANIFEST" in words and "GZIP" in words and words[-2:] == ["MAXERROR", "0"]
