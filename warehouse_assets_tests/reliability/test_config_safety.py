"""Names in the YAML are plain identifiers or definitions do not load; staging keys cannot leave
their prefix, in a local folder or in S3."""

import os
import subprocess
import sys

import pytest
import yaml

from warehouse_assets.config import ConfigError, parse_config
from warehouse_assets.lib.staging import StagingError, StagingStore
from warehouse_assets_tests.test_config import GOOD

LANDING = {"table": "visits", "target": "raw_data.visits", "columns": {"id": "INT", "ts": "TIMESTAMP"},
           "primary_key": ["id"], "start_date": "2023-04-20"}


@pytest.mark.parametrize("change, message", [
    ({"table": "x; DROP TABLE y"}, "landing[0] (x; DROP TABLE y).table: 'x; DROP TABLE y' is not"),
    ({"target": 'raw_data."visits"'}, "landing[0] (visits).target"),
    ({"target": "raw_data.`visits`"}, "landing[0] (visits).target"),
    ({"columns": {"id": "INT", "t's": "TEXT"}}, "landing[0] (visits).columns: \"t's\" is not"),
    ({"columns": {"id": "INT", "ts": "TEXT); DROP TABLE y; --"}},
     "landing[0] (visits).columns.ts: unsupported type"),
    ({"primary_key": ["id`"]}, "landing[0] (visits).primary_key: 'id`' is not a plain"),
])
def test_landing_entries_accept_only_plain_identifiers(change, message):
    with pytest.raises(ConfigError) as err:
        parse_config({"tables": [], "landing": [{**LANDING, **change}]})
    assert message in str(err.value)


@pytest.mark.parametrize("document, message", [
    ({"tables": [{**GOOD, "target": "raw_data.x; DROP TABLE y"}]}, "tables[0] (prod.nps).target"),
    ({"tables": [], "landing": [{**LANDING, "table": 'v"isits'}]}, "landing[0] (v\"isits).table"),
])
def test_definitions_validate_rejects_the_yaml(tmp_path, document, message):
    path = tmp_path / "replication.yaml"
    path.write_text(yaml.safe_dump(document))
    proc = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m",
         "warehouse_assets.definitions"],
        env={**os.environ, "REPLICATION_YAML": str(path), "DAGSTER_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


ESCAPES = ["../x", "staging/../../x", "/etc/passwd", "staging\\..\\x", "..\\x", "%2e%2e/x",
           "staging/%2e%2e%2fx", "staging/..%2Fx", "staging/./x", "staging//x", "", ".",
           "staging/x\n", "staging/x\x00", "C:/x", "~/x", "staging/\u2025/x"]


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        (tmp_path / "stage").mkdir()
        return StagingStore(url=str(tmp_path / "stage"))
    return StagingStore(url=request.getfixturevalue("s3_bucket"))


@pytest.mark.parametrize("key", ESCAPES)
def test_staging_keys_cannot_leave_their_prefix(store, key, tmp_path):
    for attempt in (lambda: store.write_bytes(key, b"x"), lambda: store.read_bytes(key),
                    lambda: store.exists(key), lambda: store.delete(key),
                    lambda: store.list(key), lambda: store.uri(key)):
        with pytest.raises(StagingError, match="is not a safe relative key"):
            attempt()
    if store.is_s3:
        bucket = store.url[len("s3://"):].split("/")[0]
        assert store._s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    else:
        assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["stage"]


def test_an_ordinary_key_still_works(store):
    store.write_bytes("staging/prod/nps/2026-11-01.csv.gz", b"rows")
    assert store.read_bytes("staging/prod/nps/2026-11-01.csv.gz") == b"rows"
