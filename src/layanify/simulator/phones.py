"""The phone page: simulated customers' phones, to type as a customer and watch the business' ticks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

if TYPE_CHECKING:
    from layanify.simulator.app import Simulator

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def phones_router(sim: Simulator) -> APIRouter:
    """`GET /_sim/phones`: one phone per customer, refreshed every second by a few lines of JS."""
    router = APIRouter()

    @router.get("/_sim/phones", response_class=HTMLResponse, include_in_schema=False)
    async def phones() -> HTMLResponse:
        conversations = [sim.messaging.conversation(wa_id) for wa_id in sim.world.customers]
        numbers = list(sim.world.numbers.values())
        html = _TEMPLATES.get_template("phones.html").render(conversations=conversations, numbers=numbers)
        return HTMLResponse(html)

    return router
