"""WhatsApp's media rules, checksums in both of Meta's spellings, and the local storage's guarantees."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from layanify.media.formats import (
    FileTooLarge,
    UnsupportedMedia,
    check_upload,
    digest_matches,
    extension_for,
    is_animated_webp,
)
from layanify.media.service import clean_filename
from layanify.media.storage import LocalStorage, StorageError
from layanify.simulator.media import sample

CONTENT = b"halo kak, ini fotonya"


def test_a_checksum_matches_in_hex_and_in_base64() -> None:
    digest = hashlib.sha256(CONTENT).digest()
    assert digest_matches(digest.hex(), CONTENT)
    assert digest_matches(digest.hex().upper(), CONTENT)
    assert digest_matches(base64.b64encode(digest).decode(), CONTENT)
    assert digest_matches(base64.urlsafe_b64encode(digest).decode().rstrip("="), CONTENT)
    assert not digest_matches(digest.hex(), CONTENT + b"!")
    assert not digest_matches(base64.b64encode(digest).decode(), CONTENT + b"!")
    assert not digest_matches("not a digest", CONTENT)


def test_stickers_may_be_larger_only_when_animated() -> None:
    static = sample("sticker")[1]
    assert not is_animated_webp(static)
    animated = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x02" + b"\x00" * 200_000
    assert is_animated_webp(animated)
    assert check_upload("image/webp", animated).kind == "sticker"
    with pytest.raises(FileTooLarge):
        check_upload("image/webp", static + b"\x00" * 100 * 1024)


def test_types_are_read_without_parameters_and_refused_when_whatsapp_would() -> None:
    assert check_upload("audio/ogg; codecs=opus", b"OggS").kind == "audio"
    assert check_upload("Application/PDF", b"%PDF").kind == "document"
    with pytest.raises(UnsupportedMedia):
        check_upload("image/svg+xml", b"<svg/>")
    assert extension_for("audio/ogg; codecs=opus") == ".ogg"
    assert extension_for("application/x-unknown-thing") == ".bin"


def test_a_callers_filename_cannot_name_a_path() -> None:
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\budi\\nota.pdf") == "nota.pdf"
    assert clean_filename("a\x00b\nc.pdf") == "abc.pdf"
    assert clean_filename("") is None


async def test_local_storage_writes_whole_files_inside_its_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.write("7/2026/11/1.jpg", CONTENT)
    await storage.write("7/2026/11/1.jpg", CONTENT + b"v2")
    assert await storage.read("7/2026/11/1.jpg") == CONTENT + b"v2"
    assert [p.name for p in (tmp_path / "7/2026/11").iterdir()] == ["1.jpg"]  # no temporary files left
    for key in ("../outside.jpg", "/etc/passwd", "7/../../x", ""):
        with pytest.raises(StorageError):
            await storage.write(key, CONTENT)
    await storage.delete("7/2026/11/1.jpg")
    await storage.delete("7/2026/11/1.jpg")
    with pytest.raises(StorageError):
        await storage.read("7/2026/11/1.jpg")
