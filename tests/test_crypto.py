"""Keys and envelope encryption of the embedded store."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.backends import crypto

FAST = 2**10  # scrypt cost for tests that are not about the cost itself
AD = b"s:storage-id"


def test_keys_are_31_lowercase_base36_characters() -> None:
    for _ in range(200):
        assert re.fullmatch(r"[0-9a-z]{31}", crypto.new_key())


def test_keys_are_distinct() -> None:
    keys = {crypto.new_key() for _ in range(2000)}
    assert len(keys) == 2000


def test_keys_use_the_whole_alphabet() -> None:
    """A key drawn from a narrow alphabet would carry fewer than 160 bits."""
    seen = set("".join(crypto.new_key() for _ in range(300)))
    assert seen == set("0123456789abcdefghijklmnopqrstuvwxyz")


def test_storage_id_is_a_hash_that_does_not_hold_the_key() -> None:
    key = crypto.new_key()
    sid = crypto.storage_id("s:", key)
    assert sid == crypto.storage_id("s:", key)
    assert re.fullmatch(r"s:[0-9a-f]{64}", sid)
    assert key not in sid
    assert crypto.storage_id("p:", key)[2:] == sid[2:]
    assert crypto.storage_id("s:", crypto.new_key()) != sid


@pytest.mark.parametrize("passphrase", [None, "correct horse"])
def test_seal_and_open_round_trip(passphrase: str | None) -> None:
    key = crypto.new_key()
    plaintext = "pässwörd 🔑 \x00 end".encode()
    sealed = crypto.seal(plaintext, key, AD, passphrase, scrypt_n=FAST)
    assert plaintext not in sealed and key.encode() not in sealed
    assert crypto.needs_passphrase(sealed) is bool(passphrase)
    assert crypto.open_sealed(sealed, key, AD, passphrase) == plaintext


@settings(max_examples=25, deadline=None)
@given(
    plaintext=st.binary(max_size=2000),
    associated=st.binary(max_size=100),
    passphrase=st.one_of(st.none(), st.text(min_size=1, max_size=50)),
)
def test_any_bytes_round_trip_and_only_with_their_associated_data(
    plaintext: bytes, associated: bytes, passphrase: str | None
) -> None:
    key = crypto.new_key()
    sealed = crypto.seal(plaintext, key, associated, passphrase, scrypt_n=FAST)
    assert crypto.open_sealed(sealed, key, associated, passphrase) == plaintext
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(sealed, key, associated + b"x", passphrase)


def test_sealing_twice_gives_different_bytes() -> None:
    key = crypto.new_key()
    assert crypto.seal(b"same", key, AD) != crypto.seal(b"same", key, AD)


def test_the_default_cost_is_owasps_floor_and_is_kept_with_each_secret() -> None:
    key = crypto.new_key()
    sealed = crypto.seal(b"at production cost", key, AD, "pw")
    assert crypto.SCRYPT_N == 2**17
    assert sealed[:3] == bytes((2, 1, 17))  # version 2, passphrase, log2 N
    assert crypto.open_sealed(sealed, key, AD, "pw") == b"at production cost"
    # The cost is authenticated: lowering it in a copy of the store does not open it.
    cheaper = bytearray(sealed)
    cheaper[2] = 10
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(bytes(cheaper), key, AD, "pw")


def test_a_secret_sealed_at_a_cheaper_cost_opens_without_being_told_the_cost() -> None:
    key = crypto.new_key()
    sealed = crypto.seal(b"cheap", key, AD, "pw", scrypt_n=FAST)
    assert crypto.open_sealed(sealed, key, AD, "pw") == b"cheap"


def test_version_1_records_made_before_the_upgrade_still_open() -> None:
    """Version 1: no cost byte, N fixed at 2**15. Built here as the old code sealed."""
    import secrets as random

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, salt, nonce = crypto.new_key(), random.token_bytes(16), random.token_bytes(12)
    header = bytes((1, 1)) + salt + nonce
    aead = AESGCM(crypto._derive(key, salt, "pw", 2**15))
    sealed = header + aead.encrypt(nonce, b"from before", header + AD)
    assert crypto.open_sealed(sealed, key, AD, "pw") == b"from before"


@pytest.mark.parametrize("passphrase", [None, "pw"])
def test_every_tampered_byte_fails(passphrase: str | None) -> None:
    key = crypto.new_key()
    sealed = crypto.seal(b"sixteen+ bytes of secret", key, AD, passphrase, scrypt_n=FAST)
    for i in range(len(sealed)):
        tampered = bytearray(sealed)
        tampered[i] ^= 0x01
        with pytest.raises(crypto.DecryptionFailed):
            crypto.open_sealed(bytes(tampered), key, AD, passphrase)


@pytest.mark.parametrize("cut", [1, 16, 40])
def test_truncated_data_fails(cut: int) -> None:
    key = crypto.new_key()
    sealed = crypto.seal(b"some secret", key, AD)
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(sealed[:-cut], key, AD)
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(sealed[:cut], key, AD)


def test_wrong_key_fails() -> None:
    sealed = crypto.seal(b"secret", crypto.new_key(), AD)
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(sealed, crypto.new_key(), AD)


def test_wrong_associated_data_fails() -> None:
    """A record moved to another storage id does not open there."""
    key = crypto.new_key()
    sealed = crypto.seal(b"secret", key, AD)
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(sealed, key, b"s:another-id")


@pytest.mark.parametrize("given", [None, "", "wrong", "correct horse ", "Correct horse"])
def test_wrong_or_missing_passphrase_fails(given: str | None) -> None:
    key = crypto.new_key()
    sealed = crypto.seal(b"secret", key, AD, "correct horse", scrypt_n=FAST)
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(sealed, key, AD, given)


def test_clearing_the_passphrase_flag_does_not_skip_the_passphrase() -> None:
    key = crypto.new_key()
    sealed = bytearray(crypto.seal(b"secret", key, AD, "pw", scrypt_n=FAST))
    sealed[1] = 0
    assert not crypto.needs_passphrase(bytes(sealed))
    with pytest.raises(crypto.DecryptionFailed):
        crypto.open_sealed(bytes(sealed), key, AD)


def test_decryption_failure_says_nothing() -> None:
    key = crypto.new_key()
    sealed = crypto.seal(b"secret", key, AD, "pw", scrypt_n=FAST)
    with pytest.raises(crypto.DecryptionFailed) as caught:
        crypto.open_sealed(sealed, key, AD, "guess")
    assert str(caught.value) == ""
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
