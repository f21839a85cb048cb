"""Redshift's VARCHAR holds 65,535 bytes: a longer staged string fails naming column and row, before
any COPY (checked with the Redshift dialect against a real staged file; no Redshift needed)."""

import os

import dagster as dg
import pytest

from warehouse_assets.lib.staged import DataError, Manifest, StagedFile
from warehouse_assets.lib.warehouse import RedshiftDialect, TableLoad, Warehouse
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets_tests.reliability.conftest import execute, source_table
from warehouse_assets_tests.reliability.test_hostile_input import TABLE_YAML


def test_string_over_65535_bytes_fails_naming_column_and_row(services_env):
    env = services_env
    source_table(env, "id INT PRIMARY KEY, body MEDIUMTEXT, modified_at DATETIME NOT NULL",
                 # 51,000 and 66,000 bytes in UTF-8: fewer than 65,535 characters either way.
                 "(1, 'short', '2026-11-01 01:00'), (2, REPEAT('한', 17000), '2026-11-01 02:00'), "
                 "(3, REPEAT('한', 22000), '2026-11-01 03:00')")
    config = env.config(TABLE_YAML)
    assets = build_replication_assets(config)
    staging = dg.AssetKey(["staging", env.source_schema, "t"])
    store = env.resource("staging")
    redshift = RedshiftDialect("arn:aws:iam::123456789012:role/load")

    def staged_load() -> TableLoad:
        assert env.materialize(assets, selection=[staging], start="2026-11-01").success
        key = f"staging/{env.source_schema}/t/2026-11-01.csv.gz"
        manifest = store.read_bytes(key.replace(".csv.gz", ".manifest.json"))
        staged = StagedFile(key, store.uri(key), Manifest.from_json(manifest.decode()))
        return TableLoad("raw_data", "t", "merge", ("id",), (staged,), cursor="modified_at")

    load = staged_load()
    with pytest.raises(DataError) as err:
        redshift.check_staged(load, store)
    assert str(err.value).startswith(
        f"{env.source_schema}.t.body: a value of 66,000 bytes (row id=3) is longer than Redshift's "
        f"VARCHAR limit of 65,535 bytes; nothing was loaded into raw_data.t.")
    # A load fails the same way before it connects (nothing listens on port 9).
    warehouse = Warehouse(url="redshift+psycopg2://u@127.0.0.1:9/dev", iam_role=redshift.iam_role)
    with pytest.raises(DataError, match="row id=3"):
        warehouse.load(load, store)
    execute(os.environ["SOURCE_DB_URL"], f"DELETE FROM {env.source_schema}.t WHERE id = 3")
    assert redshift.check_staged(staged_load(), store) is None  # 51,000 bytes fit
