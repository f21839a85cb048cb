"""Shared by every warehouse dialect: what a load is, identifier quoting, column types and the
merge SQL that PostgreSQL, Redshift and DuckDB all run."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse_assets.config import check_column
from warehouse_assets.lib.staged import Column, StagedFile
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
    delete_missing: bool = False  # merge: drop target rows of the staged windows not staged

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


def _utc_literal(iso: str) -> str:
    """A window bound (ISO 8601, with its zone) as a naive UTC timestamp literal."""
    t = dt.datetime.fromisoformat(iso)
    t = t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo else t
    return f"TIMESTAMP '{t.isoformat(sep=' ')}'"


def q(name: str) -> str:
    """Quote an identifier: reserved words, mixed case and spaces arrive as they are named."""
    return '"' + check_column(name, "identifier").replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{q(schema)}.{q(table)}"


_ALIASES = {"INT": "INTEGER", "INT2": "SMALLINT", "INT4": "INTEGER", "INT8": "BIGINT",
            "BOOL": "BOOLEAN", "FLOAT": "REAL", "FLOAT4": "REAL", "DOUBLE": "DOUBLE PRECISION",
            "FLOAT8": "DOUBLE PRECISION", "DECIMAL": "NUMERIC", "CHARACTER VARYING": "VARCHAR",
            "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP", "TIME WITHOUT TIME ZONE": "TIME",
            "BINARY VARYING": "VARBYTE", "VARBINARY": "VARBYTE"}
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
    if target.startswith("VARBYTE(") and staged.startswith("VARBYTE("):
        return int(target[8:-1]) >= int(staged[8:-1])
    return is_string(target) and is_string(staged) and _length(target) >= _length(staged)


def is_string(t: str) -> bool:
    return t == "TEXT" or t.startswith("VARCHAR(")


def _length(t: str) -> float:
    return float("inf") if t == "TEXT" else int(t[8:-1])


class Dialect:
    """SQL that differs between warehouses; the merge itself is shared."""

    name = "ansi"
    # The longest identifier the warehouse keeps, in bytes (PostgreSQL would cut a longer one).
    max_identifier_bytes = 63

    def ddl_type(self, portable: str) -> str:
        return portable

    def stage_type(self, portable: str) -> str:
        """The type COPY writes into the stage table (see after_copy)."""
        return self.ddl_type(portable)

    def prepare(self, conn: Connection) -> None:
        """Learn what the warehouse offers (PostgreSQL: whether PostGIS is installed)."""

    def after_copy(self, conn: Connection, stage: str, columns: tuple[Column, ...]) -> None:
        """Turn stage columns COPY could not write directly into their target types."""

    def converts(self, columns: tuple[Column, ...]) -> bool:
        """Whether after_copy has work: then a load always goes through the stage table."""
        return any(self.stage_type(c.type) != self.ddl_type(c.type) for c in columns)

    def create_table_sql(self, schema: str, table: str, columns: tuple[Column, ...],
                         primary_key: tuple[str, ...]) -> str:
        cols = ",\n  ".join(f"{q(c.name)} {self.ddl_type(c.type)}" for c in columns)
        pk = f",\n  PRIMARY KEY ({', '.join(q(k) for k in primary_key)})" if primary_key else ""
        return f"CREATE TABLE {qualified(schema, table)} (\n  {cols}{pk}\n)"

    def create_stage_sql(self, stage: str, columns: tuple[Column, ...]) -> str:
        cols = ", ".join(f"{q(c.name)} {self.stage_type(c.type)}" for c in columns)
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
        """Bulk-load a staged window into table (a quoted name) inside the open transaction:
        its parts in order, so the window is visible whole at COMMIT or not at all."""
        for key in staged.parts:
            self.copy_part(conn, table, columns, key, store)

    def copy_part(self, conn: Connection, table: str, columns: tuple[Column, ...], key: str,
                  store: StagingStore) -> None:
        """Bulk-load one staged part (a gzip CSV of whole rows)."""
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
        if load.delete_missing and load.cursor:
            # Keys of the loaded windows that the source no longer has (hard deletes), in the
            # load's transaction. Bounds are UTC timestamps written by this code, not input.
            missing = f"NOT EXISTS (SELECT 1 FROM {q(stage)} s WHERE {using_on})"
            for w in {s.manifest.window for s in load.staged if s.manifest.window}:
                start, end = (_utc_literal(b) for b in w)
                stmts.insert(0, f"DELETE FROM {target} WHERE {q(load.cursor)} >= {start} AND "
                                f"{q(load.cursor)} < {end} AND {missing}")
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
        keep = f" WHERE NOT ({self.soft_deleted(load)})" if load.soft_delete else ""
        return [f"DELETE FROM {target}",
                f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {q(stage)}{keep}"]


