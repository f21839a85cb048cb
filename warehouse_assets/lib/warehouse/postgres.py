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
