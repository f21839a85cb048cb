"""DuckDB (the embedded default): read_csv of the staged file."""

from __future__ import annotations

import sqlalchemy as sa

from warehouse_assets.lib.warehouse.base import Dialect, q


class DuckDBDialect(Dialect):
    name = "duckdb"

    max_identifier_bytes = 127

    def ddl_type(self, portable: str) -> str:
        if portable.startswith("BYTES") or portable == "GEOMETRY":
            return "BLOB"  # a geometry as its EWKB (the spatial extension reads it)
        return "DOUBLE" if portable == "DOUBLE PRECISION" else portable

    def copy_part(self, conn, table, columns, key, store) -> None:
        cols = ", ".join(q(c.name) for c in columns)
        binary = {c.name for c in columns if self.ddl_type(c.type) == "BLOB"}
        spec = ", ".join(
            "'" + c.name.replace("'", "''") + "': '"
            + ("VARCHAR" if c.name in binary else self.ddl_type(c.type)) + "'"
            for c in columns)
        select = ", ".join(f"unhex({q(c.name)})" if c.name in binary else q(c.name)
                           for c in columns)
        with store.local_path(key) as path:
            conn.execute(
                sa.text(
                    f"INSERT INTO {table} ({cols}) SELECT {select} FROM read_csv(:path, columns={{{spec}}}, "
                    f"header=false, delim=',', quote='\"', escape='\"', nullstr='\\N', "
                    f"allow_quoted_nulls=false, compression='gzip', auto_detect=false, "
                    f"strict_mode=true, max_line_size=134217728)"
                ),
                {"path": str(path)},
            )
