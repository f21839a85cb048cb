"""The source database resource (MySQL; SQLite in the embedded default): reflect a table, build a
window's query, stream its rows with the pymysql fallback or hand them to the fast reader."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import dagster as dg
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.engine import Engine

from warehouse_assets.config import TableSpec
from warehouse_assets.lib.source.types import FAST_TYPES, portable_type, select_expression
from warehouse_assets.lib.staged import Column, DataError, RowEncoder

BATCH_ROWS = 10_000


class BatchSink(Protocol):
    """Where a reader writes a window's CSV text, one batch of whole rows at a time (a batch is
    the only safe place to cut: a CSV value may contain a newline); lib/parts.py's PartWriter."""

    def write_batch(self, data: bytes) -> None: ...


class SourceError(RuntimeError):
    """The source table is not what the configuration says (missing table or column)."""


@cache
def _engine(url: str) -> Engine:
    u = sa.make_url(url)
    if u.get_backend_name() == "sqlite":
        engine = sa.create_engine(u, poolclass=sa.pool.NullPool)
        folder = Path(u.database or ".").parent

        @sa.event.listens_for(engine, "connect")
        def _attach_schemas(dbapi_conn, _record) -> None:  # one SQLite file per schema
            for f in sorted(folder.glob("*.sqlite")):
                if f.resolve() != Path(u.database).resolve():
                    dbapi_conn.execute("ATTACH DATABASE ? AS " + f"\"{f.stem}\"", (str(f),))

        return engine
    # No pool: a run connects a handful of times, and idle pooled connections would pile up on
    # the source for every URL a long-lived process (a code server, a test session) has read.
    engine = sa.create_engine(u, poolclass=sa.pool.NullPool)
    if u.get_backend_name() in ("mysql", "mariadb"):

        @sa.event.listens_for(engine, "connect")
        def _utc_session(dbapi_conn, _record) -> None:  # TIMESTAMP values leave in UTC
            with dbapi_conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")

    return engine


@dataclass(frozen=True)
class Window:
    """Half-open [start, end) in the table's time zone: a value at midnight belongs to one day."""

    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        first, last = self.start.date(), (self.end - dt.timedelta(days=1)).date()
        return first.isoformat() if first == last else f"{first}_{last}"

    def naive_utc(self) -> tuple[dt.datetime, dt.datetime]:
        """Bounds as the source compares them: naive, in UTC (the session time zone)."""
        return tuple(  # type: ignore[return-value]
            b.astimezone(dt.UTC).replace(tzinfo=None) if b.tzinfo else b
            for b in (self.start, self.end)
        )


@dataclass
class Extract:
    """A lazy read of one window of a source table; nothing is read until write_to() runs."""

    source: SourceDatabase
    spec: TableSpec
    window: Window | None
    path: str = ""  # the reader that ran ("connectorx" or the SQLAlchemy driver), for metadata
    _table: sa.Table | None = None

    @property
    def table(self) -> sa.Table:
        """The source table, reflected once per extract (each reflection is a round of queries)."""
        if self._table is None:
            self._table = self.source.reflect(self.spec.source_schema, self.spec.source_table)
        return self._table

    def columns(self) -> tuple[Column, ...]:
        return self.source.columns(self.spec, self.table)

    def unique_key(self) -> bool:
        """Whether the declared primary key is the source table's own (so no row repeats)."""
        declared = {c.name for c in self.table.primary_key.columns}
        return bool(declared) and declared == set(self.spec.primary_key)

    def write_to(self, sink: BatchSink) -> int:
        """Stream the rows as CSV batches into sink; returns the number of rows."""
        self.path = self.source.reader(self.spec, self.table)
        if self.path == "connectorx":
            return self.source.stream_fast(self.spec, self.window, sink, self.table)
        return self.source.stream(self.spec, self.window, sink, self.table)


