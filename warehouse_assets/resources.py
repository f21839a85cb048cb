"""Resources for the current environment (see settings.py)."""

from __future__ import annotations

from typing import Any

from dagster import EnvVar

from warehouse_assets.demo import DemoSourceDatabase
from warehouse_assets.lib.io_managers import StagingIOManager, WarehouseIOManager
from warehouse_assets.lib.redaction import scrub_log_records
from warehouse_assets.lib.source import SourceDatabase
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.operations.alerts import build_slack_alerts
from warehouse_assets.settings import Settings
from warehouse_assets.sheets.resource import GoogleSheets


def build_resources(settings: Settings | None = None) -> dict[str, Any]:
    s = settings or Settings.from_env()
    scrub_log_records()  # every process that loads these resources logs without their secrets
    # Without SOURCE_DB_URL the source is the demo database, seeded on first use in a fresh clone.
    source = SourceDatabase if isinstance(s.source_url, EnvVar) else DemoSourceDatabase
    # S3 takes dagster-aws's S3Resource fields (region_name=, profile_name=, max_attempts=,
    # endpoint_url=, ...) here, or the AWS_* variables and files boto3 reads.
    store = StagingStore(url=s.staging_url)
    warehouse = Warehouse(url=s.warehouse_url, iam_role=s.redshift_iam_role)
    return {
        "source_db": source(url=s.source_url, fast_path=s.source_fast_path),
        "staging": store,
        "warehouse": warehouse,
        "staging_io_manager": StagingIOManager(store=store, part_mb=s.staging_part_mb),
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse, store=store),
        "slack_alerts": build_slack_alerts(),
        "google_sheets": GoogleSheets(service_account_json=s.google_service_account_json,
                                      credentials_path=s.google_credentials_path,
                                      api_url=s.google_sheets_api_url),
    }
