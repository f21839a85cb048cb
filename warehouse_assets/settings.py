"""The one environment switch: embedded default, services or production, from environment variables.

Every other module takes its settings from here. Connection URLs may hold passwords, so resources
receive them as `dagster.EnvVar` (resolved at run time, never shown in run config or the UI);
only the scheme is read here, to describe the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Git-ignored folder holding everything the embedded default writes."""
    return Path(os.environ.get("WAREHOUSE_DATA_DIR") or REPO_ROOT / ".data").resolve()


def _setting(name: str, default: str) -> str | dg.EnvVar:
    """An EnvVar when the variable is set (it may hold a secret), else the embedded default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def _secret(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def _scheme(name: str) -> str:
    value = os.environ.get(name, "")
    return value.split(":", 1)[0] if ":" in value else ("local" if value else "")


@dataclass(frozen=True)
class Settings:
    """Where the source, staging store and warehouse are; values may be EnvVars."""

    source_url: str | dg.EnvVar
    staging_url: str | dg.EnvVar
    warehouse_url: str | dg.EnvVar
    redshift_iam_role: str | dg.EnvVar | None
    environment: str
    # MySQL read by connectorx (the fast path); SOURCE_FAST_PATH=0 keeps the pymysql fallback.
    source_fast_path: bool = True
    # Google Sheets (sheets: and exports: entries): the service account's key, as an EnvVar only.
    google_service_account_json: dg.EnvVar | None = None
    google_credentials_path: dg.EnvVar | None = None
    google_sheets_api_url: str | dg.EnvVar = "https://sheets.googleapis.com"
    # A window is staged as gzip parts of at most this many MiB compressed (STAGING_PART_MB;
    # fractions allowed, for tests), so Redshift's COPY reads them on several slices. Measured on
    # 2,000,000 nps rows (33 MB gzip): 1, 9 and 34 parts staged in the same time and peak RSS, so
    # a part costs nothing here; 64 MiB, the low end of AWS's advice (1 MB-1 GB, a multiple of the
    # slices), spreads a window over the most slices: 16 parts per GiB.
    staging_part_mb: float = 64.0

    @property
    def google_credentials(self) -> bool:
        return bool(self.google_service_account_json or self.google_credentials_path)

    @classmethod
    def from_env(cls) -> Settings:
        base = data_dir()
        warehouse = _scheme("WAREHOUSE_DB_URL")
        if not any(os.environ.get(v) for v in ("SOURCE_DB_URL", "STAGING_URL", "WAREHOUSE_DB_URL")):
            environment = "embedded"
        elif warehouse.startswith("redshift"):
            environment = "production"
        else:
            environment = "services"
        return cls(
            source_url=_setting("SOURCE_DB_URL", f"sqlite:///{base / 'source.sqlite'}"),
            staging_url=_setting("STAGING_URL", str(base / "staging")),
            warehouse_url=_setting("WAREHOUSE_DB_URL", f"duckdb:///{base / 'warehouse.duckdb'}"),
            redshift_iam_role=dg.EnvVar("REDSHIFT_IAM_ROLE")
            if os.environ.get("REDSHIFT_IAM_ROLE")
            else None,
            environment=environment,
            source_fast_path=os.environ.get("SOURCE_FAST_PATH", "1").lower()
            not in ("0", "false", "no", "off"),
            google_service_account_json=_secret("GOOGLE_SERVICE_ACCOUNT_JSON"),
            google_credentials_path=_secret("GOOGLE_APPLICATION_CREDENTIALS"),
            google_sheets_api_url=_setting("GOOGLE_SHEETS_API_URL", "https://sheets.googleapis.com"),
            staging_part_mb=_part_mb(),
        )


def _part_mb() -> float:
    raw = os.environ.get("STAGING_PART_MB") or str(Settings.staging_part_mb)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    # Above 0.001 MiB a part holds more than its gzip header; AWS advises at most 1 GB per file.
    if not 0.001 <= value <= 1024:
        raise ValueError(f"STAGING_PART_MB: {raw!r} is not a number of MiB between 0.001 and 1024")
    return value


def _int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name}: {raw!r} is not a whole number between {low} and {high}")
    return int(raw)


@dataclass(frozen=True)
class Operations:
    """How the code location is operated: schedule, retries, alerts (the seed's DAG arguments)."""

    schedule_hour: int
    schedule_timezone: str
    retries: int
    retry_delay_seconds: int
    webserver_base_url: str
    slack_webhook_url: dg.EnvVar | None
    slack_bot_token: dg.EnvVar | None
    slack_channel: str | None

    @classmethod
    def from_env(cls) -> Operations:
        from zoneinfo import ZoneInfo

        timezone = os.environ.get("SCHEDULE_TIMEZONE") or "UTC"
        ZoneInfo(timezone)  # an unknown zone fails definition loading, naming it
        token = os.environ.get("SLACK_BOT_TOKEN") and os.environ.get("SLACK_CHANNEL")
        return cls(
            schedule_hour=_int("SCHEDULE_HOUR", 9, 0, 23),
            schedule_timezone=timezone,
            retries=_int("RETRY_MAX", 1, 0, 10),
            retry_delay_seconds=_int("RETRY_DELAY_SECONDS", 180, 0, 86_400),
            webserver_base_url=(
                os.environ.get("DAGSTER_WEBSERVER_BASE_URL") or "http://127.0.0.1:3000"
            ).rstrip("/"),
            slack_webhook_url=dg.EnvVar("SLACK_WEBHOOK_URL")
            if os.environ.get("SLACK_WEBHOOK_URL")
            else None,
            slack_bot_token=dg.EnvVar("SLACK_BOT_TOKEN") if token else None,
            slack_channel=os.environ.get("SLACK_CHANNEL") if token else None,
        )
