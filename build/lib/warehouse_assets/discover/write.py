"""Render discovered entries as commented YAML and merge them into a replication file, keeping
every entry (and comment) the user already wrote."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import yaml

from warehouse_assets.config import parse_config
from warehouse_assets.discover.schema import Entry

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
_TOP_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:")


def _scalar(value: str) -> str:
    if _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)  # JSON strings are YAML strings


def _value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        return f'"{value}"'  # a date stays a string
    return _scalar(str(value))


def render(entries: list[Entry]) -> str:
    """Entries as items of a `tables:` list, each under a comment saying why."""
    lines = []
    for e in entries:
        lines += [f"  # {e.source}: {e.why[0]}", *(f"  #   {why}" for why in e.why[1:])]
        for i, (k, v) in enumerate(e.fields.items()):
            lines.append(f"  {'- ' if i == 0 else '  '}{k}: {_value(v)}")
    return "\n".join(lines) + "\n" if lines else ""


def merge(text: str, entries: list[Entry]) -> tuple[str, list[Entry]]:
    """The file with entries whose source is not yet in it appended to its `tables:` list, and
    the entries added. Entries already in the file are kept exactly as written."""
    data = (yaml.safe_load(text) if text.strip() else None) or {}
    existing = parse_config({**data, "tables": data.get("tables") or []})
    have = {t.source for t in existing.tables}
    targets = {t.target for t in existing.tables} | {t.target for t in existing.landing}
    new = []
    for e in entries:
        if e.source in have:
            continue
        if e.fields["target"] in targets:
            raise ValueError(f"{e.source}: target {e.fields['target']} is already another "
                             "entry's; pass --target-schema, or add this entry by hand")
        targets.add(e.fields["target"])
        new.append(e)
    if not new:
        return text, []
    block = render(new)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start = next((i for i, line in enumerate(lines)
                  if re.match(r"^tables:\s*(\[\s*\])?\s*(#.*)?$", line)), None)
    if start is not None and "[" in lines[start]:
        lines[start] = "tables:\n"  # an empty flow list `tables: []` becomes a block list
    if start is None:
        if data and "tables" in data:
            raise ValueError("the file's tables: is not a block list; write it as `tables:` "
                             "followed by `  - source: ...` items")
        return "".join(lines) + "tables:\n" + block, new
    end = next((i for i in range(start + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].startswith("#")):
        end -= 1  # comments and blank lines right above the next key belong to it
    merged = "".join(lines[:end]) + block + "".join(lines[end:])
    parse_config(yaml.safe_load(merged))  # never write a file that would not load
    return merged, new


def write_atomically(path: Path, text: str) -> None:
    """Replace path in one rename, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
