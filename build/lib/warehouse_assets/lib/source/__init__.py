"""The MySQL source (SQLite in the embedded default): reflect tables, stream a window of rows."""

from warehouse_assets.lib.source.database import Extract, SourceDatabase, SourceError, Window
from warehouse_assets.lib.source.types import FAST_TYPES, portable_type

__all__ = ["FAST_TYPES", "Extract", "SourceDatabase", "SourceError", "Window", "portable_type"]
