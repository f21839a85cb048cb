"""matches_source: after each load and on its own, the warehouse table is compared with its source
(count and fingerprints in SQL on both sides), and each kind of drift is counted."""

from __future__ import annotations

import os

import dagster as dg
import sqlalchemy as sa

from warehouse_assets.lib.source.database import _engine
from warehouse_assets.reconcile.checks import build_reconcile_checks, check_key, check_window
from warehouse_assets.reconcile.compare import compare
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets_tests.conftest import failure_text
from warehouse_assets_tests.replication import test_types

ORDERS = """tables:
  - source: {schema}.orders
    target: raw_data.orders
    mode: incremental
    primary_key: [id]
    cursor: updated_at
    soft_delete: deleted
    start_date: "2026-11-01"
"""


def _source(env, *statements: str) -> None:
    with _engine(os.environ["SOURCE_DB_URL"]).begin() as conn:
        for s in statements:
            conn.execute(sa.text(s.format(s=env.source_schema)))


def _warehouse(env, *statements: str) -> None:
    with env.resource("warehouse").begin() as conn:
        for s in statements:
            conn.execute(sa.text(s))


def _check(env, config, tags: dict | None = None) -> dg.AssetCheckEvaluation:
    """Run only the checks (no load), as the daily reconcile job does."""
    assets = [*build_replication_assets(config), *build_reconcile_checks(config)]
    result = dg.materialize(assets, selection=dg.AssetSelection.checks(check_key(config.tables[0])),
                            resources=env.resources, instance=dg.DagsterInstance.ephemeral(),
                            tags=tags or {})
    assert result.success, failure_text(result)
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_each_kind_of_drift_is_counted(services_env):
    env = services_env
    _source(env, "CREATE TABLE {s}.orders (id INT PRIMARY KEY, amount DECIMAL(10,2), "
                 "note VARCHAR(20), deleted TINYINT(1) NOT NULL DEFAULT 0, updated_at DATETIME(6))",
            "INSERT INTO {s}.orders VALUES (1, 1.50, 'a', 0, '2026-11-01 10:00:00'), "
            "(2, 2.00, NULL, 0, '2026-11-01 23:59:59.999999'), (3, 3.00, 'c', 1, "
            "'2026-11-02 00:00:00'), (4, 4.25, 'd', 0, '2026-11-02 08:00:00')")
    config = env.config(ORDERS)
    assets = [*build_replication_assets(config), *build_reconcile_checks(config)]
    loaded = env.materialize(assets, start="2026-11-01", end="2026-11-02")
    (after_load,) = loaded.get_asset_check_evaluations()  # runs in the load's own run
    assert after_load.passed, after_load.description
    md = {k: v.value for k, v in after_load.metadata.items()}
    assert (md["window"], md["source_rows"], md["warehouse_rows"]) == (
        "2026-11-01_2026-11-02", 3, 3)  # the soft-deleted row is not a difference
    assert md["compared_columns"] == "id, updated_at"

    days = {"dagster/asset_partition_range_start": "2026-11-01",
            "dagster/asset_partition_range_end": "2026-11-02"}
    # A late commit inside a loaded day, a hand delete and a hand edit in the warehouse.
    _source(env, "INSERT INTO {s}.orders VALUES (5, 5.00, 'late', 0, '2026-11-01 12:00:00')")
    _warehouse(env, "DELETE FROM raw_data.orders WHERE id = 4",
               "UPDATE raw_data.orders SET updated_at = updated_at - INTERVAL '1 second' "
               "WHERE id = 2",
               "INSERT INTO raw_data.orders VALUES (9, 9, 'x', 0, '2026-11-02 09:00:00')")
    found = _check(env, config, days)
    assert not found.passed and found.severity == dg.AssetCheckSeverity.WARN
    md = {k: v.value for k, v in found.metadata.items()}
    assert (md["source_rows"], md["warehouse_rows"]) == (4, 3)
    assert (md["missing_in_warehouse"], md["extra_in_warehouse"], md["changed_rows"]) == (2, 1, 1)
    assert "missing: 4" in found.description and "extra: 9" in found.description

    # Reloading the days repairs all of it (the hand-inserted row 9 stays: no delete_missing).
    _warehouse(env, "DELETE FROM raw_data.orders WHERE id = 9")
    reloaded = env.materialize(assets, start="2026-11-01", end="2026-11-02")
    (evaluation,) = reloaded.get_asset_check_evaluations()
    assert evaluation.passed, evaluation.description
    assert {k: v.value for k, v in evaluation.metadata.items()}["warehouse_rows"] == 4


