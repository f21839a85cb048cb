"""Instance configuration: the production dagster.yaml stores runs and events in PostgreSQL, and
shares the run queue, pools and run monitoring of the top-level dagster.yaml."""

import datetime as dt
import json
import shutil

import dagster as dg
import sqlalchemy as sa
import yaml

from warehouse_assets import demo
from warehouse_assets.settings import REPO_ROOT
from warehouse_assets_tests.operations import NPS_YAML

SHARED = ("concurrency", "run_monitoring")


def _yaml(path: str) -> dict:
    return yaml.safe_load((REPO_ROOT / path).read_text())


def test_both_instances_share_queue_pools_and_monitoring():
    top, prod = _yaml("dagster.yaml"), _yaml("deploy/dagster.yaml")
    assert {k: top[k] for k in SHARED} == {k: prod[k] for k in SHARED}
    assert top["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    assert top["run_monitoring"]["enabled"] is True


def test_local_instance_needs_no_environment_and_stores_under_data(tmp_path, monkeypatch):
    """The repo's dagster.yaml reads no environment variable: its storage is .data/dagster under
    the current folder (the repo root, where Dagster's commands are run)."""
    monkeypatch.chdir(tmp_path)
    for var in ("DAGSTER_HOME", "DAGSTER_STORAGE_DIR", "WAREHOUSE_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    with dg.DagsterInstance.from_config(str(REPO_ROOT)) as instance:
        assert instance.get_runs() == []
    assert (tmp_path / ".data" / "dagster" / "history" / "runs.db").is_file()


def test_local_instance_queues_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its storage, .data/dagster, under tmp
    with dg.DagsterInstance.from_config(str(REPO_ROOT)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
        pools = instance.get_concurrency_config().pool_config
        assert (pools.default_pool_limit, pools.pool_granularity.value) == (1, "run")


def test_production_instance_stores_events_in_postgres(postgres_db, embedded_env, monkeypatch,
                                                       tmp_path):
    url = sa.make_url(postgres_db)
    for name, value in {"HOST": url.host, "PORT": str(url.port or 5432), "USER": url.username,
                        "PASSWORD": url.password or "", "DB": url.database}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    env = embedded_env
    demo.seed(f"sqlite:///{env.tmp / 'source.sqlite'}")
    first, last = demo.demo_days()
    # DAGSTER_HOME holds a copy of the production file, as in a deployment.
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        result = env.replicate(env.config(NPS_YAML), start=first.isoformat(),
                               end=last.isoformat(), instance=instance)
        assert result.success
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    engine = sa.create_engine(postgres_db)
    with engine.connect() as conn:
        events = conn.execute(sa.text(
            "SELECT asset_key, partition FROM event_logs WHERE run_id = :r "
            "AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY id"),
            {"r": result.run_id}).all()
        status = conn.execute(sa.text("SELECT status FROM runs WHERE run_id = :r"),
                              {"r": result.run_id}).scalar_one()
    engine.dispose()
    days = {(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)}
    for path in (["staging", "prod", "nps"], ["raw_data", "nps"]):  # one event per day per asset
        assert sorted(p for k, p in events if json.loads(k) == path) == sorted(days)
    assert len(events) == 2 * len(days)
    assert status == "SUCCESS"
    # The materialization's evidence (rows loaded) is what the warehouse holds.
    rows = env.warehouse_rows("raw_data.nps")
    mat = result.asset_materializations_for_node("raw_data__nps")[0]
    assert mat.metadata["target_rows"].value == len(rows) > 100
