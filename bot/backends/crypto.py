"""Keys and envelope encryption for the embedded store.

The link is the capability: a `secret_key` is 160+ random bits, and storage only
ever sees a hash of it (the storage id) and AES-256-GCM ciphertext under a key
derived from it. With a passphrase, scrypt of the passphrase is mixed into the
key, so a wrong passphrase simply fails to decrypt and no passphrase hash exists
to attack offline without the link.

Sealed format: version (1 byte) | flags (1 byte) | salt (16) | nonce (12) | ciphertext+tag.
"""

from __future__ import annotations

import hashlib
import secrets as _random

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

KEY_LENGTH = 31  # base36 digits: 36**31 > 2**160
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_VERSION = 1
_FLAG_PASSPHRASE = 1
_SALT = 16
_NONCE = 12
_HEADER = 2 + _SALT + _NONCE

# scrypt cost: 2**15 * 8 * 128 bytes = 32 MiB and ~0.1 s per try on one core.
SCRYPT_N = 2**15


class DecryptionFailed(Exception):
    """Wrong key or passphrase, or tampered data. Carries no detail on purpose."""


def new_key() -> str:
    """A random lowercase base36 id of 31 characters (160 bits of entropy)."""
    number = int.from_bytes(_random.token_bytes(20), "big")
    digits = []
    for _ in range(KEY_LENGTH):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def storage_id(prefix: str, key: str) -> str:
    """Where a record lives: a hash of its key, so storage never holds the key."""
    return prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()


def seal(
    plaintext: bytes,
    key: str,
    associated: bytes,
    passphrase: str | None = None,
    *,
    scrypt_n: int = SCRYPT_N,
) -> bytes:
    salt = _random.token_bytes(_SALT)
    nonce = _random.token_bytes(_NONCE)
    flags = _FLAG_PASSPHRASE if passphrase else 0
    aead = AESGCM(_derive(key, salt, passphrase or None, scrypt_n))
    header = bytes((_VERSION, flags)) + salt + nonce
    return header + aead.encrypt(nonce, plaintext, header + associated)


def open_sealed(
    sealed: bytes,
    key: str,
    associated: bytes,
    passphrase: str | None = None,
    *,
    scrypt_n: int = SCRYPT_N,
) -> bytes:
    if len(sealed) < _HEADER + 16 or sealed[0] != _VERSION:
        raise DecryptionFailed
    needs_passphrase = bool(sealed[1] & _FLAG_PASSPHRASE)
    if needs_passphrase and not passphrase:
        raise DecryptionFailed
    salt, nonce = sealed[2 : 2 + _SALT], sealed[2 + _SALT : _HEADER]
    aead = AESGCM(_derive(key, salt, passphrase if needs_passphrase else None, scrypt_n))
    try:
        return aead.decrypt(nonce, sealed[_HEADER:], sealed[:_HEADER] + associated)
    except InvalidTag:
        raise DecryptionFailed from None


def needs_passphrase(sealed: bytes) -> bool:
    return len(sealed) > 1 and bool(sealed[1] & _FLAG_PASSPHRASE)


def _derive(key: str, salt: bytes, passphrase: str | None, scrypt_n: int) -> bytes:
    material = key.encode("utf-8")
    if passphrase:
        material += Scrypt(salt=salt, length=32, n=scrypt_n, r=8, p=1).derive(
            passphrase.encode("utf-8")
        )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"ots-slack/v1").derive(
        material
    )
