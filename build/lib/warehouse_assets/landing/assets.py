"""One factory turns each landing entry in the YAML into a daily warehouse table fed by its files."""

import dagster as dg

from warehouse_assets.config import LandingSpec, ReplicationConfig
from warehouse_assets.landing.files import LandingStager, landing_prefix
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets.lib.warehouse import TableLoad

GROUP = "landing"


def landing_partitions(spec: LandingSpec) -> dg.DailyPartitionsDefinition:
    """One partition per day folder, today included: a file for today loads today."""
    return dg.DailyPartitionsDefinition(
        start_date=spec.start_date, timezone=spec.timezone, end_offset=1
    )


def files_key(spec: LandingSpec) -> dg.AssetKey:
    return dg.AssetKey(["landing", spec.table])


def target_key(spec: LandingSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.target_schema, spec.target_table])


def build_landing_table(spec: LandingSpec) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """landing/<table> (files dropped by an exporter) -> <target schema>/<target table>."""
    files = dg.AssetSpec(
        key=files_key(spec),
        description=f"CSV files dropped under {landing_prefix(spec)}/<YYYY-MM-DD>/ "
        f"(external; read, never written).",
        group_name=GROUP,
        kinds={"s3"},
    )

    @dg.asset(
        key=target_key(spec),
        deps=[files],
        description=f"Warehouse table {spec.target}: every file of the partition's day folders, "
        f"validated and upserted on {', '.join(spec.primary_key)}.",
        group_name=GROUP,
        partitions_def=landing_partitions(spec),
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="warehouse_io_manager",
        kinds={"s3", "redshift"},
        metadata={
            "primary_key": ", ".join(spec.primary_key),
            "columns": ", ".join(f"{c.name} {c.type}" for c in spec.columns),
        },
    )
    def table(context: dg.AssetExecutionContext, staging: StagingStore) -> TableLoad:
        staged = LandingStager(spec, staging).stage(context.partition_keys)
        if staged.rejected:
            # Fail before anything reaches the warehouse: a day loads whole or not at all.
            raise dg.Failure(
                description=f"{len(staged.rejected)} landing file(s) of {spec.table} rejected; "
                f"nothing was loaded:\n" + "\n".join(staged.rejected.values()),
                metadata={"rejected_files": len(staged.rejected),
                          "rejected": "\n".join(staged.rejected)},
                allow_retries=False,
            )
        context.add_output_metadata(
            {
                "files_loaded": len(staged.files),
                "files": "\n".join(staged.files) or "none",
                "rows_in_files": staged.rows + staged.superseded,
                "rows_superseded": staged.superseded,
                "rejected_files": 0,
            }
        )
        return TableLoad(
            target_schema=spec.target_schema,
            target_table=spec.target_table,
            mode="merge",
            primary_key=spec.primary_key,
            staged=tuple(staged.staged),
        )

    return [files, table]


def build_landing_assets(config: ReplicationConfig) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    return [a for spec in config.landing for a in build_landing_table(spec)]
