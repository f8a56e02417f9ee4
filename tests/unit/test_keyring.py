"""AES-256-GCM keyring: secrets at rest survive key rotation and refuse tampering."""

from __future__ import annotations

import base64

import pytest

from layanify.crypto.keyring import Keyring, KeyringError, generate_key

OLD = "old:" + base64.b64encode(b"o" * 32).decode()
NEW = "new:" + base64.b64encode(b"n" * 32).decode()
TOKEN = "EAAG-access-token-🔑"


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_setting(OLD)


def test_encrypted_secret_decrypts_to_the_original(keyring: Keyring) -> None:
    assert keyring.decrypt(keyring.encrypt(TOKEN)) == TOKEN


def test_empty_secret_round_trips(keyring: Keyring) -> None:
    assert keyring.decrypt(keyring.encrypt("")) == ""


def test_ciphertext_does_not_contain_the_secret(keyring: Keyring) -> None:
    ciphertext = keyring.encrypt("EAAG-plaintext")
    assert "EAAG-plaintext" not in ciphertext
    assert ciphertext.startswith("v1:old:")


def test_same_secret_encrypts_differently_every_time(keyring: Keyring) -> None:
    first, second = keyring.encrypt(TOKEN), keyring.encrypt(TOKEN)

    assert first != second
    assert first.split(":")[2] != second.split(":")[2]  # a fresh nonce each time
    assert keyring.decrypt(first) == keyring.decrypt(second) == TOKEN


def test_associated_data_binds_the_ciphertext_to_its_owner(keyring: Keyring) -> None:
    ciphertext = keyring.encrypt(TOKEN, associated_data=b"number:1")

    assert keyring.decrypt(ciphertext, associated_data=b"number:1") == TOKEN
    with pytest.raises(KeyringError, match="cannot be decrypted"):
        keyring.decrypt(ciphertext, associated_data=b"number:2")
    with pytest.raises(KeyringError, match="cannot be decrypted"):
        keyring.decrypt(ciphertext)


def test_tampered_ciphertext_is_refused(keyring: Keyring) -> None:
    version, key_id, nonce, body = keyring.encrypt(TOKEN).split(":")
    raw = bytearray(base64.b64decode(body))
    raw[0] ^= 0x01
    tampered = ":".join((version, key_id, nonce, base64.b64encode(bytes(raw)).decode()))

    with pytest.raises(KeyringError, match="wrong key or tampered"):
        keyring.decrypt(tampered)


def test_swapped_nonce_is_refused(keyring: Keyring) -> None:
    version, key_id, _, body = keyring.encrypt(TOKEN).split(":")
    other_nonce = keyring.encrypt(TOKEN).split(":")[2]

    with pytest.raises(KeyringError, match="wrong key or tampered"):
        keyring.decrypt(":".join((version, key_id, other_nonce, body)))


@pytest.mark.parametrize("token", ["", "plaintext", "v1:old:only-three"])
def test_text_that_is_not_a_ciphertext_is_refused(keyring: Keyring, token: str) -> None:
    with pytest.raises(KeyringError, match="not a keyring ciphertext"):
        keyring.decrypt(token)


def test_ciphertext_with_broken_base64_is_refused(keyring: Keyring) -> None:
    with pytest.raises(KeyringError, match="cannot be decrypted"):
        keyring.decrypt("v1:old:!!!:???")


def test_ciphertext_from_an_unknown_key_names_the_key_to_add() -> None:
    ciphertext = Keyring.from_setting(NEW).encrypt(TOKEN)

    with pytest.raises(KeyringError, match=r"unknown key 'new'.*LAYANIFY_ENCRYPTION_KEYS"):
        Keyring.from_setting(OLD).decrypt(ciphertext)


def test_unknown_version_is_refused(keyring: Keyring) -> None:
    _, rest = keyring.encrypt(TOKEN).split(":", 1)
    with pytest.raises(KeyringError):
        keyring.decrypt("v2:" + rest)


# --- rotation ----------------------------------------------------------------------------------


def test_first_key_encrypts_after_rotation() -> None:
    rotated = Keyring.from_setting(f"{NEW},{OLD}")

    assert rotated.current_id == "new"
    assert rotated.encrypt(TOKEN).startswith("v1:new:")


def test_old_ciphertexts_still_decrypt_after_rotation() -> None:
    before = Keyring.from_setting(OLD).encrypt(TOKEN, associated_data=b"ad")
    rotated = Keyring.from_setting(f"{NEW},{OLD}")

    assert rotated.decrypt(before, associated_data=b"ad") == TOKEN


def test_ciphertexts_of_the_old_key_need_rotation() -> None:
    before = Keyring.from_setting(OLD).encrypt(TOKEN)
    rotated = Keyring.from_setting(f"{NEW},{OLD}")

    assert rotated.needs_rotation(before)
    assert not rotated.needs_rotation(rotated.encrypt(TOKEN))


def test_key_id_that_is_a_prefix_of_another_does_not_confuse_rotation() -> None:
    ring = Keyring.from_setting("k1:" + base64.b64encode(b"a" * 32).decode())
    other = Keyring.from_setting("k10:" + base64.b64encode(b"b" * 32).decode())

    assert ring.needs_rotation(other.encrypt(TOKEN))


def test_setting_tolerates_spaces_and_empty_items() -> None:
    ring = Keyring.from_setting(f" {NEW} , ,{OLD}, ")
    assert set(ring.keys) == {"new", "old"}
    assert ring.current_id == "new"


def test_generated_key_is_a_valid_setting() -> None:
    entry = generate_key("2025-11")
    ring = Keyring.from_setting(entry)

    assert entry.startswith("2025-11:")
    assert ring.current_id == "2025-11"
    assert len(ring.keys["2025-11"]) == 32
    assert ring.decrypt(ring.encrypt(TOKEN)) == TOKEN


def test_generated_keys_are_random_and_named() -> None:
    first, second = generate_key(), generate_key()
    assert first != second
    assert first.split(":")[0] != second.split(":")[0]


# --- bad settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["", " ", ",", " , "])
def test_no_key_at_all_is_refused_with_the_setting_name(setting: str) -> None:
    with pytest.raises(KeyringError, match=r"no encryption key configured.*LAYANIFY_ENCRYPTION_KEYS"):
        Keyring.from_setting(setting)


@pytest.mark.parametrize(
    "setting",
    [
        base64.b64encode(b"k" * 32).decode(),  # no id and no colon
        ":" + base64.b64encode(b"k" * 32).decode(),  # empty id
    ],
)
def test_key_without_id_is_refused(setting: str) -> None:
    with pytest.raises(KeyringError, match="key_id:base64key"):
        Keyring.from_setting(setting)


@pytest.mark.parametrize("encoded", ["not base64!", "abc", "====", "a" * 43 + "*"])
def test_key_that_is_not_base64_is_refused_with_its_id(encoded: str) -> None:
    with pytest.raises(KeyringError, match="'main' is not valid base64"):
        Keyring.from_setting(f"main:{encoded}")


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_key_of_the_wrong_length_is_refused_with_its_size(size: int) -> None:
    encoded = base64.b64encode(b"k" * size).decode()
    with pytest.raises(KeyringError, match=rf"'main' must be 32 bytes \(AES-256\), got {size}"):
        Keyring.from_setting(f"main:{encoded}")


def test_one_bad_key_among_good_ones_is_refused() -> None:
    with pytest.raises(KeyringError, match="'bad'"):
        Keyring.from_setting(f"{NEW},bad:short")


def test_keyring_errors_are_value_errors() -> None:
    assert issubclass(KeyringError, ValueError)
