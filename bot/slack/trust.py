"""What the app hands to Slack and gets back is checked, not trusted.

Slack signs every request, so these checks matter only if the signing secret
leaks (defence in depth); then a forged request could otherwise make the app
post a one-time link anywhere or act on buttons it never made:

- Button values and `private_metadata` are signed by the app (HMAC under the
  server key, one purpose per kind of value) and refused when the MAC does not
  match: nobody can forge a Reveal or Burn button, or a modal's origin.
- A `response_url` is only ever posted to on Slack's own hosts (or the host of
  the configured `SLACK_API_URL`, which tests point at a fake): the app posts
  one-time links there.
- With several workspaces, each signed value is bound to the workspace it was
  made in (bot/slack/workspaces.py).
- Slack ids (users, teams, channels) are checked against Slack's id format
  before they are used in messages or mentions.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from bot.serverkey import ServerKey
from bot.slack.workspaces import current_team

log = logging.getLogger(__name__)

# Slack's own hosts for response_urls (commercial and GovSlack).
SLACK_HOOK_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")

_IDS = {
    "user": re.compile(r"[UWB][A-Z0-9]{2,20}"),
    "team": re.compile(r"T[A-Z0-9]{2,20}"),
    "enterprise": re.compile(r"E[A-Z0-9]{2,20}"),
    "channel": re.compile(r"[CDG][A-Z0-9]{2,20}"),
}

BURN = "burn-button"
REVEAL = "reveal-button"
ORIGIN = "share-modal"
REVEAL_MODAL = "reveal-modal"
ANSWER = "request-answer"  # Answer and Decline buttons
CANCEL = "request-cancel"
ANSWER_MODAL = "answer-modal"
LISTED_BURN = "listed-burn-button"


def is_id(kind: str, value: object) -> bool:
    return isinstance(value, str) and _IDS[kind].fullmatch(value) is not None


def _bound(purpose: str) -> str:
    # With several workspaces a value is bound to the one it was made in: a button
    # of workspace A does not verify in a request from workspace B.
    return f"{purpose}@{current_team() or '-'}"


def pack(key: ServerKey, purpose: str, data: dict[str, Any]) -> str:
    """A JSON value signed for one purpose (and workspace), for a round trip through Slack."""
    return key.sign(json.dumps(data, separators=(",", ":")), _bound(purpose))


def unpack(key: ServerKey, purpose: str, raw: object) -> dict[str, Any] | None:
    """What `pack` was given, or None for anything this app did not sign for `purpose`
    in this workspace."""
    text = key.verify(raw if isinstance(raw, str) else None, _bound(purpose))
    if text is None:
        if raw:
            log.warning("refused a Slack value the app did not sign (%s)", purpose)
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


class ResponseUrls:
    """Which response_urls the app may post to."""

    def __init__(self, slack_api_url: str) -> None:
        api = urlsplit(slack_api_url)
        self._extra = (api.scheme, api.netloc) if api.netloc else None

    def allowed(self, url: str | None) -> bool:
        if not url:
            return False
        parts = urlsplit(url)
        if parts.username or parts.password:
            return False
        if parts.scheme == "https" and parts.hostname in SLACK_HOOK_HOSTS and not parts.port:
            return True
        return self._extra is not None and (parts.scheme, parts.netloc) == self._extra
