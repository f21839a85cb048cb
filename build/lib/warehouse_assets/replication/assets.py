"""One factory turns each replicated table in the YAML into source, staged and warehouse assets."""

import dagster as dg

from warehouse_assets.config import ReplicationConfig, TableSpec
from warehouse_assets.lib.io_managers import window_of
from warehouse_assets.lib.source import Extract, SourceDatabase
from warehouse_assets.lib.staged import StagedFile
from warehouse_assets.lib.warehouse import TableLoad
from warehouse_assets.operations.pools import writer_policies


def group_name(spec: TableSpec) -> str:
    """One group per source schema (replication_<schema>), so hundreds of tables stay legible."""
    return f"replication_{spec.source_schema}"


def daily_partitions(start_date: str, timezone: str) -> dg.DailyPartitionsDefinition:
    """One partition per day; the last one is yesterday, the last complete day."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone=timezone)


def source_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(["mysql", spec.source_schema, spec.source_table])


def staging_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey(["staging", spec.source_schema, spec.source_table])


def target_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.target_schema, spec.target_table])


def build_table_assets(spec: TableSpec) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """mysql/<schema>/<table> -> staging/<schema>/<table> -> <target schema>/<target table>."""
    incremental = spec.mode == "incremental"
    # Both steps share the table's partitions (a range is one window: one query, one load), its
    # writer pool (one run per table at a time) and its retries.
    shared = {
        "group_name": group_name(spec),
        "partitions_def": daily_partitions(spec.start_date, spec.timezone) if incremental else None,
        "backfill_policy": dg.BackfillPolicy.single_run() if incremental else None,
        **writer_policies(spec.target),
    }
    how = (
        f"rows whose {spec.cursor} falls in the partition's days, upserted on "
        f"{', '.join(spec.primary_key)}"
        if incremental
        else "the whole table, replaced atomically"
    )
    source = dg.AssetSpec(
        key=source_key(spec),
        description=f"Source table {spec.source} in MySQL (external; read, never written).",
        group_name=group_name(spec),
        kinds={"mysql"},
    )

    @dg.asset(
        key=staging_key(spec),
        deps=[source],
        description=f"{spec.source} staged as gzip CSV: {how}.",
        **shared,
        io_manager_key="staging_io_manager",
        kinds={"s3"},
        metadata={"source": spec.source, "mode": spec.mode},
    )
    def staged(context: dg.AssetExecutionContext, source_db: SourceDatabase) -> Extract:
        return Extract(source_db, spec, window_of(context))

    @dg.asset(
        key=target_key(spec),
        ins={"staged_file": dg.AssetIn(key=staging_key(spec))},
        description=f"Warehouse table {spec.target}: {how}.",
        **shared,
        io_manager_key="warehouse_io_manager",
        kinds={"redshift"},
        metadata={
            "primary_key": ", ".join(spec.primary_key),
            "cursor": spec.cursor or "none",
            "soft_delete": spec.soft_delete or "none",
        },
    )
    def table(staged_file: StagedFile) -> TableLoad:
        return TableLoad(
            target_schema=spec.target_schema,
            target_table=spec.target_table,
            mode="merge" if incremental else "replace",
            primary_key=spec.primary_key,
            staged=(staged_file,),
            cursor=spec.cursor,
            soft_delete=spec.soft_delete,
            delete_missing=spec.delete_missing,
        )

    return [source, staged, table]


def build_replication_assets(config: ReplicationConfig) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    return [a for spec in config.tables for a in build_table_assets(spec)]
