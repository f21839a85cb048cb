"""One factory turns each summaries.yaml entry into the asset <schema>/<table> that builds it."""

import hashlib

import dagster as dg

from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.operations.pools import writer_policies
from warehouse_assets.operations.retries import fail_fast_on_data_errors
from warehouse_assets.summaries.build import build_summary
from warehouse_assets.summaries.checks import check_specs
from warehouse_assets.summaries.config import SummarySpec, load_summaries

GROUP = "summaries"

# The seed's "one DAG triggers another": rebuild once an input changed, the SELECT changed or the
# summary is missing, but not while an input or the summary itself is still being written, so a
# backfill of many input partitions ends with one rebuild. Unlike eager(), which also waits for
# "no input partition missing" (never true of a daily input starting in 2023), it only needs every
# input to have at least one loaded partition.
REBUILD_WHEN_INPUTS_CHANGE = (
    (
        dg.AutomationCondition.newly_missing()
        | dg.AutomationCondition.any_deps_updated()
        | dg.AutomationCondition.code_version_changed()
    ).since_last_handled()
    & dg.AutomationCondition.all_deps_match(~dg.AutomationCondition.missing()).with_label(
        "every input loaded")
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("rebuild when inputs change")


def summary_key(spec: SummarySpec) -> dg.AssetKey:
    return dg.AssetKey([spec.target_schema, spec.target_table])


def _markdown(columns: list[str], rows: list[tuple]) -> str:
    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    return "\n".join(lines + [" | ".join(str(v) for v in r) for r in rows])


def build_summary_asset(spec: SummarySpec) -> dg.AssetsDefinition:
    """The asset that rebuilds spec.target from its SELECT, checked and swapped in atomically."""
    key = summary_key(spec)

    @dg.asset(
        key=key,
        deps=[dg.AssetKey([schema, table]) for schema, table in spec.deps],
        description=f"{spec.description} Built from {spec.sql_path.name}.".strip(),
        group_name=GROUP,
        kinds={"redshift", "sql"},
        check_specs=check_specs(spec, key),
        automation_condition=REBUILD_WHEN_INPUTS_CHANGE,
        code_version=hashlib.sha256(spec.select.encode()).hexdigest()[:12],
        metadata={"sql": dg.MetadataValue.md(f"```sql\n{spec.select}\n```")},
        **writer_policies(spec.target),  # one build per table at a time; retries
    )
    def summary(warehouse: Warehouse):
        with fail_fast_on_data_errors():  # an SQL error is not retried; a lost connection is
            result = build_summary(warehouse, spec, key)
        yield from result.checks
        if not result.swapped:
            failed = [c.check_name for c in result.checks if not c.passed]
            raise dg.Failure(
                f"{spec.target}: check(s) {', '.join(failed)} failed on the rebuilt table; "
                f"it was discarded and the previous {spec.target} is unchanged",
                allow_retries=False,  # the same inputs fail the same way
            )
        yield dg.MaterializeResult(metadata={
            "table": spec.target,
            "dagster/row_count": result.rows,
            "columns": ", ".join(result.columns),
            "replaced_table": result.recreated,
            "duration_s": round(result.seconds, 3),
            "preview": dg.MetadataValue.md(_markdown(result.columns, result.preview)),
        })

    return summary


def build_summary_assets(specs: tuple[SummarySpec, ...] | None = None) -> list[dg.AssetsDefinition]:
    return [build_summary_asset(s) for s in (load_summaries() if specs is None else specs)]
