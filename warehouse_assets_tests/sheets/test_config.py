"""sheets: and exports: entries are validated when definitions load; errors name entry and field."""

import pytest

from warehouse_assets.config import ConfigError, parse_config

SID = "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def _cfg(**lists):
    return parse_config({"tables": [], **lists})


def test_sheet_entry_by_url_or_id():
    cfg = _cfg(sheets=[
        {"source": f"https://docs.google.com/spreadsheets/d/{SID}/edit#gid=0", "tab": "Targets",
         "target": "raw_data.nps_targets",
         "columns": {"month": "DATE", "target_nps": "NUMERIC(5,1)", "owner": "varchar(64)"}},
    ], exports=[{"query": "analytics/nps_summary", "spreadsheet": SID, "tab": "NPS"},
                {"sql": "SELECT 1 AS x;", "deps": ["raw_data/nps"], "spreadsheet": SID,
                 "tab": "매출!2024"}])
    (sheet,), (by_key, by_sql) = cfg.sheets, cfg.exports
    assert (sheet.spreadsheet_id, sheet.tab, sheet.target) == (SID, "Targets", "raw_data.nps_targets")
    assert [(c.name, c.type) for c in sheet.columns] == [
        ("month", "DATE"), ("target_nps", "NUMERIC(5,1)"), ("owner", "VARCHAR(64)")]
    assert by_key.table == ("analytics", "nps_summary")
    assert by_key.deps == (("analytics", "nps_summary"),)
    assert (by_sql.sql, by_sql.deps, by_sql.tab) == ("SELECT 1 AS x", (("raw_data", "nps"),),
                                                     "매출!2024")


@pytest.mark.parametrize("entry, message", [
    ({"tab": "T", "target": "a.b", "columns": {"x": "TEXT"}}, r"sheets\[0\] \(a.b\).source: required"),
    ({"source": "not a sheet", "tab": "T", "target": "a.b", "columns": {"x": "TEXT"}},
     r"sheets\[0\] \(a.b\).source: 'not a sheet' is neither"),
    ({"source": SID, "tab": "T", "target": "a.b", "columns": {"x": "MONEY"}},
     r"sheets\[0\] \(a.b\).columns.x: unsupported type 'MONEY'"),
    ({"source": SID, "tab": "T", "target": "a.b", "columns": {"x": "TEXT", "X": "TEXT"}},
     r"columns.X: declared twice"),
    ({"source": SID, "tab": "", "target": "a.b", "columns": {"x": "TEXT"}}, r"\.tab: '' is not"),
    ({"source": SID, "tab": "T", "target": "a.b", "columns": {"x": "TEXT"}, "range": "A1"},
     r"unknown field\(s\) range"),
])
def test_bad_sheet_entries_name_entry_and_field(entry, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(sheets=[entry])


@pytest.mark.parametrize("entry, message", [
    ({"spreadsheet": SID, "tab": "T"}, r"exports\[0\] \(T\): exactly one of query"),
    ({"query": "analytics/x", "sql": "SELECT 1", "spreadsheet": SID, "tab": "T"}, "exactly one"),
    ({"sql": "DELETE FROM x", "spreadsheet": SID, "tab": "T"}, r"\.sql: must be exactly one SELECT"),
    ({"sql": "SELECT 1; DROP TABLE x", "spreadsheet": SID, "tab": "T"}, "exactly one SELECT"),
    ({"query": "analytics.x", "spreadsheet": SID, "tab": "T"}, r"\.query: 'analytics.x' is not"),
    ({"query": "a/b", "deps": ["c/d"], "spreadsheet": SID, "tab": "T"}, r"\.deps: only with sql"),
])
def test_bad_export_entries_name_entry_and_field(entry, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(exports=[entry])


def test_two_exports_to_one_tab_and_a_target_declared_twice_are_refused():
    with pytest.raises(ConfigError, match=f"written by two entries: {SID}/T"):
        _cfg(exports=[{"query": "a/b", "spreadsheet": SID, "tab": "T"},
                      {"query": "a/c", "spreadsheet": SID, "tab": "T"}])
    with pytest.raises(ConfigError, match="declared twice: raw_data.channel"):
        _cfg(tables=[{"source": "prod.channel", "target": "raw_data.channel",
                      "mode": "full_refresh"}],
             sheets=[{"source": SID, "tab": "T", "target": "raw_data.channel",
                      "columns": {"x": "TEXT"}}])
