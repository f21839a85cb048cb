"""An extract that fails mid-stream leaves nothing behind: no S3 object, no upload, no file."""

import os

import dagster as dg
import pytest
import sqlalchemy as sa

from warehouse_assets.lib import staging
from warehouse_assets.lib.staging import StagingStore
from warehouse_assets_tests.conftest import failure_text, table_yaml

SEQ_YAML = table_yaml("events")


def _leftovers(store: StagingStore, prefix: str) -> tuple[list, list]:
    """Complete objects under prefix, and multipart uploads still open in the bucket."""
    bucket = store.url[len("s3://"):].split("/")[0]
    uploads = store._s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return store.list(prefix), uploads


def test_s3_write_failing_after_parts_were_uploaded_leaves_nothing(s3_bucket):
    store = StagingStore(url=s3_bucket)
    with (pytest.raises(RuntimeError, match="source went away"),
          store.open_write("staging/t/day.csv.gz") as fh):
        fh.write(os.urandom(staging.PART_BYTES + 1))  # a part is already on the server
        fh.write(b"more")
        raise RuntimeError("source went away")
    assert _leftovers(store, "staging/t") == ([], [])
    with store.open_write("staging/t/day.csv.gz") as fh:  # the same key still writes normally
        fh.write(b"a" * (staging.PART_BYTES + 3))
    assert [(o.key, o.size) for o in store.list("staging/t")] == [
        ("staging/t/day.csv.gz", staging.PART_BYTES + 3)
    ]
    assert store.read_bytes("staging/t/day.csv.gz") == b"a" * (staging.PART_BYTES + 3)


def test_local_write_failing_mid_stream_leaves_no_file(tmp_path):
    store = StagingStore(url=str(tmp_path))
    with pytest.raises(RuntimeError), store.open_write("staging/t/day.csv.gz") as fh:
        fh.write(b"partial")
        raise RuntimeError("source went away")
    assert list(tmp_path.rglob("*")) == [tmp_path / "staging", tmp_path / "staging" / "t"]


def test_extract_failing_mid_stream_on_both_paths_leaves_no_object(
    services_env, monkeypatch, extract_path
):
    """A bad value deep in the window fails the run naming it, after parts were uploaded."""
    env = services_env
    monkeypatch.setattr(staging, "PART_BYTES", 64 * 1024)  # several parts before the bad row
    with sa.create_engine(os.environ["SOURCE_DB_URL"]).begin() as conn:
        conn.execute(sa.text("SET SESSION sql_mode = ''"))
        conn.execute(sa.text(f"CREATE TABLE {env.source_schema}.events (id INT PRIMARY KEY, "
                             "happened DATETIME NOT NULL, note VARCHAR(100) NOT NULL, "
                             "modified_at DATETIME NOT NULL)"))
        conn.execute(sa.text(
            f"INSERT INTO {env.source_schema}.events SELECT seq, "
            "IF(seq = 60000, '0000-00-00', '2026-11-01 10:00:00'), CONCAT('note, \"', seq, '\"'), "
            "'2026-11-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_60000"))
    result = env.replicate(env.config(SEQ_YAML), start="2026-11-01", raise_on_error=False)
    assert not result.success
    message = failure_text(result)
    assert f"{env.source_schema}.events.happened" in message and "id=60000" in message
    store = env.resource("staging")
    assert _leftovers(store, f"staging/{env.source_schema}") == ([], [])


def test_s3_is_configured_with_dagster_aws_s3resource_fields(s3_bucket, s3_server, monkeypatch):
    """The staging store takes S3Resource's fields (region, endpoint, retries, keys) as a
    dagster-aws user sets them, with the usual chain for the rest; the atomic writes still hold."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")  # the endpoint now comes from the resource's field
    store = StagingStore(url=s3_bucket, region_name="eu-west-1", endpoint_url=s3_server,
                         max_attempts=2, aws_access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID"),
                         aws_secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY"))
    client = store._s3
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == s3_server
    # dagster-aws hands max_attempts to botocore's standard retry mode (retries after the first).
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    store.write_bytes("staging/t/full.csv.gz", b"rows")
    assert store.read_bytes("staging/t/full.csv.gz") == b"rows"
    assert [o.key for o in store.list("staging/t")] == ["staging/t/full.csv.gz"]
    # Another configuration is another client; the same one is reused.
    assert StagingStore(url=s3_bucket, endpoint_url=s3_server)._s3 is not client
    assert store._s3 is client


def test_s3_fields_are_dagster_aws_s3resource_fields():
    """The store declares dagster-aws's S3 fields itself (lib/s3.py, so that loading definitions
    does not import dagster_aws); they stay the same names, types, defaults and descriptions."""
    from dagster_aws.s3.resources import ResourceWithS3Configuration

    def fields(cls) -> dict:
        return {name: (str(f.annotation), f.default, f.description)
                for name, f in cls.model_fields.items()}

    ours = fields(StagingStore)
    assert ours.pop("url")[0] == "<class 'str'>"
    assert ours == fields(ResourceWithS3Configuration)


def test_loading_definitions_does_not_import_dagster_aws():
    """dagster_aws (and boto3 under it) is imported by the first S3 client, not by every
    definitions load (it cost ~0.7 s of each one)."""
    import subprocess
    import sys

    code = ("import sys, warehouse_assets.definitions; "
            "print(sorted(m for m in ('dagster_aws', 'boto3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
