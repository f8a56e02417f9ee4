"""Realistic signed WhatsApp webhook bodies for the benchmarks, built from the test fixtures.

Every body is a complete POST as Meta sends it (`{"object": "whatsapp_business_account", ...}`), using
the message and status objects of tests/data/whatsapp/*.json as templates, with fresh wamids (Meta's
real layout), many distinct customers and current timestamps. A stream mixes:

- ~57% single inbound messages of the fixture types (text-heavy, then media, replies, reactions ...);
- ~24% single statuses, as sent -> delivered -> read (sometimes failed) sequences for outbound wamids
  the database does not know (they are stored as unmatched history, which is fine);
- ~14% batches: one or two entries carrying several messages from several customers plus statuses;
- ~5% exact re-deliveries of a recent body (same bytes, same signature), as Meta retries do.

The generator keeps count of the distinct inbound messages it emitted, so a run knows how many
`messages` rows processing must produce.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from layanify.whatsapp.signature import sign

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "whatsapp"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
WABA_ID = "102290129340398"

# Fixture file -> weight among single inbound messages (text dominates real inboxes).
MESSAGE_TEMPLATES: dict[str, int] = {
    "text": 40,
    "text_reply_context": 6,
    "text_forwarded": 2,
    "referral": 2,
    "image": 10,
    "video": 2,
    "audio_voice": 6,
    "document": 4,
    "sticker": 4,
    "location": 2,
    "contacts": 1,
    "interactive_button_reply": 5,
    "interactive_list_reply": 3,
    "button": 4,
    "reaction": 5,
    "order": 1,
}
STATUS_TEMPLATES = ("status_sent", "status_delivered", "status_read", "status_failed")
FIRST_NAMES = (
    "Budi",
    "Siti",
    "Agus",
    "Dewi",
    "Rizky",
    "Putri",
    "Andi",
    "Sri",
    "Eko",
    "Wulan",
    "Fajar",
    "Indah",
    "Hendra",
    "Ayu",
    "Yusuf",
    "Nur",
    "Bayu",
    "Rina",
    "Dimas",
    "Lestari",
)
LAST_NAMES = (
    "Santoso",
    "Rahma",
    "Wijaya",
    "Saputra",
    "Hidayat",
    "Lestari",
    "Pratama",
    "Kusuma",
    "Siregar",
    "Nasution",
    "Gunawan",
    "Purnomo",
    "Halim",
    "Setiawan",
)
TEXTS = (
    "Halo kak, pesanan saya sudah dikirim belum? 🙏",
    "Kak, ongkirnya ke Surabaya berapa?",
    "Selamat siang, toko buka jam berapa?",
    "Barangnya masih ready stok?",
    "Saya sudah transfer ya kak, mohon dicek",
    "Bisa COD tidak?",
    "Terima kasih, paketnya sudah sampai 👍",
    "Mau tanya ukuran L masih ada?",
)


def wamid(wa_id: str, *, inbound: bool, serial: int) -> str:
    """A wamid in Meta's layout: base64 of 1c 18 <len><wa_id> 15 02 00 <12|11> 18 <len><hex id> 00."""
    hex_id = (f"{serial:020X}" if inbound else f"{serial:018X}").encode()
    phone = wa_id.encode()
    raw = (
        b"\x1c\x18"
        + bytes([len(phone)])
        + phone
        + b"\x15\x02\x00"
        + (b"\x12" if inbound else b"\x11")
        + b"\x18"
        + bytes([len(hex_id)])
        + hex_id
        + b"\x00"
    )
    return "wamid." + base64.b64encode(raw).decode()


def _load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    return payload


