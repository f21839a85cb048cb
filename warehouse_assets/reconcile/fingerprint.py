"""Row fingerprints every database computes alike: integer sums for rows of integers, dates and
timestamps, else 60 bits of the MD5 of a row's canonical text, summed over a window. Count and both sums equal on the source and
in the warehouse means the same rows, in any order; each side aggregates in its own SQL.

Canonical text: integers and decimals as the database writes them (same scale on both sides),
TIMESTAMP as microseconds since 1970, DATE as days since 1970, text as UTF-8. Values are joined
by chr(31), NULL is chr(30): no replicated text holds either (NUL-free text is checked, these
are control characters a source practically never stores). Floats, binary, geometry, JSON, TIME
and booleans are not compared (their text differs between engines); the metadata lists them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence

from warehouse_assets.lib.staged import Column
from warehouse_assets.lib.warehouse import q

_INTEGER = re.compile(r"^(SMALLINT|INTEGER|BIGINT|NUMERIC\(\d+,0\))$")
_DECIMAL = re.compile(r"^NUMERIC\(\d+,(\d+)\)$")
_EPOCH = dt.datetime(1970, 1, 1)
_TO_SECONDS_1970 = 62167219200 * 1000000  # MySQL's TO_SECONDS('1970-01-01'), in microseconds


def comparable(column: Column) -> bool:
    t = column.type
    return bool(_INTEGER.match(t) or _DECIMAL.match(t) or t in ("TIMESTAMP", "DATE", "TEXT")
                or t.startswith("VARCHAR"))


def _quote(engine: str, name: str) -> str:
    return f"`{name.replace('`', '``')}`" if engine in ("mysql", "mariadb") else q(name)


def _text(engine: str, expr: str) -> str:
    if engine in ("mysql", "mariadb"):
        return f"CAST({expr} AS CHAR)"
    return f"CAST({expr} AS {'TEXT' if engine in ('postgresql', 'sqlite') else 'VARCHAR'})"


def _integer(engine: str, column: Column, col: str) -> str | None:
    """SQL: the column as an integer (TIMESTAMP in microseconds, DATE in days since 1970), or
    None if it is not an integer kind."""
    t = column.type
    if t == "TIMESTAMP":
        return {"postgresql": f"CAST(EXTRACT(EPOCH FROM {col}) * 1000000 AS BIGINT)",
                "duckdb": f"epoch_us({col})",
                "redshift": f"DATEDIFF(microsecond, '1970-01-01', {col})",
                "sqlite": f"wa_epoch_us({col})"}.get(  # MariaDB: twice TIMESTAMPDIFF's speed
            engine, f"(TO_SECONDS({col}) * 1000000 + MICROSECOND({col}) - {_TO_SECONDS_1970})")
    if t == "DATE":
        return {"postgresql": f"({col} - DATE '1970-01-01')",
                "duckdb": f"date_diff('day', DATE '1970-01-01', {col})",
                "redshift": f"DATEDIFF(day, '1970-01-01', {col})",
                "sqlite": f"wa_epoch_days({col})"}.get(engine, f"DATEDIFF({col}, '1970-01-01')")
    return col if _INTEGER.match(t) else None


def _column(engine: str, column: Column, alias: str, exprs: Mapping[str, str] | None) -> str:
    return (exprs or {}).get(column.name) or alias + _quote(engine, column.name)


def _value(engine: str, column: Column, alias: str, expr: str | None = None) -> str:
    """SQL: the column's canonical text (of expr, how the source reads it, when given)."""
    col = expr or alias + _quote(engine, column.name)
    t = column.type
    if (as_int := _integer(engine, column, col)) is not None:
        return _text(engine, as_int)
    if (m := _DECIMAL.match(t)) and engine == "sqlite":
        # SQLite keeps decimals as REAL; printf writes NULL as 0.00
        return f"CASE WHEN {col} IS NOT NULL THEN printf('%.{m.group(1)}f', {col}) END"
    if engine in ("mysql", "mariadb") and not _DECIMAL.match(t):
        return f"CONVERT({col} USING utf8mb4)"
    return _text(engine, col)


def row_text(engine: str, columns: Sequence[Column], alias: str = "",
             exprs: Mapping[str, str] | None = None) -> str:
    """SQL: the canonical text of a row's compared columns (exprs: per column, how it is read)."""
    sep, null = ("CHAR(31)", "CHAR(30)") if engine in ("mysql", "mariadb") else (
        ("char(31)", "char(30)") if engine == "sqlite" else ("CHR(31)", "CHR(30)"))
    exprs = exprs or {}
    parts = [f"COALESCE({_value(engine, c, alias, exprs.get(c.name))}, {null})" for c in columns]
    if engine in ("mysql", "mariadb"):
        return f"CONVERT(CONCAT_WS({sep}, {', '.join(parts)}) USING utf8mb4)"
    return f" || {sep} || ".join(parts) if parts else "''"


