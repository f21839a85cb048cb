"""Reflect source schemas into replication entries: one per base table and view, each with the
reason it was chosen, so hundreds of tables need no hand-written entry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from warehouse_assets.lib.source.types import portable_type
from warehouse_assets.lib.staged import DataError

CURSOR_NAMES = ("updated_at", "modified_at", "last_update", "updated")
SOFT_DELETE_NAMES = ("deleted", "is_deleted")
_CURSOR_TYPES = (sa.DateTime, sa.Date)


@dataclass
class Entry:
    """One discovered replication entry, as the YAML mapping it becomes, and why."""

    fields: dict
    why: list[str] = field(default_factory=list)

    @property
    def source(self) -> str:
        return self.fields["source"]


def discover(engine: sa.Engine, schemas: list[str], target_schema: str | None = None,
             cursor_names: tuple[str, ...] = CURSOR_NAMES,
             soft_delete_names: tuple[str, ...] = SOFT_DELETE_NAMES,
             default_start: str | None = None) -> list[Entry]:
    """Entries for every base table and view of schemas, in name order."""
    out = []
    inspector = sa.inspect(engine)
    for schema in schemas:
        if schema not in inspector.get_schema_names():
            raise ValueError(f"source schema {schema!r} does not exist "
                             f"(found: {', '.join(inspector.get_schema_names())})")
        views = set(inspector.get_view_names(schema=schema))
        for name in sorted(set(inspector.get_table_names(schema=schema)) | views):
            table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
            out.append(_entry(engine, table, name in views, target_schema or schema,
                              cursor_names, soft_delete_names, default_start))
    return out


def _entry(engine: sa.Engine, table: sa.Table, is_view: bool, target_schema: str,
           cursor_names: tuple[str, ...], soft_delete_names: tuple[str, ...],
           default_start: str | None) -> Entry:
    source = f"{table.schema}.{table.name}"
    entry = Entry({"source": source, "target": f"{target_schema}.{table.name}"})
    unsupported = {}
    for c in table.columns:
        try:
            if isinstance(c.type, sa.types.NullType):
                unsupported[c.name] = f"{_declared(engine, table, c.name)} cannot be replicated"
            else:
                portable_type(source, c)
        except DataError as exc:
            unsupported[c.name] = str(exc).split(": ", 1)[-1]
    columns = {c.name: c for c in table.columns if c.name not in unsupported}
    key = [c.name for c in table.primary_key.columns]
    by_lower = {n.lower(): n for n in columns}
    cursor = next((by_lower[n] for n in cursor_names if n in by_lower
                   and isinstance(columns[by_lower[n]].type, _CURSOR_TYPES)), None)
    flag = next((by_lower[n] for n in soft_delete_names if n in by_lower), None)
    what = "view" if is_view else "table"
    if cursor and key:
        entry.fields.update(mode="incremental", primary_key=key, cursor=cursor)
        entry.why.append(f"incremental: {cursor} is the first cursor-like column; upsert on the "
                         f"primary key ({', '.join(key)})")
        entry.fields["start_date"], how = _start_date(engine, table, cursor, default_start)
        entry.why.append(how)
    else:
        entry.fields["mode"] = "full_refresh"
        reason = ("no column named like a cursor (" + ", ".join(cursor_names) + ")"
                  if not cursor else f"{cursor} could be a cursor, but the {what} has no primary key")
        entry.why.append(f"full_refresh: {reason}" + ("" if key else "; no key needed"))
        if key:
            entry.fields["primary_key"] = key
    if flag:
        entry.fields["soft_delete"] = flag
        entry.why.append(f"soft_delete: rows with {flag} set are left out of the warehouse")
    if unsupported:
        entry.fields["exclude_columns"] = list(unsupported)
        entry.why += [f"left out {c}: {why}" for c, why in unsupported.items()]
    if is_view:
        entry.why.insert(0, "a view")
    return entry


def _declared(engine: sa.Engine, table: sa.Table, column: str) -> str:
    """The column's type as the server declares it (SQLAlchemy reflected it as unknown)."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return "its type"
    with engine.connect() as conn:
        return (conn.execute(sa.text(
            "SELECT COLUMN_TYPE FROM information_schema.columns WHERE table_schema = :s "
            "AND table_name = :t AND column_name = :c"),
            {"s": table.schema, "t": table.name, "c": column}).scalar() or "its type").upper()


def _start_date(engine: sa.Engine, table: sa.Table, cursor: str,
                default_start: str | None) -> tuple[str, str]:
    """The first partition: the earliest cursor value when an index makes MIN() cheap."""
    if default_start:
        return default_start, f"start_date {default_start} as given"
    indexed = any(i.get("column_names", [None])[0] == cursor
                  for i in sa.inspect(engine).get_indexes(table.name, schema=table.schema))
    first = None
    if indexed or table.primary_key.columns.keys()[:1] == [cursor]:
        with engine.connect() as conn:
            first = conn.execute(sa.select(sa.func.min(table.columns[cursor]))).scalar()
    if isinstance(first, str):
        first = dt.date.fromisoformat(first[:10])
    if isinstance(first, dt.date):
        day = first.date() if isinstance(first, dt.datetime) else first
        return day.isoformat(), f"start_date: the earliest {cursor} in the source"
    today = dt.date.today().isoformat()
    why = "the table is empty" if indexed else f"{cursor} has no index to find its earliest value"
    return today, f"start_date {today}: {why}; set the first day to backfill"
