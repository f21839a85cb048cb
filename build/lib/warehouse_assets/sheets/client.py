"""The Sheets v4 client: gspread over google-auth, bounded retries, a timeout on every request.

gspread's own HTTPClient waits forever by default and its BackOffHTTPClient never stops retrying;
this one retries 429 and 5xx (and lost connections) a bounded number of times with exponential
backoff, full jitter and Retry-After, and fails at once on any other 4xx with the API's message.
Every URL is rewritten onto GOOGLE_SHEETS_API_URL; a request anywhere else (Drive) is refused.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import gspread
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

GOOGLE_API = "https://sheets.googleapis.com"
GOOGLE_TOKEN_URIS = ("https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token")
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)  # spreadsheets only: no Drive scope
RETRIED = {429, 500, 502, 503, 504}


class SheetsError(RuntimeError):
    """The Sheets API refused or never answered; the message names spreadsheet and tab."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient  # retries ran out on 429/5xx/no answer: a later run may pass


@dataclass
class CallStats:
    """Evidence for the materialization's metadata."""

    calls: int = 0
    retries: int = 0


def credentials(info_json: str | None, path: str | None, api_url: str) -> service_account.Credentials:
    """Service-account credentials from the key's JSON (or a key file) read in memory only; the
    key's token_uri must be Google's or on the host of api_url (a test server, a proxy)."""
    if info_json:
        source = "GOOGLE_SERVICE_ACCOUNT_JSON"
        text = info_json
    elif path:
        source = "GOOGLE_APPLICATION_CREDENTIALS"
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise SheetsError(f"{source}: cannot read the key file ({exc.strerror})") from None
    else:
        raise SheetsError("no Google credentials: set GOOGLE_SERVICE_ACCOUNT_JSON (the service "
                          "account key's JSON) or GOOGLE_APPLICATION_CREDENTIALS (its path)")
    try:
        info = json.loads(text)
    except ValueError:
        raise SheetsError(f"{source}: not JSON (a service account key file's content)") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise SheetsError(f"{source}: not a service account key (\"type\": \"service_account\")")
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise SheetsError(f"{source}: the key lacks {', '.join(missing)}")
    token_uri = str(info["token_uri"])
    if token_uri not in GOOGLE_TOKEN_URIS and urlsplit(token_uri).netloc != urlsplit(api_url).netloc:
        raise SheetsError(f"{source}: token_uri {token_uri!r} is neither Google's nor on the host "
                          f"of GOOGLE_SHEETS_API_URL; the key would be sent elsewhere")
    try:
        return service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
    except (ValueError, TypeError):
        # The library's message may quote the key; say only which field is wrong.
        raise SheetsError(f"{source}: the private key cannot be read") from None


def _retry_after(response: requests.Response | None) -> float | None:
    raw = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


def api_message(response: requests.Response) -> str:
    """The API's own error message, or the start of a non-JSON body (an HTML error page)."""
    try:
        error = response.json()["error"]
        return f"{error.get('status') or error.get('code')}: {error.get('message')}"
    except (ValueError, KeyError, TypeError, AttributeError):
        text = " ".join(response.text.split())
        return f"HTTP {response.status_code}: {text[:200]}"


class SheetsHTTPClient(gspread.HTTPClient):
    """gspread's HTTP client pointed at api_url, with a timeout and bounded retries."""

    def __init__(self, auth: service_account.Credentials, session: requests.Session | None = None,
                 *, api_url: str = GOOGLE_API, timeout: float = 30.0, max_retries: int = 5,
                 backoff: float = 1.0, max_backoff: float = 32.0) -> None:
        super().__init__(auth, session or AuthorizedSession(auth, refresh_timeout=timeout))
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = CallStats()

    def _url(self, endpoint: str) -> str:
        if not endpoint.startswith(GOOGLE_API + "/v4/spreadsheets"):
            raise SheetsError(f"refused a request outside the Sheets API: {endpoint.split('?')[0]}")
        return self.api_url + endpoint[len(GOOGLE_API):]

    def request(self, method: str, endpoint: str, params: Any = None, data: Any = None,
                json: Mapping[str, Any] | None = None, files: Any = None,
                headers: Any = None) -> requests.Response:
        url = self._url(endpoint)
        attempt = 0
        while True:
            self.stats.calls += 1
            response, failure = None, None
            try:
                response = self.session.request(method=method, url=url, json=json, params=params,
                                                data=data, files=files, headers=headers,
                                                timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = f"no answer within {self.timeout:g} s ({type(exc).__name__})"
            if response is not None and response.ok:
                return response
            if response is not None and response.status_code not in RETRIED:
                raise gspread.exceptions.APIError(response)
            if attempt >= self.max_retries:
                reason = failure or api_message(response)
                raise SheetsError(f"gave up after {attempt + 1} attempts: {reason}", transient=True)
            wait = _retry_after(response)
            if wait is None:
                wait = random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
            time.sleep(min(wait, self.max_backoff))
            attempt += 1
            self.stats.retries += 1


def open_client(creds: service_account.Credentials, api_url: str, timeout: float,
                max_retries: int, backoff: float) -> tuple[gspread.Client, SheetsHTTPClient]:
    holder: list[SheetsHTTPClient] = []

    def make(auth, session=None) -> SheetsHTTPClient:
        holder.append(SheetsHTTPClient(auth, session, api_url=api_url, timeout=timeout,
                                       max_retries=max_retries, backoff=backoff))
        return holder[-1]

    client = gspread.Client(creds, http_client=make)
    return client, holder[0]
