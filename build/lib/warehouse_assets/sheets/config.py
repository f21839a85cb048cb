"""The `sheets:` (a Google Sheet tab loaded into a table) and `exports:` (a warehouse table or SELECT
written to a tab) entries of replication.yaml, validated when definitions load."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from warehouse_assets.config import (
    LANDING_TYPE,
    ColumnSpec,
    ConfigError,
    _qualified,
    _unknown,
    check_column,
)

SHEET_URL = re.compile(r"^https://docs\.google\.com/spreadsheets/d/([A-Za-z0-9_-]+)(?:[/?#].*)?$")
SPREADSHEET_ID = re.compile(r"^[A-Za-z0-9_-]{10,200}$")
ASSET_KEY_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_TAB_TITLE = 100  # Google's limit on a tab title


@dataclass(frozen=True)
class SheetSpec:
    """A tab of a spreadsheet loaded into a warehouse table, replaced atomically on each run."""

    spreadsheet_id: str
    tab: str
    target_schema: str
    target_table: str
    columns: tuple[ColumnSpec, ...]
    description: str = ""

    @property
    def target(self) -> str:
        return f"{self.target_schema}.{self.target_table}"

    @property
    def url(self) -> str:
        return f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit"


@dataclass(frozen=True)
class ExportSpec:
    """A warehouse table (every column) or a SELECT, written over a tab in one atomic request."""

    spreadsheet_id: str
    tab: str
    table: tuple[str, str] | None = None  # query: <schema>/<table>
    sql: str | None = None
    deps: tuple[tuple[str, ...], ...] = ()  # asset keys it reads

    @property
    def url(self) -> str:
        return f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit"


def spreadsheet_id(value: Any, where: str) -> str:
    """The id in a spreadsheet's URL, or a bare id; a spreadsheet is opened by id, never title."""
    text = str(value or "").strip()
    m = SHEET_URL.match(text)
    sid = m.group(1) if m else text
    if not SPREADSHEET_ID.match(sid):
        raise ConfigError(f"{where}: {value!r} is neither a spreadsheet id nor a "
                          f"https://docs.google.com/spreadsheets/d/<id>/... URL")
    return sid


def tab_title(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TAB_TITLE:
        raise ConfigError(f"{where}: {value!r} is not a tab title (1 to {MAX_TAB_TITLE} characters)")
    if any(ord(ch) < 32 for ch in value):
        raise ConfigError(f"{where}: {value!r} holds a control character")
    return value


def _asset_key(value: Any, where: str) -> tuple[str, ...]:
    parts = tuple(str(value or "").split("/"))
    if len(parts) < 2 or not all(ASSET_KEY_PART.match(p) for p in parts):
        raise ConfigError(f"{where}: {value!r} is not an asset key like analytics/nps_summary")
    return parts


def _sheet(entry: Any, i: int) -> SheetSpec:
    where = f"sheets[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping")
    where = f"sheets[{i}] ({entry.get('target', '?')})"
    _unknown(entry, {"source", "tab", "target", "columns", "description"}, where)
    for required in ("source", "tab", "target", "columns"):
        if required not in entry:
            raise ConfigError(f"{where}.{required}: required")
    schema, table = _qualified(entry["target"], f"{where}.target")
    cols = entry["columns"]
    if not isinstance(cols, dict) or not cols:
        raise ConfigError(f"{where}.columns: a mapping of header name to type, in sheet order")
    columns, seen = [], set()
    for name, typ in cols.items():
        check_column(name, f"{where}.columns")
        if name.lower() in seen:
            raise ConfigError(f"{where}.columns.{name}: declared twice (headers compare "
                              f"case-insensitively)")
        seen.add(name.lower())
        t = str(typ).upper().replace(" ", "")
        if not LANDING_TYPE.match(t):
            raise ConfigError(f"{where}.columns.{name}: unsupported type {typ!r} (one of INT, "
                              f"BIGINT, SMALLINT, BOOLEAN, DATE, TIMESTAMP, DOUBLE, TEXT, "
                              f"VARCHAR(n), NUMERIC(p,s))")
        columns.append(ColumnSpec(name, t))
    return SheetSpec(
        spreadsheet_id=spreadsheet_id(entry["source"], f"{where}.source"),
        tab=tab_title(entry["tab"], f"{where}.tab"),
        target_schema=schema,
        target_table=table,
        columns=tuple(columns),
        description=str(entry.get("description", "")),
    )


def _export(entry: Any, i: int) -> ExportSpec:
    where = f"exports[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping")
    where = f"exports[{i}] ({entry.get('tab', '?')})"
    _unknown(entry, {"query", "sql", "deps", "spreadsheet", "tab"}, where)
    for required in ("spreadsheet", "tab"):
        if required not in entry:
            raise ConfigError(f"{where}.{required}: required")
    if ("query" in entry) == ("sql" in entry):
        raise ConfigError(f"{where}: exactly one of query (an asset key) or sql (a SELECT)")
    table, sql, deps = None, None, ()
    if "query" in entry:
        key = _asset_key(entry["query"], f"{where}.query")
        if len(key) != 2:
            raise ConfigError(f"{where}.query: {entry['query']!r} must be <schema>/<table>")
        if "deps" in entry:
            raise ConfigError(f"{where}.deps: only with sql (query: reads its own asset)")
        table, deps = (key[0], key[1]), (key,)
    else:
        sql = str(entry["sql"] or "").strip().rstrip(";").strip()
        if not sql.upper().startswith(("SELECT", "WITH")) or ";" in sql:
            raise ConfigError(f"{where}.sql: must be exactly one SELECT")
        raw = entry.get("deps") or []
        if not isinstance(raw, list):
            raise ConfigError(f"{where}.deps: a list of asset keys")
        deps = tuple(_asset_key(d, f"{where}.deps") for d in raw)
    return ExportSpec(
        spreadsheet_id=spreadsheet_id(entry["spreadsheet"], f"{where}.spreadsheet"),
        tab=tab_title(entry["tab"], f"{where}.tab"),
        table=table,
        sql=sql,
        deps=deps,
    )


def parse_sheets(data: dict) -> tuple[tuple[SheetSpec, ...], tuple[ExportSpec, ...]]:
    """The sheets: and exports: lists of a replication YAML document."""
    for name in ("sheets", "exports"):
        if not isinstance(data.get(name) or [], list):
            raise ConfigError(f"{name}: must be a list")
    sheets = tuple(_sheet(e, i) for i, e in enumerate(data.get("sheets") or []))
    exports = tuple(_export(e, i) for i, e in enumerate(data.get("exports") or []))
    tabs = [(e.spreadsheet_id, e.tab) for e in exports]
    dupes = sorted({f"{s}/{t}" for s, t in tabs if tabs.count((s, t)) > 1})
    if dupes:
        raise ConfigError(f"exports: tab(s) written by two entries: {', '.join(dupes)}")
    return sheets, exports
