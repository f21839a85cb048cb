"""How long a large code location takes to load: `dagster definitions validate` and the UI's asset
graph with N replication entries (BENCH_ENTRIES, default 500) over 10 schemas, against the same
with the shipped 2 entries (Dagster's own floor). The source is unreachable on purpose: loading
definitions must never connect to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENTRIES = int(os.environ.get("BENCH_ENTRIES", "500"))
GRAPH_QUERY = """{ assetNodes { assetKey { path } groupName dependencyKeys { path }
  partitionDefinition { description } } }"""


def entries_yaml(n: int) -> str:
    out = ["tables:"]
    for i in range(n):
        s = f"schema_{i % 10}"
        if i % 2:
            out += [f"  - source: {s}.t{i}", f"    target: {s}.t{i}", "    mode: full_refresh"]
        else:
            out += [f"  - source: {s}.t{i}", f"    target: {s}.t{i}", "    mode: incremental",
                    "    primary_key: [id]", "    cursor: updated_at",
                    '    start_date: "2024-01-01"']
    return "\n".join(out) + "\n"


FLOOR_MODULE = '''"""Dagster alone: N tables as bare @asset pairs and an AssetSpec, half daily-partitioned."""
import dagster as dg

def build(i):
    part = dg.DailyPartitionsDefinition("2024-01-01") if i % 2 == 0 else None
    src = dg.AssetSpec(["mysql", f"s{i % 10}", f"t{i}"], group_name=f"g{i % 10}")

    @dg.asset(key=["staging", f"s{i % 10}", f"t{i}"], deps=[src], partitions_def=part,
              group_name=f"g{i % 10}")
    def staged() -> int:
        return 1

    @dg.asset(key=[f"s{i % 10}", f"t{i}"], partitions_def=part, group_name=f"g{i % 10}",
              ins={"x": dg.AssetIn(key=["staging", f"s{i % 10}", f"t{i}"])})
    def table(x: int) -> int:
        return x
    return [src, staged, table]

defs = dg.Definitions(assets=[a for i in range({n}) for a in build(i)])
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def validate(env: dict, module: str = "warehouse_assets.definitions", cwd=None) -> float:
    began = time.monotonic()
    subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", module], env=env,
                   check=True, capture_output=True, cwd=cwd)
    return time.monotonic() - began


def graph(env: dict, tmp: Path) -> tuple[float, float, int]:
    """(seconds from launch until the webserver serves the asset graph's query, seconds for
    that query once up, asset nodes)."""
    port = free_port()
    began = time.monotonic()
    proc = subprocess.Popen([str(BIN / "dagster-webserver"), "-m", "warehouse_assets.definitions",
                             "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    body = json.dumps({"query": GRAPH_QUERY}).encode()
    try:
        while True:
            try:
                q0 = time.monotonic()
                req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", body,
                                             {"Content-Type": "application/json"})
                nodes = json.load(urllib.request.urlopen(req, timeout=60))["data"]["assetNodes"]
                return time.monotonic() - began, time.monotonic() - q0, len(nodes)
            except (OSError, KeyError, TypeError):
                if proc.poll() is not None or time.monotonic() - began > 120:
                    raise RuntimeError("dagster-webserver did not serve the graph") from None
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="wa_defs_") as tmp:
        path = Path(tmp) / "replication.yaml"
        path.write_text(entries_yaml(ENTRIES))
        base = {**os.environ, "DAGSTER_HOME": tmp, "PYTHONPATH": str(ROOT),
                "SOURCE_DB_URL": "mysql+pymysql://nobody@127.0.0.1:9/unreachable",
                "PYTHONWARNINGS": "ignore"}
        for label, env in (("shipped 2 entries (floor)", base),
                           (f"{ENTRIES} entries", {**base, "REPLICATION_YAML": str(path)})):
            v = min(validate(env) for _ in range(3))
            up, query, nodes = graph(env, Path(tmp))
            print(f"  {label:<28} definitions validate {v:5.2f} s (best of 3; target < 3 s)   "
                  f"UI graph: served {up:5.2f} s after launch, query {query:5.2f} s, "
                  f"{nodes} asset nodes", flush=True)
        (Path(tmp) / "floor_defs.py").write_text(FLOOR_MODULE.replace("{n}", str(ENTRIES)))
        floor = min(validate({**base, "PYTHONPATH": tmp}, "floor_defs", tmp) for _ in range(3))
        print(f"  Dagster's floor, {ENTRIES} bare @asset pairs, no project code: definitions "
              f"validate {floor:5.2f} s (best of 3)", flush=True)


if __name__ == "__main__":
    main()
