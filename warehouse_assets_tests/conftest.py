"""Fixtures: the embedded default in a temporary folder, and the services environment
(MariaDB 127.0.0.1:3306, PostgreSQL 127.0.0.1:5432, an S3 server on loopback started here).

Service tests skip with a reason when MariaDB or PostgreSQL is unreachable, except under CI=true,
where they fail instead: CI must never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets.config import ReplicationConfig, parse_config
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets.resources import build_resources
from warehouse_assets.settings import Settings

MARIADB = os.environ.get("TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306")
POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
RANGE_START = "dagster/asset_partition_range_start"


# The repo's dagster.yaml keeps storage relative to the current folder (.data/dagster); a test
# instance takes the same settings with its storage under its own home instead.
STORAGE_KEYS = ("storage", "local_artifact_storage", "compute_logs")


def project_instance(home: Path, **overrides: object) -> Path:
    """Write the repo's dagster.yaml into home, storage under home/storage; returns home."""
    import yaml

    from warehouse_assets.settings import REPO_ROOT

    instance = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    storage = str(home / "storage")
    instance["storage"]["sqlite"]["base_dir"] = storage
    instance["local_artifact_storage"]["config"]["base_dir"] = storage
    instance["compute_logs"]["config"]["base_dir"] = str(home / "storage" / "logs")
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump({**instance, **overrides}))
    return home


def table_yaml(table: str, start_date: str = "2026-10-01", mode: str = "incremental",
               soft_delete: str | None = None) -> str:
    """Replication YAML for one source table {schema}.<table> -> raw_data.<table>, keyed on id;
    Env.config fills in {schema}."""
    incremental = f"    cursor: modified_at\n    start_date: \"{start_date}\"\n"
    return (
        f"tables:\n  - source: {{schema}}.{table}\n    target: raw_data.{table}\n"
        f"    mode: {mode}\n    primary_key: [id]\n"
        + (incremental if mode == "incremental" else "")
        + (f"    soft_delete: {soft_delete}\n" if soft_delete else "")
    )


# The demo's incremental nps table, as the shipped replication.yaml declares it.
NPS_YAML = table_yaml("nps", start_date="2023-04-20", soft_delete="deleted")
RANGE_END = "dagster/asset_partition_range_end"


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every message in the failed steps' error chains, joined."""
    parts = []
    for event in result.all_events:
        if event.is_step_failure:
            err = event.step_failure_data.error
            while err is not None:
                parts.append(err.message)
                err = err.cause
    return "\n".join(parts)


def _reachable(url: str) -> str | None:
    u = sa.make_url(url)
    try:
        socket.create_connection((u.host, u.port), timeout=2).close()
    except OSError as exc:
        return f"{u.get_backend_name()} at {u.host}:{u.port} unreachable ({exc})"
    return None


def require_service(url: str) -> None:
    reason = _reachable(url)
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}; service tests must run in CI")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def mariadb_server() -> str:
    """URL of the MariaDB server (no database)."""
    require_service(MARIADB)
    return MARIADB


@pytest.fixture(scope="session")
def postgres_server() -> str:
    require_service(POSTGRES)
    return POSTGRES


@pytest.fixture
def mysql_db(mariadb_server: str) -> Iterator[tuple[str, str]]:
    """A fresh MariaDB database: (schema name, SQLAlchemy URL with it as default)."""
    name = f"wa_src_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(mariadb_server)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    yield name, f"{mariadb_server}/{name}?charset=utf8mb4"
    with admin.begin() as conn:
        # Engines are cached per URL and keep pooled connections: close this database's, or a
        # whole suite exhausts max_connections.
        for (conn_id,) in conn.execute(sa.text(
                "SELECT id FROM information_schema.processlist WHERE db = :db "
                "AND id <> CONNECTION_ID()"), {"db": name}).all():
            with contextlib.suppress(sa.exc.DBAPIError):  # it may have gone meanwhile
                conn.execute(sa.text(f"KILL CONNECTION {int(conn_id)}"))
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database; its URL."""
    name = f"wa_wh_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"{postgres_server}/{name}"
    from warehouse_assets.lib.warehouse import resource

    resource._engine.cache_clear()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 API server on a loopback port; sets the AWS_* variables boto3 reads."""
    from moto.server import ThreadedMotoServer

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing-key-id",
        AWS_SECRET_ACCESS_KEY="testing-secret-key",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh bucket; the staging URL s3://<bucket>/stage."""
    import boto3

    name = f"wa-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return f"s3://{name}/stage"


@dataclass
class Env:
    """One environment's resources, and helpers to run the pipeline in it."""

    settings: Settings
    source_schema: str
    tmp: Path

    @property
    def resources(self) -> dict:
        return build_resources(self.settings)

    def resource(self, name: str):
        """A resource with its EnvVars resolved, for use outside a run."""
        return self.resources[name].process_config_and_initialize()

    def config(self, yaml_text: str) -> ReplicationConfig:
        import yaml

        return parse_config(yaml.safe_load(yaml_text.replace("{schema}", self.source_schema)))

    def materialize(self, assets: list, selection=None, start: str | None = None,
                    end: str | None = None, raise_on_error: bool = True,
                    instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
        tags = {RANGE_START: start, RANGE_END: end or start} if start else {}
        return dg.materialize(
            assets,
            selection=selection,
            resources=self.resources,
            instance=instance or dg.DagsterInstance.ephemeral(),
            tags=tags,
            raise_on_error=raise_on_error,
        )

    def replicate(self, config: ReplicationConfig, start: str | None = None, end: str | None = None,
                  **kw) -> dg.ExecuteInProcessResult:
        """Run every replication asset of config (partitioned ones over start..end)."""
        assets = build_replication_assets(config)
        partitioned = [a for a in assets if isinstance(a, dg.AssetsDefinition) and a.partitions_def]
        plain = [a for a in assets if isinstance(a, dg.AssetsDefinition) and not a.partitions_def]
        result = None
        if partitioned and start:
            result = self.materialize(partitioned, start=start, end=end, **kw)
        if plain:
            result = self.materialize(plain, **kw)
        return result

    def warehouse_rows(self, table: str, order_by: str = "1") -> list[tuple]:
        wh = self.resource("warehouse")
        return wh.query(f"SELECT * FROM {table} ORDER BY {order_by}")


@pytest.fixture
def embedded_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """The embedded default: SQLite source, local staging folder, DuckDB, under tmp_path."""
    for var in ("SOURCE_DB_URL", "STAGING_URL", "WAREHOUSE_DB_URL", "REPLICATION_YAML"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WAREHOUSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RETRY_MAX", "0")  # one attempt; operations/test_retries.py tests retries
    return Env(Settings.from_env(), "prod", tmp_path)


@pytest.fixture
def services_env(mysql_db, postgres_db, s3_bucket, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Env:
    """MariaDB source, S3 server staging, PostgreSQL warehouse, passed as environment variables."""
    schema, source_url = mysql_db
    monkeypatch.setenv("SOURCE_DB_URL", source_url)
    monkeypatch.setenv("STAGING_URL", s3_bucket)
    monkeypatch.setenv("WAREHOUSE_DB_URL", postgres_db)
    monkeypatch.setenv("RETRY_MAX", "0")  # one attempt; operations/test_retries.py tests retries
    return Env(Settings.from_env(), schema, tmp_path)


@pytest.fixture(params=["connectorx", "pymysql"])
def extract_path(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through the fast reader and the pymysql fallback alike."""
    monkeypatch.setenv("SOURCE_FAST_PATH", "1" if request.param == "connectorx" else "0")
    return request.param
