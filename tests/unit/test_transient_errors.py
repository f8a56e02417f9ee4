"""Which failures a retry can get past (answered 503 with Retry-After) and which are bugs (500)."""

from __future__ import annotations

import sqlite3

import pytest
import redis.exceptions
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from layanify.errors import is_nul_rejection, is_transient, log_failure


class PostgresError(Exception):
    """The shape of asyncpg's errors as SQLAlchemy's adapter passes them: a `sqlstate`."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def postgres(sqlstate: str) -> DBAPIError:
    return OperationalError("SELECT 1", None, PostgresError(sqlstate))


def sqlite(code: int, text: str) -> DBAPIError:
    error = sqlite3.OperationalError(text)
    error.sqlite_errorcode = code
    return OperationalError("INSERT INTO x VALUES (?)", None, error)


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        ("40001", True),  # serialization failure
        ("40P01", True),  # deadlock detected
        ("55P03", True),  # lock not available (lock_timeout)
        ("57014", True),  # query canceled (statement_timeout)
        ("53300", True),  # too many connections
        ("57P01", True),  # the server is shutting down
        ("57P03", True),  # the server is starting up
        ("08006", True),  # connection failure
        ("08001", True),  # unable to connect
        ("23505", False),  # unique violation: retrying repeats it
        ("42P01", False),  # undefined table: a bug
        ("22021", False),  # a NUL in text: the caller's input
    ],
)
def test_postgresql_sqlstates(sqlstate: str, transient: bool) -> None:
    assert is_transient(postgres(sqlstate)) is transient


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        (5, True),  # SQLITE_BUSY
        (6, True),  # SQLITE_LOCKED
        (517, True),  # SQLITE_BUSY_SNAPSHOT
        (773, True),  # SQLITE_BUSY_TIMEOUT
        (10, False),  # SQLITE_IOERR
        (13, False),  # SQLITE_FULL: retrying will not free the disk
        (19, False),  # SQLITE_CONSTRAINT
    ],
)
def test_sqlite_result_codes(code: int, transient: bool) -> None:
    assert is_transient(sqlite(code, "database is locked")) is transient


def test_a_lost_connection_a_full_pool_and_an_unreachable_server_are_transient() -> None:
    lost = DBAPIError("SELECT 1", None, Exception("connection was closed"), connection_invalidated=True)
    assert is_transient(lost)
    assert is_transient(PoolTimeout("QueuePool limit of size 10 overflow 10 reached"))
    assert is_transient(ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"))
    assert is_transient(redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"))
    assert is_transient(redis.exceptions.TimeoutError("Timeout reading from socket"))


def test_bugs_are_not_transient() -> None:
    assert not is_transient(RuntimeError("boom"))
    assert not is_transient(KeyError("x"))
    assert not is_transient(redis.exceptions.ResponseError("WRONGTYPE"))
    assert not is_transient(IntegrityError("INSERT", None, Exception("UNIQUE constraint failed")))
    assert not is_transient(OperationalError("COMMIT", None, Exception("disk I/O error")))


def test_a_nul_rejection_is_recognised_by_its_sqlstate() -> None:
    assert is_nul_rejection(postgres("22021"))
    assert is_nul_rejection(postgres("22P05"))
    assert not is_nul_rejection(postgres("40001"))
    assert not is_nul_rejection(sqlite(5, "database is locked"))


class Recorder:
    """A logger that keeps what it was asked to log."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, object]]] = []

    def warning(self, event: str, **kw: object) -> None:
        self.calls.append(("warning", event, kw))

    def exception(self, event: str, **kw: object) -> None:
        self.calls.append(("exception", event, kw))


def test_a_background_task_logs_an_outage_as_one_warning_and_a_bug_with_its_traceback() -> None:
    """A database restart makes every task's pass fail until it is back: warnings, not a traceback each
    second (and no Sentry error for something that passes by itself)."""
    logger = Recorder()
    log_failure(logger, "media_downloader_failed", sqlite(5, "database is locked"), worker="media")
    log_failure(logger, "media_downloader_failed", RuntimeError("boom"), worker="media")
    (level, event, fields), (bug_level, bug_event, bug_fields) = logger.calls
    assert (level, event) == ("warning", "media_downloader_failed")
    assert fields == {"error": "OperationalError", "cause": "OperationalError", "code": 5, "worker": "media"}
    assert (bug_level, bug_event, bug_fields) == ("exception", "media_downloader_failed", {"worker": "media"})
