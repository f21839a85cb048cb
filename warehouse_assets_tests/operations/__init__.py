"""Operations tests: schedules, backfills, retries, the run queue, alerts, instance config."""

from warehouse_assets_tests.conftest import NPS_YAML  # noqa: F401  (re-exported for tests)
