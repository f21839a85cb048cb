"""The cluster deployments: every deploy/dagster*.yaml passes Dagster's own instance config schema
(a typo fails here, not on the cluster), the ECS and Kubernetes instances keep the single-host
rules (one writer per table, bounded backfills), and a run launched on the ECS instance becomes an
ECS RunTask, against moto's ECS API on loopback, with the configured task definition and overrides.
"""

from __future__ import annotations

import importlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config

from warehouse_assets.operations.backfill import BACKFILL_TAG
from warehouse_assets.operations.schedules import ASSET_JOB
from warehouse_assets.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
INSTANCES = sorted(p.name for p in DEPLOY.glob("dagster*.yaml"))
CLUSTERS = ("dagster-ecs.yaml", "dagster-k8s.yaml")
# Sections whose configurable class is loaded from module + class with its own config schema.
CLASS_SECTIONS = ("run_launcher", "compute_logs", "local_artifact_storage", "run_coordinator")


def _yaml(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _home(tmp_path: Path, name: str, text: str | None = None) -> Path:
    """A DAGSTER_HOME holding deploy/<name> as its dagster.yaml (optionally edited)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(text if text is not None else (DEPLOY / name).read_text())
    return home


@pytest.fixture
def deploy_env(monkeypatch) -> None:
    """Every environment variable the deploy files read, set as a deployment sets them."""
    for name in sorted({n for p in DEPLOY.glob("dagster*.yaml")
                        for n in re.findall(r"env: (\w+)", p.read_text())}):
        monkeypatch.setenv(name, "5432" if name.endswith("_PORT") else f"set-{name.lower()}")


def _validate(home: Path) -> dict:
    """Dagster's instance schema, then each configurable class's own schema (what
    DagsterInstance.from_config does, without connecting to PostgreSQL, ECS or Kubernetes)."""
    config, _ = dagster_instance_config(str(home))
    for section in CLASS_SECTIONS:
        if section in config:
            spec = config[section]
            klass = getattr(importlib.import_module(spec["module"]), spec["class"])
            result = process_config(resolve_to_config_type(klass.config_type()),
                                    spec.get("config") or {})
            if not result.success:
                raise DagsterInvalidConfigError(f"{section} of {home}", result.errors, spec)
    return config


def test_deploy_has_the_single_host_and_both_cluster_instances():
    assert INSTANCES == ["dagster-ecs.yaml", "dagster-k8s.yaml", "dagster.yaml"]


@pytest.mark.parametrize("name", INSTANCES)
def test_deploy_instance_passes_dagster_config_schema(name, tmp_path, deploy_env):
    config = _validate(_home(tmp_path, name))
    assert "postgres" in config["storage"]
    expected = {"dagster.yaml": None, "dagster-ecs.yaml": "EcsRunLauncher",
                "dagster-k8s.yaml": "K8sRunLauncher"}[name]
    assert (config.get("run_launcher") or {}).get("class") == expected


@pytest.mark.parametrize(("name", "good", "typo"), [
    ("dagster-ecs.yaml", "    container_name: run", "    container_nmae: run"),
    ("dagster-k8s.yaml", "    instance_config_map:", "    instance_configmap:"),
    ("dagster-ecs.yaml", "run_launcher:", "run_launchr:"),
    ("dagster-k8s.yaml", "    max_concurrent_runs: 16", "    max_concurent_runs: 16"),
])
def test_a_typo_in_a_deploy_instance_fails(name, good, typo, tmp_path, deploy_env):
    text = (DEPLOY / name).read_text()
    assert text.count(good) == 1
    home = _home(tmp_path, name, text.replace(good, typo))
    with pytest.raises(DagsterInvalidConfigError, match=typo.strip().split(":")[0]):
        _validate(home)


@pytest.mark.parametrize("name", CLUSTERS)
def test_cluster_instances_keep_the_single_host_rules_with_more_room(name):
    """Same storage, pools and run monitoring as deploy/dagster.yaml; the same tag rules with
    limits at least as large; and UI backfills bounded per backfill."""
    single, cluster = _yaml("dagster.yaml"), _yaml(name)
    for key in ("storage", "local_artifact_storage", "run_monitoring", "telemetry"):
        assert cluster[key] == single[key], key
    assert cluster["concurrency"]["pools"] == single["concurrency"]["pools"] == {
        "default_limit": 1, "granularity": "run"}  # one writer per table, whatever the fan-out
    runs, single_runs = cluster["concurrency"]["runs"], single["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] > single_runs["max_concurrent_runs"]
    limits = {rule["key"]: rule for rule in runs["tag_concurrency_limits"]}
    for rule in single_runs["tag_concurrency_limits"]:
        assert limits[rule["key"]].get("value") == rule.get("value")
        assert limits[rule["key"]]["limit"] >= rule["limit"]
    assert limits["landing/day"]["limit"] == 1
    assert limits[BACKFILL_TAG]["limit"] < runs["max_concurrent_runs"]
    ui_backfills = limits["dagster/backfill"]
    assert ui_backfills["value"] == {"applyLimitPerUniqueValue": True}
    assert 1 < ui_backfills["limit"] < runs["max_concurrent_runs"]


@pytest.fixture
def pg_env(postgres_db, monkeypatch) -> str:
    """DAGSTER_PG_* pointing at a fresh PostgreSQL database, as the deploy files read them."""
    url = sa.make_url(postgres_db)
    for name, value in {"HOST": url.host, "PORT": str(url.port or 5432), "USER": url.username,
                        "PASSWORD": url.password or "", "DB": url.database}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
    return postgres_db


@pytest.fixture
def task_metadata(monkeypatch) -> Iterator[dict]:
    """ECS's task metadata endpoint on loopback (what ECS serves inside a task): the daemon's own
    task, from which EcsRunLauncher copies the cluster, launch type and network."""
    served: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # http.server calls it by this name
            body = json.dumps(served).encode()
            self.send_response(200 if self.path == "/v4/task" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4",
                       f"http://127.0.0.1:{server.server_address[1]}/v4")
    yield served
    server.shutdown()
    server.server_close()


def _ecs_cluster(name: str) -> dict:
    """A Fargate cluster in moto: VPC, subnet, security group, the run task definition (image,
    container "run") and the daemon's task running in it."""
    import boto3

    ec2, ecs = boto3.client("ec2"), boto3.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{name}-sg", Description="dagster",
                                      VpcId=vpc)["GroupId"]
    cluster = ecs.create_cluster(clusterName=name)["cluster"]["clusterArn"]

    def register(family: str, command: list[str]) -> str:
        return ecs.register_task_definition(
            family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="512", memory="1024",
            containerDefinitions=[{"name": "run", "image": f"{name}:test", "memory": 1024,
                                   "command": command}],
        )["taskDefinition"]["taskDefinitionArn"]

    run_task_definition = register(f"{name}-run", ["dagster", "api", "execute_run"])
    register(f"{name}-daemon", ["dagster-daemon", "run"])
    daemon = ecs.run_task(
        cluster=name, taskDefinition=f"{name}-daemon", launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet],
                                                      "securityGroups": [group]}},
    )["tasks"][0]["taskArn"]
    return {"ecs": ecs, "cluster": cluster, "subnet": subnet, "group": group, "daemon": daemon,
            "run_task_definition": run_task_definition}


