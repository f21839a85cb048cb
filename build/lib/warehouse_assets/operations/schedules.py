"""Daily schedules: each incremental table loads the previous day's partition at 09:00 (the seed's
`schedule='0 9 * * *'`), hour and time zone from SCHEDULE_HOUR / SCHEDULE_TIMEZONE.

Each schedule requests its table's two assets from Dagster's implicit asset job, as the UI's
"Materialize" does: its runs write one table (one pool), and a backfill of one table never waits
for another's. A job per table would cost Dagster a pass over every asset per job when
definitions load (500 tables: 9 s of a 12 s `dagster definitions validate`).
"""

import dagster as dg

from warehouse_assets.config import ReplicationConfig, TableSpec
from warehouse_assets.replication.assets import daily_partitions, staging_key, target_key
from warehouse_assets.settings import Operations

RANGE_START = "dagster/asset_partition_range_start"  # a single-run backfill's first day
RANGE_END = "dagster/asset_partition_range_end"


ASSET_JOB = "__ASSET_JOB"  # dagster._core.definitions.assets.job.asset_job.IMPLICIT_ASSET_JOB_NAME


def table_assets(spec: TableSpec) -> list[dg.AssetKey]:
    """What one run of a table materializes: its staged file and its warehouse table."""
    return [staging_key(spec), target_key(spec)]


def build_daily_schedule(spec: TableSpec, ops: Operations) -> dg.ScheduleDefinition:
    """At ops.schedule_hour in ops.schedule_timezone, request the last complete day of spec."""
    partitions = daily_partitions(spec.start_date, spec.timezone)
    schema, table = spec.target.split(".")

    @dg.schedule(
        name=f"replicate_{schema}__{table}_daily",
        job_name=ASSET_JOB,
        cron_schedule=f"0 {ops.schedule_hour} * * *",
        execution_timezone=ops.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,  # on under `make dev` and in deployments
        description=f"Loads yesterday's rows of {spec.target} daily at "
        f"{ops.schedule_hour:02d}:00 {ops.schedule_timezone}.",
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        # The last partition whose day has ended at tick time, in the table's own time zone.
        keys = partitions.get_partition_keys(current_time=context.scheduled_execution_time)
        if not keys:
            return dg.SkipReason(f"{spec.target}: no complete day since {spec.start_date} yet")
        # run_key: a tick evaluated twice (daemon restart) never loads the day twice.
        if not spec.lookback_days:
            return dg.RunRequest(run_key=keys[-1], partition_key=keys[-1],
                                 asset_selection=table_assets(spec))
        # lookback_days: yesterday and the days before it, one window (as a backfill), so rows
        # committed late with an older cursor still land.
        first = keys[max(len(keys) - 1 - spec.lookback_days, 0)]
        return dg.RunRequest(run_key=f"{first}...{keys[-1]}", asset_selection=table_assets(spec),
                             tags={RANGE_START: first, RANGE_END: keys[-1]})

    return _daily


def build_schedules(config: ReplicationConfig, ops: Operations | None = None) -> list:
    """One daily schedule per incremental table."""
    ops = ops or Operations.from_env()
    return [build_daily_schedule(s, ops) for s in config.tables if s.mode == "incremental"]
