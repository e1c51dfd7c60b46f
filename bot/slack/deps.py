"""What every listener needs, built once in app.py and passed to each `register`."""

from __future__ import annotations

from dataclasses import dataclass

from bot.appstore import AppStore
from bot.backends.base import SecretBackend
from bot.config import Settings
from bot.serverkey import ServerKey
from bot.slack import trust
from bot.slack.delivery import Messenger, Origin
from bot.slack.followup import Followup
from bot.slack.notify import ReceiptLedger
from bot.slack.sharing import Sharer
from bot.slack.workspaces import Workspaces


@dataclass(frozen=True)
class SlackDeps:
    settings: Settings
    backend: SecretBackend
    messenger: Messenger
    sharer: Sharer
    store: AppStore
    ledger: ReceiptLedger | None = None
    # Work outside a Slack request (a request link answered, a request expiring)
    # enters its workspace through this (bot/slack/workspaces.py).
    workspaces: Workspaces | None = None
    followup: Followup | None = None

    @property
    def max_ttl(self) -> int:
        return lifetimes(self.settings, self.backend)[1]

    @property
    def default_ttl(self) -> int:
        return lifetimes(self.settings, self.backend)[0]


def lifetimes(settings: Settings, backend: SecretBackend) -> tuple[int, int]:
    """(default, maximum) secret lifetime: the settings, within what the backend keeps.

    A backend with a limit of its own says so in its capabilities (anonymous
    Onetime Secret: 7 days); offering more would promise what it cuts short.
    """
    limit = backend.capabilities.max_ttl
    max_ttl = min(settings.max_ttl, limit) if limit else settings.max_ttl
    return min(settings.default_ttl, max_ttl), max_ttl


def origin_metadata(key: ServerKey, origin: Origin) -> str:
    """A share modal's private_metadata: where to answer (signed). Never the secret."""
    data = {"r": origin.response_url, "c": origin.channel_id}
    return trust.pack(key, trust.ORIGIN, {k: v for k, v in data.items() if v})


def origin_from_metadata(key: ServerKey, raw: str | None) -> Origin:
    data = trust.unpack(key, trust.ORIGIN, raw)
    if data is None:
        return Origin()
    response_url, channel = data.get("r"), data.get("c")
    return Origin(
        response_url if isinstance(response_url, str) else None,
        channel if isinstance(channel, str) else None,
    )
