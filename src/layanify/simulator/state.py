"""The simulator's in-memory world: numbers, customers, templates, messages, media and the request log."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from layanify.simulator.media import Media

STATUS_RANK = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}


@dataclass
class Number:
    """A business phone number registered on the simulated Cloud API."""

    phone_number_id: str
    waba_id: str
    token: str
    display_phone_number: str
    verified_name: str = "Layanify Demo"
    quality_rating: str = "GREEN"
    throughput_level: str = "STANDARD"


@dataclass
class Template:
    """A message template of a WABA."""

    id: str
    waba_id: str
    name: str
    language: str
    category: str = "UTILITY"
    status: str = "APPROVED"
    body_text: str = ""
    body_params: int = 0
    header: str | None = None

    def as_graph(self) -> dict[str, Any]:
        """The template as `GET /{waba_id}/message_templates` lists it."""
        components: list[dict[str, Any]] = []
        if self.header is not None:
            header: dict[str, Any] = {"type": "HEADER", "format": self.header}
            if self.header == "TEXT":
                header["text"] = self.name.replace("_", " ").title()
            components.append(header)
        body: dict[str, Any] = {"type": "BODY", "text": self.body_text}
        if self.body_params:
            body["example"] = {"body_text": [[f"example {i}" for i in range(1, self.body_params + 1)]]}
        components.append(body)
        return {
            "name": self.name,
            "parameter_format": "POSITIONAL",
            "components": components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        }


@dataclass
class Customer:
    """A simulated WhatsApp user."""

    wa_id: str
    name: str
    undeliverable: bool = False
    last_inbound_at: float | None = None  # unix time of the customer's last message (opens the window)
    last_number: str | None = None  # the business number the customer last talked to
    typing_until: float = 0.0  # the business' typing indicator shows until then


@dataclass
class Outbound:
    """A message a business sent through the simulator."""

    wamid: str
    phone_number_id: str
    wa_id: str
    to: str
    type: str
    body: dict[str, Any]
    callback_data: str | None
    created_at: float
    is_template: bool
    category: str
    status: str = "accepted"
    error_code: int | None = None
    read_emitted: bool = False  # a `read` status was emitted (auto-read or the customer read it)
    history: list[tuple[str, float]] = field(default_factory=list)

    def advance(self, status: str, at: float) -> None:
        """Record a status; the shown status only moves forward by rank (failed wins before read)."""
        self.history.append((status, at))
        if STATUS_RANK[status] > STATUS_RANK[self.status] and self.status not in ("read", "failed"):
            self.status = status

    def as_json(self) -> dict[str, Any]:
        """The record the control API lists."""
        return {
            "wamid": self.wamid,
            "phone_number_id": self.phone_number_id,
            "wa_id": self.wa_id,
            "to": self.to,
            "type": self.type,
            "body": self.body,
            "biz_opaque_callback_data": self.callback_data,
            "status": self.status,
            "error_code": self.error_code,
            "created_at": self.created_at,
            "history": [{"status": s, "timestamp": t} for s, t in self.history],
        }


@dataclass
class Inbound:
    """A message a simulated customer sent to a business."""

    wamid: str
    phone_number_id: str
    wa_id: str
    type: str
    message: dict[str, Any]  # exactly as in the webhook's messages[]
    created_at: float
    read_by_business: bool = False


@dataclass
class Pricing:
    """The pricing conversation Meta attaches to sent/delivered statuses."""

    id: str
    expires_at: int
    origin: str


class World:
    """All mutable state of one simulator."""

    def __init__(self, *, request_log_limit: int) -> None:
        self.numbers: dict[str, Number] = {}
        self.tokens: dict[str, str] = {}  # token -> phone_number_id
        self.revoked: set[str] = set()
        self.subscribed: dict[str, bool] = {}  # waba_id -> app subscribed
        self.templates: dict[str, list[Template]] = {}  # waba_id -> templates
        self.customers: dict[str, Customer] = {}
        self.outbound: dict[str, Outbound] = {}
        self.inbound: dict[str, Inbound] = {}
        self.threads: dict[str, list[str]] = {}  # wa_id -> wamids in order, both directions
        self.media: dict[str, Media] = {}
        self.pricing: dict[tuple[str, str], Pricing] = {}
        self.requests: deque[tuple[Any, ...]] = deque(maxlen=request_log_limit)  # raw, see Simulator.record

    def waba_numbers(self, waba_id: str) -> list[Number]:
        """The numbers of a WABA, in the order they were added."""
        return [n for n in self.numbers.values() if n.waba_id == waba_id]

    def find_template(self, waba_id: str, name: str, language: str) -> Template | None:
        """The approved-or-not template of that name and language, if any."""
        for template in self.templates.get(waba_id, ()):
            if template.name == name and template.language == language:
                return template
        return None

    def thread_add(self, wa_id: str, wamid: str) -> None:
        """Append a message to a customer's thread."""
        self.threads.setdefault(wa_id, []).append(wamid)
