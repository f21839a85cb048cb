"""A tab loaded into a warehouse table: compared cell by cell with what the fake server holds, on
the embedded default (local folder, DuckDB) and the services (S3 server, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pytest

from warehouse_assets_tests.conftest import failure_text
from warehouse_assets_tests.sheets.conftest import SID, metadata, run, sheet_entry

COLUMNS = {"month": "DATE", "target_nps": "NUMERIC(5,1)", "owner": "VARCHAR(64)", "code": "TEXT",
           "at": "TIMESTAMP", "flag": "BOOLEAN", "n": "BIGINT", "score": "DOUBLE"}
HEADER = [" Month ", "TARGET_NPS", "owner", "code", "at", "flag", "n", "score"]  # trimmed, any case
GRID = [
    HEADER,
    ["", 0.1, " 12 ", "1e5", "", False, "12", 1.5],  # an empty first data cell is NULL
    [45017, 42.5, "Ana", "007", 45017.5, True, "9007199254740993", -0.25],
    [],  # an entirely empty row is skipped
    [45078, "", "inf", "=IMPORTXML(\"x\")", 45078.000011574],  # ragged: the API leaves out the rest
    [45079, 7, 5, 1.5, "2024-02-29 13:45:00", "TRUE", -3, "2.5"],
]
EXPECTED = [
    (None, Decimal("0.1"), " 12 ", "1e5", None, False, 12, 1.5),
    (dt.date(2023, 4, 1), Decimal("42.5"), "Ana", "007", dt.datetime(2023, 4, 1, 12), True,
     9007199254740993, -0.25),
    (dt.date(2023, 6, 1), None, "inf", "=IMPORTXML(\"x\")", dt.datetime(2023, 6, 1, 0, 0, 1),
     None, None, None),
    (dt.date(2023, 6, 2), Decimal("7.0"), "5", "1.5", dt.datetime(2024, 2, 29, 13, 45), True, -3,
     2.5),
]
ENTRY = {"sheets": [sheet_entry("Targets", "raw_data.nps_targets", COLUMNS)]}


@pytest.fixture(params=["embedded", "services"])
def env(request):
    return request.getfixturevalue(f"{request.param}_env")


def _rows(env, table: str = "raw_data.nps_targets") -> list[tuple]:
    return sorted(env.warehouse_rows(table), key=repr)


def test_tab_loads_cell_by_cell(env, fake_sheets, sheets):
    fake_sheets.add_tab(SID, "Targets", GRID)
    result = run(env, sheets, ENTRY)
    assert _rows(env) == sorted(EXPECTED, key=repr)
    md = metadata(result)[dg.AssetKey(["raw_data", "nps_targets"])]
    assert (md["rows"], md["columns"], md["target_rows"]) == (4, 8, 4)
    assert md["api_calls"] == 1 and md["api_retries"] == 0
    assert SID in md["sheet_url"]
    # Read unformatted, so the sheet's locale never matters; and nothing but the Sheets API.
    (get,) = fake_sheets.calls("/values/")
    assert get.query["valueRenderOption"] == ["UNFORMATTED_VALUE"]
    assert get.query["dateTimeRenderOption"] == ["SERIAL_NUMBER"]
    assert all(r.path == "/token" or r.path.startswith("/v4/spreadsheets/")
               for r in fake_sheets.requests)

    # Run again after the sheet changed: the table is replaced, not appended to.
    fake_sheets.tab(SID, "Targets").cells = {}
    for c, v in enumerate(HEADER):
        fake_sheets.tab(SID, "Targets").cells[(0, c)] = v
    fake_sheets.tab(SID, "Targets").cells[(1, 2)] = "only"
    run(env, sheets, ENTRY)
    assert _rows(env) == [(None, None, "only", None, None, None, None, None)]


@pytest.mark.parametrize("title", ["Tab 1", "O'Brien", "매출!2024", "🎯 Targets"])
def test_tab_titles_are_quoted(embedded_env, fake_sheets, sheets, title):
    fake_sheets.add_tab(SID, title, [["name", "n"], ["a", 1], ["month", 2]])
    entry = {"sheets": [sheet_entry(title, "raw_data.titled", {"name": "VARCHAR(8)", "n": "INT"})]}
    run(embedded_env, sheets, entry)
    assert _rows(embedded_env, "raw_data.titled") == [("a", 1), ("month", 2)]


def test_a_row_equal_to_the_header_is_data(embedded_env, fake_sheets, sheets):
    fake_sheets.add_tab(SID, "T", [["a", "b"], ["a", "b"], ["x", "y,z"]])
    run(embedded_env, sheets, {"sheets": [sheet_entry("T", "raw_data.t", {"a": "TEXT",
                                                                           "b": "TEXT"})]})
    assert _rows(embedded_env, "raw_data.t") == [("a", "b"), ("x", "y,z")]  # commas kept


def _load_then_break(env, fake_sheets, sheets, grid_change) -> str:
    """Load the good tab, change it, run again: the failure's text (the table must not change)."""
    fake_sheets.add_tab(SID, "Targets", GRID)
    run(env, sheets, ENTRY)
    before = _rows(env)
    grid_change(fake_sheets.tab(SID, "Targets"))
    result = run(env, sheets, ENTRY, raise_on_error=False)
    assert not result.success
    assert _rows(env) == before  # nothing was loaded
    return failure_text(result)


