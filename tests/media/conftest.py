"""Media end to end: the product's workers (downloader included) against the in-process simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from layanify.config import Settings
from tests.sending.conftest import live, live_product_settings, sim, sim_config, simulator  # noqa: F401


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """Where this test's media files are stored."""
    return tmp_path / "media"


def media_settings(database_url: str, media_dir: Path, **overrides: Any) -> Settings:
    """The sending tests' settings, with media stored under `media_dir` and a fast downloader."""
    return live_product_settings(
        database_url,
        media_dir=media_dir,
        media_poll_seconds=0.05,
        media_retry_base_seconds=0.05,
        **overrides,
    )


@pytest.fixture
def live_settings(database_url: str, media_dir: Path) -> Settings:
    """The sending tests' settings, with media stored under the test's directory and a fast downloader."""
    return media_settings(database_url, media_dir)
