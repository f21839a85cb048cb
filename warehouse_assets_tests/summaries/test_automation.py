"""Summaries are rebuilt by declarative automation once their inputs change: a backfill of many
input partitions ends with one rebuild, requested only after the backfill's run has finished."""

from __future__ import annotations

import dagster as dg

from warehouse_assets.lib.warehouse import Warehouse
from warehouse_assets.summaries.assets import build_summary_assets
from warehouse_assets.summaries.sensors import summaries_automation

DAILY = dg.DailyPartitionsDefinition(start_date="2023-04-20")
NPS_INPUT = dg.AssetKey(["raw_data", "nps"])
NPS = dg.AssetKey(["analytics", "nps_summary"])
CHANNEL = dg.AssetKey(["analytics", "channel_summary"])


def days_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last}


@dg.asset(key=NPS_INPUT, partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run())
def nps_input() -> None:
    """Stands in for the replicated raw_data/nps: daily partitions, a range in one run."""


DEFS = dg.Definitions(
    assets=[
        nps_input,
        dg.AssetSpec(["raw_data", "user_session_channel"], partitions_def=DAILY),
        dg.AssetSpec(["raw_data", "session_timestamp"], partitions_def=DAILY),
        *build_summary_assets(),
    ],
    sensors=[summaries_automation],
    resources={"warehouse": Warehouse(url="duckdb:///:memory:")},  # never connected here
)


def test_backfill_of_inputs_ends_with_one_rebuild() -> None:
    instance = dg.DagsterInstance.ephemeral()
    tick = dg.evaluate_automation_conditions(defs=DEFS, instance=instance)
    assert tick.total_requested == 0  # no input loaded yet: nothing to build from

    # A backfill of raw_data/nps over 2024-03-01..07 in two runs: the first has loaded 3 days,
    # the second is still running.
    result = dg.materialize([nps_input], instance=instance, tags=days_tags("2024-03-01",
                                                                            "2024-03-03"))
    assert len(result.get_asset_materialization_events()) == 3
    job = DEFS.resolve_implicit_global_asset_job_def().get_subset(asset_selection={NPS_INPUT})
    running = instance.create_run_for_job(job, asset_selection=frozenset({NPS_INPUT}),
                                          tags=days_tags("2024-03-04", "2024-03-07"),
                                          status=dg.DagsterRunStatus.STARTED)
    tick = dg.evaluate_automation_conditions(defs=DEFS, instance=instance, cursor=tick.cursor)
    assert tick.total_requested == 0  # inputs changed, but one is still being written

    for day in range(4, 8):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(NPS_INPUT, partition=f"2024-03-0{day}"))
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value="PIPELINE_SUCCESS", job_name=running.job_name),
        run_id=running.run_id)
    assert instance.get_run_by_id(running.run_id).status == dg.DagsterRunStatus.SUCCESS
    tick = dg.evaluate_automation_conditions(defs=DEFS, instance=instance, cursor=tick.cursor)
    assert tick.get_num_requested(NPS) == 1 and tick.total_requested == 1  # one rebuild
    assert tick.get_num_requested(CHANNEL) == 0  # its inputs were never loaded

    tick = dg.evaluate_automation_conditions(defs=DEFS, instance=instance, cursor=tick.cursor)
    assert tick.total_requested == 0  # requested once, not again

    # Once that rebuild has run, the next day's load triggers exactly one more.
    instance.report_runless_asset_event(dg.AssetMaterialization(NPS))
    tick = dg.evaluate_automation_conditions(defs=DEFS, instance=instance, cursor=tick.cursor)
    assert tick.total_requested == 0
    instance.report_runless_asset_event(dg.AssetMaterialization(NPS_INPUT, partition="2024-03-08"))
    tick = dg.evaluate_automation_conditions(defs=DEFS, instance=instance, cursor=tick.cursor)
    assert tick.get_num_requested(NPS) == 1 and tick.total_requested == 1


def test_sensor_runs_by_default() -> None:
    """`make dev` needs no manual step: the sensor starts running and targets both summaries."""
    assert summaries_automation.default_status == dg.DefaultSensorStatus.RUNNING
    assert summaries_automation.asset_selection.resolve(DEFS.resolve_asset_graph()) == {NPS, CHANNEL}
