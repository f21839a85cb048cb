"""Google Sheets throughput through the fake Sheets API on loopback (the real gspread and
google-auth, the embedded DuckDB warehouse): a BENCH_SHEET_ROWS-row tab (default 10,000) imported
into a table, and the table exported back to a tab in one batchUpdate. The fake server runs in
this process, so the figures measure our side (conversion, staging, load, request building)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg

ROWS = int(os.environ.get("BENCH_SHEET_ROWS", "10000"))
SID = "1BenchSpreadsheet_0123456789"


def main() -> None:
    from warehouse_assets_tests.sheets.fake_sheets import FakeSheets

    fake = FakeSheets().start()
    tmp = tempfile.mkdtemp(prefix="bench-sheets-")
    os.environ["WAREHOUSE_DATA_DIR"] = tmp
    for var in ("SOURCE_DB_URL", "STAGING_URL", "WAREHOUSE_DB_URL"):
        os.environ.pop(var, None)
    os.environ["GOOGLE_SERVICE_ACCOUNT_JSON"] = json.dumps(fake.service_account_info())
    os.environ["GOOGLE_SHEETS_API_URL"] = fake.url
    from warehouse_assets.config import parse_config
    from warehouse_assets.resources import build_resources
    from warehouse_assets.sheets.assets import build_sheets_assets

    grid = [["day", "amount", "owner", "note"]] + [
        [45000 + i % 365, round(i * 0.37, 2), f"owner {i % 97}", f"row {i}, with a comma"]
        for i in range(ROWS)]
    fake.add_tab(SID, "Data", grid)
    config = parse_config({"tables": [], "sheets": [{
        "source": SID, "tab": "Data", "target": "raw_data.bench_sheet",
        "columns": {"day": "DATE", "amount": "NUMERIC(12,2)", "owner": "VARCHAR(32)",
                    "note": "TEXT"}}],
        "exports": [{"query": "raw_data/bench_sheet", "spreadsheet": SID, "tab": "Back"}]})
    assets = build_sheets_assets(config)
    resources = build_resources()
    for name, asset in (("import", assets[0]), ("export", assets[1])):
        started = time.monotonic()
        result = dg.materialize([asset], resources=resources, raise_on_error=True,
                                selection=[asset.key])
        seconds = time.monotonic() - started
        assert result.success
        (mat,) = [e.materialization for e in result.get_asset_materialization_events()]
        md = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        detail = (f"{md['write_requests']} write request(s), {md['api_calls']} API calls"
                  if name == "export" else f"{md['api_calls']} API call(s)")
        print(f"sheets {name}: {ROWS:,} rows x 4 columns in {seconds:.2f} s = "
              f"{ROWS / seconds:,.0f} rows/s (whole Dagster run, fake API on loopback; {detail})")
    assert len(fake.values(SID, "Back")) == ROWS + 1
    fake.stop()


if __name__ == "__main__":
    main()
