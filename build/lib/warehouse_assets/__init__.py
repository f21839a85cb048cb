"""warehouse_assets: MySQL -> S3 -> Redshift replication and summary tables as Dagster assets."""

import warnings

import dagster as dg

# BackfillPolicy and friends are marked beta; the warnings are noise for users of this project.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
