"""Fixtures: the fake Sheets API on loopback (started and stopped here) and a resource for it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dagster as dg
import pytest
import yaml

from warehouse_assets.config import parse_config
from warehouse_assets.sheets.assets import build_sheets_assets
from warehouse_assets.sheets.resource import GoogleSheets
from warehouse_assets_tests.conftest import Env
from warehouse_assets_tests.sheets.fake_sheets import FakeSheets

SID = "1TestSpreadsheetId_0123456789abcdef"


@pytest.fixture
def fake_sheets() -> Iterator[FakeSheets]:
    server = FakeSheets().start()
    server.add_spreadsheet(SID)
    yield server
    server.stop()


@pytest.fixture
def sheets(fake_sheets: FakeSheets) -> GoogleSheets:
    """The resource pointed at the fake server, with short timeouts and backoff."""
    return GoogleSheets(service_account_json=json.dumps(fake_sheets.service_account_info()),
                        api_url=fake_sheets.url, timeout_seconds=2.0, max_retries=4,
                        backoff_seconds=0.01)


def sheet_entry(tab: str, target: str, columns: dict[str, str]) -> dict:
    return {"source": SID, "tab": tab, "target": target, "columns": columns}


def run(env: Env, sheets: GoogleSheets, entries: dict, raise_on_error: bool = True,
        instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """Materialize the sheets assets of a replication document with the fake-pointed resource."""
    config = parse_config(yaml.safe_load(yaml.safe_dump({"tables": [], **entries}, sort_keys=False, allow_unicode=True)))
    return dg.materialize(build_sheets_assets(config),
                          resources={**env.resources, "google_sheets": sheets},
                          instance=instance or dg.DagsterInstance.ephemeral(),
                          raise_on_error=raise_on_error)


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    """Materialization metadata by asset key, as plain values."""
    out = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        out[mat.asset_key] = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
    return out
