"""The grid side of the fake Sheets API: tabs, values as values.get returns them, and
batchUpdate requests applied all together or not at all (fake_sheets.py serves them)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

MAX_CELLS = 10_000_000


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str = "INVALID_ARGUMENT"):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Tab:
    sheet_id: int
    title: str
    index: int
    rows: int = 1000
    cols: int = 26
    cells: dict[tuple[int, int], Any] = field(default_factory=dict)  # (row, col) -> value

    def values(self) -> list[list[Any]]:
        """As values.get returns them: trailing empty cells and rows left out."""
        if not self.cells:
            return []
        last = max(r for r, _ in self.cells)
        out: list[list[Any]] = [[] for _ in range(last + 1)]
        for (r, c), v in self.cells.items():
            row = out[r]
            row.extend([""] * (c + 1 - len(row)))
            row[c] = v
        return out


def a1(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row + 1}"


def tab_of_range(rng: str) -> str:
    if rng.startswith("'"):
        i, title = 1, []
        while i < len(rng):
            if rng[i] == "'":
                if rng[i + 1:i + 2] == "'":
                    title.append("'")
                    i += 2
                    continue
                break
            title.append(rng[i])
            i += 1
        return "".join(title)
    return rng.split("!", 1)[0]



class BatchUpdates:
    """batchUpdate and values rendering over self.books (spreadsheet id -> book)."""

    books: dict[str, dict[str, Any]]

    def _book(self, sid: str) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _render(tab: Tab, query: dict) -> list[list[Any]]:
        unformatted = query.get("valueRenderOption", ["FORMATTED_VALUE"])[0] == "UNFORMATTED_VALUE"
        rows = tab.values()
        if unformatted:
            return [[int(v) if isinstance(v, float) and v.is_integer() else v for v in r]
                    for r in rows]
        return [[("TRUE" if v else "FALSE") if isinstance(v, bool) else str(v) for v in r]
                for r in rows]

    @staticmethod
    def _props(t: Tab) -> dict[str, Any]:
        return {"sheetId": t.sheet_id, "title": t.title, "index": t.index, "sheetType": "GRID",
                "gridProperties": {"rowCount": t.rows, "columnCount": t.cols}}

    @staticmethod
    def _check_grid(tab: Tab, r: int, c: int) -> None:
        if r >= tab.rows or c >= tab.cols:
            raise ApiError(400, f"Range ('{tab.title}'!{a1(r, c)}) exceeds grid limits. Max "
                           f"rows: {tab.rows}, max columns: {tab.cols}")

    @staticmethod
    def _set(tab: Tab, r: int, c: int, v: Any) -> None:
        if v == "" or v is None:
            tab.cells.pop((r, c), None)
        else:
            tab.cells[(r, c)] = v

    def _batch_update(self, sid: str, body: dict[str, Any]) -> dict[str, Any]:
        book = self._book(sid)
        work = copy.deepcopy(book)  # applied together or not at all
        replies = []
        for i, req in enumerate(body.get("requests", [])):
            (kind, spec), = req.items()
            replies.append(self._apply(work, i, kind, spec))
        cells = sum(t.rows * t.cols for t in work["tabs"])
        if cells > MAX_CELLS:
            raise ApiError(400, "This action would increase the number of cells in the workbook "
                           f"above the limit of {MAX_CELLS} cells.")
        self.books[sid] = work
        return {"spreadsheetId": sid, "replies": replies}

    def _tab_by_id(self, book: dict[str, Any], i: int, sheet_id: Any) -> Tab:
        for tab in book["tabs"]:
            if tab.sheet_id == sheet_id:
                return tab
        raise ApiError(400, f"Invalid requests[{i}]: No grid with id: {sheet_id}")

    def _apply(self, book: dict[str, Any], i: int, kind: str, spec: dict[str, Any]) -> dict:
        if kind == "addSheet":
            props = spec.get("properties", {})
            title = props.get("title") or f"Sheet{len(book['tabs']) + 1}"
            if any(t.title == title for t in book["tabs"]):
                raise ApiError(400, f"Invalid requests[{i}].addSheet: A sheet with the name "
                               f"\"{title}\" already exists. Please enter another name.")
            grid = props.get("gridProperties", {})
            book["next_id"] += 1
            tab = Tab(props.get("sheetId", book["next_id"]), title, len(book["tabs"]),
                      grid.get("rowCount", 1000), grid.get("columnCount", 26))
            book["tabs"].append(tab)
            return {"addSheet": {"properties": self._props(tab)}}
        if kind == "deleteSheet":
            tab = self._tab_by_id(book, i, spec["sheetId"])
            book["tabs"].remove(tab)
            for n, t in enumerate(book["tabs"]):
                t.index = n
            return {}
        if kind == "updateSheetProperties":
            props, fields = spec["properties"], spec.get("fields", "")
            tab = self._tab_by_id(book, i, props["sheetId"])
            grid = props.get("gridProperties", {})
            if "title" in fields:
                if any(t.title == props["title"] and t is not tab for t in book["tabs"]):
                    raise ApiError(400, f"Invalid requests[{i}]: duplicate title")
                tab.title = props["title"]
            if "index" in fields:
                book["tabs"].remove(tab)
                book["tabs"].insert(props["index"], tab)
                for n, t in enumerate(book["tabs"]):
                    t.index = n
            if "gridProperties.rowCount" in fields:
                tab.rows = grid["rowCount"]
            if "gridProperties.columnCount" in fields:
                tab.cols = grid["columnCount"]
            tab.cells = {(r, c): v for (r, c), v in tab.cells.items()
                         if r < tab.rows and c < tab.cols}
            return {}
        if kind == "updateCells":
            if spec.get("fields") != "userEnteredValue":
                raise ApiError(400, f"Invalid requests[{i}].updateCells: fake supports "
                               f"fields=userEnteredValue only")
            rng = spec.get("range") or {}
            start = spec.get("start") or {}
            tab = self._tab_by_id(book, i, rng.get("sheetId", start.get("sheetId")))
            r0 = rng.get("startRowIndex", start.get("rowIndex", 0))
            c0 = rng.get("startColumnIndex", start.get("columnIndex", 0))
            if rng:  # every cell of the range not given in rows is cleared
                r1, c1 = rng.get("endRowIndex", tab.rows), rng.get("endColumnIndex", tab.cols)
                if r1 > tab.rows or c1 > tab.cols:
                    self._check_grid(tab, r1 - 1, c1 - 1)
                for key in [k for k in tab.cells if r0 <= k[0] < r1 and c0 <= k[1] < c1]:
                    del tab.cells[key]
            for r, row in enumerate(spec.get("rows", [])):
                for c, cell in enumerate(row.get("values", [])):
                    self._check_grid(tab, r0 + r, c0 + c)
                    value = cell.get("userEnteredValue")
                    if value is None:
                        self._set(tab, r0 + r, c0 + c, None)
                        continue
                    (vkind, v), = value.items()
                    if vkind == "formulaValue":
                        v = "FORMULA:" + v  # recorded so tests can see a formula was sent
                    self._set(tab, r0 + r, c0 + c, v)
            return {}
        raise ApiError(400, f"Invalid requests[{i}]: fake does not implement {kind}")