def _first_value(payload: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = payload["entry"][0]["changes"][0]["value"]
    return value


@dataclass(slots=True)
class Request:
    """One POST: the raw body and its X-Hub-Signature-256 header."""

    body: bytes
    signature: str
    new_messages: int  # distinct inbound messages this body introduces (0 for a re-delivery)


@dataclass
class Tally:
    """What a stream of requests carries."""

    requests: int = 0
    duplicates: int = 0
    messages: int = 0
    statuses: int = 0
    batches: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


class PayloadFactory:
    """Generates an endless, reproducible stream of signed webhook requests with unique wamids."""

    def __init__(self, app_secret: str, *, seed: int = 1, customers: int = 5000) -> None:
        self._secret = app_secret
        self._rng = random.Random(seed)
        self._serial = self._rng.getrandbits(24) << 40  # a per-seed prefix keeps wamids distinct
        self._customers = [self._new_customer(i) for i in range(customers)]
        self._message_templates = {
            name: _first_value(_load(name))["messages"][0] for name in MESSAGE_TEMPLATES
        }
        self._message_names = list(MESSAGE_TEMPLATES)
        self._message_weights = list(MESSAGE_TEMPLATES.values())
        self._status_templates = {name: _first_value(_load(name))["statuses"][0] for name in STATUS_TEMPLATES}
        self._outbound: list[tuple[str, str, int]] = []  # (wamid, recipient, next status index)
        self._recent: list[Request] = []
        self.tally = Tally()

    def _new_customer(self, i: int) -> tuple[str, str]:
        wa_id = f"628{self._rng.randrange(10**9, 10**10)}"
        name = f"{self._rng.choice(FIRST_NAMES)} {self._rng.choice(LAST_NAMES)}"
        return wa_id, name if i % 17 else ""

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _message(self) -> tuple[dict[str, Any], tuple[str, str], str]:
        name = self._rng.choices(self._message_names, self._message_weights)[0]
        customer = self._rng.choice(self._customers)
        message: dict[str, Any] = orjson.loads(orjson.dumps(self._message_templates[name]))
        message["from"] = customer[0]
        message["id"] = wamid(customer[0], inbound=True, serial=self._next_serial())
        message["timestamp"] = str(int(time.time()))
        if message.get("type") == "text" and "referral" not in message and "context" not in message:
            message["text"] = {"body": self._rng.choice(TEXTS)}
        return message, customer, name

    def _status(self) -> dict[str, Any]:
        # Advance an outbound message's lifecycle, or start a new one (about a third of the time).
        if not self._outbound or self._rng.random() < 0.34:
            recipient = self._rng.choice(self._customers)[0]
            self._outbound.append((wamid(recipient, inbound=False, serial=self._next_serial()), recipient, 0))
            if len(self._outbound) > 2000:
                self._outbound.pop(0)
        index = self._rng.randrange(len(self._outbound))
        out_id, recipient, step = self._outbound[index]
        kind = "status_failed" if step == 1 and self._rng.random() < 0.03 else STATUS_TEMPLATES[min(step, 2)]
        if kind == "status_failed" or step >= 2:
            self._outbound.pop(index)
        else:
            self._outbound[index] = (out_id, recipient, step + 1)
        status: dict[str, Any] = orjson.loads(orjson.dumps(self._status_templates[kind]))
        status["id"] = out_id
        status["recipient_id"] = recipient
        status["timestamp"] = str(int(time.time()))
        return status

    @staticmethod
    def _change(messages: list[dict[str, Any]], customers: list[tuple[str, str]], statuses: list[Any]) -> Any:
        value: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
        }
        if messages:
            seen: dict[str, str] = dict(customers)
            value["contacts"] = [
                {"profile": {"name": name or wa_id}, "wa_id": wa_id} for wa_id, name in seen.items()
            ]
            value["messages"] = messages
        if statuses:
            value["statuses"] = statuses
        return {"value": value, "field": "messages"}

    @staticmethod
    def _envelope(changes_per_entry: list[list[Any]]) -> dict[str, Any]:
        return {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": changes} for changes in changes_per_entry],
        }

    def _fresh(self) -> tuple[dict[str, Any], int, int, str]:
        """A new body: (payload, messages, statuses, kind)."""
        roll = self._rng.random()
        if roll < 0.57 / 0.95:
            message, customer, name = self._message()
            return self._envelope([[self._change([message], [customer], [])]]), 1, 0, name
        if roll < 0.81 / 0.95:
            return self._envelope([[self._change([], [], [self._status()])]]), 0, 1, "status"
        entries: list[list[Any]] = []
        messages_total = statuses_total = 0
        for _ in range(self._rng.choice((1, 1, 2))):
            picked = [self._message() for _ in range(self._rng.randint(1, 4))]
            statuses = [self._status() for _ in range(self._rng.choice((0, 0, 1, 2, 3)))]
            changes = [self._change([m for m, _, _ in picked], [c for _, c, _ in picked], [])]
            if statuses:
                changes.append(self._change([], [], statuses))
            entries.append(changes)
            messages_total += len(picked)
            statuses_total += len(statuses)
        return self._envelope(entries), messages_total, statuses_total, "batch"

    def next(self, *, allow_duplicate: bool = True) -> Request:
        """The next request of the stream (never a re-delivery with allow_duplicate=False)."""
        tally = self.tally
        tally.requests += 1
        if allow_duplicate and self._recent and self._rng.random() < 0.05:
            again = self._rng.choice(self._recent)
            tally.duplicates += 1
            tally.kinds["duplicate"] = tally.kinds.get("duplicate", 0) + 1
            return Request(again.body, again.signature, 0)
        payload, messages, statuses, kind = self._fresh()
        body = orjson.dumps(payload)
        request = Request(body, sign(self._secret, body), messages)
        tally.messages += messages
        tally.statuses += statuses
        tally.batches += kind == "batch"
        tally.kinds[kind] = tally.kinds.get(kind, 0) + 1
        self._recent.append(request)
        if len(self._recent) > 500:
            self._recent.pop(0)
        return request

    def stream(self, count: int) -> Iterator[Request]:
        """`count` requests."""
        for _ in range(count):
            yield self.next()

    def write_wrk_file(self, path: Path, count: int) -> Tally:
        """Write `count` requests for bench/wrk_webhooks.lua: one `signature<TAB>body` per line.

        Returns the tally of this file alone. Compact JSON has no raw tab or newline, so the format is safe.
        """
        before = Tally(**{k: v for k, v in vars(self.tally).items() if k != "kinds"})
        with path.open("wb") as out:
            for request in self.stream(count):
                out.write(request.signature.encode() + b"\t" + request.body + b"\n")
        now = self.tally
        return Tally(
            requests=now.requests - before.requests,
            duplicates=now.duplicates - before.duplicates,
            messages=now.messages - before.messages,
            statuses=now.statuses - before.statuses,
            batches=now.batches - before.batches,
        )
