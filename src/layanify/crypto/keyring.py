"""AES-256-GCM encryption with key ids, so keys can be rotated without losing old ciphertexts."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_NONCE_BYTES = 12  # AES-GCM's standard nonce


class KeyringError(ValueError):
    """The keyring is misconfigured, or a ciphertext cannot be decrypted with it."""


def generate_key(key_id: str | None = None) -> str:
    """A new `key_id:base64key` entry for LAYANIFY_ENCRYPTION_KEYS."""
    key_id = key_id or secrets.token_hex(4)
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


@dataclass(frozen=True)
class Keyring:
    """Keys by id; `current_id` encrypts, every key decrypts."""

    keys: dict[str, bytes]
    current_id: str
    # One AESGCM per key, made on first use (building one costs about as much as sealing a short text).
    _aeads: dict[str, AESGCM] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_setting(cls, value: str) -> Keyring:
        """Parse `id1:base64,id2:base64` (first is current)."""
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            key_id, sep, encoded = part.partition(":")
            if not sep or not key_id:
                raise KeyringError("each encryption key must look like `key_id:base64key`")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError as exc:
                raise KeyringError(f"encryption key {key_id!r} is not valid base64") from exc
            if len(key) != 32:
                raise KeyringError(f"encryption key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
            keys[key_id] = key
            order.append(key_id)
        if not order:
            raise KeyringError("no encryption key configured (LAYANIFY_ENCRYPTION_KEYS)")
        return cls(keys=keys, current_id=order[0])

    def encrypt(self, plaintext: str, *, associated_data: bytes = b"") -> str:
        """`v1:key_id:nonce:ciphertext` (base64 parts); a fresh random nonce every time."""
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = self._aead(self.current_id).encrypt(nonce, plaintext.encode(), associated_data)
        parts = (base64.b64encode(nonce).decode(), base64.b64encode(ciphertext).decode())
        return f"{_VERSION}:{self.current_id}:{parts[0]}:{parts[1]}"

    def decrypt(self, token: str, *, associated_data: bytes = b"") -> str:
        """Decrypt with whichever key id the ciphertext names."""
        try:
            version, key_id, nonce, ciphertext = token.split(":", 3)
        except ValueError as exc:
            raise KeyringError("not a keyring ciphertext") from exc
        if version != _VERSION or key_id not in self.keys:
            raise KeyringError(f"ciphertext uses unknown key {key_id!r}; add it to LAYANIFY_ENCRYPTION_KEYS")
        try:
            plain = self._aead(key_id).decrypt(
                base64.b64decode(nonce), base64.b64decode(ciphertext), associated_data
            )
        except Exception as exc:
            raise KeyringError("ciphertext cannot be decrypted (wrong key or tampered)") from exc
        return plain.decode()

    def needs_rotation(self, token: str) -> bool:
        """True when the ciphertext was made with a key other than the current one."""
        return token.split(":", 2)[1:2] != [self.current_id]

    def encrypt_bytes(self, data: bytes, *, associated_data: bytes = b"") -> tuple[str, bytes]:
        """The current key's id and `nonce + ciphertext` of `data` (for files and other binary values)."""
        nonce = os.urandom(_NONCE_BYTES)
        return self.current_id, nonce + self._aead(self.current_id).encrypt(nonce, data, associated_data)

    def encrypt_many(
        self, items: Sequence[bytes], *, associated_data: bytes = b""
    ) -> tuple[str, list[bytes]]:
        """`encrypt_bytes` for several values at once: the current key's id and each `nonce + ciphertext`.

        Every nonce comes from one `os.urandom` call. `os.urandom` lets go of the GIL, so a thread
        sealing a batch (the SQLite receipt writer, beside a busy event loop) waited to take it back
        once per value: ~20 µs a value measured, against ~1.5 µs for the encryption itself.
        """
        nonces = os.urandom(_NONCE_BYTES * len(items))
        aead = self._aead(self.current_id)
        sealed = []
        for index, data in enumerate(items):
            nonce = nonces[index * _NONCE_BYTES : (index + 1) * _NONCE_BYTES]
            sealed.append(nonce + aead.encrypt(nonce, data, associated_data))
        return self.current_id, sealed

    def decrypt_bytes(self, key_id: str, sealed: bytes, *, associated_data: bytes = b"") -> bytes:
        """The inverse of `encrypt_bytes`, with the key the caller read beside the ciphertext."""
        if key_id not in self.keys:
            raise KeyringError(f"ciphertext uses unknown key {key_id!r}; add it to LAYANIFY_ENCRYPTION_KEYS")
        try:
            return self._aead(key_id).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], associated_data)
        except Exception as exc:
            raise KeyringError("ciphertext cannot be decrypted (wrong key or tampered)") from exc

    def key_id_of(self, token: str) -> str | None:
        """The key id a `v1:` ciphertext names, or None when it is not one."""
        parts = token.split(":", 2)
        return parts[1] if len(parts) == 3 and parts[0] == _VERSION else None

    def _aead(self, key_id: str) -> AESGCM:
        aead = self._aeads.get(key_id)
        if aead is None:
            aead = self._aeads[key_id] = AESGCM(self.keys[key_id])
        return aead
