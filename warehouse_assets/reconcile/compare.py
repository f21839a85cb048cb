"""Does a warehouse table still equal its source over a window? Count and fingerprint sums on both
sides in SQL; only when they differ, the keys of the differing hash buckets are fetched to count
the rows missing, extra and changed."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from warehouse_assets.config import TableSpec
from warehouse_assets.lib.source import SourceDatabase
from warehouse_assets.lib.source.database import Window
from warehouse_assets.lib.source.types import select_expression
from warehouse_assets.lib.staged import Column
from warehouse_assets.lib.warehouse import Warehouse, qualified
from warehouse_assets.reconcile.fingerprint import (
    _quote,
    aggregates,
    comparable,
    digests,
    register_sqlite,
    row_text,
)


@dataclass
class Comparison:
    """Both sides' figures for one window of one table."""

    window: str
    compared: list[str]
    not_compared: list[str]
    source: tuple[int, ...] = (0,)  # rows, then the fingerprint sums (fingerprint.aggregates)
    warehouse: tuple[int, ...] = (0,)
    missing: int = 0  # keys the source has and the warehouse lacks
    extra: int = 0  # keys the warehouse has and the source no longer has
    changed: int = 0  # same key, different values
    examples: list[str] = field(default_factory=list)
    differing_days: list[str] = field(default_factory=list)  # of a window of at most 31 days
    days: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return self.source == self.warehouse


def _bucket(side: _Side, key: list[Column]) -> str:
    md5 = "wa_md5" if side.name == "sqlite" else "MD5"
    return f"SUBSTR({md5}({row_text(side.name, key, exprs=side.exprs)}), 1, 2)"


class _Side:
    """One database's view of the window: its engine name, table and filter."""

    def __init__(self, engine: sa.Engine, name: str, table: str, where: str, params: dict,
                 exprs: dict[str, str] | None = None):
        self.engine, self.name, self.table, self.where, self.params = (
            engine, name, table, where, params)
        self.exprs = exprs or {}  # per column, how it is read (the source: as extraction reads it)

    def run(self, select: str, extra: str = "", group: str = "") -> list[tuple]:
        where = " AND ".join(w for w in (self.where, extra) if w)
        sql = f"SELECT {select} FROM {self.table}" + (f" WHERE {where}" if where else "") + group
        with self.engine.connect() as conn:
            if self.name == "sqlite":
                register_sqlite(conn.connection.dbapi_connection)
            return [tuple(r) for r in conn.execute(sa.text(sql), self.params).all()]


def _read_as(source: SourceDatabase, spec: TableSpec) -> dict[str, str]:
    """Each source column as the extract reads it (YEAR and BIT as integers, ...), in SQL."""
    table = source.reflect(spec.source_schema, spec.source_table)
    out = {}
    for column, c in zip(source.selected(spec, table), source.columns(spec, table)):
        expr = select_expression(column, c.type)
        expr = expr.element if isinstance(expr, sa.sql.elements.Label) else expr
        if expr is not column:
            out[c.name] = str(expr.compile(dialect=source.engine.dialect,
                                           compile_kwargs={"literal_binds": True}))
    return out


def _figures(side: _Side, compared: list[Column], cursor: str | None = None) -> tuple[int, ...]:
    return tuple(int(v) for v in side.run(aggregates(side.name, compared, side.exprs))[0])


def _by_day(side: _Side, compared: list[Column], cursor: str) -> dict[str, tuple[int, ...]]:
    """The figures per UTC day of the cursor: {YYYY-MM-DD: (rows, sums...)}."""
    day = f"CAST({side.exprs.get(cursor) or _quote(side.name, cursor)} AS DATE)"
    if side.name in ("sqlite", "mysql", "mariadb"):
        day = f"DATE({side.exprs.get(cursor) or _quote(side.name, cursor)})"
    rows = side.run(f"{day}, {aggregates(side.name, compared, side.exprs)}",
                    group=f" GROUP BY {day}")
    return {str(r[0])[:10]: tuple(int(v) for v in r[1:]) for r in rows}


def _total(rows: list[tuple[int, ...]], width: int) -> tuple[int, ...]:
    """Every figure is a sum (COUNT too), so a window's is the sum of its days'."""
    return tuple(sum(r[i] for r in rows) for i in range(width))


