"""Connected numbers: the REST API under /api/v1/numbers and the seed's tRPC endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from layanify import trpc
from layanify.accounts.dependencies import CurrentPrincipal, OwnerPrincipal, SessionDep, get_principal
from layanify.accounts.service import Principal
from layanify.automation import service as automation
from layanify.automation.schemas import camel_dump
from layanify.db.session import after_commit_call
from layanify.errors import Forbidden, LayanifyError, Unprocessable
from layanify.messaging import service as messaging
from layanify.numbers import connection, service
from layanify.numbers.models import WhatsAppNumber
from layanify.numbers.schemas import ConnectionReport, NumberCreate, NumberRead, NumberUpdate, dump
from layanify.pagination import ObjectId

router = APIRouter(prefix="/api/v1/numbers", tags=["numbers"])
trpc_router = APIRouter(prefix="/api/trpc", tags=["tRPC (seed)"])


def _read(request: Request, number: WhatsAppNumber) -> NumberRead:
    return service.to_read(number, request.app.state.settings.rate_limit_per_second)


def _wake_outbox(request: Request, session: AsyncSession) -> None:
    """Wake the in-process outbox right after the commit (a queued message, a reconnected number)."""
    after_commit_call(session, getattr(request.app.state, "wake_outbox", None))


async def _test(request: Request, session: AsyncSession, number: WhatsAppNumber) -> ConnectionReport:
    report = await connection.test_connection(
        session,
        number,
        request.app.state.graph_client,
        request.app.state.keyring,
        default_rate=request.app.state.settings.rate_limit_per_second,
    )
    if report.number.connection_state == "connected":
        _wake_outbox(request, session)
    return report


@router.get("")
async def list_numbers(
    request: Request, principal: CurrentPrincipal, session: SessionDep
) -> list[NumberRead]:
    """The workspace's connected numbers with their connection state (tokens are never shown)."""
    return [_read(request, n) for n in await service.list_numbers(session, principal.workspace_id)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_number(
    request: Request, data: NumberCreate, principal: OwnerPrincipal, session: SessionDep
) -> NumberRead:
    """Connect a number (owners only). It is `pending` until `POST /numbers/{id}/test` passes."""
    number = await service.add_number(
        session,
        workspace_id=principal.workspace_id,
        user_id=principal.user_id,
        data=data,
        keyring=request.app.state.keyring,
    )
    return _read(request, number)


@router.get("/{number_id}")
async def get_number(
    request: Request, number_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> NumberRead:
    """One number."""
    return _read(request, await service.get_number(session, principal.workspace_id, number_id))


@router.patch("/{number_id}")
async def update_number(
    request: Request, number_id: ObjectId, data: NumberUpdate, principal: OwnerPrincipal, session: SessionDep
) -> NumberRead:
    """Change a number (owners only). A new token puts it back to `unknown` until it is tested."""
    number = await service.get_number(session, principal.workspace_id, number_id, lock=True)
    updated = await service.update_number(
        session, number, data, request.app.state.keyring, actor_user_id=principal.user_id
    )
    return _read(request, updated)


@router.delete("/{number_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_number(number_id: ObjectId, principal: OwnerPrincipal, session: SessionDep) -> Response:
    """Remove a number (owners only): its token is erased, its conversations and messages are kept, and
    messages still queued from it fail with the reason."""
    number = await service.get_number(session, principal.workspace_id, number_id, lock=True)
    await service.delete_number(session, number)
    await messaging.fail_queued_of_removed_number(session, number.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{number_id}/test")
async def test_connection(
    request: Request, number_id: ObjectId, principal: CurrentPrincipal, session: SessionDep
) -> ConnectionReport:
    """Check the token and ids against Meta and explain the result; updates the connection state."""
    number = await service.get_number(session, principal.workspace_id, number_id, lock=True)
    return await _test(request, session, number)


# --- The seed's tRPC endpoints --------------------------------------------------------------------


class _ById(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int = Field(ge=1, lt=2**63)


class _UpdateInput(NumberUpdate):
    id: int = Field(ge=1, lt=2**63)
    # The seed's WhatsAppSettings component saves behaviour with the number: merged into what is stored.
    settings: dict[str, Any] | None = None


class _TestInput(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int | None = Field(default=None, ge=1, lt=2**63)


Procedure = Callable[[Request, AsyncSession, Principal, Any], Awaitable[Any]]


def _owner(principal: Principal) -> None:
    if not principal.is_owner:
        raise Forbidden("only a workspace owner can do this")


async def _with_settings(request: Request, session: AsyncSession, number: WhatsAppNumber) -> dict[str, Any]:
    """The tRPC view of a number: the REST fields plus its behaviour settings, in camelCase."""
    settings = await automation.get_settings(session, number)
    return dump(_read(request, number), camel=True) | {"settings": camel_dump(settings)}


async def _get_numbers(request: Request, session: AsyncSession, principal: Principal, _: Any) -> Any:
    numbers = await service.list_numbers(session, principal.workspace_id)
    return [await _with_settings(request, session, n) for n in numbers]


async def _add_number(request: Request, session: AsyncSession, principal: Principal, data: Any) -> Any:
    _owner(principal)
    number = await service.add_number(
        session,
        workspace_id=principal.workspace_id,
        user_id=principal.user_id,
        data=NumberCreate.model_validate(data or {}),
        keyring=request.app.state.keyring,
    )
    return dump(_read(request, number), camel=True)


async def _update_number(request: Request, session: AsyncSession, principal: Principal, data: Any) -> Any:
    _owner(principal)
    changes = _UpdateInput.model_validate(data or {})
    number = await service.get_number(session, principal.workspace_id, changes.id, lock=True)
    update = NumberUpdate.model_validate(changes.model_dump(exclude={"id", "settings"}, exclude_unset=True))
    number = await service.update_number(
        session, number, update, request.app.state.keyring, actor_user_id=principal.user_id
    )
    if changes.settings is not None:
        await automation.save_settings(
            session, number, changes.settings, user_id=principal.user_id, partial=True
        )
    return await _with_settings(request, session, number)


async def _delete_number(request: Request, session: AsyncSession, principal: Principal, data: Any) -> Any:
    _owner(principal)
    target = _ById.model_validate(data or {})
    number = await service.get_number(session, principal.workspace_id, target.id, lock=True)
    await service.delete_number(session, number)
    await messaging.fail_queued_of_removed_number(session, number.id)
    return {"success": True, "id": number.id}


async def _test_connection(request: Request, session: AsyncSession, principal: Principal, data: Any) -> Any:
    target = _TestInput.model_validate(data or {})
    if target.id is None:
        # The seed's testConnection() takes no argument: it tests the (only) connected number.
        numbers = await service.list_numbers(session, principal.workspace_id)
        if len(numbers) != 1:
            raise Unprocessable(
                "give the number's `id`: this workspace has "
                + ("no number yet" if not numbers else f"{len(numbers)} numbers")
            )
        number = numbers[0]
    else:
        number = await service.get_number(session, principal.workspace_id, target.id, lock=True)
    return dump(await _test(request, session, number), camel=True)


# procedure name -> (HTTP methods tRPC clients use for it, implementation)
PROCEDURES: dict[str, tuple[frozenset[str], Procedure]] = {
    "whatsapp.getNumbers": (frozenset({"GET"}), _get_numbers),
    "whatsapp.addNumber": (frozenset({"POST"}), _add_number),
    "whatsapp.updateNumber": (frozenset({"PUT", "POST", "PATCH"}), _update_number),
    "whatsapp.deleteNumber": (frozenset({"DELETE", "POST"}), _delete_number),
    "whatsapp.testConnection": (frozenset({"POST", "GET"}), _test_connection),
}


async def call_procedure(procedure: str, request: Request, session: SessionDep) -> JSONResponse:
    """The seed's `/api/trpc/whatsapp.*` endpoints, answering in tRPC's envelope."""
    entry = PROCEDURES.get(procedure)
    if entry is None:
        return trpc.error(procedure, 404, f'No procedure found on path "{procedure}"')
    methods, run = entry
    if request.method not in methods:
        allowed = ", ".join(sorted(methods))
        return trpc.error(procedure, 405, f"{procedure} is called with {allowed}, not {request.method}")
    try:
        principal = await get_principal(request, session)
        data = await trpc.read_input(request)
        return trpc.result(await run(request, session, principal, data))
    except (LayanifyError, ValidationError) as exc:
        await session.rollback()  # nothing of a refused call is kept
        return trpc.error_from(procedure, exc)


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    trpc_router.add_api_route(
        "/{procedure}",
        call_procedure,
        methods=[_method],
        name=f"trpc_{_method.lower()}",
        operation_id=f"trpc_{_method.lower()}",
        summary=f"Call a seed tRPC procedure with {_method}",
    )
