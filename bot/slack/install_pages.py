"""Distribution mode's pages and its OAuth flow: Bolt's, with our pages and rules.

Bolt checks the `state` (against its cookie and our one-time store), exchanges
the code through oauth.v2.access and saves the installation; this module adds:
- the install page in the look of the reveal page, with an Add to Slack button;
- success and failure pages that say what to do next;
- SLACK_ALLOWED_TEAMS / SLACK_ALLOWED_ENTERPRISES: an installation from
  anywhere else is refused, and the token Slack just issued is revoked so that
  no half-installed app is left behind.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.i18n import N_, Text, from_accept_language, languages, text_for
from bot.web import pages

log = logging.getLogger(__name__)

NOT_ALLOWED = "not_allowed"

_FAILURES = {
    "access_denied": N_("The installation was cancelled in Slack. Nothing was installed. "
    "Open the install page again when you are ready."),
    "invalid_browser": N_("This page was opened in another browser than the one that started "
    "the installation. Start again from the install page in this browser."),
    "invalid_state": N_("This installation link was already used or has expired. "
    "Start again from the install page."),
    "missing_code": N_("Slack did not send an installation code. Start again from the "
    "install page."),
    "invalid_code": N_("Slack refused the installation code (it may have expired). Start "
    "again from the install page."),
    NOT_ALLOWED: N_("This deployment is not open to your workspace or organisation. Ask the "
    "people who run it to add it to SLACK_ALLOWED_TEAMS or SLACK_ALLOWED_ENTERPRISES."),
    "storage_error": N_("The installation could not be saved. Nothing was installed. Try "
    "again in a minute; if it keeps failing, tell the people who run this app."),
}


def _html(body: str, status: int) -> BoltResponse:
    return BoltResponse(
        status=status, body=body, headers={"Content-Type": "text/html; charset=utf-8"}
    )


def text_of(request: AsyncBoltRequest) -> Text:
    chosen = request.query.get("lang")
    if chosen and chosen[-1] in languages():
        return text_for(chosen[-1])
    accept = request.headers.get("accept-language")
    return text_for(from_accept_language(accept[0] if accept else None))


async def _success(args: AsyncSuccessArgs) -> BoltResponse:
    _ = text_of(args.request)
    installation = args.installation
    where = installation.enterprise_name if installation.is_enterprise_install else None
    team = where or installation.team_name or _("your workspace")
    log.info("installed in a %s", "organisation" if installation.is_enterprise_install
             else "workspace")
    return _html(pages.installed(_, team), 200)


async def _failure(args: AsyncFailureArgs) -> BoltResponse:
    reason = args.reason
    if isinstance(args.error, BoltError) and str(args.error) == NOT_ALLOWED:
        reason = NOT_ALLOWED
    log.warning("an installation failed: %s", reason)
    _ = text_of(args.request)
    text = _(_FAILURES.get(reason, _FAILURES["storage_error"]))
    status = 403 if reason == NOT_ALLOWED else args.suggested_status_code
    return _html(pages.install_failed(_, text), status)


def callbacks() -> AsyncCallbackOptions:
    return AsyncCallbackOptions(success=_success, failure=_failure)


class InstallFlow(AsyncOAuthFlow):
    def __init__(
        self,
        *,
        allowed_teams: tuple[str, ...] = (),
        allowed_enterprises: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.allowed_teams = frozenset(allowed_teams)
        self.allowed_enterprises = frozenset(allowed_enterprises)

    async def build_install_page_html(self, url: str, request: AsyncBoltRequest) -> str:
        return pages.add_to_slack(text_of(request), url, self.settings.install_path)

    def allows(self, installation: Installation) -> bool:
        if not (self.allowed_teams or self.allowed_enterprises):
            return True
        if installation.enterprise_id in self.allowed_enterprises:
            return True
        return not installation.is_enterprise_install and (
            installation.team_id in self.allowed_teams
        )

    async def store_installation(
        self, request: AsyncBoltRequest, installation: Installation
    ) -> None:
        if not self.allows(installation):
            await self._revoke(installation)
            raise BoltError(NOT_ALLOWED)
        await super().store_installation(request, installation)

    async def _revoke(self, installation: Installation) -> None:
        try:
            await self.client.auth_revoke(token=installation.bot_token)
        except SlackApiError as exc:
            log.warning("could not revoke a refused installation's token: %s",
                        exc.response.get("error"))
