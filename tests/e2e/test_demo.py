"""`layanify demo` (what `make run` starts without credentials), run as a user would."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKEND
from tests.e2e.processes import free_port

pytestmark = [
    pytest.mark.e2e,
    # The demo always runs on its own SQLite file, whichever database the suite is testing.
    pytest.mark.skipif(
        BACKEND != "sqlite", reason="the demo uses its own SQLite file; tested in the SQLite run"
    ),
]


async def test_the_demo_starts_with_a_login_a_connected_number_and_live_conversations(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAYANIFY_", "WHATSAPP_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "layanify",
        "demo",
        "--port",
        str(port),
        "--simulator-port",
        str(sim_port),
        "--chat-every",
        "1",
        cwd=tmp_path,
        env={**env, "LAYANIFY_LOG_LEVEL": "WARNING"},
        stdout=log.open("wb"),
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):
            while not (match := re.search(r"API key\s+(lay_\S+)", log.read_text())):
                assert process.returncode is None, log.read_text()
                await asyncio.sleep(0.2)
        key = match.group(1)
        assert "demo@layanify.local / layanify-demo" in log.read_text()
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
            numbers = (await api.get("/api/v1/numbers")).json()
            assert [(n["connection_state"], n["status"]) for n in numbers] == [("connected", "approved")]

            async def conversations() -> list[dict[str, object]]:
                data: list[dict[str, object]] = (await api.get("/api/v1/conversations")).json()["data"]
                return data

            async with asyncio.timeout(30):
                while len(await conversations()) < 4:  # noqa: ASYNC110 - the demo is another process
                    await asyncio.sleep(0.2)
            login = await api.post(
                "/api/v1/auth/login", json={"email": "demo@layanify.local", "password": "layanify-demo"}
            )
            assert login.status_code == 200
        async with httpx.AsyncClient() as http:
            phones = await http.get(f"http://127.0.0.1:{sim_port}/_sim/phones")
            assert "Budi Santoso" in phones.text
        assert (tmp_path / "data" / "demo.db").exists()
        # The banner's webhook log command reads the demo's own database, not the configured one.
        line = re.search(r"Webhook log\s+LAYANIFY_DATABASE_URL=(\S+) layanify webhooks list", log.read_text())
        assert line is not None, log.read_text()
        listed = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "layanify",
            "webhooks",
            "list",
            cwd=tmp_path,
            env={**env, "LAYANIFY_DATABASE_URL": line.group(1), "LAYANIFY_LOG_LEVEL": "WARNING"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await listed.communicate()
        assert listed.returncode == 0, err.decode()
        assert " processed " in out.decode()
        assert "messages" in out.decode()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await process.wait()
    assert code == 0, log.read_text()[-3000:]
