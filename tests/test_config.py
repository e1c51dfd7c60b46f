"""Settings: defaults, and one clear line naming the variable for each bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings


def test_defaults_run_on_the_embedded_sqlite_store() -> None:
    settings = Settings.from_env({})
    assert settings.port == 3000
    assert settings.host == "127.0.0.1"
    assert settings.public_url == "http://localhost:3000"
    assert settings.data_dir == Path("data")
    assert settings.redis_url is None
    assert settings.default_ttl == 7 * 86400
    assert not settings.slack_enabled
    assert not settings.uses_onetimesecret
    assert settings.slack_api_url == "https://slack.com/api/"


def test_platform_port_means_every_interface_and_public_url_follows_port() -> None:
    settings = Settings.from_env({"PORT": "8080"})
    assert settings.host == "0.0.0.0"
    assert settings.public_url == "http://localhost:8080"
    assert Settings.from_env({"PORT": "8080", "HOST": "127.0.0.1"}).host == "127.0.0.1"


def test_slack_modes() -> None:
    http = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert http.slack_enabled and not http.socket_mode
    socket = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert socket.slack_enabled and socket.socket_mode


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"PORT": "eighty"}, "PORT", "whole number"),
        ({"PORT": "70000"}, "PORT", "at most 65535"),
        ({"DEFAULT_TTL": "10"}, "DEFAULT_TTL", "at least 60"),
        ({"DEFAULT_TTL": "99999999"}, "DEFAULT_TTL", "at most"),
        ({"PUBLIC_URL": "ots.example.com"}, "PUBLIC_URL", "http:// or https://"),
        ({"PUBLIC_URL": "https://x.example/?a=1"}, "PUBLIC_URL", "query"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL", "redis://"),
        ({"SLACK_SIGNING_SECRET": "s"}, "SLACK_BOT_TOKEN", "required"),
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_SIGNING_SECRET", "required"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "x"}, "SLACK_APP_TOKEN", "xapp-"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL", "http"),
        ({"OTS_REGION": "mars"}, "OTS_REGION", "us, eu, ca, nz, uk"),
        ({"OTS_USERNAME": "a@b.c"}, "OTS_API_TOKEN", "both"),
        ({"API_USERS": "nocolon"}, "API_USERS", "email:token"),
        ({"OTS_URL": "https://alice:pw@eu.onetimesecret.com"}, "OTS_URL", "OTS_API_TOKEN"),
        ({"OTS_URL": "https://alice@ots.example"}, "OTS_URL", "user name or password"),
        ({"PUBLIC_URL": "https://u:pw@ots.example"}, "PUBLIC_URL", "user name or password"),
        ({"SLACK_API_URL": "https://u:pw@slack.example/api"}, "SLACK_API_URL", "password"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert words in str(caught.value)


def test_errors_never_echo_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": "http://:hunter2@redis.example"})
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"API_USERS": "a@b.c:tok3n,broken"})
    assert "tok3n" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"OTS_URL": "https://alice:hunter2@eu.onetimesecret.com"})
    assert "hunter2" not in str(caught.value)


def test_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env(
        {"SLACK_BOT_TOKEN": "xoxb-sekrit", "SLACK_SIGNING_SECRET": "sig-sekrit",
         "REDIS_URL": "redis://:pw-sekrit@h/0", "API_USERS": "a@b.c:tok-sekrit",
         "SERVER_KEY": "c2Vrcml0LXNla3JpdC1zZWtyaXQtc2Vrcml0LXNlayE"}
    )
    assert "sekrit" not in repr(settings)
    assert "c2Vrcml0" not in repr(settings)
