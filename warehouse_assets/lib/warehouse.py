"""The warehouse: Redshift in production, PostgreSQL in tests, DuckDB embedded.

Every load runs in one transaction: stage the file into a temporary table, then replace or merge.
Readers see the table as it was before or as it is after, never in between, and any failure rolls
back to exactly the rows that were there.
"""

from __future__ import annotations

import gzip
import io
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from warehouse_assets.config import check_identifier
from warehouse_assets.lib.staged import NULL, Column, DataError, StagedFile
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
        rows = conn.execute(
            sa.text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
            ),
            {"s": schema, "t": table},
        ).all()
        return {r[0]: str(r[1]).upper() for r in rows} or None

    def copy_into(self, conn: Connection, stage: str, columns: tuple[Column, ...],
                  staged: StagedFile, store: StagingStore) -> None:
        raise NotImplementedError

    def merge_sql(self, load: TableLoad, stage: str) -> list[str]:
        """Upsert: latest row per key wins; soft-deleted keys leave; an older version never wins."""
        target = qualified(load.target_schema, load.target_table)
        cols = ", ".join(q(c.name) for c in load.columns)
        keys = ", ".join(q(k) for k in load.primary_key)
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in load.primary_key)
        order = f"{q(load.cursor)} DESC" if load.cursor else keys
        latest = q(f"{stage}_latest")
        stmts = [
            f"CREATE TEMPORARY TABLE {latest} AS SELECT {cols} FROM ("
            f"SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY {order}) AS rn__ "
            f"FROM {q(stage)}) ranked WHERE rn__ = 1",
        ]
        newer = f" AND t.{q(load.cursor)} > s.{q(load.cursor)}" if load.cursor else ""
        older = f" AND t.{q(load.cursor)} <= s.{q(load.cursor)}" if load.cursor else ""
        using_on = " AND ".join(f"{target}.{q(k)} = s.{q(k)}" for k in load.primary_key)
        older_using = older.replace("t.", f"{target}.") if older else ""
        stmts.append(f"DELETE FROM {target} USING {latest} s WHERE {using_on}{older_using}")
        keep = ""
        if load.soft_delete:
            flag = next(c for c in load.columns if c.name == load.soft_delete)
            col = f"s.{q(load.soft_delete)}"
            keep = (
                f" AND {col} IS NOT TRUE" if flag.type == "BOOLEAN" else f" AND COALESCE({col}, 0) = 0"
            )
        stmts.append(
            f"INSERT INTO {target} ({cols}) SELECT {', '.join('s.' + q(c.name) for c in load.columns)}"
            f" FROM {latest} s WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {on}{newer}){keep}"
        )
        return stmts

    def replace_sql(self, load: TableLoad, stage: str) -> list[str]:
        """Full refresh: delete and insert in one transaction (the seed's REPLACE, made atomic)."""
        target = qualified(load.target_schema, load.target_table)
        cols = ", ".join(q(c.name) for c in load.columns)
        return [f"DELETE FROM {target}", f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {q(stage)}"]


class PostgresDialect(Dialect):
    name = "postgresql"

    def copy_into(self, conn, stage, columns, staged, store) -> None:
        cols = ", ".join(q(c.name) for c in columns)
        sql = f"COPY {q(stage)} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '{NULL}')"
        cursor = conn.connection.dbapi_connection.cursor()
        with store.open_read(staged.key) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            cursor.copy_expert(sql, io.BufferedReader(gz, 1 << 20), size=1 << 20)


class RedshiftDialect(PostgresDialect):
    """Redshift: COPY reads the staged object from S3 itself; lengths are bytes, not characters."""

    name = "redshift"

    def __init__(self, iam_role: str | None):
        self.iam_role = iam_role

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

    def copy_sql(self, stage: str, columns: tuple[Column, ...], uri: str) -> tuple[str, dict]:
        """COPY with an explicit NULL marker; MAXERROR 0 so one bad row fails the whole load."""
        if not self.iam_role:
            raise LoadError("REDSHIFT_IAM_ROLE is not set: Redshift's COPY needs a role to read S3")
        if not uri.startswith("s3://"):
            raise LoadError(f"Redshift loads from S3 only; staged object is {uri}")
        cols = ", ".join(q(c.name) for c in columns)
        sql = (
            f"COPY {q(stage)} ({cols}) FROM %(uri)s IAM_ROLE %(role)s "
            f"FORMAT AS CSV NULL AS '\\\\N' GZIP TIMEFORMAT 'auto' DATEFORMAT 'auto' "
            f"COMPUPDATE OFF STATUPDATE OFF MAXERROR 0"
        )
        return sql, {"uri": uri, "role": self.iam_role}

    def copy_into(self, conn, stage, columns, staged, store) -> None:
        sql, params = self.copy_sql(stage, columns, staged.uri)
        conn.connection.dbapi_connection.cursor().execute(sql, params)


class DuckDBDialect(Dialect):
    name = "duckdb"

    def ddl_type(self, portable: str) -> str:
        return "DOUBLE" if portable == "DOUBLE PRECISION" else portable

    def copy_into(self, conn, stage, columns, staged, store) -> None:
        spec = ", ".join(f"'{c.name}': '{self.ddl_type(c.type)}'" for c in columns)
        with store.local_path(staged.key) as path:
            conn.execute(
                sa.text(
                    f"INSERT INTO {q(stage)} SELECT * FROM read_csv(:path, columns={{{spec}}}, "
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

    url: str
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
        try:
            with self.begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {q(load.target_schema)}"))
                result.created, result.columns_added = self._prepare_target(conn, d, load)
                conn.execute(sa.text(d.create_stage_sql(stage, load.columns)))
                for staged in load.staged:
                    d.copy_into(conn, stage, load.columns, staged, store)
                self._check_keys(conn, load, stage)
                target = qualified(load.target_schema, load.target_table)
                before = conn.execute(sa.text(f"SELECT COUNT(*) FROM {target}")).scalar_one()
                stmts = d.replace_sql(load, stage) if load.mode == "replace" else d.merge_sql(
                    load, stage)
                counts = [conn.execute(sa.text(s)).rowcount for s in stmts]
                result.rows_written = max(counts[-1], 0)
                result.target_rows = conn.execute(sa.text(f"SELECT COUNT(*) FROM {target}")).scalar_one()
                result.rows_deleted = max(before + result.rows_written - result.target_rows, 0)
                for tmp in (stage, f"{stage}_latest"):
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {q(tmp)}"))
        except sa.exc.DBAPIError as exc:
            reason = str(exc.orig).strip() if exc.orig else str(exc)
            raise LoadError(f"loading {load.target} failed, nothing was changed: {reason}") from None
        result.seconds = time.monotonic() - started
        return result

    def _prepare_target(self, conn: Connection, d: Dialect, load: TableLoad) -> tuple[bool, list[str]]:
        """Create a missing target from the source's types; add new source columns."""
        existing = d.existing_columns(conn, load.target_schema, load.target_table)
        if existing is None:
            conn.execute(sa.text(d.create_table_sql(
                load.target_schema, load.target_table, load.columns, load.primary_key)))
            return True, []
        staged = [c.name for c in load.columns]
        dropped = [c for c in existing if c not in staged]
        if dropped:
            raise SchemaDriftError(
                f"{load.target}: column(s) {', '.join(dropped)} exist in the warehouse but no longer "
                f"in the source. Nothing was loaded. Drop them from {load.target} (or restore them "
                f"in the source) and run again."
            )
        added = [c for c in load.columns if c.name not in existing]
        for c in added:
            conn.execute(sa.text(
                f"ALTER TABLE {qualified(load.target_schema, load.target_table)} "
                f"ADD COLUMN {q(c.name)} {d.ddl_type(c.type)}"
            ))
        return False, [c.name for c in added]

    def _check_keys(self, conn: Connection, load: TableLoad, stage: str) -> None:
        for key in load.primary_key:
            n = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {q(stage)} WHERE {q(key)} IS NULL")
            ).scalar_one()
            if n:
                raise DataError(
                    f"{load.target}.{key}: {n} staged row(s) have NULL in primary key column "
                    f"{key!r}; nothing was loaded"
                )
