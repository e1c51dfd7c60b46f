"""The server key: what the app keeps about people is sealed under it.

Secrets are encrypted under keys that live only in their links. Everything else
the app must remember (who owns a secret, who received it, labels, Slack
tokens, API users' `recent` lists) would name people in a copy of the store,
so it is sealed (AES-256-GCM) under a key only the running app holds. The same
key authenticates what the app hands to Slack and gets back (HMAC over button
values and `private_metadata`), and keys the hashes that name per-person
records (rate-limit counters, `recent` indexes), so a copy of the store can
neither be read nor reversed by guessing.

Where it comes from (`load_server_key`):
- `SERVER_KEY`: 32 random bytes, base64url or hex (what replicas share);
- else, with SQLite, `DATA_DIR/server.key`, created on first start with mode
  0600 (one host, one key file next to the data it protects);
- else (Redis shared by several replicas, each with its own disk): refused at
  start when Slack or API users are configured, since each replica would make
  a key of its own and could not read what the others sealed.

Each use gets its own subkey (HKDF with a purpose label), so a MAC can never
be replayed as a seal or a hash in another role.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets as _random
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
KEY_FILENAME = "server.key"
_NONCE = 12
_SEAL_VERSION = b"\x01"
_TAG_CHARS = 32  # hex characters of HMAC-SHA256 kept in signed values (128 bits)


class ServerKeyError(Exception):
    """The key is malformed or cannot be read or created. Never quotes the key."""


class Unsealable(Exception):
    """Sealed under another key, or tampered with. Carries no detail on purpose."""


class ServerKey:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ServerKeyError(f"the server key must be {KEY_BYTES} bytes")
        self._seal = AESGCM(self._derive(key, b"seal"))
        self._mac = self._derive(key, b"mac")
        self._hash = self._derive(key, b"hash")

    @staticmethod
    def _derive(key: bytes, purpose: bytes) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"ots-slack/server/" + purpose
        ).derive(key)

    @classmethod
    def generate(cls) -> ServerKey:
        return cls(_random.token_bytes(KEY_BYTES))

    def __repr__(self) -> str:
        return "ServerKey(…)"

    # -- sealing: confidential and bound to where it is kept ------------------

    def seal(self, data: bytes, context: bytes) -> bytes:
        """Encrypt `data`; `context` (e.g. the record's storage id) must match on open."""
        nonce = _random.token_bytes(_NONCE)
        return _SEAL_VERSION + nonce + self._seal.encrypt(nonce, data, _SEAL_VERSION + context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        if len(sealed) < 1 + _NONCE + 16 or sealed[:1] != _SEAL_VERSION:
            raise Unsealable
        nonce = sealed[1 : 1 + _NONCE]
        try:
            return self._seal.decrypt(nonce, sealed[1 + _NONCE :], _SEAL_VERSION + context)
        except InvalidTag:
            raise Unsealable from None

    def seal_text(self, text: str, context: str) -> str:
        return base64.b64encode(self.seal(text.encode("utf-8"), context.encode())).decode()

    def open_text(self, sealed: str, context: str) -> str:
        try:
            raw = base64.b64decode(sealed, validate=True)
        except (binascii.Error, ValueError):
            raise Unsealable from None
        return self.open(raw, context.encode()).decode("utf-8")

    # -- signing: authentic, not secret ---------------------------------------

    def sign(self, value: str, purpose: str) -> str:
        """`value` with a MAC appended, for a round trip through an untrusted party."""
        return f"{self._tag(value, purpose)}.{value}"

    def verify(self, signed: str | None, purpose: str) -> str | None:
        """The value `sign` was given, or None when the MAC does not match."""
        if not signed:
            return None
        tag, sep, value = signed.partition(".")
        if not sep or not hmac.compare_digest(tag, self._tag(value, purpose)):
            return None
        return value

    def _tag(self, value: str, purpose: str) -> str:
        message = purpose.encode() + b"\0" + value.encode("utf-8", "surrogatepass")
        return hmac.new(self._mac, message, hashlib.sha256).hexdigest()[:_TAG_CHARS]

    # -- naming: a record id nobody can reverse without the key ---------------

    def hash_id(self, prefix: str, value: str) -> str:
        digest = hmac.new(self._hash, prefix.encode() + b"\0" + value.encode(), hashlib.sha256)
        return prefix + digest.hexdigest()


def parse_key(raw: str) -> bytes:
    """32 bytes from hex or base64 (standard or url-safe, padded or not)."""
    text = raw.strip()
    candidates: list[bytes] = []
    if len(text) == 2 * KEY_BYTES:
        try:
            candidates.append(bytes.fromhex(text))
        except ValueError:
            pass
    try:
        padded = text + "=" * (-len(text) % 4)
        candidates.append(base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_")))
    except (binascii.Error, ValueError):
        pass
    for key in candidates:
        if len(key) == KEY_BYTES:
            return key
    raise ServerKeyError(
        f"must be {KEY_BYTES} random bytes as hex or base64 (for example the output of "
        "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
    )


def key_file(data_dir: Path) -> ServerKey:
    """The key in DATA_DIR/server.key, made (mode 0600) when there is none yet."""
    path = data_dir / KEY_FILENAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: several workers starting together agree on the first one's key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _read_key_file(path)
        with os.fdopen(fd, "w") as f:
            f.write(base64.urlsafe_b64encode(_random.token_bytes(KEY_BYTES)).decode() + "\n")
            f.flush()
            os.fsync(f.fileno())
        return _read_key_file(path)
    except OSError as exc:
        raise ServerKeyError(f"cannot read or create {path}: {exc.strerror}") from None


def _read_key_file(path: Path) -> ServerKey:
    for _ in range(100):
        text = path.read_text().strip()
        if text:
            break
        # Another worker created the file a moment ago and is still writing it.
        time.sleep(0.01)
    if path.stat().st_mode & 0o077:
        raise ServerKeyError(f"{path} must be readable by its owner only (chmod 600)")
    try:
        return ServerKey(parse_key(text))
    except ServerKeyError:
        raise ServerKeyError(f"{path} does not hold a valid key") from None
