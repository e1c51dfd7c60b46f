"""Settings, read once from the environment.

`Settings.from_env()` is the only place that reads configuration. It never reads
`.env` itself: the entry point loads that (python-dotenv) before calling it, so
tests and library users get exactly the environment they pass in.
A missing or malformed value raises `ConfigError`, which names the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

MINUTE = 60
DAY = 24 * 60 * MINUTE

MIN_TTL = MINUTE
OTS_REGIONS = ("us", "eu", "ca", "nz", "uk")
LOG_FORMATS = ("text", "json")
METRICS_TOKEN_MIN = 16
KIB = 1024
# A urlencoded secret takes up to 3 bytes per byte (%XX); the rest is room for
# the other parameters, multipart boundaries and Slack's payload wrapping.
BODY_OVERHEAD = 64 * KIB
_HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                        r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?")


USERINFO_PROBLEM = {
    "": "must not hold a user name or password (user:password@host)",
    "OTS_URL": "must not hold a user name or password (user:password@host): "
               "set OTS_USERNAME and OTS_API_TOKEN instead",
}


def has_userinfo(url: str) -> bool:
    """Whether a URL carries `user:password@` (or `user@`) before its host."""
    return "@" in urlsplit(url.strip()).netloc


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True)
class ApiUser:
    custid: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    port: int = 3000
    host: str = "127.0.0.1"
    public_url: str = "http://localhost:3000"
    data_dir: Path = Path("data")
    redis_url: str | None = field(default=None, repr=False)
    # Seconds a Redis command may take to answer; reveals and burns wait twice as
    # long (their outcome matters more than their speed: see bot/backends/storage).
    redis_timeout: int = 5
    # Replicas that must hold a new secret before it is acknowledged (Redis WAIT);
    # None: 1 on redis+cluster:// and redis+sentinel://, 0 on a single server.
    redis_wait_replicas: int | None = None
    redis_wait_ms: int = 1000  # how long a create waits for those replicas
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    # Distribution mode ("Add to Slack", many workspaces): see bot/slack/installs.py.
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    slack_allowed_teams: tuple[str, ...] = ()
    slack_allowed_enterprises: tuple[str, ...] = ()
    default_ttl: int = 7 * DAY
    max_ttl: int = 30 * DAY
    max_secret_bytes: int = 10_000
    passphrase_attempts: int = 5
    workers: int = 1  # processes `python -m bot` serves with (bot/web/workers.py)
    receipt_poll_seconds: int = 60
    request_ttl: int = DAY  # how long a request for a secret stays open (bot/slack/requests.py)
    max_body_bytes: int = 256 * KIB
    # Per client address and window; 0 turns a limit off. Defaults are the
    # Onetime Secret service's own: about 1000 of each per 20 minutes.
    rate_limit_create: int = 1000
    rate_limit_reveal: int = 1000
    rate_limit_window: int = 20 * MINUTE
    rate_limit_ipv6_prefix: int = 64  # IPv6 clients are counted per network of this size
    # Connections (bot/web/server.py): seconds for a request's headers, for its
    # body, and between requests on a kept-alive connection; open connections
    # per process.
    header_timeout: float = 10.0
    body_timeout: float = 20.0
    idle_timeout: float = 5.0
    max_connections: int = 4096
    ots_region: str | None = None
    ots_url: str | None = None
    ots_username: str | None = None
    ots_api_token: str | None = field(default=None, repr=False)
    api_users: tuple[ApiUser, ...] = field(default=(), repr=False)
    server_key: bytes | None = field(default=None, repr=False)  # SERVER_KEY (bot/serverkey.py)
    # /metrics is served only with a token; scrapers send it as a Bearer token.
    metrics_token: str | None = field(default=None, repr=False)
    log_format: str = "text"
    # Public host names the API may build links on (`share_domain`), lowercase.
    share_domains: tuple[str, ...] = ()
    # Email delivery of links to API `recipient`s: smtp:// or smtps://, may hold a password.
    smtp_url: str | None = field(default=None, repr=False)
    smtp_from: str | None = None
    # Off: only API users may have the app message or mail people (no anonymous relay).
    recipients_anonymous: bool = False
    # Link deliveries (`recipient`) per API user and per client address, per window.
    rate_limit_deliver: int = 100

    @property
    def slack_enabled(self) -> bool:
        return self.slack_distributed or bool(
            self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token)
        )

    @property
    def slack_distributed(self) -> bool:
        """Many workspaces through "Add to Slack": the client id and secret without a bot
        token. With SLACK_BOT_TOKEN set, the single-workspace mode wins."""
        return bool(self.slack_client_id and not self.slack_bot_token)


    @property
    def socket_mode(self) -> bool:
        return self.slack_enabled and bool(self.slack_app_token)

    @property
    def uses_onetimesecret(self) -> bool:
        return bool(self.ots_region or self.ots_url)

    @property
    def ots_base_url(self) -> str | None:
        """Origin of the Onetime Secret server (without /api/v1), when that backend is on."""
        if self.ots_url:
            return self.ots_url
        if self.ots_region:
            return f"https://{self.ots_region}.onetimesecret.com"
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Env(os.environ if environ is None else environ)
        port = env.integer("PORT", 3000, minimum=0, maximum=65535)
        # PaaS platforms (Heroku, Render, Railway, …) set PORT and route to every
        # interface; a developer's laptop does not, and stays on loopback.
        default_host = "0.0.0.0" if env.get("PORT") else "127.0.0.1"  # noqa: S104
        max_ttl = env.integer("MAX_TTL", 30 * DAY, minimum=MIN_TTL)
        max_secret_bytes = env.integer("MAX_SECRET_BYTES", 10_000, minimum=1)
        settings = cls(
            port=port,
            host=env.get("HOST") or default_host,
            public_url=env.url("PUBLIC_URL", f"http://localhost:{port}"),
            data_dir=Path(env.get("DATA_DIR") or "data"),
            redis_url=env.redis_url("REDIS_URL"),
            redis_timeout=env.integer("REDIS_TIMEOUT", 5, minimum=1, maximum=60),
            redis_wait_replicas=env.optional_integer("REDIS_WAIT_REPLICAS", minimum=0, maximum=16),
            redis_wait_ms=env.integer("REDIS_WAIT_MS", 1000, minimum=10, maximum=30_000),
            slack_bot_token=env.get("SLACK_BOT_TOKEN"),
            slack_signing_secret=env.get("SLACK_SIGNING_SECRET"),
            slack_app_token=env.get("SLACK_APP_TOKEN"),
            slack_api_url=env.url("SLACK_API_URL", "https://slack.com/api") + "/",
            slack_client_id=env.get("SLACK_CLIENT_ID"),
            slack_client_secret=env.get("SLACK_CLIENT_SECRET"),
            slack_allowed_teams=env.id_list("SLACK_ALLOWED_TEAMS", "T"),
            slack_allowed_enterprises=env.id_list("SLACK_ALLOWED_ENTERPRISES", "E"),
            default_ttl=env.integer("DEFAULT_TTL", 7 * DAY, minimum=MIN_TTL, maximum=max_ttl),
            max_ttl=max_ttl,
            max_secret_bytes=max_secret_bytes,
            passphrase_attempts=env.integer("PASSPHRASE_ATTEMPTS", 5, minimum=1, maximum=100),
            workers=env.integer("WORKERS", 1, minimum=1, maximum=64),
            receipt_poll_seconds=env.integer(
                "RECEIPT_POLL_SECONDS", 60, minimum=1, maximum=86400
            ),
            request_ttl=env.integer("REQUEST_TTL", DAY, minimum=MIN_TTL, maximum=30 * DAY),
            max_body_bytes=_max_body_bytes(env, max_secret_bytes),
            rate_limit_create=env.integer("RATE_LIMIT_CREATE", 1000, minimum=0),
            rate_limit_reveal=env.integer("RATE_LIMIT_REVEAL", 1000, minimum=0),
            rate_limit_window=env.integer(
                "RATE_LIMIT_WINDOW", 20 * MINUTE, minimum=1, maximum=DAY
            ),
            rate_limit_ipv6_prefix=env.integer(
                "RATE_LIMIT_IPV6_PREFIX", 64, minimum=32, maximum=128
            ),
            header_timeout=env.seconds("HEADER_TIMEOUT", 10.0),
            body_timeout=env.seconds("BODY_TIMEOUT", 20.0),
            idle_timeout=env.seconds("IDLE_TIMEOUT", 5.0),
            max_connections=env.integer("MAX_CONNECTIONS", 4096, minimum=1, maximum=1_000_000),
            ots_region=env.choice("OTS_REGION", OTS_REGIONS),
            ots_url=env.optional_url("OTS_URL"),
            ots_username=env.get("OTS_USERNAME"),
            ots_api_token=env.get("OTS_API_TOKEN"),
            api_users=env.api_users("API_USERS"),
            server_key=env.server_key("SERVER_KEY"),
            metrics_token=env.secret("METRICS_TOKEN", minimum=METRICS_TOKEN_MIN),
            log_format=env.choice("LOG_FORMAT", LOG_FORMATS) or "text",
            share_domains=env.host_names("SHARE_DOMAINS"),
            smtp_url=env.smtp_url("SMTP_URL"),
            smtp_from=env.email("SMTP_FROM"),
            recipients_anonymous=env.boolean("RECIPIENTS_ANONYMOUS", False),
            rate_limit_deliver=env.integer("RATE_LIMIT_DELIVER", 100, minimum=0),
        )
        if settings.smtp_url and not settings.smtp_from:
            raise ConfigError("SMTP_FROM", "is required when SMTP_URL is set (the sender address)")
        _check_slack(settings)
        _check_server_key(settings)
        if bool(settings.ots_username) != bool(settings.ots_api_token):
            missing = "OTS_API_TOKEN" if settings.ots_username else "OTS_USERNAME"
            raise ConfigError(missing, "OTS_USERNAME and OTS_API_TOKEN go together; set both")
        return settings


def _max_body_bytes(env: _Env, max_secret_bytes: int) -> int:
    """The request body cap: by default large enough for the largest secret, urlencoded."""
    needed = 3 * max_secret_bytes + BODY_OVERHEAD
    if env.get("MAX_BODY_BYTES") is None:
        return max(256 * KIB, needed)
    value = env.integer("MAX_BODY_BYTES", needed, minimum=1)
    if value < needed:
        raise ConfigError(
            "MAX_BODY_BYTES",
            f"must be at least {needed} (3 x MAX_SECRET_BYTES + {BODY_OVERHEAD}) so that "
            f"the largest secret fits in a urlencoded request, got {value}",
        )
    return value


def _check_server_key(settings: Settings) -> None:
    # With SQLite the key file lives beside the data it protects. Replicas that
    # share a Redis each have their own disk: each would make a key of its own
    # and could not read what the others sealed (owners, API users' lists).
    if settings.server_key or not settings.redis_url:
        return
    if settings.slack_enabled or settings.api_users:
        raise ConfigError(
            "SERVER_KEY",
            "is required with REDIS_URL when Slack or API_USERS are set, so that every "
            "replica seals and checks with the same key; make one with "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`",
        )


def _check_slack(settings: Settings) -> None:
    token, signing, app = (
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
    )
    client_id, client_secret = settings.slack_client_id, settings.slack_client_secret
    if token and (client_id or client_secret):
        # Refused rather than guessed: Bolt itself switches to OAuth whenever these
        # two are in the environment, which would silently drop the bot token.
        raise ConfigError(
            "SLACK_CLIENT_ID",
            "set either SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET (many workspaces, \"Add to Slack\"), not both",
        )
    if client_id or client_secret:
        for name, value in (("SLACK_CLIENT_ID", client_id),
                            ("SLACK_CLIENT_SECRET", client_secret),
                            ("SLACK_SIGNING_SECRET", signing)):
            if not value:
                raise ConfigError(name, "is required for distribution mode (SLACK_CLIENT_ID "
                                  "and SLACK_CLIENT_SECRET without SLACK_BOT_TOKEN)")
    if not (token or signing or app):
        return
    if settings.slack_distributed:
        if app:
            raise ConfigError(
                "SLACK_APP_TOKEN",
                "Socket Mode serves one workspace; distribution mode (SLACK_CLIENT_ID and "
                "SLACK_CLIENT_SECRET) needs HTTP: unset SLACK_APP_TOKEN",
            )
        return
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN", "is required when other SLACK_* settings are set")
    if not token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN", "must be a bot token starting with xoxb-")
    if app and not app.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN", "must be an app-level token starting with xapp-")
    if not (signing or app):
        raise ConfigError(
            "SLACK_SIGNING_SECRET",
            "is required for HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)",
        )


class _Env:
    """Typed reads of environment variables; every failure names its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(name, f"must be at most {maximum}, got {value}")
        return value

    def optional_integer(
        self, name: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        if self.get(name) is None:
            return None
        return self.integer(name, 0, minimum=minimum, maximum=maximum)

    def seconds(self, name: str, default: float) -> float:
        """A positive number of seconds (fractions allowed), at most an hour."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
        if not 0 < value <= 3600:  # also refuses nan and inf
            raise ConfigError(name, f"must be more than 0 and at most 3600 seconds, got {raw}")
        return value

    def url(self, name: str, default: str) -> str:
        return self.optional_url(name) or default.rstrip("/")

    def optional_url(self, name: str) -> str | None:
        raw = self.get(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(name, "must be an http:// or https:// URL")
        if has_userinfo(raw):
            # Refused, not stripped: links, Slack messages and logs print these
            # URLs. The value is never echoed: it holds a password.
            raise ConfigError(name, USERINFO_PROBLEM.get(name, USERINFO_PROBLEM[""]))
        if parts.query or parts.fragment:
            raise ConfigError(name, "must not have a query string or fragment")
        return raw.rstrip("/")

    def redis_url(self, name: str) -> str | None:
        raw = self.get(name)
        if raw is None:
            return None
        from bot.backends.storage import redis_url

        try:
            redis_url.parse(raw)
        except redis_url.BadRedisURL as exc:
            # The value may hold a password: never echo it.
            raise ConfigError(name, str(exc)) from None
        return raw

    def server_key(self, name: str) -> bytes | None:
        from bot.serverkey import ServerKeyError, parse_key

        raw = self.get(name)
        if raw is None:
            return None
        try:
            return parse_key(raw)
        except ServerKeyError as exc:
            raise ConfigError(name, str(exc)) from None
    def secret(self, name: str, *, minimum: int) -> str | None:
        raw = self.get(name)
        if raw is not None and len(raw) < minimum:
            # Its length only: the value is a credential.
            raise ConfigError(name, f"must be at least {minimum} characters, got {len(raw)}")
        return raw

    def id_list(self, name: str, prefix: str) -> tuple[str, ...]:
        raw = self.get(name)
        if raw is None:
            return ()
        ids = tuple(part.strip() for part in raw.split(",") if part.strip())
        for slack_id in ids:
            if not (slack_id.startswith(prefix) and slack_id.isalnum() and slack_id.isupper()):
                raise ConfigError(
                    name, f"must be comma-separated Slack ids starting with {prefix}, "
                    f"got {slack_id!r}"
                )
        return ids

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be 1 or 0 (true or false), got {raw!r}")

    def host_names(self, name: str) -> tuple[str, ...]:
        raw = self.get(name)
        if raw is None:
            return ()
        hosts = []
        for entry in raw.split(","):
            host = entry.strip().lower().rstrip(".")
            if not host:
                continue
            if not _HOST_NAME.fullmatch(host):
                raise ConfigError(
                    name, f"must be comma-separated host names (like secrets.example.com), "
                    f"got {entry.strip()!r}"
                )
            hosts.append(host)
        return tuple(hosts)

    def smtp_url(self, name: str) -> str | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError:
            # The value may hold a password: never echo it.
            raise ConfigError(name, "must be smtp://[user:pass@]host:port or smtps://…") from None
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(name, "must be smtp://[user:pass@]host:port or smtps://…")
        del port
        return raw

    def email(self, name: str) -> str | None:
        raw = self.get(name)
        if raw is None:
            return None
        _, address = parseaddr(raw)
        if "@" not in address or address.startswith("@") or address.endswith("@"):
            raise ConfigError(
                name, f"must be an email address (or 'Name <address>'), got {raw!r}"
            )
        return raw

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        raw = self.get(name)
        if raw is None:
            return None
        if raw.lower() not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw.lower()

    def api_users(self, name: str) -> tuple[ApiUser, ...]:
        raw = self.get(name)
        if raw is None:
            return ()
        users = []
        for entry in raw.split(","):
            custid, sep, token = entry.strip().partition(":")
            if not sep or not custid.strip() or not token.strip():
                # Do not echo the entry: it holds a token.
                raise ConfigError(name, "must be a comma-separated list of email:token pairs")
            users.append(ApiUser(custid.strip(), token.strip()))
        return tuple(users)
