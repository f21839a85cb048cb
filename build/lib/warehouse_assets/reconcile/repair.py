"""`repair: true` on an entry: when matches_source finds days that differ, request a reload of
each contiguous range of them (one run per range, in the table's pool), tagged with why."""

import datetime as dt
import json

import dagster as dg

from warehouse_assets.config import ReplicationConfig, TableSpec
from warehouse_assets.operations.schedules import RANGE_END, RANGE_START, table_assets
from warehouse_assets.reconcile.checks import check_key

REPAIR_TAG = "warehouse/repair"


def day_ranges(days: list[str]) -> list[tuple[str, str]]:
    """Contiguous (first, last) runs of ISO days; '2026-11-01_2026-11-03' labels are expanded."""
    expanded = set()
    for label in days:
        first, _, last = label.partition("_")
        d, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last or first)
        while d <= end:
            expanded.add(d)
            d += dt.timedelta(days=1)
    out: list[tuple[dt.date, dt.date]] = []
    for d in sorted(expanded):
        if out and d - out[-1][1] == dt.timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return [(a.isoformat(), b.isoformat()) for a, b in out]


def _requests(spec: TableSpec, storage_id: int, metadata: dict) -> list[dg.RunRequest]:
    days = str(metadata.get("differing_days", "none"))
    why = (f"matches_source failed: {metadata.get('missing_in_warehouse', '?')} missing, "
           f"{metadata.get('extra_in_warehouse', '?')} extra, "
           f"{metadata.get('changed_rows', '?')} changed")
    if spec.mode != "incremental":
        return [dg.RunRequest(run_key=f"{storage_id}", asset_selection=table_assets(spec),
                              tags={REPAIR_TAG: why})]
    return [dg.RunRequest(run_key=f"{storage_id}:{first}...{last}",
                          asset_selection=table_assets(spec),
                          tags={RANGE_START: first, RANGE_END: last, REPAIR_TAG: why})
            for first, last in day_ranges([d.strip() for d in days.split(",") if d.strip() != "none"])]


def build_repair_sensor(config: ReplicationConfig) -> list[dg.SensorDefinition]:
    specs = {check_key(t): t for t in config.tables if t.repair}
    if not specs:
        return []

    @dg.sensor(name="reconcile_repair", minimum_interval_seconds=60, job_name="__ASSET_JOB",
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Reloads the days matches_source found differing (entries with "
               "repair: true).")
    def reconcile_repair(context: dg.SensorEvaluationContext):
        seen = json.loads(context.cursor) if context.cursor else {}
        latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            list(specs))
        requests = []
        for key, record in latest.items():
            event = record.event.dagster_event if record.event else None
            if not event or event.event_type != dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                continue
            evaluation = event.event_specific_data
            if evaluation.passed or seen.get(key.to_user_string()) == record.id:
                continue
            seen[key.to_user_string()] = record.id  # one repair per failed evaluation
            metadata = {k: v.value for k, v in evaluation.metadata.items()}
            requests += _requests(specs[key], record.id, metadata)
        context.update_cursor(json.dumps(seen))
        return requests or dg.SkipReason("no failed check to repair")

    return [reconcile_repair]