def test_strict_entry_fails_as_an_error_and_lookback_is_the_default_window(services_env):
    env = services_env
    _source(env, "CREATE TABLE {s}.orders (id INT PRIMARY KEY, deleted TINYINT(1) NOT NULL "
                 "DEFAULT 0, updated_at DATETIME)",
            "INSERT INTO {s}.orders VALUES (1, 0, UTC_TIMESTAMP() - INTERVAL 1 DAY)")
    config = env.config(ORDERS + "    reconcile: strict\n    reconcile_days: 3\n")
    spec = config.tables[0]
    import datetime as dt

    window = check_window(spec, {}, today=dt.date(2026, 11, 6))  # the last 3 complete days
    assert window.label == "2026-11-03_2026-11-05"
    found = _check(env, config)  # nothing loaded yet: yesterday's source row is missing
    assert not found.passed and found.severity == dg.AssetCheckSeverity.ERROR
    assert "does not exist yet" in found.description


def test_fingerprints_agree_on_the_hostile_corpus(services_env, tmp_path, monkeypatch):
    """Every comparable column of the type corpus (latin1 to emoji text, unsigned maxima,
    decimals, timestamps, NULLs) fingerprints the same in MariaDB, PostgreSQL and DuckDB."""
    env = services_env
    test_types._seed(os.environ["SOURCE_DB_URL"], env.source_schema)
    config = env.config(test_types.CORPUS_YAML)
    result = env.replicate(config)
    assert result.success, failure_text(result)
    spec = config.tables[0]
    c = compare(spec, None, env.resource("source_db"), env.resource("warehouse"), "whole table")
    assert c.matches and c.source[0] == 4, c
    assert {"lat1", "u4", "bi", "Mixed Case", "order"} <= set(c.compared)
    assert {"g", "bl", "tm"} <= set(c.not_compared) and "j" in c.compared
    # The same rows in DuckDB.
    monkeypatch.setenv("WAREHOUSE_DB_URL", f"duckdb:///{tmp_path / 'wh.duckdb'}")
    from warehouse_assets.settings import Settings

    duck = type(env)(Settings.from_env(), env.source_schema, tmp_path)
    assert duck.replicate(config).success
    d = compare(spec, None, duck.resource("source_db"), duck.resource("warehouse"), "whole table")
    assert d.matches and d.warehouse == c.warehouse


def test_embedded_demo_matches_its_sqlite_source(embedded_env):
    """The embedded default: SQLite's fingerprints (Python functions) equal DuckDB's SQL."""
    from warehouse_assets import demo
    from warehouse_assets.config import load_config

    env = embedded_env
    demo.seed(env.settings.source_url)
    config = load_config()
    first, last = (d.isoformat() for d in demo.demo_days())
    assets = [*build_replication_assets(config), *build_reconcile_checks(config)]
    nps = dg.AssetSelection.assets(["staging", "prod", "nps"], ["raw_data", "nps"])
    channel = dg.AssetSelection.assets(["staging", "prod", "channel"], ["raw_data", "channel"])
    evaluations = [
        *env.materialize(assets, selection=nps, start=first, end=last).get_asset_check_evaluations(),
        *env.materialize(assets, selection=channel).get_asset_check_evaluations()]
    assert {e.asset_key.to_user_string(): e.passed for e in evaluations} == {
        "raw_data/nps": True, "raw_data/channel": True}
    rows = {e.asset_key.to_user_string(): e.metadata["source_rows"].value for e in evaluations}
    assert rows["raw_data/nps"] > 0 and rows["raw_data/channel"] == len(demo.CHANNELS)


