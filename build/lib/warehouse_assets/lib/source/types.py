"""Source column types: what each reflected MySQL type is staged as (see lib.staged.PORTABLE), the
SELECT expression that reads it (the same for both readers, so both write the same text), and
which of them the fast reader covers."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.mysql import base as mysql_base

from warehouse_assets.lib.staged import DataError


class Geometry(sa.types.UserDefinedType):
    """MySQL's spatial types, which SQLAlchemy does not reflect (it would say NullType)."""

    cache_ok = True

    def get_col_spec(self, **_kw) -> str:
        return "GEOMETRY"


class _Text(sa.String):
    """MariaDB's INET4, INET6 (and UUID in SQLAlchemy's own UUID): read as their text."""

    def __init__(self, length: int):
        super().__init__(length)


for _name in ("geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
              "multipolygon", "geometrycollection", "geomcollection"):
    mysql_base.ischema_names.setdefault(_name, Geometry)
mysql_base.ischema_names.setdefault("inet4", lambda *a, **k: _Text(15))
mysql_base.ischema_names.setdefault("inet6", lambda *a, **k: _Text(39))

# Portable types the fast path writes exactly as the fallback does (TIME and BOOLEAN use pymysql:
# connectorx fails on TIME outside 00:00-24:00, and MySQL has no BOOLEAN to read fast).
FAST_TYPES = re.compile(r"^(SMALLINT|INTEGER|BIGINT|REAL|DOUBLE PRECISION|DATE|TIMESTAMP|TEXT|"
                        r"VARCHAR\(\d+\)|NUMERIC\(\d+,\d+\)|BYTES(\(\d+\))?|GEOMETRY)$")

# Byte lengths of MySQL's BLOB family (VARBINARY(n) and BINARY(n) carry their own).
_BLOB_BYTES = {mysql.TINYBLOB: 255, sa.BLOB: 65_535, mysql.MEDIUMBLOB: 16_777_215}


def portable_type(table: str, column: sa.Column) -> str:
    """The portable type of a reflected source column (see lib.staged.PORTABLE)."""
    t = column.type
    unsigned = getattr(t, "unsigned", False)
    if isinstance(t, mysql.YEAR):
        return "SMALLINT"
    if isinstance(t, mysql.BIT):
        bits = t.length or 1
        return "NUMERIC(20,0)" if bits == 64 else "BIGINT"
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
    if isinstance(t, Geometry):
        return "GEOMETRY"
    if isinstance(t, sa.LargeBinary | sa.types._Binary):
        length = getattr(t, "length", None) or _BLOB_BYTES.get(type(t))
        return f"BYTES({length})" if length else "BYTES"
    if isinstance(t, mysql.SET):  # sized in bytes, as Redshift's VARCHAR(n) counts
        labels = [len(v.encode()) for v in t.values if v]
        return f"VARCHAR({max(sum(labels) + len(labels) - 1, 1)})"
    if isinstance(t, mysql.ENUM):
        return f"VARCHAR({max((len(v.encode()) for v in t.enums), default=1) or 1})"
    if isinstance(t, sa.JSON):
        return "TEXT"
    if isinstance(t, sa.Uuid):
        return "VARCHAR(36)"
    if isinstance(t, sa.String) and not isinstance(t, sa.Text) and t.length:
        return f"VARCHAR({t.length})"
    if isinstance(t, sa.String):
        return "TEXT"
    raise DataError(f"{table}.{column.name}: source type {t} is not supported for replication")


def select_expression(column: sa.Column, portable: str) -> sa.ColumnElement:
    """How both readers read a column: binary and geometry as hex text (geometry as EWKB, see
    ewkb_hex), BIT as its unsigned value, SET/ENUM/JSON/UUID as the server writes their text."""
    if portable == "GEOMETRY":
        return ewkb_hex(column).label(column.name)
    if portable.startswith("BYTES"):
        return sa.func.hex(column, type_=sa.String).label(column.name)
    if isinstance(column.type, mysql.BIT):
        return sa.cast(column, mysql.INTEGER(unsigned=True)).label(column.name)
    if isinstance(column.type, mysql.YEAR):
        return sa.cast(column, sa.Integer).label(column.name)
    if isinstance(column.type, mysql.SET | mysql.ENUM | sa.JSON | sa.Uuid):
        return sa.cast(column, sa.CHAR).label(column.name)
    if isinstance(column.type, sa.Time):
        # SQLAlchemy's MySQL TIME turns the driver's timedelta into a time of day, silently
        # wrapping values outside 00:00..24:00 (838:59:59 became 22:59:59): take the timedelta.
        return sa.type_coerce(column, sa.types.NullType()).label(column.name)
    if isinstance(column.type, sa.Float):
        # MySQL DOUBLE reflects as asdecimal=True, whose conversion rounds to 10 digits: take the
        # driver's float as it is.
        return sa.type_coerce(column, sa.Double(asdecimal=False)).label(column.name)
    return column


def ewkb_hex(column: sa.Column) -> sa.ColumnElement:
    """MySQL stores a geometry as its SRID (4 bytes, little-endian) followed by little-endian WKB.
    EWKB is the WKB with the SRID flag (0x20000000) set in its type and the SRID after it: what
    Redshift's and PostGIS's COPY read, and what keeps the SRID when the warehouse holds bytes.
    In hex: byte order (2), type's low 3 bytes (6), '20', SRID (8), the rest of the WKB."""
    h = sa.func.hex(column, type_=sa.String)
    return sa.func.concat(sa.func.substr(h, 9, 8), "20", sa.func.substr(h, 1, 8),
                          sa.func.substr(h, 19), type_=sa.String)
