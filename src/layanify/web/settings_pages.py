"""Settings: each connected number's connection, API configuration and behaviour, and the webhook setup.

Every form posts through htmx (so the CSRF header goes with it) and is answered with the same form
re-rendered: "Saved" and the stored values, or the problem next to what was typed (200, so htmx swaps
it in; nothing was saved). Owners change things; agents see the same pages read-only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_snake
from sqlalchemy.ext.asyncio import AsyncSession

from layanify.accounts.dependencies import SessionDep
from layanify.automation import service as automation
from layanify.db.session import after_commit_call
from layanify.errors import Forbidden, LayanifyError, NotFound, Unprocessable
from layanify.messaging import service as messaging
from layanify.numbers import connection
from layanify.numbers import service as numbers
from layanify.numbers.models import WhatsAppNumber
from layanify.numbers.schemas import ConnectionReport, NumberCreate, NumberRead, NumberUpdate
from layanify.pagination import ObjectId
from layanify.privacy import service as privacy
from layanify.privacy.schemas import MAX_DAYS as MAX_RETENTION_DAYS
from layanify.privacy.schemas import RetentionRead, RetentionUpdate
from layanify.web import behaviour_form
from layanify.web.shell import CurrentPage, Page, go
from layanify.web.templating import View, render

router = APIRouter(include_in_schema=False)
WEBHOOK_PATH = "/api/webhooks/whatsapp"
# The API configuration form's fields, in the order the form shows them.
NUMBER_FIELDS = (
    "access_token",
    "phone_number_id",
    "waba_id",
    "display_name",
    "number",
    "rate_limit_per_second",
)


def _owner_only(page: Page) -> None:
    if not page.principal.is_owner:
        raise Forbidden(page.view.gettext("Only a workspace owner can change this."))


async def _number(session: AsyncSession, page: Page, number_id: int, *, lock: bool = False) -> WhatsAppNumber:
    """The workspace's number, or the not-found page (another workspace's number included)."""
    try:
        return await numbers.get_number(session, page.principal.workspace_id, number_id, lock=lock)
    except NotFound:
        raise NotFound(page.view.gettext("This number does not exist.")) from None


def _read(request: Request, number: WhatsAppNumber) -> NumberRead:
    return numbers.to_read(number, request.app.state.settings.rate_limit_per_second)


def problem_of(number: NumberRead, report: ConnectionReport | None) -> str | None:
    """Which of the common problems the number's last check found (its fix is shown beside it)."""
    if report is not None:
        return report.problem
    error = number.connection_error or ""
    for code, diagnosis in connection.DIAGNOSES.items():
        if error.startswith(diagnosis):
            return code
    if number.connection_state == "disconnected":
        return "invalid_token"  # a send was refused with code 190: the same fix
    return "meta_error" if error else None


def _config_values(number: WhatsAppNumber) -> dict[str, str]:
    return {
        "waba_id": number.waba_id or "",
        "display_name": number.display_name,
        "number": number.number,
        "rate_limit_per_second": str(number.rate_limit_per_second or ""),
    }


def _form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _friendly(view: View, error: Any) -> str:
    """A validation error in words for the person filling the form."""
    kind = error.get("type", "")
    if kind == "string_pattern_mismatch":
        return view.gettext("Use digits only, exactly as Meta for Developers shows this ID.")
    if kind in ("int_parsing", "int_from_float"):
        return view.gettext("Enter a whole number.")
    if kind in ("greater_than_equal", "less_than_equal"):
        return view.gettext("Enter a number from 1 to 1000.")
    if kind == "string_too_short":
        return view.gettext("This is too short to be an access token.")
    message = str(error.get("msg", ""))
    return message.removeprefix("Value error, ")


def _problems(view: View, exc: ValidationError, labels: dict[str, str]) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        field = to_snake(str(loc[0])) if loc else ""
        label = labels.get(field, field)
        problems.append(f"{label}: {_friendly(view, error)}" if label else _friendly(view, error))
    return problems


def _labels(view: View) -> dict[str, str]:
    return {
        "access_token": view.gettext("Access token"),
        "phone_number_id": view.gettext("Phone number ID"),
        "waba_id": view.gettext("WhatsApp Business Account ID"),
        "display_name": view.gettext("Display name"),
        "number": view.gettext("Phone number"),
        "rate_limit_per_second": view.gettext("Messages per second"),
    }


async def _section(
    request: Request,
    session: AsyncSession,
    page: Page,
    number: WhatsAppNumber,
    *,
    expanded: bool = False,
    report: ConnectionReport | None = None,
    config: dict[str, str] | None = None,
    config_errors: list[str] | None = None,
    config_saved: bool = False,
    behaviour: dict[str, Any] | None = None,
    behaviour_error: LayanifyError | None = None,
    behaviour_saved: bool = False,
) -> dict[str, Any]:
    """Everything one number's cards show."""
    read = report.number if report is not None else _read(request, number)
    if behaviour is None:
        stored = await automation.get_settings(session, number)
        behaviour = behaviour_form.form_fields(stored.model_dump(mode="json"))
    return {
        "number": read,
        "can_edit": page.principal.is_owner,
        "expanded": expanded,
        "report": report,
        "problem": problem_of(read, report),
        "config": config if config is not None else _config_values(number),
        "config_errors": config_errors or [],
        "config_saved": config_saved,
        "behaviour": behaviour,
        "behaviour_error": behaviour_error,
        "behaviour_saved": behaviour_saved,
        "timezones": behaviour_form.TIMEZONES,
    }


