"""PostgreSQL (the services environment's stand-in for Redshift): COPY FROM STDIN streamed from
the staging store."""

from __future__ import annotations

import gzip
import io

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse_assets.lib.staged import NULL
from warehouse_assets.lib.warehouse.base import Dialect, TableLoad, q


class PostgresDialect(Dialect):
    name = "postgresql"
    postgis = False  # learnt per load by prepare()

    def prepare(self, conn: Connection) -> None:
        self.postgis = conn.execute(
            sa.text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).first() is not None

    def ddl_type(self, portable: str) -> str:
        if portable == "GEOMETRY":
            return "geometry" if self.postgis else "BYTEA"  # BYTEA holds the EWKB
        return "BYTEA" if portable.startswith("BYTES") else portable

    def stage_type(self, portable: str) -> str:
        # COPY reads BYTEA only as \x-prefixed hex: the staged hex lands as text, then converts.
        return "TEXT" if portable.startswith("BYTES") or portable == "GEOMETRY" else portable

    def after_copy(self, conn: Connection, stage: str, columns) -> None:
        changes = [
            f"ALTER COLUMN {q(c.name)} TYPE {self.ddl_type(c.type)} USING "
            + (f"{q(c.name)}::geometry" if self.ddl_type(c.type) == "geometry"
               else f"decode({q(c.name)}, 'hex')")
            for c in columns if self.stage_type(c.type) != self.ddl_type(c.type)
        ]
        if changes:  # one rewrite of the stage table, whatever the number of columns
            conn.execute(sa.text(f"ALTER TABLE {stage} " + ", ".join(changes)))

    def existing_columns(self, conn: Connection, schema: str, table: str) -> dict[str, str] | None:
        columns = super().existing_columns(conn, schema, table)
        if columns and "USER-DEFINED" in columns.values():  # PostGIS geometry: name its type
            rows = conn.execute(sa.text(
                "SELECT column_name, udt_name FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :t AND data_type = 'USER-DEFINED'"),
                {"s": schema, "t": table}).all()
            columns.update({name: udt.upper() for name, udt in rows})
        return columns

    def lock_target(self, conn: Connection, load: TableLoad) -> None:
        # Two loads of one table at once would each delete only the rows they saw and both insert
        # (or both CREATE it). A transaction-scoped advisory lock on the table's name, rather
        # than LOCK TABLE, also covers a target that does not exist yet, never blocks readers,
        # and is released by COMMIT, ROLLBACK or a dropped connection.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:t))"), {"t": load.target})

    def copy_part(self, conn, table, columns, key, store) -> None:
        cols = ", ".join(q(c.name) for c in columns)
        sql = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv, NULL '{NULL}')"
        cursor = conn.connection.dbapi_connection.cursor()
        with store.open_read(key) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            cursor.copy_expert(sql, io.BufferedReader(gz, 1 << 20), size=1 << 20)
