"""Assembles the code location: nothing is defined here."""

import dagster as dg

from warehouse_assets.config import load_config
from warehouse_assets.landing.assets import build_landing_assets
from warehouse_assets.landing.sensors import build_landing_sensors
from warehouse_assets.operations.alerts import build_alert_sensor, build_check_alert_sensor
from warehouse_assets.operations.pools import writer_pools
from warehouse_assets.operations.schedules import build_schedules
from warehouse_assets.reconcile.checks import build_reconcile_checks, build_reconcile_schedule
from warehouse_assets.reconcile.freshness import build_freshness_checks, build_freshness_sensor
from warehouse_assets.reconcile.repair import build_repair_sensor
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets.resources import build_resources
from warehouse_assets.sheets.assets import build_sheets_assets
from warehouse_assets.sheets.sensors import sheets_automation
from warehouse_assets.summaries.assets import build_summary_assets
from warehouse_assets.summaries.sensors import summaries_automation

config = load_config()
freshness = build_freshness_checks(config)
checks = [*build_reconcile_checks(config), *freshness]

defs = dg.Definitions(
    assets=[
        *build_replication_assets(config),
        *build_landing_assets(config),
        *build_summary_assets(),
        *build_sheets_assets(config),
    ],
    asset_checks=checks,
    schedules=[*build_schedules(config), *build_reconcile_schedule(config)],
    sensors=[
        *build_landing_sensors(config),
        build_alert_sensor(),
        build_check_alert_sensor([k for c in checks for k in c.check_keys]),
        *build_freshness_sensor(freshness),
        *build_repair_sensor(config),
        writer_pools,
        summaries_automation,
        sheets_automation,
    ],
    resources=build_resources(),
)
