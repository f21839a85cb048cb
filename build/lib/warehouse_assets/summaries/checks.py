"""What a valid summary looks like: the checks run on a freshly built table before it is swapped in.

They are asset checks of the summary asset, so the UI shows each one with its figures. All are
blocking: a failed check fails the run and the previous table stays in place.
"""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse_assets.lib.warehouse import q
from warehouse_assets.summaries.config import SummarySpec

NON_EMPTY = "non_empty"
UNIQUE_KEY = "unique_key"
IN_RANGE = "values_in_range"


def check_specs(spec: SummarySpec, key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The checks an entry declares: always non-empty (the seed's count check), then key, ranges."""
    specs = [dg.AssetCheckSpec(NON_EMPTY, asset=key, blocking=True,
                               description="The SELECT returned at least one row.")]
    if spec.unique_key:
        specs.append(dg.AssetCheckSpec(
            UNIQUE_KEY, asset=key, blocking=True,
            description=f"No two rows share ({', '.join(spec.unique_key)})."))
    if spec.ranges:
        bounds = ", ".join(f"{c} in [{lo}, {hi}]" for c, (lo, hi) in spec.ranges.items())
        specs.append(dg.AssetCheckSpec(
            IN_RANGE, asset=key, blocking=True, description=f"Not NULL and {bounds}."))
    return specs


def run_checks(conn: Connection, spec: SummarySpec, table: str,
               key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    """Evaluate every declared check on `table` (qualified, quoted), with the figures found."""
    rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
    results = [dg.AssetCheckResult(asset_key=key, check_name=NON_EMPTY, passed=rows > 0,
                                   metadata={"row_count": rows})]
    if spec.unique_key:
        cols = ", ".join(q(c) for c in spec.unique_key)
        keys, extra = conn.execute(sa.text(
            f"SELECT COUNT(*), COALESCE(SUM(n - 1), 0) FROM "
            f"(SELECT COUNT(*) AS n FROM {table} GROUP BY {cols} HAVING COUNT(*) > 1) dup"
        )).one()
        results.append(dg.AssetCheckResult(
            asset_key=key, check_name=UNIQUE_KEY, passed=keys == 0,
            metadata={"unique_key": ", ".join(spec.unique_key), "duplicated_keys": int(keys),
                      "duplicate_rows": int(extra)}))
    if spec.ranges:
        parts, params = [], {}
        for i, (col, (lo, hi)) in enumerate(spec.ranges.items()):
            outside = [f"{q(col)} IS NULL"]
            if lo is not None:
                outside.append(f"{q(col)} < :lo{i}")
                params[f"lo{i}"] = lo
            if hi is not None:
                outside.append(f"{q(col)} > :hi{i}")
                params[f"hi{i}"] = hi
            parts += [f"COUNT(CASE WHEN {' OR '.join(outside)} THEN 1 END)",
                      f"MIN({q(col)})", f"MAX({q(col)})"]
        found = conn.execute(sa.text(f"SELECT {', '.join(parts)} FROM {table}"), params).one()
        metadata, bad = {}, 0
        for i, (col, (lo, hi)) in enumerate(spec.ranges.items()):
            n, low, high = found[3 * i: 3 * i + 3]
            bad += n
            metadata[f"{col}_outside"] = int(n)
            metadata[f"{col}_observed"] = f"{low} .. {high} (allowed {lo} .. {hi})"
        results.append(dg.AssetCheckResult(asset_key=key, check_name=IN_RANGE, passed=bad == 0,
                                           metadata=metadata))
    return results
