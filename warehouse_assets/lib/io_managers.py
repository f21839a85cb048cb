"""IO managers: the staging store carries extracts between the source and the warehouse.

`StagingIOManager` writes an asset's lazy extract to a deterministic key per partition window and
hands downstream assets a `StagedFile`. `WarehouseIOManager` applies a `TableLoad` to the warehouse
in one transaction. Both record their evidence as materialization metadata.
"""


import time

import dagster as dg

from warehouse_assets.lib.parts import PartWriter, stored_parts
from warehouse_assets.lib.source import Extract, Window
from warehouse_assets.lib.staged import Manifest, StagedFile
from warehouse_assets.lib.staging import StagingError, StagingStore
from warehouse_assets.lib.warehouse import TableLoad, Warehouse, qualified
from warehouse_assets.operations.retries import fail_fast_on_data_errors


def window_of(context: dg.OutputContext | dg.InputContext | dg.AssetExecutionContext) -> Window | None:
    """The partition window (a whole range under a single-run backfill), or None if unpartitioned."""
    if isinstance(context, dg.AssetExecutionContext):
        partitioned = context.has_partition_key_range or context.has_partition_key
        tw = context.partition_time_window if partitioned else None
    else:
        tw = context.asset_partitions_time_window if context.has_asset_partitions else None
    return Window(tw.start, tw.end) if tw else None


def staged_key(asset_key: dg.AssetKey, window: Window | None) -> str:
    """staging/<schema>/<table>/<first day>[_<last day>].csv.gz, or full.csv.gz."""
    return "/".join(asset_key.path) + f"/{window.label if window else 'full'}.csv.gz"


def manifest_key(key: str) -> str:
    return key.removesuffix(".csv.gz") + ".manifest.json"


class StagingIOManager(dg.ConfigurableIOManager):
    """Streams extracts into the staging store and returns references to complete staged files."""

    store: dg.ResourceDependency[StagingStore]
    part_mb: float = 64.0  # STAGING_PART_MB: the most compressed MiB in one staged part

    @fail_fast_on_data_errors()
    def handle_output(self, context: dg.OutputContext, obj: Extract) -> None:
        started = time.monotonic()
        key = staged_key(context.asset_key, window_of(context))
        columns = obj.columns()
        with PartWriter(self.store, key, int(self.part_mb * 1024 * 1024),
                        obj.source.compresslevel) as sink:
            rows = obj.write_to(sink)
            parts = sink.close()
        size = sink.bytes
        # Parts a bigger earlier run left past the last one go before the manifest is written,
        # so the window's manifest and its parts in the store always agree.
        found = stored_parts(self.store, key)
        for stale in sorted(set(found) - set(parts)):
            self.store.delete(stale)
        manifest = Manifest(
            source=obj.spec.source,
            columns=columns,
            rows=rows,
            bytes=size,
            window=(obj.window.start.isoformat(), obj.window.end.isoformat()) if obj.window else None,
            parts=tuple(parts),
            versions=tuple(found[k] for k in parts),
            unique_key=obj.unique_key(),
        )
        # The manifest is written last: parts without one are never loaded, and a load checks
        # that each part is the version the manifest names (see lib/parts.py check_parts).
        self.store.write_bytes(manifest_key(key), manifest.to_json().encode())
        seconds = time.monotonic() - started
        context.add_output_metadata(
            {
                "rows_read": rows,
                "extract_path": obj.path,  # connectorx (fast) or the SQLAlchemy driver (fallback)
                "bytes_staged": size,
                "staged_uri": dg.MetadataValue.path(self.store.uri(key)),
                "staged_parts": len(parts),
                "columns": ", ".join(f"{c.name} {c.type}" for c in columns),
                "duration_s": round(seconds, 3),
                "rows_per_s": round(rows / seconds) if seconds else rows,
            }
        )

    @fail_fast_on_data_errors()
    def load_input(self, context: dg.InputContext) -> StagedFile:
        key = staged_key(context.asset_key, window_of(context))
        try:
            manifest = Manifest.from_json(self.store.read_bytes(manifest_key(key)).decode())
        except StagingError:
            raise StagingError(
                f"{self.store.uri(key)} is not staged (or not complete): materialize "
                f"{context.asset_key.to_user_string()} for this partition range first"
            ) from None
        return StagedFile(key=key, uri=self.store.uri(key), manifest=manifest)


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Loads staged files into warehouse tables (COPY, then merge or replace, in one transaction)."""

    warehouse: dg.ResourceDependency[Warehouse]
    store: dg.ResourceDependency[StagingStore]

    @fail_fast_on_data_errors()
    def handle_output(self, context: dg.OutputContext, obj: TableLoad) -> None:
        result = self.warehouse.load(obj, self.store)
        context.add_output_metadata(
            {
                "table": obj.target,
                "rows_staged": result.rows_staged,
                "rows_written": result.rows_written,
                "rows_removed": result.rows_deleted,
                "dagster/row_count": result.target_rows,
                "target_rows": result.target_rows,
                "created_table": result.created,
                "columns_added": ", ".join(result.columns_added) or "none",
                "staged_uris": "\n".join(s.uri for s in obj.staged) or "none",
                "staged_parts": sum(len(s.parts) for s in obj.staged),
                "duration_s": round(result.seconds, 3),
            }
        )

    def load_input(self, context: dg.InputContext):
        """The whole table as a pandas DataFrame, for downstream Python assets."""
        import pandas as pd

        schema, table = context.asset_key.path[-2:]
        with self.warehouse.begin() as conn:
            return pd.read_sql(f"SELECT * FROM {qualified(schema, table)}", conn)
