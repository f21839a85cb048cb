"""Source column types: what each reflected MySQL type is staged as (see lib.staged.PORTABLE),
and which of them the fast reader writes exactly as the fallback does."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from warehouse_assets.lib.staged import DataError

# Portable types the fast path writes exactly as the fallback does (TIME and BOOLEAN use pymysql:
# connectorx fails on TIME outside 00:00-24:00, and MySQL has no BOOLEAN to read fast).
FAST_TYPES = re.compile(r"^(SMALLINT|INTEGER|BIGINT|REAL|DOUBLE PRECISION|DATE|TIMESTAMP|TEXT|"
                        r"VARCHAR\(\d+\)|NUMERIC\(\d+,\d+\))$")


def portable_type(table: str, column: sa.Column) -> str:
    """The portable type of a reflected source column (see lib.staged.PORTABLE)."""
    t = column.type
    unsigned = getattr(t, "unsigned", False)
    if isinstance(t, mysql.TINYINT | mysql.SMALLINT | sa.SmallInteger):
        return "INTEGER" if unsigned and isinstance(t, mysql.SMALLINT) else "SMALLINT"
    if isinstance(t, mysql.MEDIUMINT):
        return "INTEGER"
    if isinstance(t, sa.BigInteger):
        return "NUMERIC(20,0)" if unsigned else "BIGINT"
    if isinstance(t, sa.Integer):
        return "BIGINT" if unsigned else "INTEGER"
    if isinstance(t, sa.Boolean):
        return "BOOLEAN"
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        precision, scale = t.precision or 38, t.scale or 0
        return f"NUMERIC({precision},{scale})"
    if isinstance(t, sa.Float | sa.Double):
        return "REAL" if isinstance(t, mysql.FLOAT) else "DOUBLE PRECISION"
    if isinstance(t, sa.DateTime):
        return "TIMESTAMP"
    if isinstance(t, sa.Date):
        return "DATE"
    if isinstance(t, sa.Time):
        return "TIME"
    if isinstance(t, mysql.ENUM | mysql.SET | sa.JSON):
        return "TEXT"
    if isinstance(t, sa.String) and not isinstance(t, sa.Text) and t.length:
        return f"VARCHAR({t.length})"
    if isinstance(t, sa.String):
        return "TEXT"
    raise DataError(f"{table}.{column.name}: source type {t} is not supported for replication")
