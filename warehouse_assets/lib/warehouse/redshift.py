"""Redshift (production): COPY reads the staged objects from S3 itself; lengths are bytes."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from warehouse_assets.lib.staged import Column, DataError, StagedFile, first_oversized
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.lib.warehouse.base import LoadError, TableLoad, q, qualified
from warehouse_assets.lib.warehouse.postgres import PostgresDialect


class RedshiftDialect(PostgresDialect):
    """Redshift: COPY reads the staged object from S3 itself; lengths are bytes, not characters."""

    name = "redshift"

    # A VARCHAR holds at most this many bytes; COPY would fail on a longer value without naming
    # its row, and TRUNCATECOLUMNS would cut it silently.
    MAX_VARCHAR_BYTES = 65535
    MAX_VARBYTE_BYTES = 16_777_216
    MAX_GEOMETRY_BYTES = 1_048_447
    # COPY refuses an input row over 4 MB, naming no row: checked before, with the row's key.
    MAX_ROW_BYTES = 4 * 1024 * 1024
    widen_in_transaction = False
    max_identifier_bytes = 127

    def __init__(self, iam_role: str | None):
        self.iam_role = iam_role

    def lock_target(self, conn: Connection, load: TableLoad) -> None:
        # No advisory locks here. LOCK (always ACCESS EXCLUSIVE) queues a second load instead of
        # letting serializable isolation abort it; readers wait only for this transaction.
        if self.existing_columns(conn, load.target_schema, load.target_table) is not None:
            conn.execute(sa.text(f"LOCK {qualified(load.target_schema, load.target_table)}"))

    def prepare(self, conn: Connection) -> None:
        pass  # GEOMETRY is built in

    def stage_type(self, portable: str) -> str:
        return self.ddl_type(portable)  # COPY reads hex into VARBYTE and hex EWKB into GEOMETRY

    def limits(self, columns: tuple[Column, ...]) -> dict[str, tuple[int, str]]:
        """Per column that could hold a value too big for Redshift: (bytes, what it is)."""
        out = {}
        for c in columns:
            ddl = self.ddl_type(c.type)
            if ddl == f"VARCHAR({self.MAX_VARCHAR_BYTES})":
                out[c.name] = (self.MAX_VARCHAR_BYTES, f"VARCHAR limit of {self.MAX_VARCHAR_BYTES:,} bytes")
            elif ddl == f"VARBYTE({self.MAX_VARBYTE_BYTES})":  # LONGBLOB holds more
                out[c.name] = (self.MAX_VARBYTE_BYTES, f"VARBYTE limit of {self.MAX_VARBYTE_BYTES:,} bytes")
            elif ddl == "GEOMETRY":
                out[c.name] = (self.MAX_GEOMETRY_BYTES, f"GEOMETRY limit of {self.MAX_GEOMETRY_BYTES:,} bytes")
        return out

    def check_staged(self, load: TableLoad, store: StagingStore) -> None:
        """Scan staged files for values over Redshift's limits, only if a column could hold one."""
        limits = self.limits(load.columns)
        wide = any(c.type == "TEXT" or c.type.startswith(("BYTES", "GEOMETRY"))
                   for c in load.columns)
        if not limits and not wide:
            return
        for staged, key in ((s, k) for s in load.staged for k in s.parts):
            with store.open_read(key) as raw:
                found = first_oversized(raw, load.columns, limits, load.primary_key,
                                        self.MAX_ROW_BYTES if wide else None)
            if found:
                column, size, key, what = found
                where = f"{staged.manifest.source}.{column}" if column else staged.manifest.source
                raise DataError(
                    f"{where}: {'a value' if column else 'a row'} of {size:,} bytes "
                    f"(row {key or 'without a key'}) is longer "
                    f"than Redshift's {what}; nothing was loaded into {load.target}. Shorten the "
                    f"value in the source, or leave the column out (exclude_columns)."
                )

    def ddl_type(self, portable: str) -> str:
        if portable == "TEXT":
            return "VARCHAR(65535)"
        if portable.startswith("VARCHAR("):
            chars = int(portable[8:-1])
            return f"VARCHAR({min(chars * 4, 65535)})"  # a UTF-8 character takes up to 4 bytes
        if portable.startswith("BYTES"):
            n = int(portable[6:-1]) if portable != "BYTES" else self.MAX_VARBYTE_BYTES
            return f"VARBYTE({min(n, self.MAX_VARBYTE_BYTES)})"
        return portable  # GEOMETRY, TIME and the rest are Redshift's own names

    def create_stage_sql(self, stage: str, columns: tuple[Column, ...]) -> str:
        cols = ", ".join(f"{q(c.name)} {self.stage_type(c.type)}" for c in columns)
        return f"CREATE TEMP TABLE {q(stage)} ({cols})"

    def copy_sql(self, table: str, columns: tuple[Column, ...], manifest_uri: str
                 ) -> tuple[str, dict]:
        """One COPY of every part a COPY manifest lists into table (a quoted name), with an
        explicit NULL marker; MAXERROR 0 so one bad row fails the whole load."""
        if not self.iam_role:
            raise LoadError("REDSHIFT_IAM_ROLE is not set: Redshift's COPY needs a role to read S3")
        if not manifest_uri.startswith("s3://"):
            raise LoadError(f"Redshift loads from S3 only; staged object is {manifest_uri}")
        cols = ", ".join(q(c.name) for c in columns)
        sql = (
            f"COPY {table} ({cols}) FROM %(uri)s IAM_ROLE %(role)s MANIFEST "
            f"FORMAT AS CSV NULL AS '\\\\N' GZIP TIMEFORMAT 'auto' DATEFORMAT 'auto' "
            f"COMPUPDATE OFF STATUPDATE OFF MAXERROR 0"
        )
        return sql, {"uri": manifest_uri, "role": self.iam_role}

    @staticmethod
    def copy_manifest(staged: StagedFile, store: StagingStore) -> tuple[str, str]:
        """The COPY manifest of a staged window: (its staging key, its JSON). Every part is
        mandatory, so a part missing in S3 fails the COPY rather than loading the rest."""
        key = staged.key.removesuffix(".csv.gz") + ".copy-manifest.json"
        entries = [{"url": store.uri(k), "mandatory": True} for k in staged.parts]
        return key, json.dumps({"entries": entries}, indent=1)

    def copy_into(self, conn, table, columns, staged, store) -> None:
        # Redshift spreads the parts over its slices: one COPY for the window, in the load's
        # transaction. The manifest is derived from the window's own, so rewriting it is
        # idempotent.
        key, body = self.copy_manifest(staged, store)
        store.write_bytes(key, body.encode())
        sql, params = self.copy_sql(table, columns, store.uri(key))
        conn.connection.dbapi_connection.cursor().execute(sql, params)
