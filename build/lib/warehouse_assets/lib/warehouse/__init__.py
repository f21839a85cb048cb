"""The warehouse: Redshift in production, PostgreSQL in tests, DuckDB embedded.

Every load runs in one transaction: stage the file into a temporary table, then replace or merge.
Readers see the table as it was before or as it is after, never in between, and any failure rolls
back to exactly the rows that were there.
"""

from warehouse_assets.lib.warehouse.base import (
    Dialect,
    LoadError,
    LoadResult,
    SchemaDriftError,
    TableLoad,
    canonical,
    holds,
    q,
    qualified,
)
from warehouse_assets.lib.warehouse.duckdb import DuckDBDialect
from warehouse_assets.lib.warehouse.postgres import PostgresDialect
from warehouse_assets.lib.warehouse.redshift import RedshiftDialect
from warehouse_assets.lib.warehouse.resource import Warehouse

__all__ = [
    "Dialect",
    "DuckDBDialect",
    "LoadError",
    "LoadResult",
    "PostgresDialect",
    "RedshiftDialect",
    "SchemaDriftError",
    "TableLoad",
    "Warehouse",
    "canonical",
    "holds",
    "q",
    "qualified",
]
