"""Message content encrypted at rest with the keyring: column types, search tokens and sealed bytes.

These pieces carry out a choice made elsewhere (crypto/sealing.py decides per workspace): a value wrapped
in `SealedContent` or `SealedText` is encrypted when it is written, and every stored value carrying the
encrypted marker is decrypted when it is read, whatever its workspace chooses today. The keyring comes
from `configure()`, called at start-up (app, worker, CLI) — never from the environment at import time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import JSON, LargeBinary, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from layanify.config import Settings
from layanify.crypto.keyring import Keyring, KeyringError

# A sealed JSON value is `{"$encrypted": "v1:<key id>:<nonce>:<ciphertext>"}` (message content always has
# a `type`, so no real content looks like that).
ENCRYPTED_KEY = "$encrypted"
# A sealed text starts with `enc1:`; a plain text that happens to start with `enc0:` or `enc1:` is stored
# behind `enc0:`, so no customer's words can pass for a ciphertext.
TEXT_SEALED = "enc1:"
TEXT_ESCAPED = "enc0:"
# Sealed bytes: this magic, the key id's length (1 byte), the key id, the nonce (12 bytes), ciphertext+tag.
BYTES_MAGIC = b"\x89LYNENC\n"
# Associated data: a ciphertext only opens in the place it was made for (a preview cannot pass as content).
CONTENT_AD = b"layanify/messages.content"
PREVIEW_AD = b"layanify/conversations.last_message_preview"
WEBHOOK_AD = b"layanify/webhook_events.body"
_SEARCH_INFO = b"layanify/messages.search_tokens/v1/workspace/"
_TOKEN_HEX = 16  # 64 bits of HMAC-SHA256 per word: collisions are negligible within a workspace
_WORD = re.compile(r"\w+")


class ContentEncryptionError(KeyringError):
    """Encrypted content cannot be written or read: the keyring is not configured or lacks the key."""


@dataclass(frozen=True)
class ContentCipher:
    """The process-wide configuration: the keyring and the policies that do not depend on a workspace."""

    keyring: Keyring
    new_workspaces_encrypt: bool = False
    # Raw webhook bodies are stored before anyone knows their workspace: sealed for all, or for none.
    seal_webhook_bodies: bool = True


_cipher: ContentCipher | None = None


def configure(cipher: ContentCipher | None) -> None:
    """Install (or with None, remove) the process-wide content cipher."""
    global _cipher
    _cipher = cipher


def configure_from(settings: Settings, keyring: Keyring | None = None) -> ContentCipher:
    """Install the cipher the settings describe (app, worker and CLI start-up); returns it."""
    cipher = ContentCipher(
        keyring=keyring or Keyring.from_setting(settings.encryption_keys.get_secret_value()),
        new_workspaces_encrypt=settings.new_workspaces_encrypt_content,
        seal_webhook_bodies=settings.content_encryption != "off",
    )
    configure(cipher)
    return cipher


def configured() -> ContentCipher | None:
    """The process-wide cipher, when one was configured."""
    return _cipher


def keyring() -> Keyring:
    """The keyring content is sealed with; an error when none was configured."""
    if _cipher is None:
        raise ContentEncryptionError(
            "message content encryption is not configured in this process (layanify.crypto.content.configure)"
        )
    return _cipher.keyring


def new_workspaces_encrypt() -> bool:
    """The column default of `workspaces.content_encryption` (the setting, via `configure`)."""
    return _cipher is not None and _cipher.new_workspaces_encrypt


# --- Values -----------------------------------------------------------------------------------------


class SealedContent(dict[str, Any]):
    """A message content to be stored encrypted; reads like the plain dict it is."""

    __slots__ = ()


class SealedText(str):
    """A text (a conversation preview) to be stored encrypted; reads like the plain text it is."""

    __slots__ = ()


def sealed_token(value: object) -> str | None:
    """The ciphertext of a stored JSON value in its encrypted form, else None."""
    if isinstance(value, dict) and len(value) == 1:
        token = value.get(ENCRYPTED_KEY)
        if isinstance(token, str):
            return token
    return None


def seal_json(value: Mapping[str, Any]) -> dict[str, str]:
    """The stored form of an encrypted JSON object, under the current key."""
    plain = orjson.dumps(dict(value)).decode()
    return {ENCRYPTED_KEY: keyring().encrypt(plain, associated_data=CONTENT_AD)}


def open_json(token: str) -> dict[str, Any]:
    """The JSON object a `seal_json` ciphertext holds."""
    opened: dict[str, Any] = orjson.loads(keyring().decrypt(token, associated_data=CONTENT_AD))
    return opened


def seal_text(value: str) -> str:
    """The stored form of an encrypted text, under the current key."""
    return TEXT_SEALED + keyring().encrypt(value, associated_data=PREVIEW_AD)


def stored_text(value: str) -> str:
    """How a plain text is stored: as is, unless it starts like a stored ciphertext (then escaped)."""
    return TEXT_ESCAPED + value if value.startswith((TEXT_SEALED, TEXT_ESCAPED)) else value


def open_text(stored: str) -> str:
    """The text a stored value holds, sealed, escaped or plain."""
    if stored.startswith(TEXT_SEALED):
        return keyring().decrypt(stored[len(TEXT_SEALED) :], associated_data=PREVIEW_AD)
    if stored.startswith(TEXT_ESCAPED):
        return stored[len(TEXT_ESCAPED) :]
    return stored


def text_key_id(stored: str) -> str | None:
    """The key a stored text was sealed with; None for a plain one."""
    return keyring().key_id_of(stored[len(TEXT_SEALED) :]) if stored.startswith(TEXT_SEALED) else None


def _bytes_header(key_id: str) -> bytes:
    kid = key_id.encode()
    if len(kid) > 255:
        raise ContentEncryptionError("an encryption key id must be at most 255 bytes")
    return BYTES_MAGIC + bytes([len(kid)]) + kid


def seal_bytes(data: bytes, associated_data: bytes) -> bytes:
    """`data` sealed under the current key, self-describing (magic, key id, nonce, ciphertext)."""
    key_id, sealed = keyring().encrypt_bytes(data, associated_data=associated_data)
    return _bytes_header(key_id) + sealed


def seal_many_bytes(items: Sequence[bytes], associated_data: bytes) -> list[bytes]:
    """`seal_bytes` of each item, with one call for every nonce (see `Keyring.encrypt_many`)."""
    if not items:
        return []
    key_id, sealed = keyring().encrypt_many(items, associated_data=associated_data)
    header = _bytes_header(key_id)
    return [header + one for one in sealed]


def bytes_key_id(blob: bytes) -> str | None:
    """The key sealed bytes were sealed with; None when the bytes are not sealed."""
    if not blob.startswith(BYTES_MAGIC) or len(blob) <= len(BYTES_MAGIC):
        return None
    start = len(BYTES_MAGIC) + 1
    return blob[start : start + blob[len(BYTES_MAGIC)]].decode("utf-8", "replace")


def open_bytes(blob: bytes, associated_data: bytes) -> bytes:
    """The plaintext of sealed bytes; bytes that are not sealed come back unchanged."""
    key_id = bytes_key_id(blob)
    if key_id is None:
        return blob
    start = len(BYTES_MAGIC) + 1 + len(key_id.encode())
    return keyring().decrypt_bytes(key_id, blob[start:], associated_data=associated_data)


def media_ad(storage_key: str) -> bytes:
    """A media file's associated data: its storage key, so a file cannot be swapped for another."""
    return b"layanify/media/" + storage_key.encode()


