"""A query's result written over a tab: header plus rows and the grid resized, in one batchUpdate.

Google applies a batchUpdate's requests together or not at all, so a reader sees the old tab or
the new one, never an empty or half-written one; a shorter result leaves no stale rows below it
and the tab keeps its id. Values go in as typed cells (userEnteredValue), never parsed: text is
stringValue, so "=IMPORTXML(...)", "+1" and "'x" stay text and no formula runs. A result too big
for one request (about 2 MB) is written to a new tab that one last batchUpdate swaps in.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import random
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from warehouse_assets.sheets.client import SheetsError
from warehouse_assets.sheets.read import a1
from warehouse_assets.sheets.resource import SheetsConnection

MAX_CELLS = 10_000_000  # per spreadsheet, every tab counted
MAX_CELL_CHARS = 50_000
MAX_REQUEST_BYTES = 2_000_000  # Google's advised payload for one request
EXACT_INT = 2**53  # a sheet's number is a double: larger integers would be rounded


class SheetLimitError(ValueError):
    """The result cannot be held by a sheet; the message names the limit."""


@dataclass
class WriteResult:
    rows: int = 0
    columns: int = 0
    cells: int = 0
    sheet_id: int = 0
    created: bool = False
    swapped: bool = False  # written to a new tab and swapped in (too big for one request)
    requests: int = 0
    seconds: float = 0.0


def cell(v: Any) -> dict[str, Any]:
    """A value as CellData: exact, typed, never parsed by Sheets."""
    if v is None:
        return {}  # with fields=userEnteredValue an empty CellData clears the cell
    if isinstance(v, bool):
        return {"userEnteredValue": {"boolValue": v}}
    if isinstance(v, int):
        if -EXACT_INT <= v <= EXACT_INT:
            return {"userEnteredValue": {"numberValue": v}}
        return {"userEnteredValue": {"stringValue": str(v)}}
    if isinstance(v, float):
        if math.isfinite(v):
            return {"userEnteredValue": {"numberValue": v}}
        return {"userEnteredValue": {"stringValue": str(v)}}
    if isinstance(v, decimal.Decimal):  # DECIMAL keeps every digit, as text
        return {"userEnteredValue": {"stringValue": format(v, "f")}}
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return {"userEnteredValue": {"stringValue": v.isoformat()}}
    if isinstance(v, bytes | bytearray | memoryview):
        return {"userEnteredValue": {"stringValue": bytes(v).hex()}}
    return {"userEnteredValue": {"stringValue": str(v)}}


def _text_of(c: dict[str, Any]) -> str:
    return c.get("userEnteredValue", {}).get("stringValue", "")


def encode_rows(columns: list[str], rows: Iterable[tuple], where: str
                ) -> Iterator[tuple[dict[str, Any], int]]:
    """RowData for the header and each row, with its JSON size; refuses a cell over the limit."""
    header = {"values": [{"userEnteredValue": {"stringValue": str(c)}} for c in columns]}
    yield header, len(json.dumps(header, ensure_ascii=False))
    for r, values in enumerate(rows, start=1):
        cells = [cell(v) for v in values]
        for c, data in enumerate(cells):
            if len(_text_of(data)) > MAX_CELL_CHARS:
                raise SheetLimitError(
                    f"{where}: cell {a1(r, c)} (column {columns[c]}) would hold "
                    f"{len(_text_of(data)):,} characters; a cell holds at most "
                    f"{MAX_CELL_CHARS:,}. Nothing was written")
        row = {"values": cells}
        yield row, len(json.dumps(row, ensure_ascii=False))


def _tab_props(meta: dict[str, Any], tab: str) -> dict[str, Any] | None:
    for sheet in meta.get("sheets", []):
        if sheet["properties"]["title"] == tab:
            return sheet["properties"]
    return None


def _grid_cells(props: dict[str, Any]) -> int:
    grid = props.get("gridProperties", {})
    return int(grid.get("rowCount", 0)) * int(grid.get("columnCount", 0))


def _new_id(meta: dict[str, Any]) -> int:
    used = {s["properties"]["sheetId"] for s in meta.get("sheets", [])}
    while True:
        candidate = random.randint(1, 2**31 - 1)
        if candidate not in used:
            return candidate


def _resize(sheet_id: int, rows: int, cols: int) -> dict[str, Any]:
    return {"updateSheetProperties": {
        "properties": {"sheetId": sheet_id, "gridProperties": {"rowCount": rows,
                                                               "columnCount": cols}},
        "fields": "gridProperties.rowCount,gridProperties.columnCount"}}


def _cells(sheet_id: int, row0: int, rows: list[dict[str, Any]], cols: int) -> dict[str, Any]:
    return {"updateCells": {
        "range": {"sheetId": sheet_id, "startRowIndex": row0, "endRowIndex": row0 + len(rows),
                  "startColumnIndex": 0, "endColumnIndex": cols},
        "rows": rows, "fields": "userEnteredValue"}}


def write_tab(conn: SheetsConnection, sid: str, tab: str, columns: list[str],
              rows: Iterable[tuple]) -> WriteResult:
    """Replace the tab's contents with columns and rows, atomically (see the module docstring)."""
    started = time.monotonic()
    where = f"spreadsheet {sid}, tab {tab!r}"
    ncols = max(len(columns), 1)
    encoded: list[dict[str, Any]] = []
    size = 0
    for row, nbytes in encode_rows(columns, rows, where):
        encoded.append(row)
        size += nbytes
        if len(encoded) * ncols > MAX_CELLS:
            raise SheetLimitError(f"{where}: the result needs more than {MAX_CELLS:,} cells, "
                                  f"a spreadsheet's limit (every tab counted). Nothing was written")
    nrows = len(encoded)
    meta = conn.metadata(sid, tab)
    props = _tab_props(meta, tab)
    others = sum(_grid_cells(s["properties"]) for s in meta.get("sheets", [])
                 if s["properties"].get("title") != tab)
    if others + nrows * ncols > MAX_CELLS:
        raise SheetLimitError(
            f"{where}: {nrows:,} x {ncols} cells plus the other tabs' {others:,} exceed "
            f"{MAX_CELLS:,}, a spreadsheet's limit (every tab counted). Nothing was written")
    result = WriteResult(rows=nrows - 1, columns=len(columns), cells=nrows * len(columns))
    if size <= MAX_REQUEST_BYTES:
        if props is None:
            result.sheet_id, result.created = _new_id(meta), True
            first = {"addSheet": {"properties": {
                "sheetId": result.sheet_id, "title": tab,
                "gridProperties": {"rowCount": nrows, "columnCount": ncols}}}}
        else:
            result.sheet_id = props["sheetId"]
            first = _resize(result.sheet_id, nrows, ncols)
        conn.batch_update(sid, tab, [first, _cells(result.sheet_id, 0, encoded, ncols)])
        result.requests = 1
    else:
        _write_and_swap(conn, sid, tab, meta, props, encoded, ncols, size, result)
    result.seconds = time.monotonic() - started
    return result


