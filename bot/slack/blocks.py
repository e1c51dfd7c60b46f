"""Block Kit builders: pure functions from values to message payloads."""

from __future__ import annotations

from typing import Any

from bot.slack.ids import COMMAND

Blocks = list[dict[str, Any]]


def slack_date(timestamp: int) -> str:
    """A date every reader sees in their own time zone, with a UTC fallback."""
    import datetime as dt

    fallback = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{timestamp}^{{date_short_pretty}} at {{time}}|{fallback}>"


def human_duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def secret_link_message(*, link: str, expires_at: int, ttl: int) -> dict[str, Any]:
    """The sender's private answer: the one-time link and when it expires."""
    text = f"One-time link (expires in {human_duration(ttl)}): {link}"
    blocks: Blocks = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f":closed_lock_with_key: Here is your one-time link:\n<{link}>",
            },
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": (
                        f"It can be opened once, and expires {slack_date(expires_at)} "
                        f"(in {human_duration(ttl)}). Only you can see this message."
                    ),
                }
            ],
        },
    ]
    return {"text": text, "blocks": blocks}


def usage_message() -> dict[str, Any]:
    text = (
        f"*Share a secret once.*\n"
        f"• `{COMMAND} <text>` turns the text into a one-time link that only you see here; "
        f"send it to whoever needs it. It opens once, then it is gone.\n"
        f"• `{COMMAND} help` shows this message."
    )
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def error_message(text: str) -> dict[str, Any]:
    line = f":warning: {text}"
    return {"text": line, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": line}}]}
