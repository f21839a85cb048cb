"""`matches_source`: an asset check on every replicated table, run after each load over the window
just loaded, and daily over the last `reconcile_days` days without loading anything."""


import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
from dagster import AssetCheckExecutionContext

from warehouse_assets.config import ReplicationConfig, TableSpec
from warehouse_assets.lib.source import SourceDatabase
from warehouse_assets.lib.source.database import Window
from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.operations.schedules import ASSET_JOB, RANGE_END, RANGE_START
from warehouse_assets.reconcile.compare import compare
from warehouse_assets.replication.assets import target_key
from warehouse_assets.settings import Operations

MATCHES_SOURCE = "matches_source"
PARTITION = "dagster/partition"


def check_window(spec: TableSpec, tags: dict, today: dt.date | None = None) -> Window | None:
    """The days a check compares: the run's partition or range if it loaded one, else the last
    reconcile_days complete days; None (the whole table) for a full refresh."""
    if spec.mode != "incremental":
        return None
    tz = ZoneInfo(spec.timezone)
    first = tags.get(RANGE_START) or tags.get(PARTITION)
    last = tags.get(RANGE_END) or tags.get(PARTITION)
    if first and last:
        start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    else:
        end = (today or dt.datetime.now(tz).date()) - dt.timedelta(days=1)
        start = max(end - dt.timedelta(days=spec.reconcile_days - 1),
                    dt.date.fromisoformat(spec.start_date))
    return Window(dt.datetime.combine(start, dt.time(), tz),
                  dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz))


def check_key(spec: TableSpec) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(target_key(spec), MATCHES_SOURCE)


def build_reconcile_checks(config: ReplicationConfig) -> list[dg.AssetChecksDefinition]:
    """One multi-check for every replicated table (one definition whatever the table count)."""
    if not config.tables:
        return []
    by_key = {check_key(t): t for t in config.tables}
    specs = [dg.AssetCheckSpec(
        MATCHES_SOURCE, asset=target_key(t),
        description=f"{t.target} holds exactly the rows of {t.source}: row count and a fingerprint "
        f"of {'key and cursor' if t.mode == 'incremental' else 'every column'} computed on both "
        f"sides, over the window loaded (daily: the last {t.reconcile_days} days).")
        for t in config.tables]

    @dg.multi_asset_check(specs=specs, can_subset=True, name="reconcile_with_source")
    def matches_source(context: AssetCheckExecutionContext, source_db: SourceDatabase,
                       warehouse: Warehouse):
        tags = context.run.tags
        for key in sorted(context.selected_asset_check_keys, key=str):
            spec = by_key[key]
            window = check_window(spec, tags)
            label = window.label if window else "whole table"
            c = compare(spec, window, source_db, warehouse, label)
            yield dg.AssetCheckResult(
                asset_key=key.asset_key, check_name=MATCHES_SOURCE, passed=c.matches,
                severity=dg.AssetCheckSeverity.ERROR if spec.reconcile == "strict"
                else dg.AssetCheckSeverity.WARN,
                description=None if c.matches else (
                    f"{spec.target} differs from {spec.source} over {label}: "
                    f"{c.warehouse[0] - c.source[0]:+d} rows; {c.missing} missing, {c.extra} "
                    f"extra, {c.changed} changed" + (f" ({'; '.join(c.examples)})"
                                                     if c.examples else "")),
                metadata={
                    "window": label,
                    "source_rows": c.source[0],
                    "warehouse_rows": c.warehouse[0],
                    "row_difference": c.warehouse[0] - c.source[0],
                    "missing_in_warehouse": c.missing,
                    "extra_in_warehouse": c.extra,
                    "changed_rows": c.changed,
                    "source_fingerprint": ".".join(f"{v:x}" for v in c.source[1:]),
                    "warehouse_fingerprint": ".".join(f"{v:x}" for v in c.warehouse[1:]),
                    "compared_columns": ", ".join(c.compared),
                    "not_compared": ", ".join(c.not_compared) or "none",
                    "differing_days": ", ".join(c.differing_days) or "none",
                    **({"days": dg.MetadataValue.md(_days_table(c))} if c.days else {}),
                })

    return [matches_source]


def _days_table(c) -> str:
    """Per day (partition): both sides' rows and whether they match, as the check's page shows."""
    lines = ["| day | source rows | warehouse rows | matches |", "|---|---|---|---|"]
    for day, (src, wh) in list(c.days.items())[-400:]:
        lines.append(f"| {day} | {src[0] if src else 0} | {wh[0] if wh else 0} | "
                     f"{'yes' if src == wh else '**no**'} |")
    return "\n".join(lines)


def build_reconcile_schedule(config: ReplicationConfig,
                             ops: Operations | None = None) -> list[dg.ScheduleDefinition]:
    """Daily, an hour after the loads: every table's check over its lookback, loading nothing.
    One run of the implicit asset job with only the checks selected: a job of its own would cost
    Dagster a pass over every asset when definitions load (1.5 s with 500 tables)."""
    if not config.tables:
        return []
    ops = ops or Operations.from_env()
    keys = [check_key(t) for t in config.tables]

    @dg.schedule(
        name="reconcile_daily", job_name=ASSET_JOB,
        cron_schedule=f"0 {(ops.schedule_hour + 1) % 24} * * *",
        execution_timezone=ops.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Re-checks the last reconcile_days days of every table against its source; "
        "loads nothing.")
    def reconcile_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=day, asset_selection=[], asset_check_keys=keys)

    return [reconcile_daily]
