"""The run queue of the shipped dagster.yaml, driven for real: runs submitted through a running
webserver's GraphQL API, dequeued by the daemon's queued-run coordinator, launched as processes."""

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster_graphql import DagsterGraphQLClient

from warehouse_assets import demo
from warehouse_assets.operations import backfill
from warehouse_assets.operations.pools import writer_pools
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets.settings import REPO_ROOT
from warehouse_assets_tests.conftest import RANGE_END, RANGE_START, project_instance
from warehouse_assets_tests.operations import NPS_YAML

LOCATION_STATUS = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
CEILING_S = 180  # how long to wait for a process before giving up; nothing asserts durations


def _until(what: str, check) -> None:
    deadline = time.monotonic() + CEILING_S
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.5)


def _loaded(port: int) -> bool:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", method="POST",
                                 data=json.dumps({"query": LOCATION_STATUS}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            entries = json.load(resp)["data"]["workspaceOrError"]["locationEntries"]
    except OSError:
        return False
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


@contextmanager
def dagster_home(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DAGSTER_HOME holding the repo's dagster.yaml, storage under tmp."""
    home = project_instance(tmp / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    yield home


@contextmanager
def webserver(home: Path) -> Iterator[str]:
    """`dagster-webserver` on a free loopback port with the repo's workspace; its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (home / "webserver.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", str(REPO_ROOT / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its code server dies with it
    )
    try:
        _until("the webserver to load the code location",
               lambda: proc.poll() is None and _loaded(port))
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def _runs(instance: dg.DagsterInstance, ids: list[str]) -> list[dg.DagsterRun]:
    return [instance.get_run_by_id(i) for i in ids]


def test_chunks_cut_at_calendar_boundaries():
    d = dt.date.fromisoformat
    assert backfill.chunks(d("2024-01-15"), d("2024-03-10"), "month") == [
        (d("2024-01-15"), d("2024-01-31")), (d("2024-02-01"), d("2024-02-29")),
        (d("2024-03-01"), d("2024-03-10"))]
    assert backfill.chunks(d("2024-01-03"), d("2024-01-16"), "week") == [  # Wed..Sun, Mon..Sun
        (d("2024-01-03"), d("2024-01-07")), (d("2024-01-08"), d("2024-01-14")),
        (d("2024-01-15"), d("2024-01-16"))]
    with pytest.raises(ValueError, match="before"):
        backfill.chunks(d("2024-02-01"), d("2024-01-01"), "day")


def test_long_backfill_is_queued_as_one_run_per_month(embedded_env, tmp_path, monkeypatch):
    with dagster_home(tmp_path, monkeypatch) as home, webserver(home) as url:
        run_ids = backfill.main(["--table", "raw_data.nps", "--start", "2023-04-20",
                                 "--end", "2024-04-19", "--chunk", "month", "--url", url])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = _runs(instance, run_ids)
    assert len(runs) == 13  # Apr 20-30 2023, May 2023 ... Mar 2024, Apr 1-19 2024
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}  # the daemon starts them
    assert {r.job_name for r in runs} == {"__ASSET_JOB"}
    assert {tuple(sorted(k.to_user_string() for k in r.asset_selection)) for r in runs} == {
        ("raw_data/nps", "staging/prod/nps")}
    assert {r.tags[backfill.BACKFILL_TAG] for r in runs} == {runs[0].tags[backfill.BACKFILL_TAG]}
    ranges = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in runs]
    assert ranges[:2] == [("2023-04-20", "2023-04-30"), ("2023-05-01", "2023-05-31")]
    assert ranges[-1] == ("2024-04-01", "2024-04-19")
    days = [dt.date.fromisoformat(s) for pair in ranges for s in pair]
    assert all((b - a).days == 1 for a, b in zip(days[1::2], days[2::2]))  # no gap, no overlap


def _locked_waiters(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE NOT l.granted AND c.relname = 'nps'")).scalar_one()


def test_second_writer_of_a_table_waits_in_the_queue(services_env, tmp_path, monkeypatch):
    """max_active_runs=1: a second run writing raw_data.nps stays QUEUED while the first runs."""
    env = services_env
    demo.seed(os.environ["SOURCE_DB_URL"], schema=env.source_schema)
    yaml_path = tmp_path / "replication.yaml"
    yaml_path.write_text(NPS_YAML.replace("{schema}", env.source_schema))
    monkeypatch.setenv("REPLICATION_YAML", str(yaml_path))
    monkeypatch.setenv("RETRY_MAX", "0")
    first, _ = demo.demo_days()
    d0, d1, d2 = (first + dt.timedelta(days=i) for i in (3, 4, 5))
    assert env.replicate(env.config(NPS_YAML), start=d0.isoformat()).success  # table exists

    warehouse = sa.create_engine(os.environ["WAREHOUSE_DB_URL"])
    holder = warehouse.connect()
    lock = holder.begin()  # holds the table: the first run's load waits on it, in progress
    holder.execute(sa.text("LOCK TABLE raw_data.nps IN ACCESS EXCLUSIVE MODE"))
    try:
        with dagster_home(tmp_path, monkeypatch) as home:
            with webserver(home) as url:
                client = DagsterGraphQLClient("127.0.0.1", port_number=int(url.rsplit(":", 1)[1]))
                run_a, run_b = backfill.submit(client, "raw_data.nps", d1, d2, "day")
            target = ModuleTarget(module_name="warehouse_assets.definitions", attribute=None,
                                  working_directory=str(REPO_ROOT),
                                  location_name="warehouse_assets")
            with (
                dg.DagsterInstance.from_config(str(home)) as instance,
                create_test_daemon_workspace_context(target, instance) as workspace,
            ):
                # The writer_pools sensor's tick, as the daemon runs it when the location loads.
                defs = dg.Definitions(assets=build_replication_assets(env.config(NPS_YAML)),
                                      sensors=[writer_pools], resources=env.resources)
                with dg.build_sensor_context(instance=instance,
                                             repository_def=defs.get_repository_def()) as context:
                    tick = writer_pools.evaluate_tick(context)
                assert "raw_data.nps" in tick.skip_message
                daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)

                def iterate() -> tuple[dg.DagsterRunStatus, dg.DagsterRunStatus]:
                    list(daemon.run_iteration(workspace))
                    a, b = _runs(instance, [run_a, run_b])
                    return a.status, b.status

                assert {r.status for r in _runs(instance, [run_a, run_b])} == {
                    dg.DagsterRunStatus.QUEUED}
                status_a, status_b = iterate()
                assert status_a != dg.DagsterRunStatus.QUEUED  # launched
                assert status_b == dg.DagsterRunStatus.QUEUED  # same pool: raw_data.nps
                _until("run A's load to wait on the table lock",
                       lambda: _locked_waiters(warehouse) > 0)
                status_a, status_b = iterate()
                assert status_a == dg.DagsterRunStatus.STARTED
                assert status_b == dg.DagsterRunStatus.QUEUED  # not failed, not started

                lock.commit()  # run A's load proceeds and finishes
                _until("run A to end", lambda: instance.get_run_by_id(run_a).is_finished)
                _, status_b = iterate()
                assert status_b != dg.DagsterRunStatus.QUEUED
                _until("run B to end", lambda: instance.get_run_by_id(run_b).is_finished)
                rec_a, rec_b = (instance.get_run_record_by_id(i) for i in (run_a, run_b))
    finally:
        holder.close()
    assert rec_a.dagster_run.status == rec_b.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert rec_b.start_time >= rec_a.end_time  # the writes never interleaved
    with sa.create_engine(os.environ["SOURCE_DB_URL"]).connect() as conn:
        expected = conn.execute(sa.text(
            f"SELECT id, score FROM {env.source_schema}.nps WHERE NOT deleted AND "
            "modified_at >= :a AND modified_at < :b ORDER BY id"),
            {"a": d0, "b": d2 + dt.timedelta(days=1)}).all()
    got = [(r[0], r[-1]) for r in env.warehouse_rows("raw_data.nps", "id")]
    assert got == [tuple(r) for r in expected] and len(got) > 20
    warehouse.dispose()
