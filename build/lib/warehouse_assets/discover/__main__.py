"""python -m warehouse_assets.discover --schema S [--schema T ...] [--write]: print (or merge into
REPLICATION_YAML) one replication entry per base table and view of the source schemas."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from warehouse_assets import demo
from warehouse_assets.config import DEFAULT_REPLICATION_YAML
from warehouse_assets.discover.schema import CURSOR_NAMES, SOFT_DELETE_NAMES, discover
from warehouse_assets.discover.write import merge, render, write_atomically
from warehouse_assets.lib.source.database import _engine
from warehouse_assets.settings import Settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m warehouse_assets.discover", description=__doc__)
    p.add_argument("--schema", action="append", required=True, help="a source schema (repeatable)")
    p.add_argument("--write", action="store_true",
                   help="merge the new entries into the replication file instead of printing")
    p.add_argument("--config", type=Path,
                   default=Path(os.environ.get("REPLICATION_YAML") or DEFAULT_REPLICATION_YAML),
                   help="the replication file (default: REPLICATION_YAML or the shipped one)")
    p.add_argument("--target-schema", help="warehouse schema for every entry (default: the "
                   "source schema's name)")
    p.add_argument("--cursor-names", default=",".join(CURSOR_NAMES),
                   help="cursor-like column names, first match wins (default: %(default)s)")
    p.add_argument("--soft-delete-names", default=",".join(SOFT_DELETE_NAMES),
                   help="soft-delete flag column names (default: %(default)s)")
    p.add_argument("--start-date", help="start_date for incremental entries (default: the "
                   "earliest cursor value, when an index finds it cheaply)")
    args = p.parse_args(argv)
    settings = Settings.from_env()
    url = settings.source_url
    url = url.get_value() if hasattr(url, "get_value") else url
    if settings.environment == "embedded" and not Path(url.split(":///", 1)[1]).exists():
        demo.seed(url)  # the embedded default's demo source, as `make run` seeds it
    try:
        entries = discover(_engine(url), args.schema, args.target_schema,
                           tuple(filter(None, args.cursor_names.split(","))),
                           tuple(filter(None, args.soft_delete_names.split(","))), args.start_date)
        text = args.config.read_text(encoding="utf-8") if args.config.exists() else ""
        merged, new = merge(text, entries)
    except ValueError as exc:
        print(f"discover: {exc}", file=sys.stderr)
        return 2
    kept = len(entries) - len(new)
    if args.write:
        if new:
            write_atomically(args.config, merged)
        print(f"{args.config}: {len(new)} entries added, {kept} already there and kept as written",
              file=sys.stderr)
    else:
        sys.stdout.write(render(new))
        print(f"# {len(new)} new entries; {kept} already in {args.config}, kept as written. "
              "--write merges them.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