def _sides(spec: TableSpec, window: Window | None, source: SourceDatabase,
           warehouse: Warehouse) -> tuple[_Side, _Side]:
    src_name = source.engine.dialect.name
    wh_name = sa.make_url(warehouse.url).get_backend_name()
    params, src_where, wh_where = {}, [], []
    if window is not None and spec.cursor:
        params["start"], params["end"] = window.naive_utc()
        src_c, wh_c = _quote(src_name, spec.cursor), _quote(wh_name, spec.cursor)
        src_where.append(f"{src_c} >= :start AND {src_c} < :end")
        wh_where.append(f"{wh_c} >= :start AND {wh_c} < :end")
    if spec.soft_delete:  # the source keeps soft-deleted rows; the warehouse does not
        src_where.append(f"COALESCE({_quote(src_name, spec.soft_delete)}, 0) = 0")
    src_table = f"{_quote(src_name, spec.source_schema)}.{_quote(src_name, spec.source_table)}"
    return (_Side(source.engine, src_name, src_table, " AND ".join(src_where), params,
                  _read_as(source, spec)),
            _Side(warehouse.engine, wh_name, qualified(spec.target_schema, spec.target_table),
                  " AND ".join(wh_where), params))


def compare(spec: TableSpec, window: Window | None, source: SourceDatabase,
            warehouse: Warehouse, label: str) -> Comparison:
    """The window's figures on both sides; the differing keys counted when they differ."""
    columns = source.columns(spec)
    key = [c for c in columns if c.name in spec.primary_key]
    wanted = ({*spec.primary_key, spec.cursor} if spec.mode == "incremental"
              else {c.name for c in columns})
    chosen = [c for c in columns if c.name in wanted]
    compared = [c for c in chosen if comparable(c)]
    result = Comparison(label, [c.name for c in compared],
                        [c.name for c in chosen if not comparable(c)])
    src, wh = _sides(spec, window, source, warehouse)
    exists = sa.inspect(warehouse.engine).has_table(spec.target_table, schema=spec.target_schema)
    daily = window is not None and spec.cursor is not None and spec.timezone == "UTC" and (
        window.end - window.start).days <= 366
    figures = _by_day if daily else _figures
    with ThreadPoolExecutor(2) as pool:  # each side aggregates at once: the check takes the longer
        pending = pool.submit(figures, src, compared, spec.cursor)
        got = figures(wh, compared, spec.cursor) if exists else ({} if daily else ())
        have = pending.result()
    if daily:  # per day (a UTC day is a partition), in the same one query per side
        width = len(next(iter({**got, **have}.values()), ()))
        zero = (0,) * width
        result.days = {d: (have.get(d, zero), got.get(d, zero)) for d in sorted({*have, *got})}
        result.source = _total([v for v, _ in result.days.values()], width)
        result.warehouse = _total([v for _, v in result.days.values()], width) if exists else ()
        result.differing_days = [d for d, (a, b) in result.days.items() if a != b]
    else:
        result.source, result.warehouse = have, got
    if not exists:
        result.examples.append(f"{spec.target} does not exist yet: nothing was loaded")
        result.warehouse = (0,) * len(result.source)
        return result
    if result.matches:
        return result
    if window is not None and spec.cursor and not daily:
        result.differing_days = _differing_days(spec, window, source, warehouse, compared)
    if not key:
        return result
    # Which keys differ: bucket by the key's hash, then fetch only the differing buckets' keys.
    buckets = {}
    for side in (src, wh):
        b = _bucket(side, key)
        buckets[side.name] = {r[0]: r[1:] for r in side.run(
            f"{b}, {aggregates(side.name, compared, side.exprs)}", group=f" GROUP BY {b}")}
    differing = sorted(k for k in set(buckets[src.name]) | set(buckets[wh.name])
                       if buckets[src.name].get(k) != buckets[wh.name].get(k))
    params = {f"b{i}": b for i, b in enumerate(differing)}
    rows = {}
    for side in (src, wh):
        side.params = {**side.params, **params}
        inside = f"{_bucket(side, key)} IN ({', '.join(':' + p for p in params)})"
        rows[side] = dict(side.run(digests(side.name, key, compared, side.exprs), inside))
    have, got = rows[src], rows[wh]
    missing = [k for k in have if k not in got]
    extra = [k for k in got if k not in have]
    changed = [k for k in have if k in got and have[k] != got[k]]
    result.missing, result.extra, result.changed = len(missing), len(extra), len(changed)
    for what, keys in (("missing", missing), ("extra", extra), ("changed", changed)):
        result.examples += [f"{what}: {k.replace(chr(31), ', ')}" for k in sorted(keys)[:3]]
    return result


def _differing_days(spec: TableSpec, window: Window, source: SourceDatabase,
                    warehouse: Warehouse, compared: list[Column]) -> list[str]:
    """The days of a differing window (at most 31) whose figures differ: what a repair reloads."""
    days = (window.end - window.start).days
    if days > 31:
        return []
    out = []
    for i in range(days):
        day = Window(window.start + dt.timedelta(days=i), window.start + dt.timedelta(days=i + 1))
        src, wh = _sides(spec, day, source, warehouse)
        if _figures(src, compared) != _figures(wh, compared):
            out.append(day.label)
    return out
