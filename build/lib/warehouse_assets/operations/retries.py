"""Retries: a transient failure is retried after a delay (the seed: 1 retry after 3 minutes);
a data or configuration error fails at once, because running it again gives the same answer.

Every writer asset carries `retry_policy()`, so Dagster retries what fails. Code that can tell a
data error from a transient one (the IO managers, summary and landing bodies) wraps itself in
`fail_fast_on_data_errors`, which re-raises a non-transient error as
`dagster.Failure(allow_retries=False)`: Dagster's step error boundary then skips the retry policy
(dagster/_core/execution/plan/utils.py, `op_execution_error_boundary`). An error nobody classified
is retried once, as Airflow's `retries=1` did: a retry costs minutes, a missed night costs a day.
"""

import re
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa

from warehouse_assets.config import ConfigError
from warehouse_assets.lib.source import SourceError
from warehouse_assets.lib.staged import DataError
from warehouse_assets.lib.staging import StagingError
from warehouse_assets.lib.warehouse import LoadError
from warehouse_assets.settings import Operations

# MySQL: too many connections, lock wait timeout, deadlock, can't connect, gone away, lost
# connection.
MYSQL_TRANSIENT = {1040, 1205, 1213, 2002, 2003, 2006, 2013}
# PostgreSQL/Redshift SQLSTATE: connection exception, transaction rollback (serialization,
# deadlock), insufficient resources, lock not available, operator intervention (shutdown).
PG_TRANSIENT_PREFIXES = ("08", "40", "53", "55P03", "57P")
# S3 error codes that mean "slow down" or "try again".
S3_TRANSIENT = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                "RequestTimeout", "InternalError", "ServiceUnavailable"}
# Drivers that report failures only as text (connectorx's Rust errors arrive as RuntimeError).
TRANSIENT_TEXT = re.compile(
    r"connection reset|broken pipe|connection refused|timed out waiting for connection|"
    r"lost connection|server has gone away|lock wait timeout|deadlock", re.IGNORECASE)
# Errors whose answer does not change on a second try.
PERMANENT = (DataError, ConfigError, SourceError, StagingError, LoadError,
             sa.exc.DataError, sa.exc.IntegrityError, sa.exc.ProgrammingError,
             dg.DagsterInvalidConfigError)


def retry_policy(ops: Operations | None = None) -> dg.RetryPolicy:
    """RETRY_MAX retries, the first after RETRY_DELAY_SECONDS, doubling, with jitter."""
    ops = ops or Operations.from_env()
    return dg.RetryPolicy(
        max_retries=ops.retries,
        delay=ops.retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,  # tables retried together do not hit S3 in the same second
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, including contexts hidden by `raise ... from None`."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        # SQLAlchemy keeps the driver's error on .orig (also its __cause__ when it raised it).
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)


def _transient_link(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):  # reset, refused, broken pipe
        return True
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if type(exc).__module__.startswith("pymysql"):
        return bool(exc.args) and exc.args[0] in MYSQL_TRANSIENT
    if type(exc).__module__.startswith("psycopg2"):
        code = getattr(exc, "pgcode", None)
        if code:
            return code.startswith(PG_TRANSIENT_PREFIXES)
        # No SQLSTATE: the connection failed before a session existed (refused, reset, closed).
        text = str(exc).lower()
        return type(exc).__name__ == "OperationalError" and "authentication" not in text
    if type(exc).__module__.startswith("botocore"):
        response = getattr(exc, "response", None)
        if response is None:  # EndpointConnectionError, ReadTimeoutError, ConnectionClosedError
            return "ConnectionError" in {c.__name__ for c in type(exc).__mro__}
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in S3_TRANSIENT or status >= 500
    # DuckDB (and SQLite) report a held file lock as an OperationalError naming the lock.
    if isinstance(exc, sa.exc.OperationalError) and "lock" in str(exc).lower():
        return True
    return isinstance(exc, RuntimeError) and bool(TRANSIENT_TEXT.search(str(exc)))


def is_transient(exc: BaseException) -> bool:
    """True if any link of the error's chain is a transient failure worth retrying."""
    return any(_transient_link(e) for e in _chain(exc))


def is_permanent(exc: BaseException) -> bool:
    """True for data and configuration errors that no retry can fix."""
    return not is_transient(exc) and any(isinstance(e, PERMANENT) for e in _chain(exc))


@contextmanager
def fail_fast_on_data_errors() -> Iterator[None]:
    """Re-raise data and configuration errors so the retry policy does not retry them.

    Usable as a decorator: `@fail_fast_on_data_errors()` on an asset body or IO manager method.
    """
    try:
        yield
    except Exception as exc:
        if isinstance(exc, dg.Failure) or not is_permanent(exc):
            raise
        raise dg.Failure(description=str(exc), allow_retries=False) from exc

