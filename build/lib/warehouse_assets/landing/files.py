"""Landing files: find a day's files, validate each while streaming it, re-stage it canonically.

An outside exporter drops CSV files with a header row (optionally gzip-compressed) under
`landing/<table>/<YYYY-MM-DD>/<name>.csv[.gz]`. Each day's files are checked against the declared
columns and rewritten as one staged file per day in the canonical format (lib/staged.py), so the
warehouse loads them exactly like replicated tables. A file that does not match fails the run
naming the file, line, column and value.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import gzip
import hashlib
import io
import math
import operator
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from warehouse_assets.config import LandingSpec
from warehouse_assets.lib.io_managers import manifest_key
from warehouse_assets.lib.staged import Column, Manifest, RowEncoder, StagedFile
from warehouse_assets.lib.staging import StagingStore, StoredObject

LANDING_KEY = re.compile(
    r"^landing/(?P<table>[A-Za-z0-9_]+)/(?P<day>\d{4}-\d{2}-\d{2})/(?P<name>[^/]+\.csv(?:\.gz)?)$"
)
BATCH_ROWS = 10_000
INT_RANGE = {"SMALLINT": 2**15, "INTEGER": 2**31, "BIGINT": 2**63}
TRUE, FALSE = {"true", "t", "1", "yes", "y"}, {"false", "f", "0", "no", "n"}


class LandingFileError(ValueError):
    """A landing file that cannot be loaded; the message names the file, line, column and value."""


def landing_prefix(spec: LandingSpec) -> str:
    return f"landing/{spec.table}"


def files_by_day(spec: LandingSpec, objects: Iterable[StoredObject]) -> dict[str, list[StoredObject]]:
    """The table's landing files grouped by day folder, each day's files in name order."""
    days: dict[str, list[StoredObject]] = {}
    for obj in objects:
        m = LANDING_KEY.match(obj.key)
        if m and m["table"] == spec.table:
            days.setdefault(m["day"], []).append(obj)
    return {day: sorted(objs, key=lambda o: o.key) for day, objs in sorted(days.items())}


def day_digest(objects: Iterable[StoredObject]) -> str:
    """Changes whenever a file of the day is added, rewritten or removed."""
    h = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o.key):
        h.update(f"{obj.key}\0{obj.version}\n".encode())
    return h.hexdigest()[:16]


def portable_type(declared: str) -> str:
    """The staged format's name for a declared landing type (config.LANDING_TYPE)."""
    return {"INT": "INTEGER", "DOUBLE": "DOUBLE PRECISION"}.get(declared, declared)


def staged_columns(spec: LandingSpec) -> tuple[Column, ...]:
    return tuple(
        Column(c.name, portable_type(c.type), nullable=c.name not in spec.primary_key)
        for c in spec.columns
    )


# Parsers turn a CSV field into the Python value the staged encoder writes; they raise ValueError.
def _integer(portable: str) -> Callable[[str], int]:
    bound = INT_RANGE[portable]

    def parse(v: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]+", v) or not -bound <= int(v) < bound:
            raise ValueError
        return int(v)

    return parse


def _boolean(v: str) -> bool:
    if v.lower() in TRUE:
        return True
    if v.lower() in FALSE:
        return False
    raise ValueError


def _double(v: str) -> float:
    f = float(v)
    if not math.isfinite(f):  # Redshift and COPY disagree on NaN/Infinity: refuse them
        raise ValueError
    return f


def _numeric(precision: int, scale: int) -> Callable[[str], decimal.Decimal]:
    def parse(v: str) -> decimal.Decimal:
        try:
            d = decimal.Decimal(v)
        except decimal.InvalidOperation:
            raise ValueError from None
        # Refuse anything the column would round or overflow, rather than change the value.
        too_long = d != 0 and d.adjusted() >= precision - scale
        if not d.is_finite() or -d.as_tuple().exponent > scale or too_long:
            raise ValueError
        return d

    return parse


def _text(limit: int | None) -> Callable[[str], str]:
    def parse(v: str) -> str:
        if "\x00" in v or (limit is not None and len(v) > limit):
            raise ValueError
        return v

    return parse


def _timestamp(v: str) -> dt.datetime:
    """ISO 8601; a value with an offset is stored in UTC, a value without one is taken as UTC."""
    return dt.datetime.fromisoformat(v)


def parser(portable: str) -> Callable[[str], Any]:
    if portable in INT_RANGE:
        return _integer(portable)
    if portable.startswith("NUMERIC("):
        p, s = portable[8:-1].split(",")
        return _numeric(int(p), int(s))
    if portable.startswith("VARCHAR("):
        return _text(int(portable[8:-1]))
    return {
        "BOOLEAN": _boolean,
        "DATE": dt.date.fromisoformat,
        "TIMESTAMP": _timestamp,
        "DOUBLE PRECISION": _double,
        "TEXT": _text(None),
    }[portable]


@dataclass
class DayStage:
    """What staging a range of days produced: staged files, evidence and rejected files."""

    staged: list[StagedFile] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    rows: int = 0
    superseded: int = 0
    rejected: dict[str, str] = field(default_factory=dict)


