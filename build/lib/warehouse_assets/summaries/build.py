"""Building a summary table: CREATE TABLE AS SELECT into a new table, check it, swap it in.

All three steps run in ONE transaction. A failed check or SQL error rolls everything back, the
new table included, so the previous summary is left exactly as it was and nothing is left over.
The swap is a DELETE and an INSERT of the target's rows rather than DROP + RENAME: under MVCC a
reader keeps seeing the old rows until the commit and then the new ones, never a missing or
half-filled table (a PostgreSQL reader that resolved the old table's OID before a DROP would fail).
Only a first build, or a SELECT whose columns changed, replaces the table itself.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse_assets.lib.warehouse import Dialect, Warehouse, q, qualified
from warehouse_assets.summaries.checks import run_checks
from warehouse_assets.summaries.config import SummarySpec

PREVIEW_ROWS = 5


class SummaryCheckFailed(RuntimeError):
    """A freshly built summary failed a blocking check; the previous table was kept."""


@dataclass
class BuildResult:
    """What one build did: the checks' outcomes and, if they passed, the table swapped in."""

    checks: list[dg.AssetCheckResult]
    swapped: bool = False
    recreated: bool = False
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    preview: list[tuple[Any, ...]] = field(default_factory=list)
    seconds: float = 0.0


def build_table_name(table: str) -> str:
    """A unique name beside the target, so concurrent builds never share one."""
    return f"{table[:40]}__build_{uuid.uuid4().hex[:8]}"


def swap_sql(d: Dialect, schema: str, table: str, new: str, columns: list[str] | None,
             same_columns: bool) -> list[str]:
    """Statements that make `new` the content of schema.table, inside the caller's transaction."""
    target = qualified(schema, table)
    if not same_columns:  # first build, or the SELECT's columns changed: the table itself changes
        return [f"DROP TABLE IF EXISTS {target}",
                f"ALTER TABLE {qualified(schema, new)} RENAME TO {q(table)}"]
    cols = ", ".join(q(c) for c in columns or [])
    stmts = [f"DELETE FROM {target}",
             f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {qualified(schema, new)}",
             f"DROP TABLE {qualified(schema, new)}"]
    if d.name == "postgresql":
        # Two builds at once would each delete only the rows they saw and both insert: queue them.
        # EXCLUSIVE mode still lets readers (ACCESS SHARE) through. Redshift's LOCK would block
        # readers; its serializable isolation makes the second build fail instead.
        stmts.insert(0, f"LOCK TABLE {target} IN EXCLUSIVE MODE")
    return stmts


def build_summary(warehouse: Warehouse, spec: SummarySpec, key: dg.AssetKey) -> BuildResult:
    """Build spec's SELECT into a new table, run its checks, and swap it in only if all pass."""
    started = time.monotonic()
    d = warehouse.dialect
    new = build_table_name(spec.target_table)
    new_q = qualified(spec.target_schema, new)
    try:
        with warehouse.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {q(spec.target_schema)}"))
            conn.execute(sa.text(f"CREATE TABLE {new_q} AS\n{spec.select}"))
            result = BuildResult(checks=run_checks(conn, spec, new_q, key))
            if not all(c.passed for c in result.checks):
                raise SummaryCheckFailed(spec.target)  # rolls back: the new table disappears
            built = d.existing_columns(conn, spec.target_schema, new)
            existing = d.existing_columns(conn, spec.target_schema, spec.target_table)
            same = existing is not None and list(existing.items()) == list(built.items())
            for stmt in swap_sql(d, spec.target_schema, spec.target_table, new, list(built), same):
                conn.execute(sa.text(stmt))
            result.swapped, result.recreated, result.columns = True, not same, list(built)
            result.rows = result.checks[0].metadata["row_count"].value
            result.preview = _preview(conn, qualified(spec.target_schema, spec.target_table))
    except SummaryCheckFailed:
        pass
    result.seconds = time.monotonic() - started
    return result


def _preview(conn: Connection, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1 LIMIT "
                                                   f"{PREVIEW_ROWS}")).all()]
