"""Row fingerprints every database computes alike: a row's compared columns as canonical text,
MD5, and two 32-bit halves of it summed over a window. Count and both sums equal on the source and
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


def _value(engine: str, column: Column, alias: str, expr: str | None = None) -> str:
    """SQL: the column's canonical text (of expr, how the source reads it, when given)."""
    col = expr or alias + _quote(engine, column.name)
    t = column.type
    mysql = engine in ("mysql", "mariadb")
    if t == "TIMESTAMP":
        return _text(engine, {"postgresql": f"CAST(EXTRACT(EPOCH FROM {col}) * 1000000 AS BIGINT)",
                "duckdb": f"epoch_us({col})",
                "redshift": f"DATEDIFF(microsecond, '1970-01-01', {col})",
                "sqlite": f"wa_epoch_us({col})"}.get(
            engine, f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {col})"))
    if t == "DATE":
        return _text(engine, {"postgresql": f"({col} - DATE '1970-01-01')",
                "duckdb": f"date_diff('day', DATE '1970-01-01', {col})",
                "redshift": f"DATEDIFF(day, '1970-01-01', {col})",
                "sqlite": f"wa_epoch_days({col})"}.get(engine, f"DATEDIFF({col}, '1970-01-01')"))
    if (m := _DECIMAL.match(t)) and engine == "sqlite":
        # SQLite keeps decimals as REAL; printf writes NULL as 0.00
        return f"CASE WHEN {col} IS NOT NULL THEN printf('%.{m.group(1)}f', {col}) END"
    if mysql and not (_INTEGER.match(t) or _DECIMAL.match(t)):
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


def _half(engine: str, digest: str, first: int) -> str:
    """SQL: 8 hex digits of an MD5 digest (from position first) as an unsigned integer."""
    sub = f"SUBSTR({digest}, {first}, 8)"
    return {"postgresql": f"('x' || {sub})::bit(32)::bigint",
            "duckdb": f"CAST(('0x' || {sub}) AS UBIGINT)",
            "redshift": f"STRTOL({sub}, 16)",
            "sqlite": f"wa_hex({sub})"}.get(engine, f"CAST(CONV({sub}, 16, 10) AS UNSIGNED)")


def aggregates(engine: str, columns: Sequence[Column],
               exprs: Mapping[str, str] | None = None) -> str:
    """SQL select list: COUNT(*), and the two sums of the rows' fingerprints."""
    md5 = "MD5" if engine != "sqlite" else "wa_md5"
    digest = f"{md5}({row_text(engine, columns, exprs=exprs)})"
    return (f"COUNT(*), COALESCE(SUM({_half(engine, digest, 1)}), 0), "
            f"COALESCE(SUM({_half(engine, digest, 9)}), 0)")


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
    dbapi_conn.create_function("wa_hex", 1, lambda v: None if v is None else int(v, 16),
                               deterministic=True)
    dbapi_conn.create_function("wa_epoch_us", 1, epoch_us, deterministic=True)
    dbapi_conn.create_function("wa_epoch_days", 1, lambda v: None if v is None else (
        dt.date.fromisoformat(str(v)[:10]) - _EPOCH.date()).days, deterministic=True)
