"""Freshness: every warehouse table and summary expects a successful update within
`freshness_hours` (default 26: a daily table may be a couple of hours late). Dagster's own
last-update checks, evaluated by their sensor; a failure alerts through Slack once
(operations/alerts.py)."""

import datetime as dt
from itertools import groupby

import dagster as dg

from warehouse_assets.config import ReplicationConfig
from warehouse_assets.replication.assets import target_key
from warehouse_assets.summaries.assets import summary_key
from warehouse_assets.summaries.config import load_summaries

DEFAULT_HOURS = 26


def build_freshness_checks(config: ReplicationConfig) -> list[dg.AssetChecksDefinition]:
    """One freshness check per table, grouped into one definition per freshness_hours."""
    hours = [(t.freshness_hours, target_key(t)) for t in config.tables]
    hours += [(DEFAULT_HOURS, summary_key(s)) for s in load_summaries()]
    return [
        check
        for h, keys in groupby(sorted(hours, key=lambda x: (x[0], str(x[1]))), key=lambda x: x[0])
        for check in dg.build_last_update_freshness_checks(
            assets=[k for _, k in keys], lower_bound_delta=dt.timedelta(hours=h))
    ]


def build_freshness_sensor(checks: list[dg.AssetChecksDefinition]) -> list[dg.SensorDefinition]:
    if not checks:
        return []
    return [dg.build_sensor_for_freshness_checks(
        freshness_checks=checks, default_status=dg.DefaultSensorStatus.RUNNING)]
