"""Assembles the code location: nothing is defined here."""

import dagster as dg

from warehouse_assets.config import load_config
from warehouse_assets.replication.assets import build_replication_assets
from warehouse_assets.resources import build_resources

config = load_config()

defs = dg.Definitions(
    assets=[*build_replication_assets(config)],
    resources=build_resources(),
)
