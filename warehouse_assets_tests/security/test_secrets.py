"""Passwords in SOURCE_DB_URL and WAREHOUSE_DB_URL, the AWS secret key and the Slack webhook never
leave the process: not in logs, run config, event storage, metadata, error messages or reprs.

The pipeline runs through a persistent instance with the multiprocess executor (each step in its
own process, its stdout and stderr captured to disk), succeeds, fails, and the failure alert
fails too; then every byte the instance wrote and every log line is searched for the secrets.
"""

import io
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster_shared.serdes import serialize_value

from warehouse_assets import demo
from warehouse_assets.config import load_config
from warehouse_assets.lib import s3
from warehouse_assets.lib.source import database as source
from warehouse_assets.lib.warehouse import resource as warehouse
from warehouse_assets.operations.alerts import build_alert_sensor, build_slack_alerts
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets.resources import build_resources
from warehouse_assets_tests.operations import NPS_YAML


def replication_job() -> dg.JobDefinition:
    """The replication assets of the current environment (rebuilt in every step's process)."""
    defs = dg.Definitions(assets=build_replication_assets(load_config()),
                          jobs=[dg.define_asset_job("replicate")], resources=build_resources())
    return defs.resolve_job_def("replicate")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clear_client_caches() -> None:
    """Engines and the S3 client are cached per URL; a test's credentials must not outlive it."""
    for cache in (source._engine, warehouse._engine, s3.s3_client):
        cache.cache_clear()