def _hex60(engine: str, digest: str) -> str:
    """SQL: the first 15 hex digits of an MD5 digest as a non-negative integer (60 bits)."""
    sub = f"SUBSTR({digest}, 1, 15)"
    return {"postgresql": f"('x' || {sub})::bit(60)::bigint",
            "duckdb": f"CAST(('0x' || {sub}) AS UBIGINT)",
            "redshift": f"STRTOL({sub}, 16)",
            "sqlite": f"wa_hex({sub})"}.get(engine, f"CAST(CONV({sub}, 16, 10) AS UNSIGNED)")


_P, _MUL, _MOD = 2147483647, 1000003, 1000000007  # a prime modulus, a multiplier, a reducer


def aggregates(engine: str, columns: Sequence[Column],
               exprs: Mapping[str, str] | None = None) -> str:
    """SQL select list: COUNT(*) and sums of the rows' fingerprints.

    All-integer rows (integer keys, timestamps, dates: the usual key + cursor) need no hash: per
    column the sum and the count of values, and a sum of a position-sensitive mix of the row
    (h = (h * 1000003 + v % 1000000007) % 2147483647, a NULL as the modulus itself), so swapped
    values between rows or columns change it. Three times faster than MD5 on MariaDB. Other rows:
    the sum of 60 bits of MD5 of the canonical text."""
    ints = [_integer(engine, c, _column(engine, c, "", exprs)) for c in columns]
    if columns and all(i is not None for i in ints):
        big = {"mysql": "SIGNED", "mariadb": "SIGNED", "sqlite": "INTEGER"}.get(engine, "BIGINT")
        mix = "0"
        for i in ints:  # every step in 64 bits: (< 2^31) * 1000003 + (< 1000000007)
            mix = (f"(CAST({mix} AS {big}) * {_MUL} + "
                   f"COALESCE(CAST({i} % {_MOD} AS {big}), {_P})) % {_P}")
        sums = [f"COALESCE({_sum(engine, i)}, 0), COUNT({_column(engine, c, '', exprs)})"
                for c, i in zip(columns, ints)]  # NULL as an integer iff NULL as a value
        return f"COUNT(*), {', '.join(sums)}, COALESCE({_sum(engine, mix)}, 0)"
    md5 = "MD5" if engine != "sqlite" else "wa_md5"
    digest = _hex60(engine, f"{md5}({row_text(engine, columns, exprs=exprs)})")
    return f"COUNT(*), COALESCE({_sum(engine, digest)}, 0)"


def _sum(engine: str, expr: str) -> str:
    """An exact SUM past 2^63: Redshift's SUM(BIGINT) is a BIGINT, so over DECIMAL(38,0) there;
    SQLite's overflows, so there Python's (as text). The others widen on their own."""
    if engine == "redshift":
        return f"SUM(CAST({expr} AS DECIMAL(38,0)))"
    return f"{'wa_sum' if engine == 'sqlite' else 'SUM'}({expr})"


def digests(engine: str, key: Sequence[Column], columns: Sequence[Column],
            exprs: Mapping[str, str] | None = None) -> str:
    """SQL select list: each row's key text and fingerprint (to find which keys differ)."""
    md5 = "MD5" if engine != "sqlite" else "wa_md5"
    return f"{row_text(engine, key, exprs=exprs)}, {md5}({row_text(engine, columns, exprs=exprs)})"


def register_sqlite(dbapi_conn) -> None:
    """SQLite has no MD5 or date arithmetic exact to the microsecond: the same in Python."""
    def epoch_us(v):
        if v is None:
            return None
        d = dt.datetime.fromisoformat(str(v))
        delta = d.replace(tzinfo=None) - _EPOCH
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds

    dbapi_conn.create_function("wa_md5", 1, lambda v: None if v is None else
                               hashlib.md5(str(v).encode()).hexdigest(), deterministic=True)
    class Sum:  # exact whatever the total; SQLite integers stop at 2^63
        def __init__(self):
            self.total = 0

        def step(self, v):
            if v is not None:
                self.total += int(v)

        def finalize(self):
            return str(self.total)

    dbapi_conn.create_aggregate("wa_sum", 1, Sum)
    dbapi_conn.create_function("wa_hex", 1, lambda v: None if v is None else int(v, 16),
                               deterministic=True)
    dbapi_conn.create_function("wa_epoch_us", 1, epoch_us, deterministic=True)
    dbapi_conn.create_function("wa_epoch_days", 1, lambda v: None if v is None else (
        dt.date.fromisoformat(str(v)[:10]) - _EPOCH.date()).days, deterministic=True)