class SourceDatabase(dg.ConfigurableResource):
    """The replicated source database (MySQL in production), read with a server-side cursor."""

    url: str = Field(repr=False)  # may hold a password: never in a repr
    batch_rows: int = BATCH_ROWS
    # gzip level 1 (lib/parts.py compresses): measured 0.77 s for 2M narrow rows (21.5 MB) against 1.2 s at 3 and 3.8 s at
    # 6 for 4-7% smaller files; the upload is not the bottleneck on loopback or in-region S3.
    compresslevel: int = 1
    # MySQL/MariaDB read by connectorx into Arrow batches and written by Arrow's CSV writer;
    # False (or SOURCE_FAST_PATH=0) reads with the portable pymysql server-side cursor.
    fast_path: bool = True

    @property
    def engine(self) -> Engine:
        return _engine(self.url)

    def reflect(self, schema: str, table: str) -> sa.Table:
        try:
            return sa.Table(table, sa.MetaData(), schema=schema, autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            raise SourceError(f"source table {schema}.{table} does not exist") from None

    def columns(self, spec: TableSpec, table: sa.Table | None = None) -> tuple[Column, ...]:
        table = table if table is not None else self.reflect(spec.source_schema, spec.source_table)
        return tuple(
            Column(c.name, self._portable(spec, c), bool(c.nullable))
            for c in self.selected(spec, table)
        )

    def selected(self, spec: TableSpec, table: sa.Table) -> list[sa.Column]:
        """The replicated columns, in the source's order: all, or the entry's columns: list,
        less its exclude_columns."""
        names = set(spec.columns or table.columns.keys()) - set(spec.exclude_columns)
        for name in (*spec.primary_key, spec.cursor, spec.soft_delete,
                     *(spec.columns or ()), *spec.exclude_columns):
            if name and name not in table.columns:
                raise SourceError(f"source table {spec.source} has no column {name!r}")
        needed = {*spec.primary_key, spec.cursor, spec.soft_delete} - {None} - names
        if needed:
            raise SourceError(
                f"{spec.source}: column(s) {', '.join(sorted(needed))} are the entry's key, cursor "
                f"or soft_delete flag and cannot be left out by columns/exclude_columns")
        return [c for c in table.columns if c.name in names]

    def _portable(self, spec: TableSpec, column: sa.Column) -> str:
        if not isinstance(column.type, sa.types.NullType):
            return portable_type(spec.source, column)
        # A type SQLAlchemy does not know: name it as the server does, and say what to do.
        declared = "unknown"
        if self.engine.dialect.name in ("mysql", "mariadb"):
            with self.engine.connect() as conn:
                declared = conn.execute(sa.text(
                    "SELECT COLUMN_TYPE FROM information_schema.columns WHERE table_schema = :s "
                    "AND table_name = :t AND column_name = :c"),
                    {"s": spec.source_schema, "t": spec.source_table, "c": column.name},
                ).scalar() or declared
        raise DataError(
            f"{spec.source}.{column.name}: source type {declared.upper()} cannot be replicated; "
            f"nothing was read. Leave the column out (exclude_columns: [{column.name}] on the "
            f"entry) or replicate a view that casts it to a supported type")

    def query(self, spec: TableSpec, window: Window | None,
              table: sa.Table | None = None) -> sa.Select:
        table = table if table is not None else self.reflect(spec.source_schema, spec.source_table)
        columns = self.selected(spec, table)
        stmt = sa.select(*(select_expression(c, self._portable(spec, c)) for c in columns))
        if window is not None:
            cursor = table.columns[spec.cursor]
            start, end = window.naive_utc()
            stmt = stmt.where(cursor >= start, cursor < end)
        return stmt

    def reader(self, spec: TableSpec, table: sa.Table | None = None) -> str:
        """Which path reads this table: connectorx for MySQL/MariaDB tables it reads exactly."""
        driver = self.engine.dialect.driver
        if not self.fast_path or self.engine.dialect.name not in ("mysql", "mariadb"):
            return driver
        return "connectorx" if all(FAST_TYPES.match(c.type) for c in self.columns(spec, table)) else driver

    def stream_fast(self, spec: TableSpec, window: Window | None, sink: BatchSink,
                    table: sa.Table | None = None) -> int:
        """The fast reader (source/fast.py); imported only when used: pyarrow is heavy."""
        from warehouse_assets.lib.source.fast import stream_fast

        return stream_fast(self, spec, window, sink, table)

    def stream(self, spec: TableSpec, window: Window | None, sink: BatchSink,
               table: sa.Table | None = None) -> int:
        """Server-side cursor -> CSV lines -> sink, a batch at a time: memory stays flat."""
        columns = self.columns(spec, table)
        encoder = RowEncoder(spec.source, columns, spec.primary_key)
        rows = 0
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.batch_rows).execute(
                self.query(spec, window, table)
            )
            for batch in result.partitions():
                sink.write_batch(encoder.encode(batch).encode("utf-8"))
                rows += len(batch)
        return rows