@pytest.fixture
def secret_env(services_env, mariadb_server: str, postgres_server: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The services environment reached as users with passwords; the secrets by variable name."""
    tag = uuid.uuid4().hex[:10]
    schema = services_env.source_schema
    secrets = {
        "SOURCE_DB_URL": f"S3cr3t-my-{tag}",
        "WAREHOUSE_DB_URL": f"S3cr3t-pg-{tag}",
        "AWS_SECRET_ACCESS_KEY": f"S3cr3t-aws-{tag}",
        "SLACK_WEBHOOK_URL": f"S3cr3t-slack-{tag}",
    }
    user = f"wa_u_{tag}"
    mysql_admin = sa.create_engine(mariadb_server)
    with mysql_admin.begin() as conn:
        conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"),
                     {"pw": secrets["SOURCE_DB_URL"]})
        conn.execute(sa.text(f"GRANT ALL ON `{schema}`.* TO '{user}'@'%'"))
    # PostgreSQL on loopback trusts every role, so the password is not checked, but it is in the
    # URL, which is what must not leak.
    pg_url = sa.make_url(os.environ["WAREHOUSE_DB_URL"])
    pg_admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {user} LOGIN PASSWORD '{secrets['WAREHOUSE_DB_URL']}'"))
        conn.execute(sa.text(f'GRANT ALL ON DATABASE "{pg_url.database}" TO {user}'))
        conn.execute(sa.text(f"GRANT ALL ON SCHEMA public TO {user}"))

    source_url = sa.make_url(os.environ["SOURCE_DB_URL"]).set(
        username=user, password=secrets["SOURCE_DB_URL"])
    monkeypatch.setenv("SOURCE_DB_URL", source_url.render_as_string(hide_password=False))
    monkeypatch.setenv("WAREHOUSE_DB_URL", pg_url.set(
        username=user, password=secrets["WAREHOUSE_DB_URL"]).render_as_string(hide_password=False))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets["AWS_SECRET_ACCESS_KEY"])
    # Nothing listens there: the alert for the failed run fails to post.
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"http://127.0.0.1:{_closed_port()}/services/T0/B0/"
                       f"{secrets['SLACK_WEBHOOK_URL']}")
    monkeypatch.setenv("RETRY_MAX", "0")  # a failure is final at once
    tables = tmp_path / "replication.yaml"
    tables.write_text(NPS_YAML.replace("{schema}", schema))
    monkeypatch.setenv("REPLICATION_YAML", str(tables))
    _clear_client_caches()
    yield secrets
    _clear_client_caches()
    with pg_admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE usename = :u"), {"u": user})
    db_admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with db_admin.connect() as conn:  # the role's tables live in the test database
        conn.execute(sa.text(f"DROP OWNED BY {user}"))
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f"DROP ROLE {user}"))
    with mysql_admin.begin() as conn:
        conn.execute(sa.text(f"DROP USER '{user}'@'%'"))
    for engine in (mysql_admin, pg_admin, db_admin):
        engine.dispose()


def _run(instance: dg.DagsterInstance, keys: list[str], tags: dict | None = None):
    return dg.execute_job(
        dg.reconstructable(replication_job), instance,
        asset_selection=[dg.AssetKey.from_user_string(k) for k in keys], tags=tags or {},
    )


def test_secrets_appear_nowhere(services_env, secret_env: dict[str, str], tmp_path: Path,
                                capfd: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    schema = services_env.source_schema
    demo.seed(os.environ["SOURCE_DB_URL"], schema=schema)
    first, last = demo.demo_days()
    days = {"dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat()}
    nps = [f"staging/{schema}/nps", "raw_data/nps"]
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # every library's debug output, as the most verbose deployment
    places: dict[str, str] = {}
    (tmp_path / "instance").mkdir()
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as instance:
            assert _run(instance, nps, days).success
            # The pipeline really ran as these users: the warehouse holds the source's rows.
            wh = build_resources()["warehouse"].process_config_and_initialize()
            with sa.create_engine(os.environ["SOURCE_DB_URL"]).connect() as conn:
                expected = conn.execute(sa.text(
                    f"SELECT id, score FROM `{schema}`.nps WHERE NOT deleted ORDER BY id")).all()
            assert wh.query("SELECT id, score FROM raw_data.nps ORDER BY id") == [
                tuple(r) for r in expected]
            assert len(expected) > 500

            sensor = build_alert_sensor()
            cursor = sensor.evaluate_tick(dg.build_sensor_context(  # failures from now on
                instance=instance, resources={"slack_alerts": build_slack_alerts()})).cursor

            # A load whose warehouse is unreachable, and one whose source is: both fail.
            for var in ("WAREHOUSE_DB_URL", "SOURCE_DB_URL"):
                with monkeypatch.context() as m:
                    m.setenv(var, sa.make_url(os.environ[var]).set(port=_closed_port())
                             .render_as_string(hide_password=False))
                    _clear_client_caches()
                    failed = _run(instance, nps, days)
                    assert not failed.success
            _clear_client_caches()

            # The failure alert fails in the sensor: posted to a webhook nobody answers, and to
            # one missing its scheme (slack_sdk's error then quotes the URL).
            alert_errors = []
            webhook = os.environ["SLACK_WEBHOOK_URL"]
            for url in (webhook, webhook.removeprefix("http://")):
                monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
                context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                                  resources={"slack_alerts": build_slack_alerts()})
                # The daemon stores these errors on the tick and in the failed run's event log.
                alert_errors.append([r.error.to_string() for r in
                                     sensor.evaluate_tick(context).dagster_run_reactions])
            places["alert errors"] = "\n".join(e for errors in alert_errors for e in errors)
            assert [len(errors) for errors in alert_errors] == [2, 2]
            assert all("Invalid URL detected: ***" in e for e in alert_errors[1])

            runs = instance.get_runs()
            assert len(runs) == 3 and sum(r.is_failure for r in runs) == 2
            places["runs and run config"] = "\n".join(serialize_value(r) for r in runs)
            places["event log"] = "\n".join(
                serialize_value(e) for r in runs for e in instance.all_logs(r.run_id))
            places["failure messages"] = "\n".join(
                e.message + serialize_value(e.dagster_event)
                for r in runs for e in instance.all_logs(r.run_id)
                if e.dagster_event and e.dagster_event.is_step_failure)
            assert "LoadError" in places["failure messages"]  # the failures were recorded
            reprs = []
            for r in build_resources().values():
                reprs.append(f"{r!r} {r!s}")
                if not isinstance(r, dg.ConfigurableIOManager):  # those need their resources
                    with r.process_config_and_initialize_cm() as resolved:
                        reprs.append(f"{resolved!r} {resolved!s}")
            places["resource reprs"] = "\n".join(reprs)
        # Everything the instance stored on disk: event and run storage, captured step output.
        files = [p for p in (tmp_path / "instance").rglob("*") if p.is_file()]
        assert any("compute_logs" in p.parts for p in files)
        places["instance files"] = "\n".join(
            p.read_bytes().decode("utf-8", "replace") for p in files)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    places["python logging"] = captured.getvalue()
    out, err = capfd.readouterr()
    places["stdout and stderr"] = out + err

    leaks = [f"{name} in {place}: ...{text[max(text.find(secret) - 150, 0):][:300]}..."
             for place, text in places.items()
             for name, secret in secret_env.items() if secret in text]
    assert leaks == [], "\n\n".join(leaks)
