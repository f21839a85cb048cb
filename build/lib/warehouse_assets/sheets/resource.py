"""The `google_sheets` resource: a service account's key (only ever an EnvVar) and the API's URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import gspread
from google.auth.exceptions import GoogleAuthError
from pydantic import Field

from warehouse_assets.sheets.client import (
    GOOGLE_API,
    SheetsError,
    SheetsHTTPClient,
    api_message,
    open_client,
)
from warehouse_assets.sheets.client import credentials as load_credentials


def range_of(tab: str) -> str:
    """A whole tab in A1 notation: the title quoted, quotes doubled ('O''Brien', '매출!2024')."""
    return "'" + tab.replace("'", "''") + "'"


class SheetsConnection:
    """The calls the sheets assets make, each failing with a message naming spreadsheet and tab."""

    def __init__(self, http: SheetsHTTPClient):
        self.http = http

    @property
    def stats(self):
        return self.http.stats

    @contextmanager
    def _errors(self, sid: str, tab: str | None, doing: str) -> Iterator[None]:
        where = f"spreadsheet {sid}" + (f", tab {tab!r}" if tab is not None else "")
        try:
            yield
        except gspread.exceptions.APIError as exc:
            raise SheetsError(f"{where}: {doing} failed: {api_message(exc.response)}") from None
        except SheetsError as exc:
            raise SheetsError(f"{where}: {doing} failed: {exc}", exc.transient) from None
        except GoogleAuthError as exc:
            # The token endpoint's reply, never the assertion or the key.
            raise SheetsError(f"{where}: {doing} failed: cannot get an access token "
                              f"({type(exc).__name__}: {str(exc)[:300]})") from None

    def metadata(self, sid: str, tab: str | None = None) -> dict[str, Any]:
        with self._errors(sid, tab, "reading the spreadsheet's tabs"):
            return self.http.fetch_sheet_metadata(
                sid, params={"includeGridData": "false",
                             "fields": "spreadsheetId,properties.title,sheets.properties"})

    def values(self, sid: str, tab: str) -> list[list[Any]]:
        """The tab's cells unformatted (numbers as numbers, dates as serial numbers)."""
        with self._errors(sid, tab, "reading the tab"):
            reply = self.http.values_get(sid, range_of(tab), params={
                "valueRenderOption": "UNFORMATTED_VALUE",
                "dateTimeRenderOption": "SERIAL_NUMBER",
                "majorDimension": "ROWS",
            })
        return reply.get("values", [])

    def batch_update(self, sid: str, tab: str, requests: list[dict[str, Any]]) -> dict[str, Any]:
        with self._errors(sid, tab, "writing the tab"):
            return self.http.batch_update(sid, {"requests": requests})


class GoogleSheets(dg.ConfigurableResource):
    """Google Sheets through a service account; scope spreadsheets only, no Drive."""

    service_account_json: str | None = Field(default=None, repr=False)  # the key: EnvVar only
    credentials_path: str | None = None
    api_url: str = GOOGLE_API
    timeout_seconds: float = 30.0
    max_retries: int = 5
    backoff_seconds: float = 1.0

    @property
    def configured(self) -> bool:
        return bool(self.service_account_json or self.credentials_path)

    def connect(self) -> SheetsConnection:
        creds = load_credentials(self.service_account_json, self.credentials_path, self.api_url)
        _, http = open_client(creds, self.api_url, self.timeout_seconds, self.max_retries,
                              self.backoff_seconds)
        return SheetsConnection(http)
