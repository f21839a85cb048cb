"""Secrets stay in the process: text that leaves it (log records, alerts, errors) is scrubbed.

A secret is the value of an environment variable whose name says so (the words Airflow masks:
PASSWORD, SECRET, TOKEN, WEBHOOK, ...), the path of such a value when it is a URL (a Slack
webhook's path is its credential) and the password inside any URL, whether written in the text or
held by a variable such as SOURCE_DB_URL or WAREHOUSE_DB_URL. A Google service account's key
(GOOGLE_SERVICE_ACCOUNT_JSON, or the file GOOGLE_APPLICATION_CREDENTIALS names) gives its private
key, each line of it and its id; OAuth access tokens, bearer headers, JWT assertions and PEM
private keys are masked wherever they appear, since they are minted at run time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import unquote, urlsplit

# Airflow masks Variables whose names contain these words; the same names are secret here.
SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|AUTHORIZATION|API_?KEY|WEBHOOK", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
# Credentials minted at run time, so no variable holds them: Google access tokens (ya29.),
# Authorization headers, signed JWTs (a token request's assertion) and PEM private keys.
RUNTIME_SECRETS = re.compile(
    r"ya29\.[A-Za-z0-9_\-.]+|(?<=Bearer )[A-Za-z0-9_\-.~+/=]+|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL)
MIN_SECRET = 8  # shorter values would mask ordinary words; URL passwords are masked by position
MASK = "***"


class ScrubbedError(RuntimeError):
    """An error whose text held a secret, re-raised with the secret masked."""


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret strings the environment holds, longest first."""
    found: set[str] = set()
    for name, value in (os.environ if environ is None else environ).items():
        named = bool(SECRET_NAME.search(name))
        if named:
            found.add(value)
        if "://" in value:
            try:
                url = urlsplit(value)
                password = url.password
            except ValueError:
                continue
            found.update((password, unquote(password)) if password else ())
            if named:
                found.add(url.path)
    env = os.environ if environ is None else environ
    if env.get("GOOGLE_SERVICE_ACCOUNT_JSON"):
        found.update(_service_account_secrets(env["GOOGLE_SERVICE_ACCOUNT_JSON"]))
    elif env.get("GOOGLE_APPLICATION_CREDENTIALS"):
        found.update(_key_file_secrets(env["GOOGLE_APPLICATION_CREDENTIALS"]))
    return sorted((v for v in found if len(v) >= MIN_SECRET), key=len, reverse=True)


@lru_cache(maxsize=8)
def _service_account_secrets(text: str) -> frozenset[str]:
    """The key's JSON, its private key (whole, escaped as in JSON, and line by line) and its id."""
    try:
        info = json.loads(text)
    except ValueError:
        return frozenset({text})
    if not isinstance(info, dict):
        return frozenset({text})
    key, kid = str(info.get("private_key") or ""), str(info.get("private_key_id") or "")
    lines = {ln for ln in key.splitlines() if ln and not ln.startswith("-----")}
    return frozenset({text, key, json.dumps(key)[1:-1], kid, *lines} - {""})


def _key_file_secrets(path: str) -> frozenset[str]:
    try:
        stat = os.stat(path)
    except OSError:
        return frozenset()
    return _key_file_cached(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _key_file_cached(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return _service_account_secrets(fh.read())
    except (OSError, UnicodeDecodeError):
        return frozenset()


def scrub(text: str) -> str:
    """`text` without URL passwords, run-time credentials or the environment's secret values."""
    text = URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    text = RUNTIME_SECRETS.sub(MASK, text)
    for value in secret_values():
        text = text.replace(value, MASK)
    return text


@contextmanager
def scrubbed_errors() -> Iterator[None]:
    """Re-raise an error whose message, or a cause's, holds a secret, as one that does not."""
    try:
        yield
    except Exception as exc:
        chain, link = [], exc
        while link is not None:
            chain.append("".join(traceback.format_exception_only(link)).strip())
            link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
        text = "\ncaused by ".join(chain)
        if scrub(text) == text:
            raise
        # `from None`: Dagster stores the chain it is shown, and the original holds the secret.
        raise ScrubbedError(scrub(text)) from None


def _scrubbed_record_factory(make: logging.LogRecordFactory) -> logging.LogRecordFactory:
    def factory(*args, **kwargs) -> logging.LogRecord:
        record = make(*args, **kwargs)
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return record

    factory.scrubs_secrets = True  # type: ignore[attr-defined]
    return factory


def scrub_log_records() -> None:
    """Every log record this process creates, from any library, is scrubbed (idempotent)."""
    make = logging.getLogRecordFactory()
    if not getattr(make, "scrubs_secrets", False):
        logging.setLogRecordFactory(_scrubbed_record_factory(make))
