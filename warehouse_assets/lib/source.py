"""The MySQL source (SQLite in the embedded default): reflect tables, stream a window of rows."""

from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from warehouse_assets.config import TableSpec
from warehouse_assets.lib.staged import Column, DataError, RowEncoder

BATCH_ROWS = 10_000


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
    engine = sa.create_engine(u, pool_pre_ping=True, pool_recycle=3600)
    if u.get_backend_name() in ("mysql", "mariadb"):

        @sa.event.listens_for(engine, "connect")
        def _utc_session(dbapi_conn, _record) -> None:  # TIMESTAMP values leave in UTC
            with dbapi_conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")

    return engine


def portable_type(table: str, column: sa.Column) -> str:
    """The portable type of a reflected source column (see lib.staged.PORTABLE)."""
    t = column.type
    unsigned = getattr(t, "unsigned", False)
    if isinstance(t, mysql.TINYINT | mysql.SMALLINT | sa.SmallInteger):
        return "INTEGER" if unsigned and isinstance(t, mysql.SMALLINT) else "SMALLINT"
    if isinstance(t, mysql.MEDIUMINT):
        return "INTEGER"
    if isinstance(t, sa.BigInteger):
        return "NUMERIC(20,0)" if unsigned else "BIGINT"
    if isinstance(t, sa.Integer):
        return "BIGINT" if unsigned else "INTEGER"
    if isinstance(t, sa.Boolean):
        return "BOOLEAN"
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        precision, scale = t.precision or 38, t.scale or 0
        return f"NUMERIC({precision},{scale})"
    if isinstance(t, sa.Float | sa.Double):
        return "REAL" if isinstance(t, mysql.FLOAT) else "DOUBLE PRECISION"
    if isinstance(t, sa.DateTime):
        return "TIMESTAMP"
    if isinstance(t, sa.Date):
        return "DATE"
    if isinstance(t, sa.Time):
        return "TIME"
    if isinstance(t, mysql.ENUM | mysql.SET | sa.JSON):
        return "TEXT"
    if isinstance(t, sa.String) and not isinstance(t, sa.Text) and t.length:
        return f"VARCHAR({t.length})"
    if isinstance(t, sa.String):
        return "TEXT"
    raise DataError(f"{table}.{column.name}: source type {t} is not supported for replication")


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
            b.astimezone(dt.timezone.utc).replace(tzinfo=None) if b.tzinfo else b
            for b in (self.start, self.end)
        )


@dataclass
class Extract:
    """A lazy read of one window of a source table; nothing is read until write_to() runs."""

    source: SourceDatabase
    spec: TableSpec
    window: Window | None

    def columns(self) -> tuple[Column, ...]:
        return self.source.columns(self.spec)

    def write_to(self, fileobj: IO[bytes]) -> int:
        """Stream the rows as gzip CSV into fileobj; returns the number of rows."""
        return self.source.stream(self.spec, self.window, fileobj)


class SourceDatabase(dg.ConfigurableResource):
    """The replicated source database (MySQL in production), read with a server-side cursor."""

    url: str
    batch_rows: int = BATCH_ROWS
    compresslevel: int = 1

    @property
    def engine(self) -> Engine:
        return _engine(self.url)

    def reflect(self, schema: str, table: str) -> sa.Table:
        try:
            return sa.Table(table, sa.MetaData(), schema=schema, autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            raise SourceError(f"source table {schema}.{table} does not exist") from None

    def columns(self, spec: TableSpec) -> tuple[Column, ...]:
        table = self.reflect(spec.source_schema, spec.source_table)
        self._check_declared(spec, table)
        return tuple(
            Column(c.name, portable_type(spec.source, c), bool(c.nullable)) for c in table.columns
        )

    def _check_declared(self, spec: TableSpec, table: sa.Table) -> None:
        for name in (*spec.primary_key, spec.cursor, spec.soft_delete):
            if name and name not in table.columns:
                raise SourceError(f"source table {spec.source} has no column {name!r}")

    def query(self, spec: TableSpec, window: Window | None) -> sa.Select:
        table = self.reflect(spec.source_schema, spec.source_table)
        self._check_declared(spec, table)
        # MySQL DOUBLE reflects as asdecimal=True, whose conversion rounds to 10 digits: take the
        # driver's float as it is.
        stmt = sa.select(*(
            sa.type_coerce(c, sa.Double(asdecimal=False)).label(c.name)
            if isinstance(c.type, sa.Float) else c
            for c in table.columns
        ))
        if window is not None:
            cursor = table.columns[spec.cursor]
            start, end = window.naive_utc()
            stmt = stmt.where(cursor >= start, cursor < end)
        return stmt

    def stream(self, spec: TableSpec, window: Window | None, fileobj: IO[bytes]) -> int:
        """Server-side cursor -> CSV lines -> gzip, a batch at a time: memory stays flat."""
        columns = self.columns(spec)
        encoder = RowEncoder(spec.source, columns, spec.primary_key)
        rows = 0
        with (
            self.engine.connect() as conn,
            gzip.GzipFile(fileobj=fileobj, mode="wb", compresslevel=self.compresslevel) as gz,
        ):
            result = conn.execution_options(stream_results=True, yield_per=self.batch_rows).execute(
                self.query(spec, window)
            )
            for batch in result.partitions():
                gz.write(encoder.encode(batch).encode("utf-8"))
                rows += len(batch)
        return rows
