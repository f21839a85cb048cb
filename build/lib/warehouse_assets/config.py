"""The replication table list: YAML declared by users, validated when definitions load."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DEFAULT_REPLICATION_YAML = Path(__file__).with_name("replication.yaml")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MODES = ("incremental", "full_refresh")


class ConfigError(ValueError):
    """A replication entry that cannot be turned into assets; the message names entry and field."""


def check_identifier(value: Any, where: str) -> str:
    """Accept only plain SQL identifiers, so config can never inject SQL."""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ConfigError(f"{where}: {value!r} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return value


def check_column(value: Any, where: str) -> str:
    """A column name as the source spells it: reserved words, mixed case and spaces are fine
    (every statement quotes it); only what no warehouse can hold is refused."""
    if not isinstance(value, str) or not value or "\x00" in value or value != value.strip():
        raise ConfigError(f"{where}: {value!r} is not a column name a warehouse can hold "
                          f"(empty, a NUL character, or leading/trailing spaces)")
    if len(value.encode()) > 127:
        raise ConfigError(f"{where}: {value!r} is longer than 127 bytes, Redshift's limit")
    return value


def _columns(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: a column or a list of columns")
    return tuple(check_column(c, where) for c in value)


def _qualified(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, str) or value.count(".") != 1:
        raise ConfigError(f"{where}: {value!r} must be schema.table")
    schema, table = value.split(".")
    return check_identifier(schema, where), check_identifier(table, where)


@dataclass(frozen=True)
class TableSpec:
    """One replicated table: where it comes from, where it goes and how it is kept in step."""

    source_schema: str
    source_table: str
    target_schema: str
    target_table: str
    mode: Literal["incremental", "full_refresh"]
    primary_key: tuple[str, ...]
    cursor: str | None = None
    soft_delete: str | None = None
    start_date: str | None = None
    timezone: str = "UTC"
    columns: tuple[str, ...] | None = None  # only these source columns (None: all)
    exclude_columns: tuple[str, ...] = ()
    reconcile: Literal["warn", "strict"] = "warn"  # a mismatch is a warning, or an error
    reconcile_days: int = 7  # the scheduled check's lookback, in days
    lookback_days: int = 0  # the daily run reloads this many days before yesterday too
    delete_missing: bool = False  # remove warehouse rows of a loaded window the source lacks
    freshness_hours: int = 26  # a successful update is expected at least this often
    repair: bool = False  # windows the daily check finds differing are reloaded

    @property
    def source(self) -> str:
        return f"{self.source_schema}.{self.source_table}"

    @property
    def target(self) -> str:
        return f"{self.target_schema}.{self.target_table}"

    @property
    def partitioned(self) -> bool:
        return self.mode == "incremental"


@dataclass(frozen=True)
class ColumnSpec:
    """A declared column of a landing file: name and warehouse type."""

    name: str
    type: str


@dataclass(frozen=True)
class LandingSpec:
    """Files an outside exporter drops under landing/<table>/<YYYY-MM-DD>/."""

    table: str
    target_schema: str
    target_table: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...]
    start_date: str
    timezone: str = "UTC"

    @property
    def target(self) -> str:
        return f"{self.target_schema}.{self.target_table}"


@dataclass(frozen=True)
class ReplicationConfig:
    tables: tuple[TableSpec, ...]
    landing: tuple[LandingSpec, ...] = field(default_factory=tuple)
    sheets: tuple = field(default_factory=tuple)  # sheets/config.py: SheetSpec
    exports: tuple = field(default_factory=tuple)  # sheets/config.py: ExportSpec


LANDING_TYPE = re.compile(
    r"^(INT|INTEGER|BIGINT|SMALLINT|BOOLEAN|DATE|TIMESTAMP|DOUBLE|TEXT|"
    r"VARCHAR\(\d{1,5}\)|NUMERIC\(\d{1,2},\d{1,2}\))$"
)


def _date(value: Any, where: str) -> str:
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a YYYY-MM-DD date") from None


def _timezone(value: Any, where: str) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not an IANA time zone") from None
    return str(value)


def _keys(entry: dict, where: str, column=check_identifier) -> tuple[str, ...]:
    keys = entry.get("primary_key")
    if isinstance(keys, str):
        keys = [keys]
    if not keys or not isinstance(keys, list):
        raise ConfigError(f"{where}.primary_key: required, a column or a list of columns")
    return tuple(column(k, f"{where}.primary_key") for k in keys)


def _unknown(entry: dict, allowed: set[str], where: str) -> None:
    extra = sorted(set(entry) - allowed)
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(extra)}")


def _table(entry: Any, i: int) -> TableSpec:
    where = f"tables[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping")
    where = f"tables[{i}] ({entry.get('source', '?')})"
    _unknown(
        entry,
        {"source", "target", "mode", "primary_key", "cursor", "soft_delete", "start_date",
         "timezone", "columns", "exclude_columns", "reconcile", "reconcile_days", "lookback_days", "delete_missing", "freshness_hours", "repair"},
        where,
    )
    for required in ("source", "target", "mode"):
        if required not in entry:
            raise ConfigError(f"{where}.{required}: required")
    mode = entry["mode"]
    if mode not in MODES:
        raise ConfigError(f"{where}.mode: {mode!r} is not one of {', '.join(MODES)}")
    src = _qualified(entry["source"], f"{where}.source")
    tgt = _qualified(entry["target"], f"{where}.target")
    cursor = entry.get("cursor")
    start = entry.get("start_date")
    if mode == "incremental":
        if cursor is None:
            raise ConfigError(f"{where}.cursor: required for mode incremental")
        if start is None:
            raise ConfigError(f"{where}.start_date: required for mode incremental")
    soft = entry.get("soft_delete")
    # A full refresh replaces the whole table, so it needs no key (a keyless table, a view).
    keyless = mode == "full_refresh" and entry.get("primary_key") in (None, [])
    picked = entry.get("columns")
    reconcile = entry.get("reconcile", "warn")
    if reconcile not in ("warn", "strict"):
        raise ConfigError(f"{where}.reconcile: {reconcile!r} is not warn or strict")
    days = entry.get("reconcile_days", 7)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
        raise ConfigError(f"{where}.reconcile_days: {days!r} is not a number of days (1-366)")
    lookback = entry.get("lookback_days", 0)
    if not isinstance(lookback, int) or isinstance(lookback, bool) or not 0 <= lookback <= 366:
        raise ConfigError(f"{where}.lookback_days: {lookback!r} is not a number of days (0-366)")
    delete_missing = entry.get("delete_missing", False)
    if not isinstance(delete_missing, bool):
        raise ConfigError(f"{where}.delete_missing: {delete_missing!r} is not true or false")
    fresh = entry.get("freshness_hours", 26)
    if not isinstance(fresh, int) or isinstance(fresh, bool) or not 1 <= fresh <= 24 * 366:
        raise ConfigError(f"{where}.freshness_hours: {fresh!r} is not a number of hours")
    repair = entry.get("repair", False)
    if not isinstance(repair, bool):
        raise ConfigError(f"{where}.repair: {repair!r} is not true or false")
    if mode != "incremental" and (lookback or delete_missing):
        raise ConfigError(f"{where}: lookback_days and delete_missing are for incremental entries "
                          "(a full refresh reloads, and drops what the source lacks, every run)")
    return TableSpec(
        source_schema=src[0],
        source_table=src[1],
        target_schema=tgt[0],
        target_table=tgt[1],
        mode=mode,
        primary_key=() if keyless else _keys(entry, where, check_column),
        cursor=check_column(cursor, f"{where}.cursor") if cursor is not None else None,
        soft_delete=check_column(soft, f"{where}.soft_delete") if soft is not None else None,
        start_date=_date(start, f"{where}.start_date") if start is not None else None,
        timezone=_timezone(entry.get("timezone", "UTC"), f"{where}.timezone"),
        columns=_columns(picked, f"{where}.columns") if picked is not None else None,
        exclude_columns=_columns(entry["exclude_columns"], f"{where}.exclude_columns")
        if entry.get("exclude_columns") is not None else (),
        reconcile=reconcile,
        reconcile_days=days,
        lookback_days=lookback,
        delete_missing=delete_missing,
        freshness_hours=fresh,
        repair=repair,
    )


def _landing(entry: Any, i: int) -> LandingSpec:
    where = f"landing[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping")
    where = f"landing[{i}] ({entry.get('table', '?')})"
    _unknown(entry, {"table", "target", "columns", "primary_key", "start_date", "timezone"}, where)
    table = check_identifier(entry.get("table"), f"{where}.table")
    tgt = _qualified(entry.get("target", f"raw_data.{table}"), f"{where}.target")
    cols = entry.get("columns")
    if not isinstance(cols, dict) or not cols:
        raise ConfigError(f"{where}.columns: required, a mapping of column name to type")
    columns = []
    for name, typ in cols.items():
        check_identifier(name, f"{where}.columns")
        t = str(typ).upper().replace(" ", "")
        if not LANDING_TYPE.match(t):
            raise ConfigError(f"{where}.columns.{name}: unsupported type {typ!r}")
        columns.append(ColumnSpec(name, t))
    keys = _keys(entry, where)
    missing = [k for k in keys if k not in cols]
    if missing:
        raise ConfigError(f"{where}.primary_key: {missing} not among the columns")
    if "start_date" not in entry:
        raise ConfigError(f"{where}.start_date: required")
    return LandingSpec(
        table=table,
        target_schema=tgt[0],
        target_table=tgt[1],
        columns=tuple(columns),
        primary_key=keys,
        start_date=_date(entry["start_date"], f"{where}.start_date"),
        timezone=_timezone(entry.get("timezone", "UTC"), f"{where}.timezone"),
    )


def parse_config(data: Any, origin: str = "replication config") -> ReplicationConfig:
    """Validate a parsed YAML document; every error names the entry and the field."""
    if not isinstance(data, dict) or not isinstance(data.get("tables", []), list):
        raise ConfigError(f"{origin}: expected a mapping with a 'tables:' list")
    try:
        tables = tuple(_table(e, i) for i, e in enumerate(data.get("tables") or []))
        landing = tuple(_landing(e, i) for i, e in enumerate(data.get("landing") or []))
        from warehouse_assets.sheets.config import parse_sheets  # it builds on this module

        sheets, exports = parse_sheets(data)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    targets = [t.target for t in tables] + [t.target for t in landing + sheets]
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise ConfigError(f"{origin}: target(s) declared twice: {', '.join(dupes)}")
    return ReplicationConfig(tables=tables, landing=landing, sheets=sheets, exports=exports)


def load_config(path: str | os.PathLike | None = None) -> ReplicationConfig:
    """Read REPLICATION_YAML (or the shipped table list)."""
    path = Path(path or os.environ.get("REPLICATION_YAML") or DEFAULT_REPLICATION_YAML)
    with open(path, encoding="utf-8") as fh:
        # The C loader when PyYAML has it: 500 entries parse in 0.03 s instead of 0.2-0.6 s.
        return parse_config(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)),
                            origin=str(path))
