"""Ids shaped like Meta's: wamids, media ids, conversation ids."""

from __future__ import annotations

import base64
import itertools
import secrets

_OUTBOUND = 0x11
_INBOUND = 0x12


class IdMaker:
    """Makes unique ids: a random per-simulator prefix plus a counter, so none ever repeats."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(5).upper()
        self._counter = itertools.count(1)
        self._media = itertools.count(
            int("1" + "".join(str(secrets.randbelow(10)) for _ in range(8))) * 10_000_000
        )

    def wamid(self, wa_id: str, *, inbound: bool) -> str:
        """A wamid in Meta's layout: base64 of `1c 18 <len><wa_id> 15 02 00 <11|12> 18 <len><hex id> 00`."""
        number = next(self._counter)
        hex_id = ("3A" + self._prefix + f"{number:08X}") if inbound else (self._prefix + f"{number:08X}")
        raw = (
            bytes((0x1C, 0x18, len(wa_id)))
            + wa_id.encode()
            + bytes((0x15, 0x02, 0x00, _INBOUND if inbound else _OUTBOUND, 0x18, len(hex_id)))
            + hex_id.encode()
            + b"\x00"
        )
        return "wamid." + base64.b64encode(raw).decode()

    def media_id(self) -> str:
        """A numeric media id (16 digits, as Meta's)."""
        return str(next(self._media))

    def hex32(self) -> str:
        """A 32-hex-digit id (conversation ids, app ids)."""
        return secrets.token_hex(16)


def wamid_recipient(wamid: str) -> str | None:
    """The wa_id a wamid was made for, or None when it is not in Meta's layout."""
    try:
        raw = base64.b64decode(wamid.removeprefix("wamid."), validate=False)
    except ValueError:
        return None
    if len(raw) < 3 or raw[:2] != b"\x1c\x18":
        return None
    return raw[3 : 3 + raw[2]].decode(errors="replace")
