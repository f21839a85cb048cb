"""The automation sensor that rebuilds summaries when their inputs change, on by default."""

import dagster as dg

from warehouse_assets.summaries.assets import GROUP

# Dagster's implicit default_automation_condition_sensor starts stopped; declaring our own with
# default_status RUNNING makes `make dev` (whose daemon evaluates it) rebuild with no manual step.
summaries_automation = dg.AutomationConditionSensorDefinition(
    "summaries_automation",
    target=dg.AssetSelection.groups(GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rebuilds each summary table once its inputs have changed.",
)