def test_source_hard_delete_is_counted_and_delete_missing_removes_it(services_env):
    env = services_env
    _source(env, "CREATE TABLE {s}.orders (id INT PRIMARY KEY, deleted TINYINT(1) NOT NULL "
                 "DEFAULT 0, updated_at DATETIME)",
            "INSERT INTO {s}.orders VALUES (1, 0, '2026-11-01 10:00:00'), "
            "(2, 0, '2026-11-01 11:00:00'), (3, 0, '2026-11-02 11:00:00')")
    for delete_missing in (False, True):
        config = env.config(ORDERS + f"    delete_missing: {str(delete_missing).lower()}\n")
        assets = [*build_replication_assets(config), *build_reconcile_checks(config)]
        first = env.materialize(assets, start="2026-11-01", end="2026-11-02")
        assert first.get_asset_check_evaluations()[0].passed
        if not delete_missing:
            _source(env, "DELETE FROM {s}.orders WHERE id = 2")  # a hard delete in the source
        again = env.materialize(assets, start="2026-11-01", end="2026-11-01")
        (evaluation,) = again.get_asset_check_evaluations()
        ids = [r[0] for r in env.warehouse_rows("raw_data.orders")]
        if delete_missing:  # removed in the load's transaction; day 2 untouched
            assert evaluation.passed and ids == [1, 3]
        else:  # a cursor cannot see a delete: the check counts it
            assert not evaluation.passed and ids == [1, 2, 3]
            assert evaluation.metadata["extra_in_warehouse"].value == 1


def test_every_table_and_summary_has_a_freshness_check(embedded_env):
    """freshness_hours per entry (default 26): overdue until loaded, fresh right after."""
    from warehouse_assets.config import parse_config
    from warehouse_assets.reconcile.freshness import build_freshness_checks
    from warehouse_assets.summaries.assets import build_summary_assets

    config = parse_config({"tables": [
        {"source": "prod.channel", "target": "raw_data.channel", "mode": "full_refresh",
         "primary_key": "channel", "freshness_hours": 5},
        {"source": "prod.nps", "target": "raw_data.nps", "mode": "full_refresh",
         "primary_key": "id"}],
        "sheets": [{"source": "1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "tab": "Targets",
                    "target": "raw_data.nps_targets", "columns": {"month": "DATE"}}]})
    checks = build_freshness_checks(config)
    keys = {k.asset_key.to_user_string() for c in checks for k in c.check_keys}
    assert {"raw_data/channel", "raw_data/nps", "analytics/nps_summary",
            "analytics/channel_summary", "raw_data/nps_targets"} <= keys
    from warehouse_assets import demo

    demo.seed(embedded_env.settings.source_url)
    assets = [*build_replication_assets(config), *build_summary_assets(), *checks]
    channel = dg.AssetKey(["raw_data", "channel"])
    with dg.instance_for_test() as instance:
        def verdict() -> bool:
            r = dg.materialize(assets, instance=instance, resources=embedded_env.resources,
                               selection=dg.AssetSelection.checks_for_assets(channel))
            return r.get_asset_check_evaluations()[0].passed

        assert verdict() is False  # never loaded: overdue
        embedded_env.materialize(assets, instance=instance, selection=dg.AssetSelection.assets(
            ["staging", "prod", "channel"], channel))
        assert verdict() is True


