"""What happens to messages: accepted sends and their statuses, customers' messages and reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from layanify.simulator.config import SimulatorConfig
from layanify.simulator.emitter import Emitter, MakeBody, StatusItem
from layanify.simulator.errors import UNDELIVERABLE, WINDOW_CLOSED
from layanify.simulator.ids import IdMaker
from layanify.simulator.inbound import build_message, summary
from layanify.simulator.media import Media
from layanify.simulator.state import Customer, Inbound, Number, Outbound, Pricing, World
from layanify.simulator.validation import SendRequest
from layanify.simulator.webhooks import inbound_body, serialise, status_item

TYPING_SECONDS = 25.0  # Meta dismisses the typing indicator after 25 s or on the business' reply
CONVERSATION_SECONDS = 24 * 3600


class Messaging:
    """Accepts sends, schedules their status webhooks, and plays the customers' side."""

    def __init__(self, world: World, config: SimulatorConfig, emitter: Emitter, ids: IdMaker) -> None:
        self.world = world
        self.config = config
        self.emitter = emitter
        self.ids = ids
        self.clock: Callable[[], float] = time.time

    # --- customers -----------------------------------------------------------------------------

    def customer(self, wa_id: str) -> Customer:
        """The customer with this wa_id, created (deliverable, window closed) when unknown."""
        customer = self.world.customers.get(wa_id)
        if customer is None:
            customer = self.world.customers[wa_id] = Customer(wa_id=wa_id, name=f"Customer {wa_id[-4:]}")
        return customer

    def window_open(self, customer: Customer) -> bool:
        """Whether the customer wrote within `window_hours` (always, when the window is disabled)."""
        if self.config.window_hours <= 0:
            return True
        last = customer.last_inbound_at
        return last is not None and self.clock() - last <= self.config.window_hours * 3600

    def number_for(self, customer: Customer, phone_number_id: str | None) -> Number:
        """The business number a customer writes to: the one given, the last one used, or the first."""
        pnid = phone_number_id or customer.last_number
        if pnid is not None and pnid in self.world.numbers:
            return self.world.numbers[pnid]
        if phone_number_id is not None:
            raise KeyError(f"unknown phone_number_id {phone_number_id}")
        if not self.world.numbers:
            raise KeyError("no business number is registered")
        return next(iter(self.world.numbers.values()))

    # --- business sends ------------------------------------------------------------------------

    def accept(self, number: Number, request: SendRequest, body: dict[str, Any], category: str) -> Outbound:
        """Record an accepted send and schedule its statuses (or its asynchronous failure)."""
        customer = self.customer(request.wa_id)
        now = self.clock()
        message = Outbound(
            wamid=self.ids.wamid(request.wa_id, inbound=False),
            phone_number_id=number.phone_number_id,
            wa_id=request.wa_id,
            to=request.to,
            type=request.type,
            body=body,
            callback_data=request.callback_data,
            created_at=now,
            is_template=request.is_template,
            category=category,
        )
        self.world.outbound[message.wamid] = message
        self.world.thread_add(request.wa_id, message.wamid)
        customer.typing_until = 0.0
        sent, delivered, read = self.config.status_delays
        if customer.undeliverable:
            self.emitter.schedule(sent, self._status_event(number, message, "failed", UNDELIVERABLE))
        elif not request.is_template and not self.window_open(customer):
            self.emitter.schedule(sent, self._status_event(number, message, "failed", WINDOW_CLOSED))
        else:
            plan = ["sent", "delivered", "read"] if self.config.auto_read else ["sent", "delivered"]
            delays = [sent, delivered, read][: len(plan)]
            if self.config.reorder:
                plan.reverse()  # out-of-order fault: the last status arrives first
            for status, delay in zip(plan, delays, strict=True):
                self.emitter.schedule(delay, self._status_event(number, message, status, None))
        return message

    def _status_event(
        self, number: Number, message: Outbound, status: str, error_code: int | None
    ) -> MakeBody:
        def make() -> StatusItem | None:
            if status == "read":
                if message.read_emitted:
                    return None
                message.read_emitted = True
            now = self.clock()
            message.advance(status, now)
            if error_code is not None:
                message.error_code = error_code
            if not self.config.callback_url:
                return None  # nobody to tell: the phone's ticks are all that changes
            pricing = self._pricing(message, now) if status in ("sent", "delivered") else None
            return number, status_item(message, status, int(now), pricing, error_code)

        return make

    def _pricing(self, message: Outbound, now: float) -> Pricing:
        key = (message.phone_number_id, message.wa_id)
        pricing = self.world.pricing.get(key)
        if pricing is None or pricing.expires_at <= now:
            origin = message.category if message.is_template else "service"
            pricing = Pricing(self.ids.hex32(), int(now) + CONVERSATION_SECONDS, origin)
            self.world.pricing[key] = pricing
        return pricing

    def mark_read(self, number: Number, wamid: str, typing: bool) -> bool:
        """The business read a customer message (and all earlier ones); False when it is not known."""
        message = self.world.inbound.get(wamid)
        if message is None or message.phone_number_id != number.phone_number_id:
            return False
        for other in self.world.threads.get(message.wa_id, ()):
            earlier = self.world.inbound.get(other)
            if earlier is not None and earlier.phone_number_id == number.phone_number_id:
                earlier.read_by_business = True
            if other == wamid:
                break
        if typing:
            self.customer(message.wa_id).typing_until = self.clock() + TYPING_SECONDS
        return True

    # --- customers' side -----------------------------------------------------------------------

    def customer_sends(
        self,
        wa_id: str,
        content: dict[str, Any],
        *,
        phone_number_id: str | None,
        context_wamid: str | None,
        media_url: Callable[[Media], str | None],
    ) -> str:
        """A customer sends a message: store it, open the window, schedule its webhook; its wamid."""
        customer = self.customer(wa_id)
        number = self.number_for(customer, phone_number_id)
        now = self.clock()
        wamid = self.ids.wamid(wa_id, inbound=True)
        context = {"from": number.display_phone_number, "id": context_wamid} if context_wamid else None

        def make_media(mime_type: str, data: bytes, filename: str | None) -> Media:
            media = Media(self.ids.media_id(), number.phone_number_id, mime_type, data, filename)
            self.world.media[media.id] = media
            return media

        message = build_message(
            content,
            wamid=wamid,
            wa_id=wa_id,
            timestamp=int(now),
            context=context,
            make_media=make_media,
            media_url=media_url,
        )
        self.world.inbound[wamid] = Inbound(
            wamid, number.phone_number_id, wa_id, message["type"], message, now
        )
        self.world.thread_add(wa_id, wamid)
        customer.last_inbound_at = now
        customer.last_number = number.phone_number_id
        body = serialise(inbound_body(number, customer.name, message))
        self.emitter.schedule(0.0, lambda: body)
        return wamid

    def customer_reads(self, wa_id: str, *, phone_number_id: str | None = None) -> list[str]:
        """The customer reads every business message not yet read; the wamids that became read."""
        read: list[str] = []
        for wamid in self.world.threads.get(wa_id, ()):
            message = self.world.outbound.get(wamid)
            if message is None or message.read_emitted or message.status == "failed":
                continue
            if phone_number_id is not None and message.phone_number_id != phone_number_id:
                continue
            number = self.world.numbers[message.phone_number_id]
            self.emitter.schedule(0.0, self._status_event(number, message, "read", None))
            read.append(wamid)
        return read

    def conversation(self, wa_id: str) -> dict[str, Any]:
        """What the customer's phone shows: both directions in order, ticks on the business' messages."""
        customer = self.customer(wa_id)
        items: list[dict[str, Any]] = []
        for wamid in self.world.threads.get(wa_id, ()):
            outbound = self.world.outbound.get(wamid)
            if outbound is not None:
                shown = {"type": outbound.type, outbound.type: outbound.body.get(outbound.type)}
                items.append(
                    {
                        "direction": "out",
                        "wamid": wamid,
                        "type": outbound.type,
                        "text": summary(shown),
                        "status": outbound.status,
                        "error_code": outbound.error_code,
                        "timestamp": outbound.created_at,
                        "phone_number_id": outbound.phone_number_id,
                    }
                )
                continue
            inbound = self.world.inbound[wamid]
            items.append(
                {
                    "direction": "in",
                    "wamid": wamid,
                    "type": inbound.type,
                    "text": summary(inbound.message),
                    "read_by_business": inbound.read_by_business,
                    "timestamp": inbound.created_at,
                    "phone_number_id": inbound.phone_number_id,
                }
            )
        return {
            "wa_id": wa_id,
            "name": customer.name,
            "undeliverable": customer.undeliverable,
            "window_open": self.window_open(customer),
            "typing": customer.typing_until > self.clock(),
            "messages": items,
        }
