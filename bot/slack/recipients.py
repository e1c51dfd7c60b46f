"""API recipients who are members of the Slack workspace get the link by Slack DM.

The same direct message a Slack recipient of `/ots` gets: who sent it, until
when it works, **Reveal in Slack**, and the link. The member is found by email
(`users.lookupByEmail`, scope `users:read.email`); bots and deactivated members
are not messaged (email may still reach them). The DM is in the member's own
Slack language; the reasons given to the API caller stay English, like every
string of the v1 API.
"""

from __future__ import annotations

from bot.recipients import DeliveryFailed, LinkNotice, Recipient
from bot.serverkey import ServerKey
from bot.slack import blocks, trust
from bot.slack.delivery import Messenger, SlackFailure
from bot.slack.lang import speaking_to


class SlackRecipients:
    ways = ("Slack",)

    def __init__(self, messenger: Messenger, key: ServerKey) -> None:
        self.messenger = messenger
        self.key = key

    async def find(self, address: str) -> Recipient | None:
        try:
            user = await self.messenger.user_by_email(address)
        except SlackFailure as exc:
            raise DeliveryFailed(
                f"Slack could not be asked whether the address belongs to a member ({exc.error})"
            ) from None
        if user is None or user.get("deleted") or user.get("is_bot") or not user.get("id"):
            return None
        return SlackMember(self.messenger, self.key, str(user["id"]))


class SlackMember:
    how = "slack"

    def __init__(self, messenger: Messenger, key: ServerKey, user_id: str) -> None:
        self.messenger = messenger
        self.key = key
        self.user_id = user_id

    async def send(self, notice: LinkNotice) -> None:
        # The Reveal button names the one member who may use it (checked on click),
        # signed like every Reveal value (bot/slack/trust.py).
        reveal = trust.pack(self.key, trust.REVEAL, {
            "k": notice.secret_key, "to": self.user_id, "from": notice.sender,
            "p": int(notice.passphrase_required),
        })
        # In the member's own Slack language (the API caller's does not matter here).
        async with speaking_to(self.messenger.languages, self.user_id):
            message = blocks.recipient_message(
                sender=notice.sender,
                link=notice.link,
                expires_at=notice.expires_at,
                passphrase=notice.passphrase_required,
                reveal_value=reveal,
            )
        try:
            await self.messenger.dm(self.user_id, message)
        except SlackFailure as exc:
            reason = exc.reason  # a clause: Slack's own words for unknown codes
            if not reason.startswith("Slack"):
                reason = f"the Slack member could not be messaged: {reason}"
            raise DeliveryFailed(reason) from None
