"""The server key: where it comes from, and what sealing and signing under it promise."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from bot.appstore import load_server_key
from bot.config import ConfigError, Settings
from bot.serverkey import KEY_FILENAME, ServerKey, ServerKeyError, Unsealable, key_file

KEY = bytes(range(32))


def test_a_key_file_is_made_once_owner_only_and_reused(tmp_path: Path) -> None:
    first = key_file(tmp_path / "data")
    path = tmp_path / "data" / KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = key_file(tmp_path / "data")
    sealed = first.seal(b"who", b"ctx")
    assert second.open(sealed, b"ctx") == b"who"


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key_file(tmp_path)
    os.chmod(tmp_path / KEY_FILENAME, 0o644)
    with pytest.raises(ServerKeyError, match="chmod 600"):
        key_file(tmp_path)


def test_server_key_setting_wins_over_the_file(tmp_path: Path) -> None:
    encoded = base64.urlsafe_b64encode(KEY).decode().rstrip("=")
    settings = Settings.from_env({"DATA_DIR": str(tmp_path), "SERVER_KEY": encoded})
    sealed = ServerKey(KEY).seal(b"x", b"c")
    assert load_server_key(settings).open(sealed, b"c") == b"x"
    assert not (tmp_path / KEY_FILENAME).exists()
    # Hex works as well.
    assert Settings.from_env({"SERVER_KEY": KEY.hex()}).server_key == KEY


@pytest.mark.parametrize("raw", ["short", "x" * 40, KEY.hex()[:-2], "%%%%"])
def test_a_malformed_server_key_is_named_and_not_echoed(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SERVER_KEY": raw})
    assert caught.value.variable == "SERVER_KEY"
    assert raw not in str(caught.value)


@pytest.mark.parametrize("extra", [
    {"API_USERS": "a@b.c:tok"},
    {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"},
])
def test_redis_with_slack_or_api_users_needs_a_shared_key(extra: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", **extra})
    assert caught.value.variable == "SERVER_KEY"
    Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0", "SERVER_KEY": KEY.hex(), **extra})


def test_sealed_data_opens_only_in_its_context_and_under_its_key() -> None:
    key = ServerKey(KEY)
    sealed = key.seal(b"slack:T1:U1", b"m:abc")
    assert b"slack" not in sealed
    assert key.open(sealed, b"m:abc") == b"slack:T1:U1"
    with pytest.raises(Unsealable):
        key.open(sealed, b"m:other")
    with pytest.raises(Unsealable):
        ServerKey.generate().open(sealed, b"m:abc")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(Unsealable):
        key.open(bytes(tampered), b"m:abc")


def test_signed_values_come_back_only_untouched_and_for_their_purpose() -> None:
    key = ServerKey(KEY)
    signed = key.sign('{"k":"x","to":"U1"}', "reveal")
    assert key.verify(signed, "reveal") == '{"k":"x","to":"U1"}'
    assert key.verify(signed, "burn") is None
    assert key.verify(signed.replace("U1", "U2"), "reveal") is None
    assert key.verify('{"k":"x","to":"U1"}', "reveal") is None
    assert ServerKey.generate().verify(signed, "reveal") is None


def test_hashed_ids_depend_on_the_key() -> None:
    one, two = ServerKey(KEY), ServerKey.generate()
    assert one.hash_id("rl:", "203.0.113.7") == ServerKey(KEY).hash_id("rl:", "203.0.113.7")
    assert one.hash_id("rl:", "203.0.113.7") != two.hash_id("rl:", "203.0.113.7")
    assert "203.0.113.7" not in one.hash_id("rl:", "203.0.113.7")
    assert repr(one) == "ServerKey(…)"
