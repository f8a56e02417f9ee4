"""What WhatsApp accepts per media type (mime types and sizes), file extensions and checksums.

Limits follow Meta's "Supported media types" table of the Cloud API reference
(https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media#supported-media-types).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import mimetypes
from dataclasses import dataclass

KB = 1024
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Format:
    """A mime type WhatsApp accepts: the message type it is sent as, its size limit and extension."""

    mime_type: str
    kind: str
    max_bytes: int
    extension: str


_FORMATS = (
    Format("image/jpeg", "image", 5 * MB, ".jpg"),
    Format("image/png", "image", 5 * MB, ".png"),
    # Stickers: 100 KB static, 500 KB animated (checked in `check_upload`).
    Format("image/webp", "sticker", 500 * KB, ".webp"),
    Format("video/mp4", "video", 16 * MB, ".mp4"),
    Format("video/3gpp", "video", 16 * MB, ".3gp"),
    Format("video/3gp", "video", 16 * MB, ".3gp"),
    Format("audio/aac", "audio", 16 * MB, ".aac"),
    Format("audio/amr", "audio", 16 * MB, ".amr"),
    Format("audio/mpeg", "audio", 16 * MB, ".mp3"),
    Format("audio/mp4", "audio", 16 * MB, ".m4a"),
    # OGG with the OPUS codec only (voice notes); Meta refuses other OGG audio.
    Format("audio/ogg", "audio", 16 * MB, ".ogg"),
    Format("text/plain", "document", 100 * MB, ".txt"),
    Format("application/pdf", "document", 100 * MB, ".pdf"),
    Format("application/msword", "document", 100 * MB, ".doc"),
    Format(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "document",
        100 * MB,
        ".docx",
    ),
    Format("application/vnd.ms-excel", "document", 100 * MB, ".xls"),
    Format(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "document", 100 * MB, ".xlsx"
    ),
    Format("application/vnd.ms-powerpoint", "document", 100 * MB, ".ppt"),
    Format(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "document",
        100 * MB,
        ".pptx",
    ),
)
FORMATS: dict[str, Format] = {f.mime_type: f for f in _FORMATS}
STATIC_STICKER_MAX_BYTES = 100 * KB
# The largest upload of any type: a request bigger than this (plus form overhead) is refused unread.
MAX_UPLOAD_BYTES = max(f.max_bytes for f in _FORMATS)
# Shown inline by browsers; everything else is served as an attachment.
INLINE_PREFIXES = ("image/", "audio/", "video/")


class UnsupportedMedia(ValueError):
    """The file cannot be sent through WhatsApp; the message says why."""


class FileTooLarge(UnsupportedMedia):
    """The file is larger than WhatsApp accepts for its type."""


def base_type(mime_type: str | None) -> str:
    """The mime type without parameters, lower case (`audio/ogg; codecs=opus` → `audio/ogg`)."""
    return (mime_type or "").split(";", 1)[0].strip().lower()


def extension_for(mime_type: str | None) -> str:
    """A file extension for stored media, from its mime type (never from a caller's filename)."""
    known = FORMATS.get(base_type(mime_type))
    if known is not None:
        return known.extension
    return (mimetypes.guess_extension(base_type(mime_type)) if mime_type else None) or ".bin"


def is_animated_webp(content: bytes) -> bool:
    """True for an extended-format WebP whose header sets the animation flag."""
    return (
        len(content) >= 21
        and content[:4] == b"RIFF"
        and content[8:12] == b"WEBP"
        and content[12:16] == b"VP8X"
        and bool(content[20] & 0x02)
    )


def check_upload(mime_type: str, content: bytes) -> Format:
    """The format of an upload WhatsApp will accept; `UnsupportedMedia` saying why otherwise."""
    found = FORMATS.get(base_type(mime_type))
    if found is None:
        accepted = ", ".join(sorted(FORMATS))
        raise UnsupportedMedia(
            f"WhatsApp does not accept {base_type(mime_type) or 'this type'}; use one of {accepted}"
        )
    if not content:
        raise UnsupportedMedia("the file is empty")
    limit = found.max_bytes
    if found.kind == "sticker" and not is_animated_webp(content):
        limit = STATIC_STICKER_MAX_BYTES
    if len(content) > limit:
        raise FileTooLarge(
            f"a {found.kind} ({found.mime_type}) may be at most {_size(limit)}; "
            f"this file is {_size(len(content))}"
        )
    return found


def _size(count: int) -> str:
    if count >= MB:
        return f"{count / MB:.1f} MB"
    return f"{count / KB:.0f} KB" if count >= KB else f"{count} bytes"


def digest_matches(expected: str, content: bytes) -> bool:
    """True when `expected` is the SHA-256 of `content`, written in hex or in base64 (Meta uses both)."""
    digest = hashlib.sha256(content).digest()
    candidate = expected.strip()
    if len(candidate) == 2 * len(digest):
        try:
            return hmac.compare_digest(bytes.fromhex(candidate), digest)
        except ValueError:
            pass
    padded = candidate + "=" * (-len(candidate) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            if hmac.compare_digest(decode(padded), digest):
                return True
        except (binascii.Error, ValueError):
            continue
    return False


def is_inline(mime_type: str | None) -> bool:
    """True when a browser should show the file in place rather than download it."""
    return base_type(mime_type).startswith(INLINE_PREFIXES)
