"""`python -m warehouse_assets.serve`: every route, the GraphQL API and its websocket need the password.

The server runs for real (uvicorn, the code location in its own process) on a free loopback port.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster_webserver
import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from warehouse_assets.definitions import defs
from warehouse_assets.settings import REPO_ROOT

USER, PASSWORD = "analyst", "ui-Pa55word-7f3a"
SERVE = [sys.executable, "-m", "warehouse_assets.serve"]
STATIC = next((Path(dagster_webserver.__file__).parent / "webapp/build/_next/static").rglob("*.css"))
ROUTES = [
    ("GET", "/"),
    ("GET", "/assets"),
    ("GET", "/runs/b5a1e0c2-0000-4000-8000-000000000000"),
    ("GET", "/server_info"),
    ("GET", "/graphql?query=%7Bversion%7D"),
    ("POST", "/graphql"),
    ("GET", "/favicon.png"),
    ("GET", "/" + STATIC.relative_to(STATIC.parents[3]).as_posix()),
    ("GET", "/logs/some/captured.log"),
    ("GET", "/download_debug/b5a1e0c2-0000-4000-8000-000000000000"),
    ("POST", "/report_asset_materialization/raw_data/nps"),
]
GRAPHQL = {"query": "{ version assetNodes { assetKey { path } } }"}


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DAGSTER_UI_") and k not in ("SOURCE_DB_URL", "STAGING_URL",
                                                             "WAREHOUSE_DB_URL")}
    env.update(DAGSTER_HOME=str(tmp), WAREHOUSE_DATA_DIR=str(tmp / "data"), **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The authenticated UI on a loopback port; its base URL."""
    tmp = tmp_path_factory.mktemp("ui")
    (tmp / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    proc = subprocess.Popen(
        [*SERVE, "--host", "127.0.0.1", "--port", str(port)],
        env=_env(tmp, DAGSTER_UI_USER=USER, DAGSTER_UI_PASSWORD=PASSWORD),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 180  # a readiness wait, not an assertion on speed
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"server did not start:\n{proc.communicate()[0]}")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.communicate(timeout=60)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


BAD_CREDENTIALS = [
    {},
    _basic(USER, "wrong"),
    _basic("someone", PASSWORD),
    _basic(USER, PASSWORD + "x"),
    _basic(USER, ""),
    {"Authorization": "Basic " + base64.b64encode(PASSWORD.encode()).decode()},
    {"Authorization": "Basic !!not-base64!!"},
    {"Authorization": f"Bearer {PASSWORD}"},
]


@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
def test_every_route_refuses_without_the_right_credentials(server: str, headers: dict) -> None:
    for method, path in ROUTES:
        body = json.dumps(GRAPHQL) if method == "POST" else None
        r = requests.request(method, server + path, headers={**headers, "Content-Type":
                             "application/json"}, data=body, timeout=60, allow_redirects=False)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["WWW-Authenticate"].startswith("Basic ")
        assert "version" not in r.text and "<html" not in r.text.lower()


@pytest.mark.parametrize("subprotocol", ["graphql-ws", "graphql-transport-ws"])
@pytest.mark.parametrize("headers", BAD_CREDENTIALS[:3])
def test_graphql_websocket_refuses_without_the_right_credentials(
    server: str, subprotocol: str, headers: dict
) -> None:
    url = server.replace("http", "ws") + "/graphql"
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(url, subprotocols=[subprotocol], additional_headers=headers, open_timeout=60),
    ):
        pass
    assert refused.value.response.status_code == 401


def test_with_credentials_the_ui_and_graphql_work(server: str) -> None:
    auth = _basic(USER, PASSWORD)
    page = requests.get(server + "/assets", headers=auth, timeout=60)
    assert page.status_code == 200 and "<html" in page.text.lower()
    static = requests.get(server + ROUTES[7][1], headers=auth, timeout=60)
    assert static.status_code == 200 and static.content == STATIC.read_bytes()

    data = requests.post(server + "/graphql", json=GRAPHQL, headers=auth, timeout=60).json()["data"]
    assert data["version"] == dagster_webserver.__version__
    served = {tuple(n["assetKey"]["path"]) for n in data["assetNodes"]}
    assert served == {tuple(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}


def test_with_credentials_the_graphql_websocket_works(server: str) -> None:
    with connect(server.replace("http", "ws") + "/graphql", subprotocols=["graphql-ws"],
                 additional_headers=_basic(USER, PASSWORD), open_timeout=60) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=60)) == {"type": "connection_ack"}
        ws.send(json.dumps({"type": "start", "id": "1", "payload": {
            "query": 'subscription { pipelineRunLogs(runId: "missing") { __typename } }'}}))
        message = json.loads(ws.recv(timeout=60))
    assert message["id"] == "1" and message["type"] == "data"
    assert message["payload"]["data"]["pipelineRunLogs"]["__typename"] == (
        "PipelineRunLogsSubscriptionFailure"
    )


@pytest.mark.parametrize(
    ("args", "extra", "says"),
    [
        ([], {}, "DAGSTER_UI_PASSWORD"),
        ([], {"DAGSTER_UI_USER": USER}, "both"),
        ([], {"DAGSTER_UI_PASSWORD": PASSWORD}, "both"),
        ([], {"DAGSTER_UI_USER": USER, "DAGSTER_UI_PASSWORD": ""}, "both"),
        (["--local-only", "--host", "0.0.0.0"], {}, "loopback only"),
        (["--host", "192.168.1.10"], {"DAGSTER_UI_LOCAL_ONLY": "1"}, "loopback only"),
    ],
)
def test_refuses_to_start_without_credentials_unless_local_only(
    tmp_path: Path, args: list[str], extra: dict, says: str
) -> None:
    done = subprocess.run([*SERVE, "--port", str(_free_port()), *args], check=False, cwd=REPO_ROOT,
                          env=_env(tmp_path, **extra), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert says in done.stderr
    assert "serving" not in done.stdout


def test_local_only_serves_on_loopback_without_a_password() -> None:
    from warehouse_assets.serve import listen_plan

    assert listen_plan(None, True, {}) == ("127.0.0.1", None)
    assert listen_plan("::1", True, {}) == ("::1", None)
    assert listen_plan(None, False, {"DAGSTER_UI_USER": "u", "DAGSTER_UI_PASSWORD": "p"}) == (
        "0.0.0.0", ("u", "p"))
