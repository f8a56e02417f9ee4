"""The stored forms: what is sealed, what is escaped, what is refused."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import sqlite

from layanify.crypto import content
from layanify.crypto.keyring import Keyring, KeyringError
from tests import factories

DIALECT = sqlite.dialect()


@pytest.fixture(autouse=True)
def _test_keyring() -> None:
    content.configure(content.ContentCipher(keyring=factories.TEST_KEYRING))


def stored_and_read(value: str) -> tuple[str | None, str | None]:
    kind = content.EncryptedText()
    stored = kind.process_bind_param(value, DIALECT)
    return stored, kind.process_result_value(stored, DIALECT)


def test_a_plain_text_that_looks_sealed_is_escaped_and_reads_back_unchanged() -> None:
    for value in ("enc1:v1:test:AAAA:BBBB", "enc0:hello", "halo", ""):
        stored, read = stored_and_read(value)
        assert read == value
        assert stored == value or stored == "enc0:" + value


def test_a_sealed_text_is_unreadable_and_reads_back() -> None:
    stored, read = stored_and_read(content.SealedText("Transfer ke BCA 123"))
    assert stored is not None
    assert stored.startswith("enc1:v1:test:")
    assert "BCA" not in stored
    assert read == "Transfer ke BCA 123"
    assert stored_and_read(content.SealedText("")) == ("", "")  # nothing to hide, nothing sealed


def test_a_ciphertext_only_opens_where_it_was_made() -> None:
    preview = content.seal_text("rahasia")
    with pytest.raises(KeyringError):
        content.open_json(preview.removeprefix(content.TEXT_SEALED))
    sealed = content.seal_bytes(b"file", content.media_ad("1/2026/11/a.pdf"))
    with pytest.raises(KeyringError):
        content.open_bytes(sealed, content.media_ad("1/2026/11/b.pdf"))
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(KeyringError):
        content.open_bytes(tampered, content.media_ad("1/2026/11/a.pdf"))


def test_without_a_keyring_nothing_is_written_in_the_clear_by_mistake() -> None:
    content.configure(None)
    with pytest.raises(content.ContentEncryptionError):
        content.EncryptedJSON().process_bind_param(content.SealedContent(type="text", text="x"), DIALECT)
    assert content.seal_webhook_body(b'{"object": 1}') == b'{"object": 1}'
    assert content.query_tokens(1, "halo") == []


def test_sealed_bytes_name_their_key() -> None:
    sealed = content.seal_bytes(b"%PDF-1.4", b"ad")
    assert sealed.startswith(content.BYTES_MAGIC)
    assert content.bytes_key_id(sealed) == "test"
    assert content.bytes_key_id(b"%PDF-1.4") is None
    assert content.open_bytes(sealed, b"ad") == b"%PDF-1.4"
    assert content.open_bytes(b"%PDF-1.4", b"ad") == b"%PDF-1.4"


def test_raw_webhook_bodies_are_sealed_unless_the_setting_is_off() -> None:
    body = b'{"object": "whatsapp_business_account"}'
    sealed = content.seal_webhook_body(body)
    assert content.bytes_key_id(sealed) == "test"
    assert content.SealedBody().process_result_value(sealed, DIALECT) == body
    assert content.seal_webhook_body(sealed) == sealed  # never twice
    content.configure(content.ContentCipher(keyring=factories.TEST_KEYRING, seal_webhook_bodies=False))
    assert content.seal_webhook_body(body) == body


def test_a_batch_of_webhook_bodies_is_sealed_body_by_body_with_its_own_nonces() -> None:
    bodies = [b'{"object": "whatsapp_business_account", "n": %d}' % n for n in range(5)]
    bodies += [b'{"same": 1}'] * 2
    already = content.seal_webhook_body(b'{"sealed": "before"}')
    stored = content.seal_webhook_bodies([*bodies, already])
    assert len(stored) == len(bodies) + 1
    assert stored[-1] == already  # never twice
    for body, sealed in zip(bodies, stored, strict=False):
        assert content.bytes_key_id(sealed) == "test"
        assert body not in sealed
        assert content.SealedBody().process_result_value(sealed, DIALECT) == body
    # Equal bodies give different ciphertexts: every body has a nonce of its own.
    nonces = {sealed[len(content.BYTES_MAGIC) + 1 + len(b"test") :][:12] for sealed in stored}
    assert len(nonces) == len(stored)
    assert stored[5] != stored[6]
    # A body sealed in a batch opens only as a webhook body, like one sealed alone.
    with pytest.raises(KeyringError):
        content.open_bytes(stored[0], content.media_ad("1/2026/11/a.pdf"))
    assert content.seal_webhook_bodies([]) == []
    content.configure(content.ContentCipher(keyring=factories.TEST_KEYRING, seal_webhook_bodies=False))
    assert content.seal_webhook_bodies(bodies) == bodies
    content.configure(None)
    assert content.seal_webhook_bodies(bodies) == bodies


def test_words_are_normalised_and_tokens_depend_on_the_key_and_the_workspace() -> None:
    assert content.words("Kaos HITAM, ｋａｏｓ! straße") == {"kaos", "hitam", "strasse"}
    message = {"type": "image", "caption": "Kaos hitam"}
    tokens = content.search_tokens(7, message)
    assert tokens is not None
    assert tokens.startswith(" ")
    assert tokens.endswith(" ")
    assert len(tokens.split()) == 2
    assert content.search_tokens(8, message) != tokens
    other = Keyring.from_setting("other:" + "B" * 43 + "=")
    content.configure(content.ContentCipher(keyring=other))
    assert content.search_tokens(7, message) != tokens
    assert content.search_tokens(7, {"type": "location"}) is None
