"""The daily schedule asks for the previous day's partition (the seed's `0 9 * * *`)."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from warehouse_assets.config import parse_config
from warehouse_assets.operations.schedules import build_schedules
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets.resources import build_resources
from warehouse_assets.settings import Operations

CONFIG = parse_config({"tables": [
    {"source": "prod.nps", "target": "raw_data.nps", "mode": "incremental", "primary_key": "id",
     "cursor": "modified_at", "start_date": "2023-04-20"},
    {"source": "prod.channel", "target": "raw_data.channel", "mode": "full_refresh",
     "primary_key": "channel"},
]})


def _tick(schedule: dg.ScheduleDefinition, when: dt.datetime) -> list[dg.RunRequest]:
    defs = dg.Definitions(assets=build_replication_assets(CONFIG), schedules=[schedule],
                          resources=build_resources())
    with dg.instance_for_test() as instance, dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when,
        repository_def=defs.get_repository_def(),
    ) as context:  # the context opens its own instance from the ref: close it
        return list(schedule.evaluate_tick(context).run_requests or [])


def test_default_is_the_seeds_nine_oclock_for_yesterday(embedded_env, monkeypatch):
    for var in ("SCHEDULE_HOUR", "SCHEDULE_TIMEZONE"):
        monkeypatch.delenv(var, raising=False)
    (schedule,) = build_schedules(CONFIG)  # full-refresh tables have no daily partition
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 9 * * *", "UTC")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.name == "replicate_raw_data__nps_daily"
    (request,) = _tick(schedule, dt.datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("UTC")))
    assert request.partition_key == "2026-11-01"
    assert request.run_key == "2026-11-01"
    assert request.asset_selection == [dg.AssetKey(["staging", "prod", "nps"]),
                                       dg.AssetKey(["raw_data", "nps"])]


def test_hour_and_time_zone_are_configurable(embedded_env, monkeypatch):
    monkeypatch.setenv("SCHEDULE_HOUR", "7")
    monkeypatch.setenv("SCHEDULE_TIMEZONE", "Asia/Seoul")
    (schedule,) = build_schedules(CONFIG)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 7 * * *", "Asia/Seoul")
    # 07:00 in Seoul on Nov 2 is 22:00 UTC on Nov 1: the table's (UTC) last complete day is Oct 31.
    (request,) = _tick(schedule, dt.datetime(2026, 11, 2, 7, 0, tzinfo=ZoneInfo("Asia/Seoul")))
    assert request.partition_key == "2026-10-31"


def test_a_bad_hour_fails_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SCHEDULE_HOUR", "25")
    with pytest.raises(ValueError, match="SCHEDULE_HOUR"):
        Operations.from_env()


def test_lookback_days_reload_yesterday_and_the_days_before_in_one_run(embedded_env):
    config = parse_config({"tables": [
        {"source": "prod.nps", "target": "raw_data.nps", "mode": "incremental",
         "primary_key": "id", "cursor": "modified_at", "start_date": "2023-04-20",
         "lookback_days": 3}]})
    (schedule,) = build_schedules(config)
    defs = dg.Definitions(assets=build_replication_assets(config), schedules=[schedule],
                          resources=build_resources())
    with dg.instance_for_test() as instance, dg.build_schedule_context(
        instance=instance, repository_def=defs.get_repository_def(),
        scheduled_execution_time=dt.datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("UTC")),
    ) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.tags["dagster/asset_partition_range_start"] == "2026-10-29"
    assert request.tags["dagster/asset_partition_range_end"] == "2026-11-01"
    assert request.run_key == "2026-10-29...2026-11-01" and request.partition_key is None


def test_reconcile_daily_runs_only_the_checks_an_hour_after_the_loads(embedded_env, monkeypatch):
    from warehouse_assets.reconcile.checks import build_reconcile_checks, build_reconcile_schedule

    monkeypatch.delenv("SCHEDULE_HOUR", raising=False)
    (schedule,) = build_reconcile_schedule(CONFIG)
    assert schedule.cron_schedule == "0 10 * * *" and schedule.job_name == "__ASSET_JOB"
    defs = dg.Definitions(assets=build_replication_assets(CONFIG), schedules=[schedule],
                          asset_checks=build_reconcile_checks(CONFIG), resources=build_resources())
    with dg.instance_for_test() as instance, dg.build_schedule_context(
        instance=instance, repository_def=defs.get_repository_def(),
        scheduled_execution_time=dt.datetime(2026, 11, 2, 10, 0, tzinfo=ZoneInfo("UTC")),
    ) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.asset_selection == [] and request.run_key == "2026-11-02"
    assert {k.asset_key.to_user_string() for k in request.asset_check_keys} == {
        "raw_data/nps", "raw_data/channel"}
