"""The automation sensor that rewrites each exported tab after what it reads changes."""

import dagster as dg

from warehouse_assets.sheets.assets import GROUP

# Like summaries_automation: running by default, so `make dev` writes the sheet after the summary.
sheets_automation = dg.AutomationConditionSensorDefinition(
    "sheets_automation",
    target=dg.AssetSelection.groups(GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rewrites each exported Google Sheet tab once the warehouse data it reads changed.",
)
