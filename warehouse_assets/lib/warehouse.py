"""The warehouse: Redshift in production, PostgreSQL in tests, DuckDB embedded.

Every load runs in one transaction: stage the file into a temporary table, then replace or merge.
Readers see the table as it was before or as it is after, never in between, and any failure rolls
back to exactly the rows that were there.
"""

from __future__ import annotations

import gzip
import io
import re
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import dagster as dg
import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from warehouse_assets.config import check_identifier
from warehouse_assets.lib.staged import NULL, Column, DataError, StagedFile, first_oversized
from warehouse_assets.lib.staging import StagingStore


class LoadError(RuntimeError):
    """The warehouse refused the staged data; the message names the table and the database's reason."""


class SchemaDriftError(LoadError):
    """The source's columns no longer match the target table's."""


@dataclass(frozen=True)
class TableLoad:
    """What a warehouse-table asset hands its IO manager: files to load and how to apply them."""

    target_schema: str
    target_table: str
    mode: Literal["merge", "replace"]
    primary_key: tuple[str, ...]
    staged: tuple[StagedFile, ...]
    cursor: str | None = None
    soft_delete: str | None = None

    @property
    def target(self) -> str:
        return f"{self.target_schema}.{self.target_table}"

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.staged[0].manifest.columns if self.staged else ()


@dataclass
class LoadResult:
    rows_staged: int = 0
    rows_written: int = 0
    rows_deleted: int = 0
    target_rows: int = 0
    created: bool = False
    columns_added: list[str] = field(default_factory=list)
    seconds: float = 0.0


def q(name: str) -> str:
    """Quote a validated identifier."""
    return '"' + check_identifier(name, "identifier").replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{q(schema)}.{q(table)}"


