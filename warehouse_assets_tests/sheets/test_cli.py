"""Both directions from the command line, as a user runs them: `dagster asset materialize` on the
shipped definitions with REPLICATION_YAML holding a sheets: and an exports: entry."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from warehouse_assets_tests.sheets.conftest import SID

YAML = f"""
tables: []
sheets:
  - source: https://docs.google.com/spreadsheets/d/{SID}/edit
    tab: Targets
    target: raw_data.nps_targets
    columns:
      month: DATE
      target_nps: NUMERIC(5,1)
      owner: VARCHAR(64)
exports:
  - sql: "SELECT month, target_nps * 2 AS doubled FROM raw_data.nps_targets ORDER BY month"
    deps: [raw_data/nps_targets]
    spreadsheet: {SID}
    tab: Doubled
"""


def test_dagster_asset_materialize_both_directions(embedded_env, fake_sheets, tmp_path: Path):
    fake_sheets.add_tab(SID, "Targets", [["month", "target_nps", "owner"], [45017, 42.5, "Ana"],
                                         [45047, 40, ""]])
    (tmp_path / "replication.yaml").write_text(YAML)
    env = {**os.environ, "REPLICATION_YAML": str(tmp_path / "replication.yaml"),
           "GOOGLE_SERVICE_ACCOUNT_JSON": json.dumps(fake_sheets.service_account_info()),
           "GOOGLE_SHEETS_API_URL": fake_sheets.url, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("")
    dagster = str(Path(sys.executable).parent / "dagster")
    for select in ("raw_data/nps_targets", f"sheets/{SID}/Doubled"):
        done = subprocess.run([dagster, "asset", "materialize", "-m", "warehouse_assets.definitions",
                               "--select", select], env=env, capture_output=True, text=True,
                              timeout=180, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
    wh = embedded_env.resource("warehouse")
    assert wh.query("SELECT * FROM raw_data.nps_targets ORDER BY month") == [
        (dt.date(2023, 4, 1), Decimal("42.5"), "Ana"), (dt.date(2023, 5, 1), Decimal("40.0"), None)]
    assert fake_sheets.values(SID, "Doubled") == [["month", "doubled"], ["2023-04-01", "85.0"],
                                                  ["2023-05-01", "80.0"]]
