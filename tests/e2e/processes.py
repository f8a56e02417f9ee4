"""Real processes over loopback for end-to-end tests: `layanify serve` and `layanify simulator`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.conftest import APP_SECRET, TEST_ENCRYPTION_KEYS, VERIFY_TOKEN


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def server(
    database_url: str, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`layanify serve` as a separate process; yields it and its base URL once /readyz answers."""
    port = port or free_port()
    async with process(
        ["serve", "--port", str(port), *args],
        ready=f"http://127.0.0.1:{port}/readyz",
        env={
            "LAYANIFY_DATABASE_URL": database_url,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "LAYANIFY_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,
            "LAYANIFY_LOG_LEVEL": "WARNING",
            "LAYANIFY_WORKER_POLL_SECONDS": "0.2",
            # Downloaded media goes to a temporary directory, not under the test tree.
            "LAYANIFY_MEDIA_DIR": tempfile.mkdtemp(prefix="layanify-media-"),
            **(env or {}),
        },
    ) as running:
        yield running, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def simulator(
    callback_url: str, *, token: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`layanify simulator` as a separate process, signing webhooks with the tests' app secret."""
    port = free_port()
    args = ["simulator", "--port", str(port), "--callback-url", callback_url, "--app-secret", APP_SECRET]
    async with process(
        [*args, "--token", token], ready=f"http://127.0.0.1:{port}/_sim/health", env=env or {}
    ) as running:
        yield running, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def process(
    argv: list[str], *, ready: str, env: dict[str, str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m layanify <argv>`, yielded once `ready` answers 200; stopped with SIGTERM after."""
    log = Path(tempfile.mkdtemp()) / "process.log"  # a file, not a pipe: a full pipe would stall it
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "layanify",
        *argv,
        env={**os.environ, **env},
        cwd=Path(__file__).parent,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                if process.returncode is not None:
                    raise AssertionError(f"{argv[0]} exited: {log.read_text()}")
                try:
                    if (await http.get(ready)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"{argv[0]} did not become ready: {log.read_text()}")
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
