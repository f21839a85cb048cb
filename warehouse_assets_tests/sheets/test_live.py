"""Opt-in: both directions against the real Sheets API. Set GOOGLE_SERVICE_ACCOUNT_JSON (or
GOOGLE_APPLICATION_CREDENTIALS) and GOOGLE_SHEETS_LIVE_SPREADSHEET (the id of a spreadsheet shared
with the service account as editor); the test writes and reads the tab `warehouse_assets live`."""

from __future__ import annotations

import os
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets.config import parse_config
from warehouse_assets.settings import Settings
from warehouse_assets.sheets.assets import build_sheets_assets

LIVE = os.environ.get("GOOGLE_SHEETS_LIVE_SPREADSHEET")
pytestmark = pytest.mark.skipif(
    not (LIVE and Settings.from_env().google_credentials),
    reason="live Google Sheets test: set GOOGLE_SHEETS_LIVE_SPREADSHEET and credentials")


def test_live_round_trip(embedded_env):
    tab = "warehouse_assets live"
    wh = embedded_env.resource("warehouse")
    with wh.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS analytics"))
        conn.execute(sa.text("CREATE OR REPLACE TABLE analytics.live AS SELECT * FROM (VALUES "
                             "('007', 1.5::NUMERIC(5,1)), ('=1+1', NULL)) t(code, amount)"))
    config = parse_config({"tables": [], "exports": [
        {"sql": "SELECT code, amount FROM analytics.live ORDER BY code", "spreadsheet": LIVE,
         "tab": tab}], "sheets": [{"source": LIVE, "tab": tab, "target": "raw_data.live",
                                   "columns": {"code": "TEXT", "amount": "NUMERIC(5,1)"}}]})
    export, sheet = build_sheets_assets(config)[::-1]
    resources = embedded_env.resources
    dg.materialize([export], resources=resources)
    dg.materialize([sheet], resources=resources)
    assert sorted(wh.query("SELECT code, amount FROM raw_data.live")) == [
        ("007", Decimal("1.5")), ("=1+1", None)]