_ALIASES = {"INT": "INTEGER", "INT2": "SMALLINT", "INT4": "INTEGER", "INT8": "BIGINT",
            "BOOL": "BOOLEAN", "FLOAT": "REAL", "FLOAT4": "REAL", "DOUBLE": "DOUBLE PRECISION",
            "FLOAT8": "DOUBLE PRECISION", "DECIMAL": "NUMERIC", "CHARACTER VARYING": "VARCHAR",
            "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "TIME WITHOUT TIME ZONE": "TIME"}
_INTEGERS = ("SMALLINT", "INTEGER", "BIGINT")


def canonical(type_name: str) -> str:
    """One spelling per column type, whoever wrote it (portable, PostgreSQL, DuckDB, Redshift)."""
    t = re.sub(r"\s+", " ", type_name.strip().upper()).replace(", ", ",")
    base, _, args = t.partition("(")
    base = _ALIASES.get(base.strip(), base.strip())
    if base in ("VARCHAR", "TEXT"):
        return f"VARCHAR({args}" if args else "TEXT"  # a VARCHAR without a length is unbounded
    return f"{base}({args}" if args else base


def holds(target: str, staged: str) -> bool:
    """Whether a warehouse column of canonical type target stores every value of type staged."""
    if target == staged:
        return True
    if target in _INTEGERS and staged in _INTEGERS:
        return _INTEGERS.index(target) >= _INTEGERS.index(staged)
    if (target, staged) == ("DOUBLE PRECISION", "REAL"):
        return True
    if target == "NUMERIC" and staged.startswith("NUMERIC"):
        return True
    if target.startswith("NUMERIC(") and staged.startswith("NUMERIC("):
        (tp, ts), (sp, ss) = (map(int, t[8:-1].split(",")) for t in (target, staged))
        return tp - ts >= sp - ss and ts >= ss
    return _is_string(target) and _is_string(staged) and _length(target) >= _length(staged)


def _is_string(t: str) -> bool:
    return t == "TEXT" or t.startswith("VARCHAR(")


def _length(t: str) -> float:
    return float("inf") if t == "TEXT" else int(t[8:-1])


class Dialect:
    """SQL that differs between warehouses; the merge itself is shared."""

    name = "ansi"

    def ddl_type(self, portable: str) -> str:
        return portable

    def create_table_sql(self, schema: str, table: str, columns: tuple[Column, ...],
                         primary_key: tuple[str, ...]) -> str:
        cols = ",\n  ".join(f"{q(c.name)} {self.ddl_type(c.type)}" for c in columns)
        pk = f",\n  PRIMARY KEY ({', '.join(q(k) for k in primary_key)})" if primary_key else ""
        return f"CREATE TABLE {qualified(schema, table)} (\n  {cols}{pk}\n)"

    def create_stage_sql(self, stage: str, columns: tuple[Column, ...]) -> str:
        cols = ", ".join(f"{q(c.name)} {self.ddl_type(c.type)}" for c in columns)
        return f"CREATE TEMPORARY TABLE {q(stage)} ({cols})"

    def existing_columns(self, conn: Connection, schema: str, table: str) -> dict[str, str] | None:
        """The table's columns and their canonical types, or None if it does not exist."""
        rows = conn.execute(
            sa.text(
                "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
                "numeric_scale FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
            ),
            {"s": schema, "t": table},
        ).all()
        columns = {}
        for name, data_type, length, precision, scale in rows:
            if length:
                data_type = f"{data_type}({length})"
            elif str(data_type).lower() == "numeric" and precision is not None:
                data_type = f"NUMERIC({precision},{scale or 0})"
            columns[name] = canonical(str(data_type))
        return columns or None

    # Whether ALTER COLUMN ... TYPE may run inside the load's transaction (Redshift refuses).
    widen_in_transaction = True

    def lock_target(self, conn: Connection, load: TableLoad) -> None:
        """Make concurrent loads of one table wait for each other (see PostgresDialect)."""

    def check_staged(self, load: TableLoad, store: StagingStore) -> None:
        """Fail before loading if a staged value cannot be stored here, naming it."""

    def copy_into(self, conn: Connection, table: str, columns: tuple[Column, ...],
                  staged: StagedFile, store: StagingStore) -> None:
        """Bulk-load one staged file into table (a quoted name) inside the open transaction."""
        raise NotImplementedError

    def merge_sql(self, load: TableLoad, stage: str) -> list[str]:
        """Upsert: latest row per key wins; soft-deleted keys leave; an older version never wins."""
        target = qualified(load.target_schema, load.target_table)
        cols = ", ".join(q(c.name) for c in load.columns)
        keys = ", ".join(q(k) for k in load.primary_key)
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in load.primary_key)
        order = f"{q(load.cursor)} DESC" if load.cursor else keys
        stmts = []
        if all(s.manifest.unique_key for s in load.staged) and len(load.staged) == 1:
            latest = q(stage)  # one row per key already: nothing to de-duplicate
        else:
            latest = q(f"{stage}_latest")
            stmts.append(
                f"CREATE TEMPORARY TABLE {latest} AS SELECT {cols} FROM ("
                f"SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {order}) AS rn__ "
                f"FROM {q(stage)}) ranked WHERE rn__ = 1")
        newer = f" AND t.{q(load.cursor)} > s.{q(load.cursor)}" if load.cursor else ""
        older = f" AND t.{q(load.cursor)} <= s.{q(load.cursor)}" if load.cursor else ""
        using_on = " AND ".join(f"{target}.{q(k)} = s.{q(k)}" for k in load.primary_key)
        older_using = older.replace("t.", f"{target}.") if older else ""
        stmts.append(f"DELETE FROM {target} USING {latest} s WHERE {using_on}{older_using}")
        keep = f" AND NOT ({self.soft_deleted(load, 's.')})" if load.soft_delete else ""
        stmts.append(
            f"INSERT INTO {target} ({cols}) SELECT {', '.join('s.' + q(c.name) for c in load.columns)}"
            f" FROM {latest} s WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on}{newer}){keep}"
        )
        return stmts

    def soft_deleted(self, load: TableLoad, alias: str = "") -> str:
        """SQL condition: the row is flagged deleted in the source."""
        flag = next(c for c in load.columns if c.name == load.soft_delete)
        col = f"{alias}{q(flag.name)}"
        return f"{col} IS TRUE" if flag.type == "BOOLEAN" else f"COALESCE({col}, 0) <> 0"

    def replace_sql(self, load: TableLoad, stage: str) -> list[str]:
        """Full refresh: delete and insert in one transaction (the seed's REPLACE, made atomic)."""
        target = qualified(load.target_schema, load.target_table)
        cols = ", ".join(q(c.name) for c in load.columns)
        return [f"DELETE FROM {target}", f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {q(stage)}"]


class PostgresDialect(Dialect):
    name = "postgresql"

    def lock_target(self, conn: Connection, load: TableLoad) -> None:
        # Two loads of one table at once would each delete only the rows they saw and both insert
        # (or both CREATE it). A transaction-scoped advisory lock on the table's name, rather
        # than LOCK TABLE, also covers a target that does not exist yet, never blocks readers,
        # and is released by COMMIT, ROLLBACK or a dropped connection.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": load.target})

    def copy_into(self, conn, table, columns, staged, store) -> None:
        cols = ", ".join(q(c.name) for c in columns)
        sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '{NULL}')"
        cursor = conn.connection.dbapi_connection.cursor()
        with store.open_read(staged.key) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            cursor.copy_expert(sql, io.BufferedReader(gz, 1 << 20), size=1 << 20)


