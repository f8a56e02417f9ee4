"""The Cloud API layer is pure: these tests need no database."""

import pytest


@pytest.fixture(autouse=True)
def _empty_database() -> None:
    """No database for the pure Graph layer."""