BACKFILL_ID = "raw_data.nps:2026-11-01..2026-11-30:abc123"


def _launch_a_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    """Create a run of raw_data/nps from the code location and launch it through the instance's
    run launcher, as the daemon does when the queue admits it."""
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    origin = LoadableTargetOrigin(module_name="warehouse_assets.definitions",
                                  working_directory=str(REPO_ROOT))
    with in_process_test_workspace(instance, origin) as workspace:
        location = workspace.get_code_location(workspace.code_location_names[0])
        repo = next(iter(location.get_repositories().values()))
        remote_job = repo.get_full_job(ASSET_JOB)
        defs = importlib.import_module("warehouse_assets.definitions").defs
        run = instance.create_run_for_job(
            job_def=defs.get_repository_def().get_job(ASSET_JOB),
            asset_selection={dg.AssetKey(["raw_data", "nps"])},
            tags={BACKFILL_TAG: BACKFILL_ID, "dagster/partition": "2026-11-01"},
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
        )
        instance.launch_run(run.run_id, workspace)
    return run


def test_ecs_instance_launches_a_run_as_an_ecs_run_task(s3_server, pg_env, task_metadata,
                                                        tmp_path, monkeypatch):
    """deploy/dagster-ecs.yaml, unchanged, against moto's ECS on loopback: launching a run (what
    the daemon does when the queue admits it) calls RunTask with the configured task definition,
    the "run" container's command `dagster api execute_run <this run>`, the cpu/memory overrides,
    the daemon's cluster and network, and the run's tags."""
    import boto3
    from dagster._grpc.types import ExecuteRunArgs
    from dagster._serdes import deserialize_value
    from dagster_aws.ecs import EcsRunLauncher

    aws = _ecs_cluster("warehouse")
    task_metadata.update(Cluster=aws["cluster"], TaskARN=aws["daemon"])
    boto3.client("s3").create_bucket(Bucket="warehouse-compute-logs")
    monkeypatch.setenv("DAGSTER_ECS_TASK_DEFINITION", "warehouse-run")  # the family, as a user
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_BUCKET", "warehouse-compute-logs")
    home = _home(tmp_path, "dagster-ecs.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_launcher, EcsRunLauncher)
        # The family is resolved to the registered ARN when the instance loads.
        assert instance.run_launcher.task_definition == aws["run_task_definition"]
        run = _launch_a_run(instance)

        ecs = aws["ecs"]
        arns = [a for a in ecs.list_tasks(cluster="warehouse")["taskArns"] if a != aws["daemon"]]
        assert len(arns) == 1  # one run, one task
        task = ecs.describe_tasks(cluster="warehouse", tasks=arns, include=["TAGS"])["tasks"][0]
        launched = instance.get_run_by_id(run.run_id)
        assert launched.tags["ecs/task_arn"] == task["taskArn"]
        assert launched.tags["ecs/cluster"] == aws["cluster"]

    assert task["taskDefinitionArn"] == aws["run_task_definition"]
    assert task["clusterArn"] == aws["cluster"]
    assert task["launchType"] == "FARGATE"  # copied from the daemon's task
    subnets = [d["value"] for a in task["attachments"] for d in a["details"]
               if d["name"] == "subnetId"]
    assert subnets == [aws["subnet"]]
    eni = next(d["value"] for a in task["attachments"] for d in a["details"]
               if d["name"] == "networkInterfaceId")
    assert [g["GroupId"] for g in boto3.resource("ec2").NetworkInterface(eni).groups] == [
        aws["group"]]
    overrides = task["overrides"]
    assert (overrides["cpu"], overrides["memory"]) == ("1024", "4096")  # run_resources
    [container] = overrides["containerOverrides"]
    assert container["name"] == "run"
    assert (container["cpu"], container["memory"]) == (1024, 4096)
    assert container["command"][:3] == ["dagster", "api", "execute_run"]
    args = deserialize_value(container["command"][3], ExecuteRunArgs)
    assert args.run_id == run.run_id
    assert args.job_origin.job_name == ASSET_JOB
    assert args.job_origin.repository_origin.code_pointer.module == "warehouse_assets.definitions"
    # The worker opens the same instance: PostgreSQL storage read from its own environment.
    assert args.instance_ref.run_storage_data.class_name == "PostgresRunStorage"
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags["dagster/run_id"] == run.run_id
    assert tags["app"] == "warehouse_assets"
    assert tags[BACKFILL_TAG] == BACKFILL_ID  # propagated
    assert tags["dagster/partition"] == "2026-11-01"


@pytest.fixture
def k8s_api(tmp_path) -> Iterator[dict]:
    """A Kubernetes API server on loopback that accepts Job creations and records them, and a
    kubeconfig for it: {"kubeconfig": path, "jobs": [(path, body), ...]}."""
    recorded: dict = {"jobs": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # http.server calls it by this name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            recorded["jobs"].append((self.path, body))
            body.setdefault("metadata", {})["uid"] = "test-uid"
            out = json.dumps(body).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test",
                      "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "test", "user": {"token": "test-token"}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    recorded["kubeconfig"] = str(kubeconfig)
    yield recorded
    server.shutdown()
    server.server_close()


def test_k8s_instance_launches_a_run_as_a_job(pg_env, k8s_api, tmp_path, monkeypatch):
    """deploy/dagster-k8s.yaml, unchanged, through DagsterInstance.from_config: launching a run
    creates one Job in the namespace, whose pod runs `dagster api execute_run <this run and its
    instance>` in the job image with the PostgreSQL password Secret, the env Secret and ConfigMap,
    the service account and the resources. Outside a cluster the in-cluster
    credentials do not exist: they are replaced by a kubeconfig for an API server on loopback."""
    import kubernetes
    from dagster._grpc.types import ExecuteRunArgs
    from dagster._serdes import deserialize_value
    from dagster_k8s import K8sRunLauncher

    monkeypatch.setattr(
        kubernetes.config, "load_incluster_config",
        lambda *a, **k: kubernetes.config.load_kube_config(config_file=k8s_api["kubeconfig"]))
    monkeypatch.setenv("DAGSTER_K8S_JOB_IMAGE", "registry.example/warehouse_assets:1.0")
    monkeypatch.setenv("DAGSTER_K8S_NAMESPACE", "warehouse")
    monkeypatch.setenv("DAGSTER_COMPUTE_LOGS_BUCKET", "warehouse-compute-logs")
    home = _home(tmp_path, "dagster-k8s.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_launcher, K8sRunLauncher)
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        run = _launch_a_run(instance)

    [(path, job)] = k8s_api["jobs"]  # one run, one Job
    assert path == "/apis/batch/v1/namespaces/warehouse/jobs"
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "warehouse-assets"
    [container] = pod["containers"]
    assert container["image"] == "registry.example/warehouse_assets:1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"][:3] == ["dagster", "api", "execute_run"]
    args = deserialize_value(container["args"][3], ExecuteRunArgs)
    assert args.run_id == run.run_id
    assert args.job_origin.repository_origin.code_pointer.module == "warehouse_assets.definitions"
    assert container["resources"] == {"requests": {"cpu": "1", "memory": "4Gi"},
                                      "limits": {"memory": "4Gi"}}
    env_from = [e.get("configMapRef", e.get("secretRef"))["name"] for e in container["envFrom"]]
    assert env_from == ["warehouse-assets-config", "warehouse-assets-env"]
    password = next(e for e in container["env"] if e["name"] == "DAGSTER_PG_PASSWORD")
    assert password["valueFrom"]["secretKeyRef"]["name"] == "warehouse-assets-postgres"
    home_env = next(e for e in container["env"] if e["name"] == "DAGSTER_HOME")
    assert home_env["value"] == "/opt/dagster/dagster_home"
    # The worker opens the same instance: PostgreSQL storage read from its own environment.
    assert args.instance_ref.run_storage_data.class_name == "PostgresRunStorage"
    assert job["metadata"]["labels"]["app"] == "warehouse_assets"


def test_dockerfile_installs_the_project_without_dev_tools():
    """The image installs the project from pyproject.toml (no test extra), holds the ECS or
    Kubernetes instance as DAGSTER_HOME/dagster.yaml, and serves the code location."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    for sources in copies:
        for source in sources:
            if "$" not in source:
                assert (REPO_ROOT / source).exists(), source
    installs = [line for line in lines if "pip install" in line]
    assert installs and all("test" not in line and "-e " not in line for line in installs)
    assert "ARG INSTANCE=deploy/dagster-ecs.yaml" in lines
    assert "ENV DAGSTER_HOME=/opt/dagster/dagster_home" in lines
    assert _yaml("dagster-k8s.yaml")["run_launcher"]["config"]["dagster_home"] == (
        "/opt/dagster/dagster_home")
    cmd = json.loads(next(line for line in lines if line.startswith("CMD "))[4:])
    assert cmd[:3] == ["dagster", "code-server", "start"]
    assert cmd[cmd.index("-m") + 1] == "warehouse_assets.definitions"
    assert (REPO_ROOT / ".dockerignore").read_text().count(".venv") == 1


def test_dockerfile_k8s_extra_is_declared():
    """The Kubernetes image's EXTRAS=k8s names an extra of pyproject.toml with dagster-k8s."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("dagster-k8s") for dep in project["optional-dependencies"]["k8s"])
