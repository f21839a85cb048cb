"""Secrets stay in the process: text that leaves it (log records, alerts, errors) is scrubbed.

A secret is the value of an environment variable whose name says so (the words Airflow masks:
PASSWORD, SECRET, TOKEN, WEBHOOK, ...), the path of such a value when it is a URL (a Slack
webhook's path is its credential) and the password inside any URL, whether written in the text or
held by a variable such as SOURCE_DB_URL or WAREHOUSE_DB_URL.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

# Airflow masks Variables whose names contain these words; the same names are secret here.
SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|AUTHORIZATION|API_?KEY|WEBHOOK", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
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
    return sorted((v for v in found if len(v) >= MIN_SECRET), key=len, reverse=True)


def scrub(text: str) -> str:
    """`text` without URL passwords or the environment's secret values."""
    text = URL_PASSWORD.sub(rf"\1:{MASK}@", text)
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
