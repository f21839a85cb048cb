"""A warehouse table or SELECT written over a tab: compared value by value with the warehouse rows,
and with the fake server's request log (one batchUpdate, no Drive calls, no formula input)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets.config import parse_config
from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.sheets.assets import build_sheets_assets
from warehouse_assets.sheets.resource import GoogleSheets
from warehouse_assets.sheets.sensors import sheets_automation
from warehouse_assets_tests.conftest import failure_text
from warehouse_assets_tests.sheets.conftest import SID, metadata, run

ROWS = [
    (dt.date(2024, 1, 2), Decimal("0.1"), 9007199254740993, '=IMPORTXML("http://x", "//a")',
     dt.datetime(2024, 1, 2, 3, 4, 5, 600000), True, 0.5),
    (None, None, None, "", None, None, None),
    (dt.date(2024, 1, 3), Decimal("12345678901234567890.1234567890"), 42, "+1", None, False, -1.25),
    (dt.date(2024, 1, 4), Decimal(-3), -(2**53), "'x", None, None, 1e300),
]
# What the tab holds after the export: exact text for DECIMAL, dates and big integers, numbers
# and booleans as such, NULL as an empty cell, and text raw (never a formula).
SHEET = [
    ["day", "nps", "n", "label", "ts", "ok", "ratio"],
    ["2024-01-02", "0.1000000000", "9007199254740993", '=IMPORTXML("http://x", "//a")',
     "2024-01-02T03:04:05.600000", True, 0.5],
    [],
    ["2024-01-03", "12345678901234567890.1234567890", 42, "+1", "", False, -1.25],
    ["2024-01-04", "-3.0000000000", -(2**53), "'x", "", "", 1e300],
]
SQL = "SELECT day, nps, n, label, ts, ok, ratio FROM analytics.nps_summary ORDER BY day NULLS LAST"


@pytest.fixture(params=["embedded", "services"])
def env(request):
    return request.getfixturevalue(f"{request.param}_env")


def create_summary(env, rows=ROWS) -> None:
    wh = env.resource("warehouse")
    with wh.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS analytics"))
        conn.execute(sa.text("DROP TABLE IF EXISTS analytics.nps_summary"))
        conn.execute(sa.text(
            "CREATE TABLE analytics.nps_summary (day DATE, nps NUMERIC(38,10), n BIGINT, "
            "label VARCHAR(60000), ts TIMESTAMP, ok BOOLEAN, ratio DOUBLE PRECISION)"))
        for r in rows:
            conn.execute(sa.text("INSERT INTO analytics.nps_summary VALUES "
                                 "(:d, :nps, :n, :label, :ts, :ok, :ratio)"),
                         dict(zip(["d", "nps", "n", "label", "ts", "ok", "ratio"], r)))


def export(tab: str = "NPS", sql: str = SQL) -> dict:
    return {"exports": [{"sql": sql, "deps": ["analytics/nps_summary"], "spreadsheet": SID,
                         "tab": tab}]}




def test_export_matches_the_query_in_one_batch_update(env, fake_sheets, sheets):
    create_summary(env)
    old = fake_sheets.add_tab(SID, "NPS", [[f"old {r}"] * 5 for r in range(1000)])
    result = run(env, sheets, export())
    values = fake_sheets.values(SID, "NPS")
    assert values[0] == SHEET[0]
    # The all-NULL row sorts last in the query; like Google's, values.get leaves out trailing
    # empty rows, so it shows only in the grid's size.
    assert sorted(map(repr, values[1:])) == sorted(map(repr, [r for r in SHEET[1:] if r]))
    tab = fake_sheets.tab(SID, "NPS")
    assert (tab.sheet_id, tab.rows, tab.cols) == (old.sheet_id, 5, 7)  # same tab, no stale rows
    (update,) = fake_sheets.calls(":batchUpdate")
    assert [next(iter(r)) for r in update.body["requests"]] == ["updateSheetProperties",
                                                                "updateCells"]
    sent = [c.get("userEnteredValue", {}) for row in update.body["requests"][1]["updateCells"][
        "rows"] for c in row["values"]]
    assert not any("formulaValue" in v for v in sent)  # text is stringValue: no formula runs
    assert all(r.path == "/token" or r.path.startswith("/v4/spreadsheets/")
               for r in fake_sheets.requests)  # no Drive API
    assert len(fake_sheets.calls("/v4/")) == 2  # the tab list, then the one write
    md = metadata(result)[dg.AssetKey(["sheets", SID, "NPS"])]
    assert (md["rows"], md["columns"], md["cells_written"]) == (4, 7, 35)
    assert md["tab_url"].endswith(f"/d/{SID}/edit#gid={old.sheet_id}")
    assert md["write_requests"] == 1 and not md["created_tab"]


def test_a_table_key_export_shrinks_from_1000_rows_to_3(embedded_env, fake_sheets, sheets):
    create_summary(embedded_env, [(dt.date(2024, 1, d), Decimal(d), d, "x", None, None, None)
                                  for d in range(1, 29)] * 36)  # 1008 rows
    entry = {"exports": [{"query": "analytics/nps_summary", "spreadsheet": SID, "tab": "T"}]}
    run(embedded_env, sheets, entry)
    assert len(fake_sheets.values(SID, "T")) == 1009
    create_summary(embedded_env, ROWS[:3])
    run(embedded_env, sheets, entry)
    values = fake_sheets.values(SID, "T")
    assert len(values) == 4 and fake_sheets.tab(SID, "T").rows == 4
    assert sorted(map(repr, values[1:])) == sorted(map(repr, SHEET[1:4]))


def test_a_missing_tab_is_created_and_grows_past_1000_by_26(embedded_env, fake_sheets, sheets):
    cols = ", ".join(f"i * {c} AS c{c}" for c in range(28))
    run(embedded_env, sheets, export("Big", f"SELECT {cols} FROM range(1100) t(i) ORDER BY i"))
    values = fake_sheets.values(SID, "Big")
    assert values[0] == [f"c{c}" for c in range(28)]
    assert values[1:] == [[i * c for c in range(28)] for i in range(1100)]
    tab = fake_sheets.tab(SID, "Big")
    assert (tab.rows, tab.cols) == (1101, 28)
    (update,) = fake_sheets.calls(":batchUpdate")
    assert next(iter(update.body["requests"][0])) == "addSheet"


def test_a_failed_write_leaves_the_old_tab(embedded_env, fake_sheets, sheets):
    create_summary(embedded_env)
    fake_sheets.add_tab(SID, "NPS", [["old", "data"], [1, 2]])
    fake_sheets.fail(503, times=None, match=":batchUpdate")
    result = run(embedded_env, sheets, export(), raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"spreadsheet {SID}, tab 'NPS': writing the tab failed: gave up after 5 attempts" in text
    assert fake_sheets.values(SID, "NPS") == [["old", "data"], [1, 2]]


def test_a_result_too_big_for_one_request_is_swapped_in(embedded_env, fake_sheets, sheets):
    fake_sheets.add_tab(SID, "First")
    old = fake_sheets.add_tab(SID, "Wide", [["old"]])
    sql = "SELECT i, repeat('x', 200) AS pad FROM range(12000) t(i) ORDER BY i"
    result = run(embedded_env, sheets, export("Wide", sql))
    values = fake_sheets.values(SID, "Wide")
    assert values == [["i", "pad"]] + [[i, "x" * 200] for i in range(12000)]
    tab = fake_sheets.tab(SID, "Wide")
    assert tab.sheet_id != old.sheet_id and tab.index == 1  # the id changes, the place does not
    assert [t.title for t in fake_sheets.books[SID]["tabs"]] == ["First", "Wide"]
    md = metadata(result)[dg.AssetKey(["sheets", SID, "Wide"])]
    assert md["swapped_in_new_tab"] and md["write_requests"] > 2


def test_a_swap_that_fails_midway_leaves_the_old_tab(embedded_env, fake_sheets, sheets):
    old = fake_sheets.add_tab(SID, "Wide", [["old", "data"], [1, 2]])
    sql = "SELECT i, repeat('x', 200) AS pad FROM range(12000) t(i) ORDER BY i"
    # The new tab is added and its first chunk written; then every write fails (the cleanup too).
    fake_sheets.fail(503, times=None, match=":batchUpdate", after=2)
    result = run(embedded_env, sheets, export("Wide", sql), raise_on_error=False)
    assert not result.success
    assert fake_sheets.values(SID, "Wide") == [["old", "data"], [1, 2]]
    assert fake_sheets.tab(SID, "Wide").sheet_id == old.sheet_id
    fake_sheets.faults.clear()
    assert len(fake_sheets.books[SID]["tabs"]) == 2  # the unfinished tab, hidden
    run(embedded_env, sheets, export("Wide", sql))  # the next run succeeds and removes it
    assert len(fake_sheets.values(SID, "Wide")) == 12001
    assert [t.title for t in fake_sheets.books[SID]["tabs"]] == ["Wide"]


@pytest.mark.parametrize("title", ["Tab 1", "O'Brien", "매출!2024", "🎯 NPS"])
def test_exports_to_any_tab_title(embedded_env, fake_sheets, sheets, title):
    create_summary(embedded_env, ROWS[:1])
    fake_sheets.add_tab(SID, title, [["old"]])
    run(embedded_env, sheets, export(title))
    assert fake_sheets.values(SID, title) == SHEET[:2]


def test_limits_are_refused_before_any_write(embedded_env, fake_sheets, sheets):
    create_summary(embedded_env, [ROWS[0], (None, None, None, "y" * 50_001, None, None, None)])
    result = run(embedded_env, sheets, export(), raise_on_error=False)
    assert "cell D3 (column label) would hold 50,001 characters; a cell holds at most 50,000" in (
        failure_text(result))
    assert fake_sheets.calls("/v4/") == []  # refused before any request

    create_summary(embedded_env)
    fake_sheets.add_tab(SID, "Huge", rows=9_999_990, cols=1)
    result = run(embedded_env, sheets, export(), raise_on_error=False)
    assert "exceed 10,000,000, a spreadsheet's limit (every tab counted)" in failure_text(result)
    assert fake_sheets.calls(":batchUpdate") == []


def test_the_export_is_rebuilt_after_its_summary_changes(embedded_env):
    config = parse_config({"tables": [], **export()})
    (asset,) = build_sheets_assets(config)
    key = dg.AssetKey(["sheets", SID, "NPS"])
    assert asset.asset_deps[key] == {dg.AssetKey(["analytics", "nps_summary"])}
    summary = dg.AssetSpec(["analytics", "nps_summary"])
    defs = dg.Definitions(assets=[summary, asset], sensors=[sheets_automation],
                          resources={"google_sheets": GoogleSheets(),  # never connected here
                                     "warehouse": Warehouse(url="duckdb:///:memory:")})
    instance = dg.DagsterInstance.ephemeral()
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert tick.total_requested == 0  # its input was never built
    instance.report_runless_asset_event(dg.AssetMaterialization(summary.key))
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.get_requested_partitions(key) == {None}