def test_redshift_fingerprint_sql():
    """Redshift cannot run here: its fingerprint SQL is checked as text, function by function
    (STRTOL for hex, DATEDIFF for epochs, CHR for the separators)."""
    from warehouse_assets.lib.staged import Column
    from warehouse_assets.reconcile.fingerprint import aggregates

    sql = aggregates("redshift", [Column("id", "BIGINT", False), Column("at", "TIMESTAMP", True),
                                  Column("day", "DATE", True), Column("Note", "VARCHAR(10)", True)])
    text = ('COALESCE(CAST("id" AS VARCHAR), CHR(30)) || CHR(31) || '
            "COALESCE(CAST(DATEDIFF(microsecond, '1970-01-01', \"at\") AS VARCHAR), CHR(30)) || "
            "CHR(31) || COALESCE(CAST(DATEDIFF(day, '1970-01-01', \"day\") AS VARCHAR), CHR(30)) || "
            'CHR(31) || COALESCE(CAST("Note" AS VARCHAR), CHR(30))')
    assert sql == ("COUNT(*), COALESCE(SUM(CAST(STRTOL(SUBSTR(MD5(" + text +
                   "), 1, 15), 16) AS DECIMAL(38,0))), 0)")
    # Integer-only rows (the usual key + cursor) are summed without a hash, in 64-bit steps.
    ints = aggregates("redshift", [Column("id", "BIGINT", False), Column("at", "TIMESTAMP", True)])
    at = "DATEDIFF(microsecond, '1970-01-01', \"at\")"
    assert ints.startswith('COUNT(*), COALESCE(SUM(CAST("id" AS DECIMAL(38,0))), 0), COUNT("id"), '
                           f"COALESCE(SUM(CAST({at} AS DECIMAL(38,0))), 0), COUNT(\"at\"), ")
    assert "(CAST(0 AS BIGINT) * 1000003 + COALESCE(CAST(\"id\" % 1000000007 AS BIGINT), " \
           "2147483647)) % 2147483647" in ints


def test_repair_reloads_the_days_that_differ(services_env):
    """repair: true: the daily check finds a late row on one day of the lookback; the sensor asks
    for that day only, tagged with why; the reload makes the check pass; nothing is asked twice."""
    from warehouse_assets.reconcile.repair import REPAIR_TAG, build_repair_sensor, day_ranges

    assert day_ranges(["2026-11-01", "2026-11-02", "2026-11-05", "2026-11-07_2026-11-08"]) == [
        ("2026-11-01", "2026-11-02"), ("2026-11-05", "2026-11-05"), ("2026-11-07", "2026-11-08")]
    env = services_env
    _source(env, "CREATE TABLE {s}.orders (id INT PRIMARY KEY, deleted TINYINT(1) NOT NULL "
                 "DEFAULT 0, updated_at DATETIME)",
            "INSERT INTO {s}.orders VALUES (1, 0, '2026-11-01 10:00:00'), "
            "(2, 0, '2026-11-02 11:00:00'), (3, 0, '2026-11-03 11:00:00')")
    config = env.config(ORDERS + "    repair: true\n")
    assets = [*build_replication_assets(config), *build_reconcile_checks(config)]
    (sensor,) = build_repair_sensor(config)
    days = {"dagster/asset_partition_range_start": "2026-11-01",
            "dagster/asset_partition_range_end": "2026-11-03"}
    with dg.instance_for_test() as instance:
        env.materialize(assets, start="2026-11-01", end="2026-11-03", instance=instance)
        _source(env, "INSERT INTO {s}.orders VALUES (4, 0, '2026-11-02 12:00:00')")  # late
        checked = dg.materialize(assets, resources=env.resources, instance=instance, tags=days,
                                 selection=dg.AssetSelection.checks(check_key(config.tables[0])))
        (evaluation,) = checked.get_asset_check_evaluations()
        assert not evaluation.passed
        assert evaluation.metadata["differing_days"].value == "2026-11-02"
        days = evaluation.metadata["days"].value  # per partition, on the check's page
        assert "| 2026-11-01 | 1 | 1 | yes |" in days and "| 2026-11-02 | 2 | 1 | **no** |" in days

        def tick(cursor=None):
            with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
                return sensor.evaluate_tick(context)

        first = tick()
        (request,) = first.run_requests
        assert (request.tags["dagster/asset_partition_range_start"],
                request.tags["dagster/asset_partition_range_end"]) == ("2026-11-02", "2026-11-02")
        assert request.tags[REPAIR_TAG].startswith("matches_source failed: 1 missing")
        assert tick(first.cursor).run_requests == []  # asked once per failed evaluation
        repaired = env.materialize(assets, start="2026-11-02", end="2026-11-02", instance=instance)
        (after,) = repaired.get_asset_check_evaluations()
        assert after.passed
        assert [r[0] for r in env.warehouse_rows("raw_data.orders")] == [1, 2, 3, 4]