@pytest.mark.parametrize("cell, value, column", [
    ((2, 1), "1.234,56", "target_nps NUMERIC(5,1)"),
    ((2, 1), "50%", "target_nps NUMERIC(5,1)"),
    ((2, 1), "$1,000", "target_nps NUMERIC(5,1)"),
    ((2, 1), 4.25, "target_nps NUMERIC(5,1)"),
    ((2, 0), "31/01/2024", "month DATE"),
    ((2, 0), 45017.25, "month DATE"),
    ((2, 6), "1e5", "n BIGINT"),
    ((2, 5), "yes", "flag BOOLEAN"),
    ((2, 2), "x" * 65, "owner VARCHAR(64)"),
])
def test_a_bad_cell_fails_naming_it_and_loads_nothing(embedded_env, fake_sheets, sheets, cell,
                                                      value, column):
    def change(tab):
        tab.cells[cell] = value

    text = _load_then_break(embedded_env, fake_sheets, sheets, change)
    a1 = "ABCDEFGH"[cell[1]] + str(cell[0] + 1)
    assert f"spreadsheet {SID}, tab 'Targets', cell {a1} (row {cell[0] + 1}, column {column})" in text
    assert repr(value)[:40] in text and "nothing was loaded" in text


def test_a_bad_cell_on_services_leaves_postgres_as_it_was(services_env, fake_sheets, sheets):
    text = _load_then_break(services_env, fake_sheets, sheets,
                            lambda tab: tab.cells.__setitem__((5, 1), "1.234,56"))
    assert "cell B6" in text and "'1.234,56'" in text


@pytest.mark.parametrize("header, problems", [
    (["month", "target_nps", "owner", "code", "at", "flag", "n"], ["cell H1 is blank"]),
    (HEADER + ["extra"], ["cell I1 holds 'extra', a column not declared"]),
    (["month", "", "owner", "code", "at", "flag", "n", "score"], ["cell B1 is blank"]),
    (["month", "month", "owner", "code", "at", "flag", "n", "score"],
     ["cell B1 holds 'month', expected header 'target_nps'", "cells A1, B1 repeat the header"]),
    (["owner", "target_nps", "month", "code", "at", "flag", "n", "score"],
     ["cell A1 holds 'owner', expected header 'month'"]),
])
def test_bad_headers_fail_naming_the_cells(embedded_env, fake_sheets, sheets, header, problems):
    def change(tab):
        for c in range(30):
            tab.cells.pop((0, c), None)
        for c, v in enumerate(header):
            if v:
                tab.cells[(0, c)] = v

    text = _load_then_break(embedded_env, fake_sheets, sheets, change)
    assert "the header row does not match the declared columns" in text
    for problem in problems:
        assert problem in text


@pytest.mark.parametrize("setup, message", [
    (lambda f: f.add_tab(SID, "Targets", []), "the tab is empty"),
    (lambda f: f.add_tab(SID, "Targets", [HEADER, [], []]), "a header row but no data"),
    (lambda f: f.add_tab(SID, "Other", GRID), "Unable to parse range: 'Targets'"),
    (lambda f: f.forbidden.add(SID), "PERMISSION_DENIED: The caller does not have permission"),
    (lambda f: f.books.pop(SID), "NOT_FOUND: Requested entity was not found"),
])
def test_empty_header_only_missing_or_forbidden_tab_fails_and_keeps_the_table(
        embedded_env, fake_sheets, sheets, setup, message):
    fake_sheets.add_spreadsheet("1OtherSpreadsheet_abcdef")
    fake_sheets.add_tab("1OtherSpreadsheet_abcdef", "Targets", GRID)
    good = {"sheets": [{**ENTRY["sheets"][0], "source": "1OtherSpreadsheet_abcdef"}]}
    run(embedded_env, sheets, good)
    before = _rows(embedded_env)
    setup(fake_sheets)
    result = run(embedded_env, sheets, ENTRY, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"spreadsheet {SID}, tab 'Targets'" in text and message in text
    assert _rows(embedded_env) == before
