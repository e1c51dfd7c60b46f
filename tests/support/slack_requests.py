"""Signed requests to the app's /slack/events, as Slack sends them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx

SIGNING_SECRET = "test-signing-secret-0123456789"


def signature(body: bytes, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def post_signed(
    base_url: str,
    body: bytes,
    *,
    timestamp: int | None = None,
    secret: str = SIGNING_SECRET,
    sig: str | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> httpx.Response:
    ts = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": sig or signature(body, ts, secret),
    }
    return httpx.post(f"{base_url}/slack/events", content=body, headers=headers, timeout=10)


def command_body(text: str, *, response_url: str, user_id: str = "U0ALICE",
                 trigger_id: str = "trigger-x", channel_id: str = "C0GENERAL") -> bytes:
    return urlencode(command_fields(text, response_url=response_url, user_id=user_id,
                                    trigger_id=trigger_id, channel_id=channel_id)).encode()


def command_fields(text: str, *, response_url: str, user_id: str = "U0ALICE",
                   trigger_id: str = "trigger-x", channel_id: str = "C0GENERAL") -> dict[str, str]:
    """A slash command's fields: a form over HTTP, an envelope's payload in Socket Mode."""
    return {
        "token": "legacy-verification-token",
        "team_id": "T0TEST",
        "team_domain": "test",
        "channel_id": channel_id,
        "channel_name": "general",
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": "/ots",
        "text": text,
        "api_app_id": "A0OTS",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def event_body(event: dict[str, Any], *, team_id: str = "T0TEST") -> bytes:
    """An Events API callback, as Slack posts it (JSON)."""
    return json.dumps({
        "token": "legacy-verification-token", "team_id": team_id, "api_app_id": "A0OTS",
        "type": "event_callback", "event_id": f"Ev{time.time_ns()}",
        "event_time": int(time.time()), "event": event,
    }).encode()


def interactive_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()
