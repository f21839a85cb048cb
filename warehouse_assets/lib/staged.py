"""The staged-file format shared by every extractor and loader.

Gzip CSV without a header: strings always quoted, NULL written as an unquoted \\N, so NULL and ''
stay distinct in PostgreSQL's and Redshift's COPY and in DuckDB's read_csv. A JSON manifest beside
each file records its columns (portable types), row count and window; it is written after the data,
so a file without a manifest is never loaded.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import gzip
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

NULL = "\\N"

# Portable column types: what the source declared, in words every warehouse dialect understands.
PORTABLE = re.compile(
    r"^(SMALLINT|INTEGER|BIGINT|BOOLEAN|REAL|DOUBLE PRECISION|DATE|TIME|TIMESTAMP|TEXT|"
    r"VARCHAR\(\d+\)|NUMERIC\(\d+,\d+\)|BYTES(\(\d+\))?|GEOMETRY)$"
)
# BYTES(n) (at most n bytes; BYTES unbounded) is staged as hex text; GEOMETRY as hex EWKB (the
# WKB with its SRID), which Redshift's and PostGIS's input read as it is.


class DataError(ValueError):
    """A value that cannot be replicated faithfully; the message names table, column and value."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # portable type, see PORTABLE
    nullable: bool = True


@dataclass(frozen=True)
class Manifest:
    """What a staged file holds; written next to it after the data is complete."""

    source: str
    columns: tuple[Column, ...]
    rows: int
    bytes: int
    window: tuple[str, str] | None = None
    # Landing: the landed files this staged day was made from (provenance, never loaded).
    files: tuple[str, ...] = field(default_factory=tuple)
    # The staged window's parts (staging keys, in load order) and each one's version as the
    # store gave it once written; empty for one file at its own key (landing, sheets, and
    # windows staged before parts existed).
    parts: tuple[str, ...] = field(default_factory=tuple)
    versions: tuple[str, ...] = field(default_factory=tuple)
    # True when the source guarantees one row per primary key (the key is the source table's own
    # primary key): the load can skip de-duplicating the batch.
    unique_key: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        data["columns"] = tuple(Column(**c) for c in data["columns"])
        data["window"] = tuple(data["window"]) if data.get("window") else None
        data["files"] = tuple(data.get("files") or ())
        data["parts"] = tuple(data.get("parts") or ())
        data["versions"] = tuple(data.get("versions") or ())
        return cls(**data)


@dataclass(frozen=True)
class StagedFile:
    """A complete staged object: its key and URI in the staging store, and its manifest."""

    key: str
    uri: str
    manifest: Manifest

    @property
    def parts(self) -> tuple[str, ...]:
        """The staging keys to load, in order: the manifest's parts, or the file itself."""
        return self.manifest.parts or (self.key,)


def _quote(v: str) -> str:
    return '"' + v.replace('"', '""') + '"'


def _timestamp(v: Any) -> str:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.UTC).replace(tzinfo=None)
        return v.isoformat(sep=" ")
    raise TypeError


def _date(v: Any) -> str:
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v.isoformat()
    raise TypeError


def _time(v: Any) -> str:
    if isinstance(v, dt.timedelta):  # MySQL TIME arrives as a timedelta
        total = int(v.total_seconds())
        if not 0 <= total < 86400:
            raise TypeError
        return (dt.datetime.min + v).time().isoformat()
    if isinstance(v, dt.time):
        return v.isoformat()
    raise TypeError


def _integer(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, decimal.Decimal) and v == v.to_integral_value():
            return str(int(v))
        raise TypeError
    return str(v)


def _boolean(v: Any) -> str:
    if isinstance(v, bool) or v in (0, 1):
        return "true" if v else "false"
    raise TypeError


def _numeric(v: Any) -> str:
    if isinstance(v, decimal.Decimal):
        if not v.is_finite():
            raise TypeError
        return format(v, "f")
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise TypeError


def _double(v: Any) -> str:
    if isinstance(v, float | int | decimal.Decimal) and not isinstance(v, bool):
        return repr(float(v))
    raise TypeError


def _text(v: Any) -> str:
    if isinstance(v, str):
        if "\x00" in v:
            raise TypeError
        return _quote(v)
    if isinstance(v, dt.datetime | dt.date | decimal.Decimal | int | float):
        return _quote(str(v))
    raise TypeError


def _formatter(portable: str) -> Callable[[Any], str]:
    if portable in ("SMALLINT", "INTEGER", "BIGINT"):
        return _integer
    if portable.startswith("NUMERIC"):
        return _numeric
    if portable in ("REAL", "DOUBLE PRECISION"):
        return _double
    return {
        "BOOLEAN": _boolean,
        "DATE": _date,
        "TIME": _time,
        "TIMESTAMP": _timestamp,
    }.get(portable, _text)


