"""The warehouse resource: picks the dialect from WAREHOUSE_DB_URL and applies each load in one
transaction (stage, check, then replace or merge)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from warehouse_assets.config import check_column
from warehouse_assets.lib.parts import check_parts
from warehouse_assets.lib.staged import DataError
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.lib.warehouse.base import (
    Dialect,
    LoadError,
    LoadResult,
    SchemaDriftError,
    TableLoad,
    canonical,
    holds,
    is_string,
    q,
    qualified,
)
from warehouse_assets.lib.warehouse.duckdb import DuckDBDialect
from warehouse_assets.lib.warehouse.postgres import PostgresDialect
from warehouse_assets.lib.warehouse.redshift import RedshiftDialect


@cache
def _engine(url: str) -> Engine:
    u = sa.make_url(url)
    backend = u.get_backend_name()
    if backend == "duckdb":
        return sa.create_engine(u, poolclass=sa.pool.NullPool)  # release the file lock after use
    if backend == "redshift":
        u = u.set(drivername="postgresql+psycopg2")
    return sa.create_engine(u, pool_pre_ping=True, pool_size=2)


class Warehouse(dg.ConfigurableResource):
    """The analytics warehouse: loads staged files and runs SQL."""

    url: str = Field(repr=False)  # may hold a password: never in a repr
    iam_role: str | None = None
    lock_timeout_seconds: float = 120.0

    @property
    def dialect(self) -> Dialect:
        backend = sa.make_url(self.url).get_backend_name()
        if backend == "duckdb":
            return DuckDBDialect()
        if backend == "redshift":
            return RedshiftDialect(self.iam_role)
        if backend == "postgresql":
            return PostgresDialect()
        raise ValueError(f"WAREHOUSE_DB_URL: unsupported backend {backend!r}")

    @property
    def engine(self) -> Engine:
        return _engine(self.url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction; on DuckDB, waits while another process holds the file's write lock."""
        deadline = time.monotonic() + self.lock_timeout_seconds
        while True:
            try:
                # Connecting is what takes DuckDB's file lock (engine.begin() alone only returns a
                # context manager), so the wait must wrap connect().
                conn = self.engine.connect()
                break
            except sa.exc.OperationalError as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn, conn.begin():
            yield conn

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        with self.begin() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params or {}).all()]

    def load(self, load: TableLoad, store: StagingStore) -> LoadResult:
        """Apply staged files to the target in one transaction."""
        started = time.monotonic()
        d = self.dialect
        result = LoadResult(rows_staged=sum(s.manifest.rows for s in load.staged))
        stage = f"stage_{load.target_table}_{uuid.uuid4().hex[:8]}"
        for c in load.columns:  # source column names come from reflection, not from config
            check_column(c.name, f"{load.target}: source column")
            if len(c.name.encode()) > d.max_identifier_bytes:
                raise LoadError(f"{load.target}: source column {c.name!r} is longer than "
                                f"{d.max_identifier_bytes} bytes, the most {d.name} keeps; "
                                f"leave it out (exclude_columns) or rename it in a view")
        for staged in load.staged:  # exactly the manifest's parts, or nothing is loaded
            check_parts(staged, store, load.target)
        d.check_staged(load, store)
        try:
            with self.begin() as conn:
                d.prepare(conn)
                d.lock_target(conn, load)
                conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {q(load.target_schema)}"))
                result.created, result.columns_added = self._prepare_target(conn, d, load)
                target = qualified(load.target_schema, load.target_table)
                before = conn.execute(sa.text(f"SELECT COUNT(*) FROM {target}")).scalar_one()
                if self._direct(d, load, before):
                    # Nothing to merge with: COPY straight into the target, inside this same
                    # transaction (readers keep seeing the old rows until it commits).
                    if before:
                        conn.execute(sa.text(f"DELETE FROM {target}"))
                    for staged in load.staged:
                        d.copy_into(conn, target, load.columns, staged, store)
                    self._check_complete(conn, load, target, result.rows_staged)
                    self._check_keys(conn, load, target)
                    result.rows_written = result.rows_staged
                    if load.mode == "merge" and load.soft_delete:
                        result.rows_written -= conn.execute(sa.text(
                            f"DELETE FROM {target} WHERE {d.soft_deleted(load)}")).rowcount
                else:
                    conn.execute(sa.text(d.create_stage_sql(stage, load.columns)))
                    for staged in load.staged:
                        d.copy_into(conn, q(stage), load.columns, staged, store)
                    d.after_copy(conn, q(stage), load.columns)
                    self._check_complete(conn, load, q(stage), result.rows_staged)
                    self._check_keys(conn, load, q(stage))
                    stmts = d.replace_sql(load, stage) if load.mode == "replace" else d.merge_sql(
                        load, stage)
                    counts = [conn.execute(sa.text(s)).rowcount for s in stmts]
                    result.rows_written = max(counts[-1], 0)
                result.target_rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {target}")).scalar_one()
                result.rows_deleted = max(before + result.rows_written - result.target_rows, 0)
                for tmp in (stage, f"{stage}_latest"):
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {q(tmp)}"))
        # COPY runs on the driver's cursor, so its errors (a killed connection mid-COPY) arrive
        # unwrapped by SQLAlchemy.
        except (sa.exc.DBAPIError, self.engine.dialect.loaded_dbapi.Error) as exc:
            errors = (sa.exc.DBAPIError, self.engine.dialect.loaded_dbapi.Error)
            while isinstance(exc.__context__, errors):  # a lost connection also fails the ROLLBACK
                exc = exc.__context__
            reason = str(getattr(exc, "orig", None) or exc).strip()
            raise LoadError(f"loading {load.target} failed, nothing was changed: {reason}") from None
        result.seconds = time.monotonic() - started
        return result

    def _prepare_target(self, conn: Connection, d: Dialect, load: TableLoad) -> tuple[bool, list[str]]:
        """Create a missing target from the source's types; add new source columns and widen
        VARCHARs; fail on a dropped or retyped column, saying what changed and what to do."""
        target = qualified(load.target_schema, load.target_table)
        existing = d.existing_columns(conn, load.target_schema, load.target_table)
        if existing is None:
            conn.execute(sa.text(d.create_table_sql(
                load.target_schema, load.target_table, load.columns, load.primary_key)))
            return True, []
        staged = {c.name: c for c in load.columns}
        problems = [
            f"column {name} is in the warehouse but no longer in the source: drop it "
            f"(ALTER TABLE {load.target} DROP COLUMN {name}) or restore it in the source"
            for name in existing if name not in staged
        ]
        widen = []
        for c in load.columns:
            old, new = existing.get(c.name), canonical(d.ddl_type(c.type))
            if old is None or holds(old, new):
                continue
            if is_string(old) and is_string(new) and d.widen_in_transaction:
                widen.append(c)  # a longer VARCHAR: every stored value still fits
                continue
            problems.append(
                f"column {c.name} is {old} in the warehouse but the source now sends {new}: "
                f"convert it (ALTER TABLE {load.target} ALTER COLUMN {c.name} TYPE "
                f"{d.ddl_type(c.type)}), or drop {load.target} and reload it, or restore the "
                f"source's type"
            )
        if problems:
            raise SchemaDriftError(
                f"{load.target}: the source's columns changed and nothing was loaded.\n- "
                + "\n- ".join(problems) + "\nThen run again."
            )
        for c in widen:
            conn.execute(sa.text(
                f"ALTER TABLE {target} ALTER COLUMN {q(c.name)} TYPE {d.ddl_type(c.type)}"))
        added = [c for c in load.columns if c.name not in existing]
        for c in added:
            conn.execute(sa.text(f"ALTER TABLE {target} ADD COLUMN {q(c.name)} {d.ddl_type(c.type)}"))
        return False, [c.name for c in added]

    def _direct(self, d: Dialect, load: TableLoad, target_rows: int) -> bool:
        """COPY straight into the target when the old rows all go anyway: a full refresh, or a
        first load of rows that are unique per key. Redshift keeps its staged path."""
        if isinstance(d, RedshiftDialect) or d.converts(load.columns):
            return False
        if load.mode == "replace":
            return True
        return target_rows == 0 and len(load.staged) == 1 and load.staged[0].manifest.unique_key

    def _check_complete(self, conn: Connection, load: TableLoad, table: str, rows: int) -> None:
        """The staged files hold exactly the rows their manifests promise, or nothing is loaded."""
        copied = conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
        if copied != rows:
            raise LoadError(
                f"loading {load.target}: the staged file(s) hold {copied} rows but their manifests "
                f"say {rows}; nothing was loaded. Materialize the staging asset again."
            )

    def _check_keys(self, conn: Connection, load: TableLoad, table: str) -> None:
        for key in load.primary_key:
            n = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {table} WHERE {q(key)} IS NULL")
            ).scalar_one()
            if n:
                raise DataError(
                    f"{load.target}.{key}: {n} staged row(s) from "
                    f"{', '.join(sorted({s.manifest.source for s in load.staged}))} have NULL in "
                    f"primary key column {key!r}; nothing was loaded. A key identifies a row, so "
                    f"it can never be NULL: fix those rows in the source, or declare NOT NULL "
                    f"column(s) as this table's primary_key in REPLICATION_YAML."
                )
