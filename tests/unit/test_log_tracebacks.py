"""An error's log line has its traceback, and never the local variables of its frames.

structlog's defaults print every frame's locals in the console (a login's password, a number's access
token, a message's text) and, in JSON, wrote `"exc_info": true` without any traceback. Both paths are
checked: our own loggers, and the stdlib's (uvicorn logs an unhandled request error through it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sentry_sdk
import structlog
from pydantic import SecretStr

from layanify.config import Settings
from layanify.observability import configure_logging, configure_sentry, get_logger

PASSWORD = "pw-" + "correct horse battery"[::-1]  # built at run time: not in the source a traceback shows
TOKEN = "EAAG" + "x7Qk" * 5


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Logging as `serve` has it (uvicorn's loggers propagate to ours: `log_config=None`), then as it was
    (an in-process uvicorn of an earlier test may have given "uvicorn" a handler and levels of its own)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    uvicorn = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error")]
    saved = [(u.handlers[:], u.propagate, u.level) for u in uvicorn]
    for logger in uvicorn:
        logger.handlers[:], logger.propagate = [], True
        logger.setLevel(logging.NOTSET)
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for logger, (its_handlers, propagate, its_level) in zip(uvicorn, saved, strict=True):
        logger.handlers[:], logger.propagate = its_handlers, propagate
        logger.setLevel(its_level)
    structlog.configure(**config)


def _fail(password: str) -> None:
    access_token = TOKEN  # a local, as in the Graph client
    raise RuntimeError(f"the call failed after {len(access_token)} characters of token")


def _log_failures() -> None:
    for logger in (get_logger("layanify.test"), logging.getLogger("uvicorn.error")):
        try:
            _fail(PASSWORD)
        except RuntimeError:
            logger.exception("request_failed")


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_tracebacks_are_logged_without_locals(log_format: str, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings(log_format=log_format, log_level="INFO"))
    _log_failures()
    out, err = capsys.readouterr()
    logged = out + err
    assert "request_failed" in logged
    assert logged.count("24 characters of token") == 2  # each line has its exception (not in the source)…
    assert "_fail" in logged  # …and the frames it went through
    assert PASSWORD not in logged
    assert TOKEN not in logged


def test_sentry_gets_no_locals_no_bodies_and_no_personal_data(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: seen.update(options))
    assert configure_sentry(Settings(sentry_dsn=SecretStr("https://key@sentry.example/1")))
    assert seen["include_local_variables"] is False
    assert seen["send_default_pii"] is False
    assert seen["max_request_body_size"] == "never"
