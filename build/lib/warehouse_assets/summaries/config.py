"""The summary table list: summaries.yaml entries, each a .sql file plus target and checks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from warehouse_assets.config import ConfigError, _qualified, _unknown, check_identifier

DEFAULT_SUMMARIES_YAML = Path(__file__).with_name("summaries.yaml")


@dataclass(frozen=True)
class SummarySpec:
    """One summary table: the SELECT that builds it, its inputs and what a valid result is."""

    target_schema: str
    target_table: str
    select: str
    sql_path: Path
    deps: tuple[tuple[str, str], ...]
    unique_key: tuple[str, ...] = ()
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    description: str = ""

    @property
    def target(self) -> str:
        return f"{self.target_schema}.{self.target_table}"


def _select(path: Path, where: str) -> str:
    """The .sql file's single SELECT, without a trailing semicolon (it is wrapped in a CTAS)."""
    try:
        text = path.read_text(encoding="utf-8").strip().rstrip(";").strip()
    except OSError as exc:
        raise ConfigError(f"{where}.sql: cannot read {path}: {exc.strerror}") from None
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--")).strip()
    if not body.upper().startswith(("SELECT", "WITH")) or ";" in body:
        raise ConfigError(f"{where}.sql: {path.name} must hold exactly one SELECT")
    return text


def _range(value: Any, where: str) -> tuple[float | None, float | None]:
    ok = isinstance(value, list) and len(value) == 2 and all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in value)
    if not ok or value == [None, None] or (None not in value and value[0] > value[1]):
        raise ConfigError(f"{where}: {value!r} must be [min, max] (one may be null)")
    return value[0], value[1]


def _summary(entry: Any, i: int, folder: Path) -> SummarySpec:
    where = f"summaries[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping")
    where = f"summaries[{i}] ({entry.get('target', '?')})"
    _unknown(entry, {"target", "sql", "deps", "unique_key", "ranges", "description"}, where)
    for required in ("target", "sql", "deps"):
        if required not in entry:
            raise ConfigError(f"{where}.{required}: required")
    schema, table = _qualified(entry["target"], f"{where}.target")
    deps = entry["deps"]
    if not isinstance(deps, list) or not deps:
        raise ConfigError(f"{where}.deps: required, a list of schema.table inputs")
    key = entry.get("unique_key") or []
    key = [key] if isinstance(key, str) else key
    ranges = entry.get("ranges") or {}
    if not isinstance(ranges, dict):
        raise ConfigError(f"{where}.ranges: must map a column to [min, max]")
    path = folder / str(entry["sql"])
    return SummarySpec(
        target_schema=schema,
        target_table=table,
        select=_select(path, where),
        sql_path=path,
        deps=tuple(_qualified(d, f"{where}.deps") for d in deps),
        unique_key=tuple(check_identifier(k, f"{where}.unique_key") for k in key),
        ranges={
            check_identifier(c, f"{where}.ranges"): _range(r, f"{where}.ranges.{c}")
            for c, r in ranges.items()
        },
        description=str(entry.get("description", "")),
    )


def load_summaries(path: str | os.PathLike | None = None) -> tuple[SummarySpec, ...]:
    """Read summaries.yaml (or another list); .sql paths are relative to the file."""
    path = Path(path or DEFAULT_SUMMARIES_YAML)
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict) or not isinstance(data.get("summaries"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'summaries:' list")
    try:
        return tuple(_summary(e, i, path.parent) for i, e in enumerate(data["summaries"]))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
