"""`make run`: seed the demo source, materialize every asset for the demo's days, print the loads."""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg

from warehouse_assets import demo
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.settings import Settings, data_dir

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _runs(defs: dg.Definitions, first: dt.date, last: dt.date,
          skip_groups: tuple[str, ...] = ()) -> list[tuple[list, dict]]:
    """Groups of assets to materialize together, in dependency order: partitioned first."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable
            and graph.get(k).group_name not in skip_groups]
    partitioned: dict = {}
    plain = []
    for key in keys:
        pdef = graph.get(key).partitions_def
        if pdef is None:
            plain.append(key)
        else:
            partitioned.setdefault(pdef, []).append(key)
    runs = []
    for pdef, group in partitioned.items():
        start = max(first.isoformat(), pdef.start.date().isoformat())
        tags = {RANGE_START: start, RANGE_END: last.isoformat()}
        runs.append((group, tags))
    if plain:
        runs.append((plain, {}))
    return runs


def main() -> None:
    settings = Settings.from_env()
    if settings.environment == "embedded":
        source = data_dir() / "source.sqlite"
        counts = demo.seed(f"sqlite:///{source}")
        print(f"seeded demo source {source}: {counts}")
        store = StagingStore(url=str(settings.staging_url))
        written = demo.write_landing(store)
        print(f"demo landing files in {store.uri('landing')}: {written} written or rewritten")
    from warehouse_assets.definitions import defs

    first, last = demo.demo_days()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None
    instance = instance or dg.DagsterInstance.ephemeral()
    job = defs.resolve_implicit_global_asset_job_def()
    skip: tuple[str, ...] = ()
    if not settings.google_credentials:
        graph = defs.resolve_asset_graph()
        sheets = [k for k in graph.toposorted_asset_keys if graph.get(k).group_name == "sheets"]
        if sheets:
            skip = ("sheets",)
            print(f"skipped {len(sheets)} Google Sheets asset(s): set GOOGLE_SERVICE_ACCOUNT_JSON "
                  f"or GOOGLE_APPLICATION_CREDENTIALS to run them")
    for keys, tags in _runs(defs, first, last, skip):
        result = job.get_subset(asset_selection=set(keys)).execute_in_process(
            instance=instance, tags=tags, run_config=QUIET, raise_on_error=True
        )
        latest = {e.materialization.asset_key: e.materialization for e in
                  result.get_asset_materialization_events()}
        window = f"  days {tags[RANGE_START]} .. {tags[RANGE_END]}" if tags else ""
        for key, mat in latest.items():
            md = mat.metadata
            rows = md.get("target_rows") or md.get("dagster/row_count") or md.get("rows_read")
            table = md.get("table")
            what = f"table {table.value}" if table else key.to_user_string()
            print(f"loaded {what:<40} rows={rows.value if rows else '?'}{window}")


if __name__ == "__main__":
    main()
