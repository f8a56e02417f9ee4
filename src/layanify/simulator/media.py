"""Small but real media files (PNG, JPEG, WebP, OGG, MP4, PDF) for simulated customers to send."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from dataclasses import dataclass


@dataclass
class Media:
    """An uploaded or customer-sent file, downloadable with the owning number's token."""

    id: str
    phone_number_id: str
    mime_type: str
    content: bytes
    filename: str | None = None

    @property
    def sha256(self) -> str:
        """Base64 SHA-256 of the content, as webhooks carry it."""
        return base64.b64encode(hashlib.sha256(self.content).digest()).decode()

    @property
    def sha256_hex(self) -> str:
        """Hex SHA-256 of the content, as the media endpoint answers it."""
        return hashlib.sha256(self.content).hexdigest()


def _png() -> bytes:
    """A valid 1x1 green PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x25\xd3\x66")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# A minimal baseline JPEG (1x1 grey), a lossless WebP (1x1), an Ogg page with an OpusHead packet, the
# start of an MP4 (ftyp box) and a one-page PDF: each starts with its format's real magic bytes.
_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f"
    "141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b08000100010101"
    "1100ffc4001f0000010501010101010100000000000000000102030405060708090a0bffc400b5100002010303020403050504"
    "040000017d01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25"
    "262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788"
    "898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3"
    "e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00fbd3ffd9"
)
_WEBP = bytes.fromhex("524946461a000000574542505650384c0d0000002f0000001007101111888808fe07000000")
_OGG = (
    b"OggS\x00\x02"
    + b"\x00" * 8
    + b"\x01\x00\x00\x00"
    + b"\x00\x00\x00\x00"
    + b"\x00\x00\x00\x00"
    + b"\x01\x13"
    + b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
)
_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00\x00\x00\x08free"
_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

SAMPLES: dict[str, tuple[str, bytes]] = {
    "image": ("image/jpeg", _JPEG),
    "image/png": ("image/png", _png()),
    "sticker": ("image/webp", _WEBP),
    "audio": ("audio/ogg; codecs=opus", _OGG),
    "video": ("video/mp4", _MP4),
    "document": ("application/pdf", _PDF),
}


def sample(kind: str) -> tuple[str, bytes]:
    """The (mime type, bytes) a simulated customer sends for a media message type."""
    return SAMPLES[kind]
