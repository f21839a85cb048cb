"""A sensor per landing table: requests a day's partition once for each new state of its files."""

import json

import dagster as dg

from warehouse_assets.config import LandingSpec, ReplicationConfig
from warehouse_assets.landing.assets import landing_partitions, target_key
from warehouse_assets.landing.files import day_digest, files_by_day, landing_prefix
from warehouse_assets.lib.staging import StagingStore

INTERVAL_SECONDS = 30
MAX_REQUESTS_PER_TICK = 100  # a first tick over years of files spreads over a few ticks
DAY_TAG = "landing/day"  # dagster.yaml runs one load per table and day at a time


def build_landing_sensor(spec: LandingSpec) -> dg.SensorDefinition:
    """Lists landing/<table>/ and requests each day whose files were added, rewritten or removed.

    The cursor maps each day to a digest of its files' keys and versions (ETag or mtime), so it
    stays small with thousands of files, and the run key carries the same digest: one state of a
    day's files is requested once, across restarts, whatever its run's outcome. A bad file is
    not requested again until it (or another file of its day) changes.
    """
    partitions = landing_partitions(spec)

    @dg.sensor(
        name=f"landing_{spec.table}",
        target=[target_key(spec)],
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Loads the day of each new or rewritten file under {landing_prefix(spec)}/.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext,
                       staging: StagingStore) -> dg.SensorResult:
        processed: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        cursor: dict[str, str] = {}
        requests, waiting = [], []
        for day, objects in files_by_day(spec, staging.list(landing_prefix(spec))).items():
            digest = day_digest(objects)
            if processed.get(day) == digest:
                cursor[day] = digest
            elif not partitions.has_partition_key(day) or len(requests) >= MAX_REQUESTS_PER_TICK:
                # Before start_date, not begun in spec.timezone yet, or next tick's share.
                waiting.append(day)
                if day in processed:
                    cursor[day] = processed[day]
            else:
                cursor[day] = digest
                requests.append(
                    dg.RunRequest(
                        run_key=f"{spec.table}:{day}:{digest}",
                        partition_key=day,
                        tags={DAY_TAG: f"{spec.table}/{day}"},
                    )
                )
        if waiting:
            context.log.info(f"{len(waiting)} day(s) not requested yet: {', '.join(waiting[:5])}")
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(cursor, separators=(",", ":"), sort_keys=True),
            skip_reason=None if requests else f"no new or rewritten files under "
            f"{landing_prefix(spec)}/" + (f" ({len(waiting)} day(s) outside the partitions)"
                                           if waiting else ""),
        )

    return landing_sensor


def build_landing_sensors(config: ReplicationConfig) -> list[dg.SensorDefinition]:
    return [build_landing_sensor(spec) for spec in config.landing]
