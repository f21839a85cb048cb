"""Retries and failures against the fake server: 429 then success, 429 forever, a 500 with an HTML
body, a server that never answers, a 4xx that fails at once, and keys that must not be used."""

from __future__ import annotations

import json
import time

import dagster as dg
import pytest

from warehouse_assets.sheets.client import SheetsError
from warehouse_assets.sheets.resource import GoogleSheets
from warehouse_assets_tests.conftest import failure_text
from warehouse_assets_tests.sheets.conftest import SID, metadata, run, sheet_entry
from warehouse_assets_tests.sheets.fake_sheets import HTML_500, QUOTA_429

ENTRY = {"sheets": [sheet_entry("T", "raw_data.t", {"k": "VARCHAR(8)", "v": "INT"})]}
KEY = dg.AssetKey(["raw_data", "t"])


@pytest.fixture
def tab(fake_sheets):
    return fake_sheets.add_tab(SID, "T", [["k", "v"], ["a", 1], ["b", 2]])


def test_429_three_times_then_success(embedded_env, fake_sheets, sheets, tab):
    fake_sheets.fail(429, QUOTA_429, times=3, match="/values/")
    result = run(embedded_env, sheets, ENTRY)
    assert embedded_env.warehouse_rows("raw_data.t") == [("a", 1), ("b", 2)]
    md = metadata(result)[KEY]
    assert (md["api_calls"], md["api_retries"]) == (4, 3)
    assert len(fake_sheets.calls("/values/")) == 4


def test_429_forever_gives_up_after_a_bounded_number_of_attempts(embedded_env, fake_sheets,
                                                                 sheets, tab):
    fake_sheets.fail(429, QUOTA_429, times=None, match="/values/")
    result = run(embedded_env, sheets, ENTRY, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert (f"spreadsheet {SID}, tab 'T': reading the tab failed: gave up after 5 attempts: "
            f"RESOURCE_EXHAUSTED: Quota exceeded") in text
    assert len(fake_sheets.calls("/values/")) == 5


def test_retry_after_is_honoured(fake_sheets, sheets, tab):
    fake_sheets.fail(429, QUOTA_429, times=1, match="/values/", headers={"Retry-After": "1"})
    started = time.monotonic()
    conn = sheets.connect()
    assert conn.values(SID, "T")[1] == ["a", 1]
    assert time.monotonic() - started >= 1.0  # the backoff alone would be 10 ms
    assert conn.stats.retries == 1


def test_a_500_with_an_html_body_is_retried_then_reported(fake_sheets, sheets, tab):
    fake_sheets.fail(500, HTML_500, times=None, match="/values/")
    with pytest.raises(SheetsError, match=r"gave up after 5 attempts: HTTP 500: <!DOCTYPE html>"
                                          r"<html><body><h1>Error 500 \(Server Error\)") as err:
        sheets.connect().values(SID, "T")
    assert err.value.transient


def test_a_server_that_never_answers_times_out(fake_sheets, tab):
    fake_sheets.fail(200, hang=3.0, times=None, match="/values/")
    sheets = GoogleSheets(service_account_json=json.dumps(fake_sheets.service_account_info()),
                          api_url=fake_sheets.url, timeout_seconds=0.5, max_retries=1,
                          backoff_seconds=0.01)
    started = time.monotonic()
    with pytest.raises(SheetsError, match=r"gave up after 2 attempts: no answer within 0.5 s"):
        sheets.connect().values(SID, "T")
    assert time.monotonic() - started < 2.5


def test_a_4xx_fails_at_once_with_the_apis_message(embedded_env, fake_sheets, sheets, tab):
    fake_sheets.fail(400, {"error": {"code": 400, "message": "Invalid value at 'range'",
                                     "status": "INVALID_ARGUMENT"}}, match="/values/")
    result = run(embedded_env, sheets, ENTRY, raise_on_error=False)
    assert "reading the tab failed: INVALID_ARGUMENT: Invalid value at 'range'" in (
        failure_text(result))
    assert len(fake_sheets.calls("/values/")) == 1


def test_a_key_whose_token_uri_is_elsewhere_is_refused(fake_sheets):
    info = {**fake_sheets.service_account_info(), "token_uri": "https://evil.example/token"}
    sheets = GoogleSheets(service_account_json=json.dumps(info), api_url=fake_sheets.url)
    with pytest.raises(SheetsError, match="token_uri 'https://evil.example/token' is neither "
                                          "Google's nor on the host of GOOGLE_SHEETS_API_URL"):
        sheets.connect()
    assert fake_sheets.requests == []


def test_missing_or_broken_credentials_say_what_to_set(fake_sheets, tmp_path):
    with pytest.raises(SheetsError, match="set GOOGLE_SERVICE_ACCOUNT_JSON .* or "
                                          "GOOGLE_APPLICATION_CREDENTIALS"):
        GoogleSheets().connect()
    with pytest.raises(SheetsError, match="GOOGLE_SERVICE_ACCOUNT_JSON: not JSON"):
        GoogleSheets(service_account_json="{nope").connect()
    info = fake_sheets.service_account_info()
    broken = {**info, "private_key": info["private_key"][:200]}
    with pytest.raises(SheetsError, match="the private key cannot be read") as err:
        GoogleSheets(service_account_json=json.dumps(broken), api_url=fake_sheets.url).connect()
    assert info["private_key"][40:120] not in str(err.value)
    path = tmp_path / "key.json"
    path.write_text(json.dumps(info))
    conn = GoogleSheets(credentials_path=str(path), api_url=fake_sheets.url).connect()
    assert conn.metadata(SID)["spreadsheetId"] == SID
