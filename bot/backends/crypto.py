"""Keys and envelope encryption for the embedded store.

The link is the capability: a `secret_key` is 160+ random bits, and storage only
ever sees a hash of it (the storage id) and AES-256-GCM ciphertext under a key
derived from it. With a passphrase, scrypt of the passphrase is mixed into the
key, so a wrong passphrase simply fails to decrypt and no passphrase hash exists
to attack offline without the link.

Sealed format, version 2: version (1 byte) | flags (1 byte) | log2 of scrypt's N
(1 byte) | salt (16) | nonce (12) | ciphertext+tag. The header is authenticated
with the associated data, so neither the version nor the cost can be altered.
Version 1 (no cost byte; N was 2**15) is still opened, so secrets made before the
upgrade keep working until they expire.
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
TAG_LENGTH = 4  # a slot tag's base36 characters, after the random ones
TAGGED_KEY_LENGTH = KEY_LENGTH + TAG_LENGTH
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_VERSION = 2
_FLAG_PASSPHRASE = 1
_SALT = 16
_NONCE = 12
_HEADERS = {1: 2 + _SALT + _NONCE, 2: 3 + _SALT + _NONCE}
_V1_SCRYPT_N = 2**15

# scrypt cost, OWASP's floor: N=2**17, r=8 is 128 MiB and about 0.3 s per try on
# one core of the reference machine (docs/benchmarks.md). Stored per secret, so a
# later change of cost leaves older secrets readable.
SCRYPT_N = 2**17


class DecryptionFailed(Exception):
    """Wrong key or passphrase, or tampered data. Carries no detail on purpose."""


def new_key(tag: str = "") -> str:
    """A random lowercase base36 id of 31 characters (160 bits of entropy), then `tag`.

    The secret_key and metadata_key of one share end with the same slot tag
    (`new_tag`): their records then share a Redis Cluster slot, so one script can
    touch both. The tag is not part of the 160 random bits: it is no secret.
    """
    number = int.from_bytes(_random.token_bytes(20), "big")
    digits = []
    for _ in range(KEY_LENGTH):
        number, digit = divmod(number, 36)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits)) + tag


def new_tag() -> str:
    """A random slot tag: TAG_LENGTH base36 characters (36**4 values over 16384 slots)."""
    return "".join(_random.choice(_ALPHABET) for _ in range(TAG_LENGTH))


def slot_tag(key: str) -> str:
    """The slot tag a key ends with, or "" for a key without one (made before tags)."""
    if len(key) == TAGGED_KEY_LENGTH and key[-TAG_LENGTH:].isalnum() and key.isascii():
        return key[-TAG_LENGTH:].lower()
    return ""


def storage_id(prefix: str, key: str) -> str:
    """Where a record lives: a hash of its key, so storage never holds the key.

    A key with a slot tag gets it as a Redis hash tag, `s:{tag}<hash>`: every record
    of one share (secret, receipt, attempt counter) hashes to the same Cluster slot.
    A key made before tags keeps its old name, `s:<hash>`, so it is still found.
    """
    return named(prefix, slot_tag(key), hashlib.sha256(key.encode("utf-8")).hexdigest())


def named(prefix: str, tag: str, digest: str) -> str:
    """The storage id of a record from its key's hash (hex) and slot tag."""
    return f"{prefix}{{{tag}}}{digest}" if tag else prefix + digest


def digest_of(record_id: str) -> str:
    """The hash part of a storage id (what `named` was given)."""
    return record_id[-64:]


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
    log2_n = scrypt_n.bit_length() - 1
    if scrypt_n != 1 << log2_n:
        raise ValueError("scrypt_n must be a power of two")
    aead = AESGCM(_derive(key, salt, passphrase or None, scrypt_n))
    header = bytes((_VERSION, flags, log2_n)) + salt + nonce
    return header + aead.encrypt(nonce, plaintext, header + associated)


def open_sealed(
    sealed: bytes,
    key: str,
    associated: bytes,
    passphrase: str | None = None,
) -> bytes:
    header = _HEADERS.get(version(sealed), 0)
    if not header or len(sealed) < header + 16:
        raise DecryptionFailed
    needs_passphrase = bool(sealed[1] & _FLAG_PASSPHRASE)
    if needs_passphrase and not passphrase:
        raise DecryptionFailed
    if sealed[0] == 1:
        scrypt_n = _V1_SCRYPT_N
    else:
        # The byte is authenticated, but only after scrypt ran: an edited record
        # must not make the server spend gigabytes before the tag check fails.
        if not 1 <= sealed[2] <= 20:
            raise DecryptionFailed
        scrypt_n = 1 << sealed[2]
    nonce_at = header - _NONCE
    salt, nonce = sealed[nonce_at - _SALT : nonce_at], sealed[nonce_at:header]
    aead = AESGCM(_derive(key, salt, passphrase if needs_passphrase else None, scrypt_n))
    try:
        return aead.decrypt(nonce, sealed[header:], sealed[:header] + associated)
    except InvalidTag:
        raise DecryptionFailed from None


def version(sealed: bytes) -> int:
    return sealed[0] if sealed else 0


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