def seal_webhook_body(body: bytes) -> bytes:
    """A raw webhook body as it is stored: sealed unless the configuration says otherwise."""
    (stored,) = seal_webhook_bodies([body])
    return stored


def seal_webhook_bodies(bodies: Sequence[bytes]) -> list[bytes]:
    """Raw webhook bodies as they are stored, in order: each sealed (its own nonce) unless the
    configuration says otherwise or it is sealed already. The receipt writers store a batch at once."""
    if _cipher is None or not _cipher.seal_webhook_bodies:
        return list(bodies)
    stored = list(bodies)
    plain = [index for index, body in enumerate(stored) if not body.startswith(BYTES_MAGIC)]
    for index, sealed in zip(plain, seal_many_bytes([stored[i] for i in plain], WEBHOOK_AD), strict=True):
        stored[index] = sealed
    return stored


# --- Column types ---------------------------------------------------------------------------------


class EncryptedJSON(TypeDecorator[dict[str, Any]]):
    """JSON that is encrypted when the value is a `SealedContent`, and decrypted whenever it was."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> Any:
        """Seal a `SealedContent`; anything else is stored as it is."""
        if isinstance(value, SealedContent):
            return seal_json(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dict[str, Any] | None:
        """Open an encrypted value; a plain one is returned as stored."""
        token = sealed_token(value)
        if token is not None:
            return open_json(token)
        return value  # type: ignore[no-any-return]


class EncryptedText(TypeDecorator[str]):
    """Text that is encrypted when the value is a `SealedText`, and decrypted whenever it was."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        """Seal a `SealedText` (except the empty text, which says nothing); escape a look-alike plain one."""
        if value is None:
            return None
        if isinstance(value, SealedText) and value:
            return seal_text(str(value))
        return stored_text(str(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        """The plain text of a stored value."""
        return None if value is None else open_text(value)


class SealedBody(TypeDecorator[bytes]):
    """A raw webhook body: sealed when written (unless configured off), opened when read."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        """Seal the body as `seal_webhook_body` says."""
        return None if value is None else seal_webhook_body(bytes(value))

    def process_result_value(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        """The body as Meta sent it."""
        return None if value is None else open_bytes(bytes(value), WEBHOOK_AD)


# --- Search tokens ----------------------------------------------------------------------------------


def words(text: str) -> set[str]:
    """The distinct words of a text as search sees them: NFKC-normalised, case-folded."""
    return set(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def searchable_text(content: Mapping[str, Any]) -> str:
    """What search looks in: a message's text and caption (the same fields the plaintext search reads)."""
    parts = [content.get("text"), content.get("caption")]
    return "\n".join(p for p in parts if isinstance(p, str))


