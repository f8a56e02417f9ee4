"""Behaviour tests use the in-process simulator fixtures of the sending tests."""

from __future__ import annotations

from tests.sending.conftest import live, live_settings, sim, sim_config, simulator  # noqa: F401
