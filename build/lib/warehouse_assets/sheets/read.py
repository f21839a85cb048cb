"""A tab's cells, checked against the declared header and converted by each column's type.

Cells arrive unformatted (numbers as numbers, dates as serial numbers), so the sheet's locale
never matters: a number typed as text ("1.234,56", "50%", "$1,000") is refused in a NUMERIC
column instead of being guessed at. A bad cell fails the whole tab, naming the cell in A1
notation, its column and value, before anything is staged.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable
from typing import Any

from warehouse_assets.config import ColumnSpec
from warehouse_assets.sheets.config import SheetSpec

SERIAL_EPOCH = dt.datetime(1899, 12, 30)  # day 0 of Sheets' serial dates (Lotus 1-2-3's)
INT_RANGE = {"SMALLINT": 2**15, "INT": 2**31, "INTEGER": 2**31, "BIGINT": 2**63}
PLAIN_INT = re.compile(r"^-?\d+$")
PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")


class SheetDataError(ValueError):
    """A tab that cannot be loaded; the message names spreadsheet, tab, cell, column and value."""


def a1(row: int, col: int) -> str:
    """Zero-based (row, column) in A1 notation: (0, 0) is A1, (4, 27) is AB5."""
    letters, col = "", col + 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row + 1}"


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _decimal(v: Any) -> decimal.Decimal:
    if _number(v):
        # repr is the shortest text that reads back as the same float: 0.1 stays 0.1.
        return decimal.Decimal(int(v) if isinstance(v, int) else repr(v))
    if isinstance(v, str) and PLAIN_DECIMAL.match(v):
        return decimal.Decimal(v)
    raise ValueError("not a number (a number typed as text is read only as plain digits, "
                     "like 1234.5)")


def _integer(bound: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        if _number(v) and float(v).is_integer() or isinstance(v, str) and PLAIN_INT.match(v):
            n = int(v)
        else:
            raise ValueError("not a whole number")
        if not -bound <= n < bound:
            raise ValueError(f"out of range ({-bound} .. {bound - 1})")
        return n
    return parse


def _numeric(precision: int, scale: int) -> Callable[[Any], decimal.Decimal]:
    def parse(v: Any) -> decimal.Decimal:
        d = _decimal(v)
        if not d.is_finite():
            raise ValueError("not a finite number")
        exponent = d.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > scale:
            raise ValueError(f"more than {scale} decimal place(s); the sheet would be rounded")
        if d.copy_abs() >= decimal.Decimal(10) ** (precision - scale):
            raise ValueError(f"more than {precision - scale} digit(s) before the point")
        return d
    return parse


def _double(v: Any) -> float:
    if _number(v):
        return float(v)
    return float(_decimal(v))


def _boolean(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.upper() in ("TRUE", "FALSE"):
        return v.upper() == "TRUE"
    raise ValueError("not TRUE or FALSE")


def _serial(v: Any) -> dt.datetime:
    days = _decimal(v) if _number(v) else None
    if days is None:
        raise ValueError("not a date")
    # Sheets keeps times to the millisecond; rounding there undoes the float's last bit.
    ms = int((days * 86_400_000).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
    try:
        return SERIAL_EPOCH + dt.timedelta(milliseconds=ms)
    except OverflowError:
        raise ValueError("out of the date range") from None


def _date(v: Any) -> dt.date:
    if isinstance(v, str) and ISO_DATE.match(v):
        return dt.date.fromisoformat(v)
    when = _serial(v) if _number(v) else None
    if when is None:
        raise ValueError("not a date (a date cell, or text as YYYY-MM-DD)")
    if when.time() != dt.time():
        raise ValueError("holds a time of day; declare the column TIMESTAMP")
    return when.date()


def _timestamp(v: Any) -> dt.datetime:
    if isinstance(v, str) and ISO_TIMESTAMP.match(v):
        return dt.datetime.fromisoformat(v)
    if not _number(v):
        raise ValueError("not a date and time (a date cell, or text as YYYY-MM-DD HH:MM:SS)")
    return _serial(v)


def _text(length: int | None) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if isinstance(v, bool):
            s = "TRUE" if v else "FALSE"
        elif isinstance(v, int):
            s = str(v)
        elif isinstance(v, float):
            s = str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
        else:
            s = str(v)
        if "\x00" in s:
            raise ValueError("holds a NUL character, which no warehouse keeps in text")
        if length is not None and len(s) > length:
            raise ValueError(f"{len(s)} characters, longer than {length}")
        return s
    return parse


def parser(declared: str) -> Callable[[Any], Any]:
    if declared in INT_RANGE:
        return _integer(INT_RANGE[declared])
    if declared.startswith("NUMERIC("):
        p, s = map(int, declared[8:-1].split(","))
        return _numeric(p, s)
    if declared.startswith("VARCHAR("):
        return _text(int(declared[8:-1]))
    return {"DOUBLE": _double, "BOOLEAN": _boolean, "DATE": _date,
            "TIMESTAMP": _timestamp, "TEXT": _text(None)}[declared]


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def check_header(spec: SheetSpec, header: list[Any]) -> None:
    """Row 1 holds exactly the declared names (trimmed, case-insensitive), in order."""
    where = f"spreadsheet {spec.spreadsheet_id}, tab {spec.tab!r}"
    names = [str(v).strip() for v in header]
    problems = []
    for i, col in enumerate(spec.columns):
        got = names[i] if i < len(names) else ""
        if not got:
            problems.append(f"cell {a1(0, i)} is blank, expected header {col.name!r}")
        elif got.lower() != col.name.lower():
            problems.append(f"cell {a1(0, i)} holds {got!r}, expected header {col.name!r}")
    for i in range(len(spec.columns), len(names)):
        if names[i]:
            problems.append(f"cell {a1(0, i)} holds {names[i]!r}, a column not declared")
    seen: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        if name:
            seen.setdefault(name.lower(), []).append(a1(0, i))
    problems += [f"cells {', '.join(cells)} repeat the header {name!r}"
                 for name, cells in seen.items() if len(cells) > 1]
    if problems:
        raise SheetDataError(f"{where}: the header row does not match the declared columns "
                             f"({', '.join(c.name for c in spec.columns)}); nothing was "
                             f"loaded:\n- " + "\n- ".join(problems))


def convert_rows(spec: SheetSpec, values: list[list[Any]]) -> list[tuple]:
    """The tab's data rows as Python values by declared type; empty rows are skipped."""
    where = f"spreadsheet {spec.spreadsheet_id}, tab {spec.tab!r}"
    if not values or not any(str(v).strip() for v in values[0]):
        raise SheetDataError(f"{where}: the tab is empty (no header row); nothing was loaded")
    check_header(spec, values[0])
    parsers = [parser(c.type) for c in spec.columns]
    width = len(spec.columns)
    rows = []
    for r in range(1, len(values)):
        cells = values[r]
        if all(v == "" or v is None for v in cells):
            continue  # an entirely empty row holds no data
        for c in range(width, len(cells)):
            if cells[c] != "" and cells[c] is not None:
                raise SheetDataError(f"{where}, cell {a1(r, c)}: value {_shown(cells[c])} is in "
                                     f"a column without a header; nothing was loaded")
        row = []
        for c, (col, parse) in enumerate(zip(spec.columns, parsers)):
            v = cells[c] if c < len(cells) else ""  # trailing cells the API leaves out: NULL
            if v == "" or v is None:
                row.append(None)
                continue
            try:
                row.append(parse(v))
            except ValueError as exc:
                raise SheetDataError(_cell_error(where, r, c, col, v, str(exc))) from None
        rows.append(tuple(row))
    if not rows:
        raise SheetDataError(f"{where}: the tab holds a header row but no data; nothing was "
                             f"loaded (the table is left as it was)")
    return rows


def _cell_error(where: str, r: int, c: int, col: ColumnSpec, v: Any, why: str) -> str:
    return (f"{where}, cell {a1(r, c)} (row {r + 1}, column {col.name} {col.type}): value "
            f"{_shown(v)} is {why if why.startswith(('not', 'out')) else 'refused: ' + why}; "
            f"nothing was loaded")