class LandingStager:
    """Validates a table's landing files and writes each day as one staged file.

    Within one load a key must be unique: a later day beats an earlier one and, within a day, a
    later file (in name order) beats an earlier one; a key twice in one file is rejected as
    ambiguous. Files are read newest first so the winner is known when its row is written, and
    only the keys (never the rows) are kept in memory.
    """

    def __init__(self, spec: LandingSpec, store: StagingStore):
        self.spec = spec
        self.store = store
        self.columns = staged_columns(spec)
        self.names = [c.name for c in self.columns]
        self.parsers = [parser(c.type) for c in self.columns]
        # A one-column key stays a bare value (no tuple): the key sets are the only per-row memory.
        self.key_of = operator.itemgetter(*(self.names.index(k) for k in spec.primary_key))
        self.encoder = RowEncoder(spec.target, self.columns, spec.primary_key)

    def staged_key(self, day: str) -> str:
        return f"staging/{landing_prefix(self.spec)}/{day}.csv.gz"

    def stage(self, days: Iterable[str]) -> DayStage:
        """Stage every given day; a day with a rejected file gets no manifest and no StagedFile."""
        out = DayStage()
        seen: set = set()
        for day in sorted(days, reverse=True):
            listed = self.store.list(f"{landing_prefix(self.spec)}/{day}")
            staged = self._stage_day(day, files_by_day(self.spec, listed).get(day, []), seen, out)
            if staged:
                out.staged.insert(0, staged)
        out.files.sort()
        return out

    def _stage_day(self, day: str, objects: list[StoredObject], seen: set,
                   out: DayStage) -> StagedFile | None:
        key = self.staged_key(day)
        rows, rejected = 0, len(out.rejected)
        with self.store.open_write(key) as fh:
            with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=6, mtime=0) as gz:
                for obj in reversed(objects):
                    in_file: set = set()
                    try:
                        for batch in self._batches(obj, in_file, seen, out):
                            gz.write(self.encoder.encode(batch).encode())
                            rows += len(batch)
                    except LandingFileError as exc:
                        out.rejected[obj.key] = str(exc)
                        continue
                    seen.update(in_file)
                    out.files.append(obj.key)
            size = fh.tell()
        if len(out.rejected) > rejected:
            return None  # the run fails; a manifest would mark this partial file as complete
        out.rows += rows
        start = dt.date.fromisoformat(day)
        manifest = Manifest(
            source=f"{landing_prefix(self.spec)}/{day}",
            columns=self.columns,
            rows=rows,
            bytes=size,
            window=(start.isoformat(), (start + dt.timedelta(days=1)).isoformat()),
            files=tuple(o.key for o in objects),
        )
        self.store.write_bytes(manifest_key(key), manifest.to_json().encode())
        return StagedFile(key=key, uri=self.store.uri(key), manifest=manifest)

    def _batches(self, obj: StoredObject, in_file: set, seen: set,
                 out: DayStage) -> Iterator[list[tuple]]:
        """The file's rows, parsed and checked, in batches; rows a later file replaces are dropped."""
        uri = self.store.uri(obj.key)
        with self.store.open_read(obj.key) as raw:
            stream = gzip.GzipFile(fileobj=raw, mode="rb") if obj.key.endswith(".gz") else raw
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            reader = csv.reader(text, strict=True)
            line = 1
            try:
                header = next(reader, [])
                if header != self.names:
                    raise LandingFileError(
                        f"{uri}: line 1: header {header} does not match the declared columns "
                        f"{self.names} ({self.spec.table} in replication.yaml)"
                    )
                batch: list[tuple] = []
                line = reader.line_num + 1
                for fields in reader:
                    if not fields:  # a blank line (say, a trailing one) holds no row
                        line = reader.line_num + 1
                        continue
                    row = self._row(uri, line, fields)
                    key = self.key_of(row)
                    if key in in_file:
                        raise LandingFileError(
                            f"{uri}: line {line}, column {', '.join(self.spec.primary_key)}: key "
                            f"{key!r} appears a second time in the file; a file may hold each key "
                            f"once"
                        )
                    in_file.add(key)
                    if key in seen:
                        out.superseded += 1
                    else:
                        batch.append(row)
                        if len(batch) >= BATCH_ROWS:
                            yield batch
                            batch = []
                    line = reader.line_num + 1
                if batch:
                    yield batch
            except csv.Error as exc:
                raise LandingFileError(f"{uri}: line {line}: malformed CSV ({exc})") from None
            except (UnicodeDecodeError, EOFError, OSError, zlib.error) as exc:
                raise LandingFileError(
                    f"{uri}: near line {line}: cannot be read as "
                    f"{'gzip ' if obj.key.endswith('.gz') else ''}UTF-8 CSV ({exc})"
                ) from None

    def _row(self, uri: str, line: int, fields: list[str]) -> tuple:
        if len(fields) != len(self.names):
            raise LandingFileError(
                f"{uri}: line {line}: {len(fields)} field(s), expected {len(self.names)} "
                f"({', '.join(self.names)})"
            )
        values = []
        for col, parse, v in zip(self.columns, self.parsers, fields):
            if v == "":  # CSV has no other NULL marker; an empty field is NULL
                if not col.nullable:
                    raise LandingFileError(
                        f"{uri}: line {line}, column {col.name}: primary key is empty (NULL)"
                    )
                values.append(None)
                continue
            try:
                values.append(parse(v))
            except ValueError:
                shown = v if len(v) <= 80 else v[:77] + "..."
                raise LandingFileError(
                    f"{uri}: line {line}, column {col.name}: value {shown!r} is not a valid "
                    f"{col.type}"
                ) from None
        return tuple(values)

