"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from layanify.db.migrate import current_revision, head_revision
from layanify.webhooks.ingest import EventWriter

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when the database answers, every migration is applied and webhooks can be stored."""
    engine: AsyncEngine = request.app.state.engine
    checks: dict[str, str] = {}
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current, head = await current_revision(engine), head_revision()
        checks["migrations"] = (
            "ok" if current == head else f"at {current}, code expects {head}: run `layanify migrate`"
        )
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    writer: EventWriter | None = getattr(request.app.state, "event_writer", None)
    if writer is not None:
        checks["webhook_writer"] = await writer.health()
    ready = all(v == "ok" for v in checks.values()) and "migrations" in checks
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )
