"""Events: `app_home_opened` publishes the user's Home tab (their secrets, a how-to)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack import ids, trust
from bot.slack.deps import SlackDeps


async def publish_home(event: dict[str, Any], body: dict[str, Any], deps: SlackDeps) -> None:
    user = event.get("user")
    if event.get("tab") != "home" or not trust.is_id("user", user) or deps.followup is None:
        return  # the Messages tab, or nothing to show
    team = body.get("team_id") or (event.get("view") or {}).get("team_id")
    await deps.followup.publish_home(team if isinstance(team, str) else None, str(user))


def register(app: AsyncApp, deps: SlackDeps) -> None:
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        await publish_home(event, body, deps)

    app.event(ids.HOME_OPENED_EVENT)(on_home_opened)
