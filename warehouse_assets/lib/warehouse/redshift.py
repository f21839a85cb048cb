"""Redshift (production): COPY reads the staged objects from S3 itself; lengths are bytes."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse_assets.lib.staged import Column, DataError, first_oversized
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.lib.warehouse.base import LoadError, TableLoad, q, qualified
from warehouse_assets.lib.warehouse.postgres import PostgresDialect


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