@lru_cache(maxsize=4096)
def _token_mac(key: bytes, workspace_id: int) -> hmac.HMAC:
    """HMAC-SHA256 under the workspace's own search key, derived from a keyring key (HKDF): equal words
    in two workspaces give different tokens. Kept keyed, so each word costs one `copy()`."""
    info = _SEARCH_INFO + str(workspace_id).encode()
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)
    return hmac.new(derived, digestmod=hashlib.sha256)


def _tokens(key: bytes, workspace_id: int, found: set[str]) -> set[str]:
    keyed = _token_mac(key, workspace_id)
    tokens = set()
    for word in found:
        mac = keyed.copy()
        mac.update(word.encode())
        tokens.add(mac.hexdigest()[:_TOKEN_HEX])
    return tokens


def search_tokens(workspace_id: int, content: Mapping[str, Any]) -> str | None:
    """The blind index of a message: one keyed hash per distinct word, sorted, space-delimited."""
    found = words(searchable_text(content))
    if not found:
        return None
    ring = keyring()
    key = ring.keys[ring.current_id]
    return " " + " ".join(sorted(_tokens(key, workspace_id, found))) + " "


def query_tokens(workspace_id: int, query: str) -> list[set[str]]:
    """For every word of a search, its tokens under each key of the keyring (rows sealed before a
    rotation finished still match). Empty when content encryption is not configured."""
    if _cipher is None:
        return []
    keys = list(_cipher.keyring.keys.values())
    return [
        set().union(*(_tokens(key, workspace_id, {word}) for key in keys)) for word in sorted(words(query))
    ]