def _write_and_swap(conn: SheetsConnection, sid: str, tab: str, meta: dict[str, Any],
                    props: dict[str, Any] | None, encoded: list[dict[str, Any]], ncols: int,
                    size: int, result: WriteResult) -> None:
    """Too big for one request: fill a new tab in chunks, then one batchUpdate swaps it in (the
    tab's id changes). Until the swap, readers see the old tab; a failure removes the new one."""
    temp = _new_id(meta)
    title = f"{tab[:60]} (writing {uuid.uuid4().hex[:8]})"
    conn.batch_update(sid, tab, [{"addSheet": {"properties": {
        "sheetId": temp, "title": title, "hidden": True,
        "gridProperties": {"rowCount": len(encoded), "columnCount": ncols}}}}])
    result.requests = 1
    try:
        per_chunk = max(1, int(len(encoded) * MAX_REQUEST_BYTES / size / 1.2))
        for start in range(0, len(encoded), per_chunk):
            conn.batch_update(sid, tab, [_cells(temp, start, encoded[start:start + per_chunk],
                                                ncols)])
            result.requests += 1
        swap: list[dict[str, Any]] = []
        if props is not None:
            swap.append({"deleteSheet": {"sheetId": props["sheetId"]}})
        swap.append({"updateSheetProperties": {
            "properties": {"sheetId": temp, "title": tab, "hidden": False,
                           "index": props["index"] if props is not None else len(meta["sheets"])},
            "fields": "title,hidden,index"}})
        conn.batch_update(sid, tab, swap)
        result.requests += 1
    except (SheetsError, OSError):
        try:
            conn.batch_update(sid, tab, [{"deleteSheet": {"sheetId": temp}}])
        except SheetsError:
            pass  # the unfinished tab stays hidden; the old tab is untouched either way
        raise
    result.sheet_id, result.created, result.swapped = temp, props is None, True
