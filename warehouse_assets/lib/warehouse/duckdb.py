"""DuckDB (the embedded default): read_csv of the staged file."""

from __future__ import annotations

import sqlalchemy as sa

from warehouse_assets.config import check_identifier
from warehouse_assets.lib.warehouse.base import Dialect, q


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
