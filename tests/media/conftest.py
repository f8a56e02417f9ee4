"""Media end to end: the product's workers (downloader included) against the in-process simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from layanify.config import Settings
from tests.conftest import make_settings
from tests.sending.conftest import live, sim, sim_config, simulator  # noqa: F401


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """Where this test's media files are stored."""
    return tmp_path / "media"


@pytest.fixture
def live_settings(database_url: str, media_dir: Path) -> Settings:
    """The sending tests' settings, with media stored under the test's directory and a fast downloader."""
    return make_settings(
        database_url,
        in_process_workers=1,
        outbox_poll_seconds=0.05,
        outbox_retry_base_seconds=0.05,
        outbox_retry_max_seconds=0.2,
        outbox_reconcile_seconds=2.0,
        pair_rate="100 per minute",
        connection_check_seconds=0,
        worker_coalesce_seconds=0.0,
        media_dir=media_dir,
        media_poll_seconds=0.05,
        media_retry_base_seconds=0.05,
    )