def _setup(request: Request, page: Page) -> dict[str, Any]:
    """This installation's webhook address and verify token (the token only for owners)."""
    settings = request.app.state.settings
    base = getattr(settings, "public_base_url", None) or str(request.base_url)
    token = settings.whatsapp_verify_token.get_secret_value() if settings.whatsapp_verify_token else ""
    return {
        "webhook_url": str(base).rstrip("/") + WEBHOOK_PATH,
        "verify_token": token if page.principal.is_owner else "",
        "verify_token_configured": bool(token),
    }


@router.get("/settings")
async def settings_page(request: Request, page: CurrentPage, session: SessionDep) -> Response:
    """Every connected number (connection, API configuration, behaviour) and the webhook setup."""
    found = await numbers.list_numbers(session, page.principal.workspace_id)
    sections = [await _section(request, session, page, n, expanded=len(found) == 1) for n in found]
    retention = retention_card(await privacy.get_retention(session, page.principal.workspace_id))
    return render(
        request, page.view, "settings.html", sections=sections, setup=_setup(request, page), **retention
    )


# --- Data retention -------------------------------------------------------------------------------
RETENTION_FIELDS = ("messages_days", "media_days", "webhook_events_days")


def retention_card(
    stored: RetentionRead,
    *,
    typed: dict[str, str] | None = None,
    errors: list[str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    """What the "Data retention" card shows: the policy (or what was typed), problems, the last purge."""
    shown = typed or {name: str(getattr(stored, name) or "") for name in RETENTION_FIELDS}
    counts = stored.last_purge_counts or {}
    return {
        "retention": stored,
        "retention_typed": shown,
        "retention_errors": errors or [],
        "retention_saved": saved,
        "retention_counts": {kind: counts.get(kind, 0) for kind in ("messages", "media", "webhook_events")},
    }


@router.put("/settings/retention")
async def save_retention(request: Request, page: CurrentPage, session: SessionDep) -> Response:
    """Save how many days the workspace keeps each kind of data (owners; empty keeps it forever)."""
    _owner_only(page)
    form = await request.form()
    typed = {name: _form_text(form, name) for name in RETENTION_FIELDS}
    labels = {
        "messages_days": page.view.gettext("Keep messages (days)"),
        "media_days": page.view.gettext("Keep media files (days)"),
        "webhook_events_days": page.view.gettext("Keep raw webhook events (days)"),
    }
    values: dict[str, int | None] = {}
    errors = []
    for name, text in typed.items():
        if not text:
            values[name] = None
        elif text.isdigit() and 1 <= int(text) <= MAX_RETENTION_DAYS:
            values[name] = int(text)
        else:
            errors.append(f"{labels[name]}: " + page.view.gettext("Enter a number of days from 1 to 36500."))
    workspace_id = page.principal.workspace_id
    if errors:
        stored = await privacy.get_retention(session, workspace_id)
        card = retention_card(stored, typed=typed, errors=errors)
    else:
        update = RetentionUpdate.model_validate(values)
        stored = await privacy.save_retention(session, workspace_id, update, user_id=page.principal.user_id)
        card = retention_card(stored, saved=True)
    return render(request, page.view, "partials/settings_retention.html", **card)


@router.get("/settings/keyword-rule")
async def keyword_rule_row(request: Request, page: CurrentPage) -> Response:
    """One more (empty) keyword rule row for the behaviour form."""
    return render(
        request,
        page.view,
        "partials/number_rule_row.html",
        rule=behaviour_form.new_rule_fields(),
        can_edit=page.principal.is_owner,
    )


@router.get("/settings/removed")
async def removed_row(page: CurrentPage) -> Response:
    """Nothing: a removed row's button swaps it out with this (the rule goes when the form is saved)."""
    return Response(status_code=200, media_type="text/html")


def _new_form(view: View, values: dict[str, str], errors: list[str]) -> dict[str, Any]:
    return {"values": values, "errors": errors, "labels": _labels(view)}


@router.get("/numbers/new")
async def new_number_page(request: Request, page: CurrentPage) -> Response:
    """The form connecting a number (owners only)."""
    _owner_only(page)
    values = dict.fromkeys(NUMBER_FIELDS, "")
    return render(request, page.view, "number_new.html", **_new_form(page.view, values, []))


@router.post("/numbers")
async def add_number(request: Request, page: CurrentPage, session: SessionDep) -> Response:
    """Connect a number; on success the browser goes to its page to test the connection."""
    _owner_only(page)
    form = await request.form()
    values = {name: _form_text(form, name) for name in NUMBER_FIELDS}
    data: dict[str, Any] = {k: v for k, v in values.items() if v and k != "rate_limit_per_second"}
    data["rate_limit_per_second"] = values["rate_limit_per_second"] or None
    shown = values | {"access_token": ""}  # a token is never sent back to the browser
    try:
        number = await numbers.add_number(
            session,
            workspace_id=page.principal.workspace_id,
            user_id=page.principal.user_id,
            data=NumberCreate.model_validate(data),
            keyring=request.app.state.keyring,
        )
    except ValidationError as exc:
        errors = _problems(page.view, exc, _labels(page.view))
        return render(
            request, page.view, "partials/number_new_form.html", **_new_form(page.view, shown, errors)
        )
    except LayanifyError as exc:
        return render(
            request, page.view, "partials/number_new_form.html", **_new_form(page.view, shown, [exc.message])
        )
    return go(request, f"/numbers/{number.id}")


@router.get("/numbers/{number_id}")
async def number_page(
    request: Request, number_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """One number's connection, API configuration and behaviour."""
    number = await _number(session, page, number_id)
    section = await _section(request, session, page, number, expanded=True)
    return render(request, page.view, "number.html", s=section, setup=_setup(request, page))


@router.put("/numbers/{number_id}")
async def update_number(
    request: Request, number_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """Save the API configuration; the access token changes only when a new one was typed."""
    _owner_only(page)
    number = await _number(session, page, number_id, lock=True)
    form = await request.form()
    values = {name: _form_text(form, name) for name in NUMBER_FIELDS if name != "phone_number_id"}
    data: dict[str, Any] = {
        "waba_id": values["waba_id"] or None,
        "display_name": values["display_name"],
        "number": values["number"],
        "rate_limit_per_second": values["rate_limit_per_second"] or None,
    }
    if values["access_token"]:
        data["access_token"] = values["access_token"]
    try:
        await numbers.update_number(
            session,
            number,
            NumberUpdate.model_validate(data),
            request.app.state.keyring,
            actor_user_id=page.principal.user_id,
        )
    except ValidationError as exc:
        errors = _problems(page.view, exc, _labels(page.view))
        if values["access_token"]:
            errors.append(page.view.gettext("The new access token was not saved: paste it again."))
        values.pop("access_token")
        section = await _section(request, session, page, number, config=values, config_errors=errors)
        return render(request, page.view, "partials/number_config.html", s=section)
    section = await _section(request, session, page, number, config_saved=True)
    return render(request, page.view, "partials/number_config.html", s=section, status_too=True)


@router.delete("/numbers/{number_id}")
async def delete_number(
    request: Request, number_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """Remove the number: its token is erased and what was still queued from it fails."""
    _owner_only(page)
    number = await _number(session, page, number_id, lock=True)
    await numbers.delete_number(session, number)
    await messaging.fail_queued_of_removed_number(session, number.id)
    return go(request, "/settings")


@router.post("/numbers/{number_id}/test")
async def test_number(
    request: Request, number_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """Check the token and ids against Meta; answers the status card with the diagnosis and each check."""
    number = await _number(session, page, number_id, lock=True)
    report = await connection.test_connection(
        session,
        number,
        request.app.state.graph_client,
        request.app.state.keyring,
        default_rate=request.app.state.settings.rate_limit_per_second,
    )
    if report.number.connection_state == "connected":
        after_commit_call(session, getattr(request.app.state, "wake_outbox", None))
    section = await _section(request, session, page, number, report=report)
    return render(request, page.view, "partials/number_status.html", s=section)


def _error_view(error: LayanifyError) -> LayanifyError:
    """The 422's details with readable places ("business_hours › weekly")."""
    details = []
    for detail in error.details or []:
        loc = [str(part) for part in detail.get("loc", []) if part != "settings"]
        message = str(detail.get("message", "")).removeprefix("Value error, ")
        details.append({"where": " › ".join(loc), "message": message})
    return Unprocessable(error.message, details=details)


@router.put("/numbers/{number_id}/behaviour")
async def save_behaviour(
    request: Request, number_id: ObjectId, page: CurrentPage, session: SessionDep
) -> Response:
    """Save the behaviour form whole (as the API's PUT does); refused settings save nothing."""
    _owner_only(page)
    number = await _number(session, page, number_id, lock=True)
    data, keys = behaviour_form.settings_from_form(await request.form())
    try:
        saved = await automation.save_settings(
            session, number, data, user_id=page.principal.user_id, partial=False
        )
    except Unprocessable as exc:
        typed = behaviour_form.form_fields(data, keys)
        section = await _section(
            request, session, page, number, behaviour=typed, behaviour_error=_error_view(exc)
        )
        return render(request, page.view, "partials/number_behaviour.html", s=section)
    stored = behaviour_form.form_fields(_dump(saved))
    section = await _section(request, session, page, number, behaviour=stored, behaviour_saved=True)
    return render(request, page.view, "partials/number_behaviour.html", s=section)


def _dump(model: BaseModel) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json")
    return data
