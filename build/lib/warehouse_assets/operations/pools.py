"""One writer per warehouse table (the seed's max_active_runs=1), enforced by the instance.

Each writer asset's pool is its table. dagster.yaml gives every pool one slot at run
granularity: the daemon leaves a run QUEUED while another run holding the same pool is in
progress, and the slot is that run's status, so it frees when the run succeeds, fails, is
cancelled, or crashes and run monitoring marks it failed.
"""

import dagster as dg

from warehouse_assets.operations.retries import retry_policy
from warehouse_assets.settings import Operations


def writer_policies(table: str, ops: Operations | None = None) -> dict:
    """@asset arguments for an asset that writes warehouse table `table` (schema.table):
    its pool, and the retry policy for transient failures."""
    return {"pool": table, "retry_policy": retry_policy(ops)}


@dg.sensor(
    name="writer_pools",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Gives every writer pool its limit before its first run is queued.",
)
def writer_pools(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Registers each asset pool at dagster.yaml's default limit.

    The queued-run daemon reads the registered pools at the start of an iteration and registers
    new ones only afterwards, so in the first iteration that sees a pool it is unlimited: two runs
    of a new table queued together would both start. Registering pools when the code location
    loads closes that window.
    """
    pools = {
        a.op.pool
        for a in context.repository_def.assets_defs_by_key.values()
        if a.is_executable and a.op.pool
    }
    storage = context.instance.event_log_storage
    new = sorted(pools - storage.get_concurrency_keys())
    for pool in new:
        storage.initialize_concurrency_limit_to_default(pool)
    return dg.SkipReason(f"registered pools: {', '.join(new)}" if new else "all pools registered")