class RowEncoder:
    """Turns source rows into staged CSV lines; a value that would change fails, naming it."""

    def __init__(self, table: str, columns: tuple[Column, ...], key: tuple[str, ...] = ()):
        self.table = table
        self.columns = columns
        self._formats = [_formatter(c.type) for c in columns]
        self._key_idx = [i for i, c in enumerate(columns) if c.name in key]

    def encode(self, rows: list[tuple]) -> str:
        out = []
        fmts = self._formats
        try:
            for row in rows:
                out.append(",".join(NULL if v is None else f(v) for f, v in zip(fmts, row)))
        except TypeError:
            self._raise(rows)
        out.append("")
        return "\n".join(out)

    def _raise(self, rows: list[tuple]) -> None:
        for row in rows:
            for col, f, v in zip(self.columns, self._formats, row):
                if v is None:
                    continue
                try:
                    f(v)
                except TypeError:
                    key = ", ".join(f"{self.columns[i].name}={row[i]!r}" for i in self._key_idx)
                    raise DataError(
                        f"{self.table}.{col.name}: value {_shorten(v)!r} cannot be stored as "
                        f"{col.type}" + (f" (row {key})" if key else "") + _hint(col.type, v)
                    ) from None
        raise DataError(f"{self.table}: a row could not be encoded")


def _shorten(v: Any) -> Any:
    if isinstance(v, dt.timedelta):  # as MySQL writes a TIME: -838:59:59 .. 838:59:59
        sign, us = ("-", -v) if v < dt.timedelta(0) else ("", v)
        minutes, seconds = divmod(us.days * 86400 + us.seconds, 60)
        frac = f".{us.microseconds:06d}" if us.microseconds else ""
        return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}{frac}"
    if isinstance(v, str | bytes) and len(v) > 80:
        return v[:77] + type(v)("...") if isinstance(v, str) else v[:77] + b"..."
    return v


def _hint(portable: str, v: Any) -> str:
    if isinstance(v, str) and "\x00" in v:
        return ": no warehouse keeps a NUL character in text. Remove it in the source"
    if portable == "TIME" and isinstance(v, dt.timedelta):
        return (
            ": the warehouse's TIME holds 00:00:00 to 23:59:59.999999, MySQL's TIME also negative "
            "and longer durations. Replicate a view that casts the column (TIME_TO_SEC(col) for "
            "seconds, or CAST(col AS CHAR) for its text)"
        )
    if portable in ("DATE", "TIMESTAMP") and isinstance(v, str):
        return (
            ": MySQL's zero or partial dates have no equivalent in the warehouse. Set them to NULL "
            "or a real date in the source (sql_mode NO_ZERO_DATE,NO_ZERO_IN_DATE prevents new ones)"
        )
    return ""


def first_oversized(fileobj: IO[bytes], columns: Sequence[Column],
                    limits: Mapping[str, tuple[int, str]], key: Sequence[str],
                    row_limit: int | None = None) -> tuple[str, int, str, str] | None:
    """The first value in a staged file over its column's limit in bytes (UTF-8 text; hex-staged
    BYTES and GEOMETRY count their bytes), or the first row over row_limit bytes:
    (column or '' for a row, bytes, row key, the limit's name), or None."""
    idx = [(i, *limits[c.name], c.type.startswith(("BYTES", "GEOMETRY")))
           for i, c in enumerate(columns) if c.name in limits]
    kidx = [i for i, c in enumerate(columns) if c.name in key]
    csv.field_size_limit(sys.maxsize)  # a staged value may be any length; that is the point
    with gzip.open(fileobj, "rt", encoding="utf-8", newline="") as text:
        for row in csv.reader(text):
            found = None
            for i, limit, what, is_hex in idx:
                v = row[i]
                if is_hex:
                    if len(v) // 2 > limit:
                        found = (columns[i].name, len(v) // 2, what)
                # A character is at most 4 bytes: only a string over limit/4 characters can be over.
                elif len(v) > limit // 4 and (size := len(v.encode())) > limit:
                    found = (columns[i].name, size, what)
                if found:
                    break
            if not found and row_limit and sum(map(len, row)) > row_limit // 4:
                size = sum(len(v.encode()) for v in row) + len(row)
                if size > row_limit:
                    found = ("", size, f"COPY limit of {row_limit:,} bytes per row")
            if found:
                return (found[0], found[1],
                        ", ".join(f"{columns[k].name}={row[k]}" for k in kidx), found[2])
    return None