class RedshiftDialect(PostgresDialect):
    """Redshift: COPY reads the staged object from S3 itself; lengths are bytes, not characters."""

    name = "redshift"

    # A VARCHAR holds at most this many bytes; COPY would fail on a longer value without naming
    # its row, and TRUNCATECOLUMNS would cut it silently.
    MAX_VARCHAR_BYTES = 65535
    widen_in_transaction = False

    def __init__(self, iam_role: str | None):
        self.iam_role = iam_role

    def lock_target(self, conn: Connection, load: TableLoad) -> None:
        # No advisory locks here. LOCK (always ACCESS EXCLUSIVE) queues a second load instead of
        # letting serializable isolation abort it; readers wait only for this transaction.
        if self.existing_columns(conn, load.target_schema, load.target_table) is not None:
            conn.execute(sa.text(f"LOCK {qualified(load.target_schema, load.target_table)}"))

    def check_staged(self, load: TableLoad, store: StagingStore) -> None:
        """Scan staged files for strings over 65,535 bytes, only if a column could hold one."""
        wide = {c.name for c in load.columns
                if self.ddl_type(c.type) == f"VARCHAR({self.MAX_VARCHAR_BYTES})"}
        if not wide:
            return
        for staged in load.staged:
            with store.open_read(staged.key) as raw:
                found = first_oversized(raw, load.columns, wide, load.primary_key,
                                        self.MAX_VARCHAR_BYTES)
            if found:
                column, size, key = found
                raise DataError(
                    f"{staged.manifest.source}.{column}: a value of {size:,} bytes (row {key}) is "
                    f"longer than Redshift's VARCHAR limit of {self.MAX_VARCHAR_BYTES:,} bytes; "
                    f"nothing was loaded into {load.target}. Shorten the value in the source."
                )

    def ddl_type(self, portable: str) -> str:
        if portable == "TEXT":
            return "VARCHAR(65535)"
        if portable.startswith("VARCHAR("):
            chars = int(portable[8:-1])
            return f"VARCHAR({min(chars * 4, 65535)})"  # a UTF-8 character takes up to 4 bytes
        if portable == "TIME":
            return "TIME"
        return portable

    def create_stage_sql(self, stage: str, columns: tuple[Column, ...]) -> str:
        cols = ", ".join(f"{q(c.name)} {self.ddl_type(c.type)}" for c in columns)
        return f"CREATE TEMP TABLE {q(stage)} ({cols})"

    def copy_sql(self, table: str, columns: tuple[Column, ...], uri: str) -> tuple[str, dict]:
        """COPY into table (a quoted name) with an explicit NULL marker; MAXERROR 0 so one bad
        row fails the whole load."""
        if not self.iam_role:
            raise LoadError("REDSHIFT_IAM_ROLE is not set: Redshift's COPY needs a role to read S3")
        if not uri.startswith("s3://"):
            raise LoadError(f"Redshift loads from S3 only; staged object is {uri}")
        cols = ", ".join(q(c.name) for c in columns)
        sql = (
            f"COPY {table} ({cols}) FROM %(uri)s IAM_ROLE %(role)s "
            f"FORMAT AS CSV NULL AS '\\\\N' GZIP TIMEFORMAT 'auto' DATEFORMAT 'auto' "
            f"COMPUPDATE OFF STATUPDATE OFF MAXERROR 0"
        )
        return sql, {"uri": uri, "role": self.iam_role}

    def copy_into(self, conn, table, columns, staged, store) -> None:
        sql, params = self.copy_sql(table, columns, staged.uri)
        conn.connection.dbapi_connection.cursor().execute(sql, params)


class DuckDBDialect(Dialect):
    name = "duckdb"

    def ddl_type(self, portable: str) -> str:
        return "DOUBLE" if portable == "DOUBLE PRECISION" else portable

    def copy_into(self, conn, table, columns, staged, store) -> None:
        cols = ", ".join(q(c.name) for c in columns)
        spec = ", ".join(f"'{check_identifier(c.name, 'column')}': '{self.ddl_type(c.type)}'"
                         for c in columns)
        with store.local_path(staged.key) as path:
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} ({cols}) SELECT * FROM read_csv(:path, columns={{{spec}}}, "
                    f"header=false, delim=',', quote='\"', escape='\"', nullstr='\\N', "
                    f"allow_quoted_nulls=false, compression='gzip', auto_detect=false, "
                    f"strict_mode=true, max_line_size=134217728)"
                ),
                {"path": str(path)},
            )


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

    def begin(self):
        """A transaction; on DuckDB, waits while another process holds the file's write lock."""
        deadline = time.monotonic() + self.lock_timeout_seconds
        while True:
            try:
                return self.engine.begin()
            except sa.exc.OperationalError as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

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
            check_identifier(c.name, f"{load.target}: source column")
        d.check_staged(load, store)
        try:
            with self.begin() as conn:
                d.lock_target(conn, load)
                conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {q(load.target_schema)}"))
                result.created, result.columns_added = self._prepare_target(conn, d, load)
                target = qualified(load.target_schema, load.target_table)
                before = conn.execute(sa.text(f"SELECT COUNT(*) FROM {target}")).scalar_one()
                if self._direct(load, before):
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
            if _is_string(old) and _is_string(new) and d.widen_in_transaction:
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

    def _direct(self, load: TableLoad, target_rows: int) -> bool:
        """COPY straight into the target when the old rows all go anyway: a full refresh, or a
        first load of rows that are unique per key. Redshift keeps its staged path."""
        if isinstance(self.dialect, RedshiftDialect):
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
