"""A number's access token never leaves the product: not in answers, not in the database, not in logs."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import String, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.config import Settings
from layanify.models import Base
from layanify.simulator import Simulator
from tests import factories
from tests.conftest import Tenant
from tests.sending.conftest import live, live_settings, sim, sim_config, simulator  # noqa: F401

PHONE_NUMBER_ID = "109876543210987"


@pytest.fixture
def token() -> str:
    """A token no other test uses, so finding it anywhere means this test leaked it."""
    return f"EAAGsecret{uuid.uuid4().hex}ZX9w"


async def bytes_from_another_process(path: Path) -> bytes:
    """The file's bytes, read by a child process.

    Opening and closing a SQLite database file in the process that has it open drops that process's
    POSIX locks on it (https://www.sqlite.org/howtocorrupt.html, 2.2): later tests then saw stale
    snapshots and "disk I/O error". A child process has locks of its own to drop.
    """
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())",
            str(path),
        ],
        capture_output=True,
        check=True,
    )
    return bytes(result.stdout)


async def every_stored_text(engine: AsyncEngine) -> str:
    """Every row of every table, as text (JSON and text columns included)."""
    rows = []
    async with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            result = await connection.execute(select(table))
            rows.extend(repr(tuple(row)) for row in result)
    return "\n".join(rows)


async def test_the_token_is_in_no_answer_no_row_and_no_log(
    live: httpx.AsyncClient,  # noqa: F811
    simulator: Simulator,  # noqa: F811
    engine: AsyncEngine,
    settings: Settings,
    token: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # stdlib loggers (httpx, SQLAlchemy, …); structlog prints to stdout
    capsys.readouterr()
    simulator.add_number(
        PHONE_NUMBER_ID,
        waba_id=factories.FIXTURE_WABA_ID,
        token=token,
        display_phone_number="6281200001111",
        verified_name="Toko Budi Cabang",
    )
    body = {"phone_number_id": PHONE_NUMBER_ID, "waba_id": factories.FIXTURE_WABA_ID, "access_token": token}
    added = await live.post("/api/v1/numbers", json=body)
    assert added.status_code == 201
    number_id = added.json()["id"]
    answers = [
        added,
        await live.post(f"/api/v1/numbers/{number_id}/test"),
        await live.get("/api/v1/numbers"),
        await live.get(f"/api/v1/numbers/{number_id}"),
        await live.get("/api/trpc/whatsapp.getNumbers"),
        await live.post("/api/trpc/whatsapp.testConnection", json={"id": number_id}),
        await live.put("/api/trpc/whatsapp.updateNumber", json={"id": number_id, "displayName": "Cabang"}),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200, 200, 200]
    assert answers[1].json()["ok"] is True  # the simulator accepted the token: it was really used
    for answer in answers:
        assert token not in answer.text
        assert token[:-4] not in answer.text
    assert added.json()["token_last4"] == "ZX9w"

    # The logs: the add and the test were logged (so the capture works), the token never.
    # Where they went depends on whether an earlier test configured logging (a CLI command does, and
    # structlog caches its loggers): unconfigured structlog prints to stdout, configured it goes through
    # the stdlib root logger, which caplog hears.
    out, err = capsys.readouterr()
    logs = "\n".join((out, err, caplog.text))
    assert "number_added" in logs
    assert "number_connection_tested" in logs
    assert f"number_id={number_id}" in logs or f"'number_id': {number_id}" in logs
    for text_ in (out, err, caplog.text):
        assert token not in text_
        assert token[:-4] not in text_

    # The database: encrypted at rest, only the last 4 characters in the clear.
    stored = await every_stored_text(engine)
    assert "ZX9w" in stored
    assert token not in stored
    assert token[:-4] not in stored
    if engine.dialect.name == "sqlite":
        path = settings.sqlite_path()
        assert path is not None
        # The product's writer keeps the database open: read the file and its write-ahead log both.
        files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
        raw = b"".join([await bytes_from_another_process(p) for p in files])
        assert PHONE_NUMBER_ID.encode() in raw  # the row is in these bytes
        assert token.encode() not in raw
        assert token[:-4].encode() not in raw
    else:
        assert engine.dialect.name == "postgresql"
        table = Base.metadata.tables["whatsapp_numbers"]
        columns = [c for c in table.columns if isinstance(c.type, String | Text)]
        assert "access_token_encrypted" in [c.name for c in columns]
        async with engine.connect() as connection:
            row = (await connection.execute(select(*columns).where(table.c.id == number_id))).one()
        values = dict(zip([c.name for c in columns], row, strict=True))
        assert values["access_token_encrypted"]
        assert token not in values["access_token_encrypted"]
        assert values["token_last4"] == "ZX9w"
        assert all(token not in (v or "") for v in values.values())


async def test_a_refused_token_is_not_echoed_or_logged(
    client: httpx.AsyncClient, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pasted = "EAAGpasted " + uuid.uuid4().hex  # a space: refused
    rest = await client.post(
        "/api/v1/numbers",
        json={"phone_number_id": PHONE_NUMBER_ID, "access_token": pasted},
        headers=tenant.headers,
    )
    trpc = await client.post(
        "/api/trpc/whatsapp.addNumber",
        json={"phoneNumberId": PHONE_NUMBER_ID, "accessToken": pasted},
        headers=tenant.headers,
    )
    assert (rest.status_code, trpc.status_code) == (422, 400)
    for answer in (rest, trpc):
        assert pasted not in answer.text
        assert pasted.split()[1] not in answer.text
        assert "no spaces" in answer.text
    assert pasted.split()[1] not in caplog.text
