"""`dagster asset materialize` processes: one SIGKILLed while its load transaction is open leaves
no visible half-state; two started together on the same partition end as one run would."""

import os
import signal
import subprocess
import sys

import sqlalchemy as sa

from warehouse_assets_tests.reliability.conftest import (
    DAY,
    events_yaml,
    pg_backends,
    seed_events,
    source_events,
    target_events,
    wait_for,
)


def _cli(env, home: str) -> subprocess.Popen:
    """A materialization of the events partition in its own process group and Dagster home."""
    yaml_path = env.tmp / "replication.yaml"
    yaml_path.write_text(events_yaml().replace("{schema}", env.source_schema))
    os.makedirs(env.tmp / home, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m",
         "warehouse_assets.definitions", "--select",
         f"staging/{env.source_schema}/events,raw_data/events", "--partition", DAY],
        env={**os.environ, "REPLICATION_YAML": str(yaml_path), "DAGSTER_HOME": str(env.tmp / home)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _warehouse_session() -> sa.Connection:
    return sa.create_engine(os.environ["WAREHOUSE_DB_URL"], poolclass=sa.pool.NullPool).connect()


def test_sigkill_during_load_leaves_no_half_state(services_env):
    env = services_env
    seed_events(env.source_schema, 3000)
    config = env.config(events_yaml())
    assert env.replicate(config, start=DAY).success
    before = target_events()
    seed_events(env.source_schema, 3500, salt="v2")
    with _warehouse_session() as locker:
        # Holding one target row makes the load's DELETE wait: its transaction is open, mid-merge.
        locker.execute(sa.text("SELECT * FROM raw_data.events WHERE id = 1 FOR UPDATE"))
        proc = _cli(env, "killed")
        (pid,) = wait_for(lambda: pg_backends("wait_event_type = 'Lock' AND query LIKE 'DELETE%'"),
                          "the load's DELETE waiting on the held row")
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its step processes, like an OOM kill
        proc.wait()
        assert target_events() == before
    # The orphaned backend finds its client gone and rolls back; nothing of it becomes visible.
    wait_for(lambda: not pg_backends(f"pid = {pid}"), "the killed load's backend to exit")
    assert target_events() == before
    assert env.replicate(config, start=DAY).success
    assert target_events() == source_events(env.source_schema)


def test_two_runs_of_one_partition_at_once_end_as_one_run(services_env):
    env = services_env
    seed_events(env.source_schema, 3000)
    assert env.replicate(env.config(events_yaml()), start=DAY).success
    seed_events(env.source_schema, 3500, salt="v2")
    with _warehouse_session() as locker:
        # Both loads reach the target while it is locked, then go at once when it is released.
        locker.execute(sa.text("LOCK TABLE raw_data.events IN ACCESS EXCLUSIVE MODE"))
        procs = [_cli(env, "a"), _cli(env, "b")]
        wait_for(lambda: len(pg_backends("wait_event_type = 'Lock'")) == 2,
                 "both loads to wait on the target")
        locker.rollback()
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert target_events() == source_events(env.source_schema)
