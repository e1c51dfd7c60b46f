"""The Slack layer's pure parts: parsing command text, Block Kit builders, button
values and metadata, checked against Slack's limits (the fake Slack's checks)."""

from __future__ import annotations

import json

import pytest

from bot.backends.base import Receipt
from bot.config import Settings
from bot.serverkey import ServerKey
from bot.slack import blocks, modals, trust
from bot.slack.delivery import Origin, SlackFailure
from bot.slack.deps import origin_from_metadata, origin_metadata
from bot.slack.notify import sender_of
from bot.slack.sharing import burn_value, reveal_value, slack_owner
from bot.slack.text import readable, references, split_mentions, unescape
from bot.slack.views import reveal_metadata
from tests.support.fake_slack import check_blocks

LONG_KEY = "k" * 62  # Onetime Secret keys are 62 characters since 2026


@pytest.mark.parametrize(("text", "users", "rest"), [
    ("<@U1> pw", ("U1",), "pw"),
    ("<@U1|bob> <@W2|carol>  two spaces", ("U1", "W2"), " two spaces"),
    ("<@U1><@U1> dup", ("U1",), "dup"),
    ("pw <@U1>", (), "pw <@U1>"),  # a mention inside the secret is part of it
    ("<@U1>", ("U1",), ""),
    ("&lt;@U1&gt; escaped", (), "&lt;@U1&gt; escaped"),
    ("<#C1|general> pw", (), "<#C1|general> pw"),
    ("", (), ""),
])
def test_leading_mentions_are_recipients(text: str, users: tuple[str, ...], rest: str) -> None:
    assert split_mentions(text) == (users, rest)


def test_an_escaped_mention_in_a_secret_stays_text_after_unescaping() -> None:
    users, rest = split_mentions("&lt;@U1&gt; is not a mention")
    assert users == () and unescape(rest) == "<@U1> is not a mention"


@pytest.mark.parametrize(("text", "shown"), [
    ("<https://wiki.example.com|the wiki>", "the wiki (https://wiki.example.com)"),
    ("<https://wiki.example.com>", "https://wiki.example.com"),
    ("<http://example.com|example.com>", "example.com"),  # typed as an address
    ("<https://example.com/|example.com>", "example.com"),
    ("<mailto:ops@example.com|ops@example.com>", "ops@example.com"),
    ("<mailto:ops@example.com|the ops team>", "the ops team (ops@example.com)"),
    ("<!here> <!channel> <!everyone>", "@here @channel @everyone"),
    ("<!subteam^S1|@oncall> <!subteam^S2>", "@oncall @S2"),
    ("<!date^1700000000^{date}|Nov 14>", "Nov 14"),
    ("<#C1|ops> <#C2|> <#C3>", "#ops #deploys #C3"),
    ("<@U1> <@U2|legacy> <@U3>", "@Carol @legacy @U3"),
    ("a &lt;b&gt; &amp;lt; c", "a <b> &lt; c"),
])
def test_message_text_is_rendered_as_people_read_it(text: str, shown: str) -> None:
    assert readable(text, {"U1": "Carol", "C2": "deploys"}) == shown


def test_references_are_people_and_unnamed_channels() -> None:
    assert references("<@U1> <#C1|ops> <#C2|> <@U1> <#C3>") == (["U1"], ["C2", "C3"])


def receipt(passphrase: bool = False) -> Receipt:
    return Receipt(custid="x", metadata_key=LONG_KEY, secret_key=LONG_KEY, ttl=3600,
                   metadata_ttl=7200, secret_ttl=3600, created=1_700_000_000,
                   updated=1_700_000_000, state="new", passphrase_required=passphrase)


KEY = ServerKey.generate()


def test_button_values_fit_slack_and_name_who_may_press() -> None:
    people = [f"U{i:010d}" for i in range(10)]
    burn = burn_value(KEY, "U0ALICE", [LONG_KEY] * 10, people)
    assert len(burn) <= 2000 and unpack(KEY, trust.BURN, burn)["by"] == "U0ALICE"
    record = "slack:sh:" + "f" * 64
    reveal = unpack(KEY, trust.REVEAL,
                    reveal_value(KEY, receipt(True), "U0ALICE", "U0BOB", record))
    assert reveal == {"k": LONG_KEY, "to": "U0BOB", "from": "U0ALICE", "p": 1, "i": record}
    meta = reveal_metadata(KEY, reveal, "DU0BOB", "1700000000.000200")
    assert len(meta) <= 3000 and "c" in unpack(KEY, trust.REVEAL_MODAL, meta)


def test_values_handed_to_slack_come_back_only_as_signed_and_for_their_use() -> None:
    burn = burn_value(KEY, "U0ALICE", [LONG_KEY], [])
    assert trust.unpack(KEY, trust.REVEAL, burn) is None  # a Burn value is no Reveal value
    forged = burn.replace("U0ALICE", "U0MALLORY")
    assert trust.unpack(KEY, trust.BURN, forged) is None
    unsigned = json.dumps({"m": [LONG_KEY], "by": "U0MALLORY", "to": []})
    assert trust.unpack(KEY, trust.BURN, unsigned) is None
    assert trust.unpack(ServerKey.generate(), trust.BURN, burn) is None


def unpack(key: ServerKey, purpose: str, raw: str) -> dict:
    value = trust.unpack(key, purpose, raw)
    assert value is not None
    return value


def test_origin_metadata_round_trips_and_survives_garbage() -> None:
    origin = Origin("https://hooks.slack.com/x", "C1")
    assert origin_from_metadata(KEY, origin_metadata(KEY, origin)) == origin
    assert origin_from_metadata(KEY, origin_metadata(KEY, Origin())) == Origin()
    for garbage in ("", "not json", "[1]", '{"r": 5}', '{"r": "https://evil.example/x"}'):
        assert origin_from_metadata(KEY, garbage) == Origin()


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://hooks.slack.com/commands/T1/2/x", True),
    ("https://hooks.slack-gov.com/commands/T1/2/x", True),
    ("http://hooks.slack.com/commands/T1/2/x", False),
    ("https://hooks.slack.com:8443/x", False),
    ("https://hooks.slack.com.evil.example/x", False),
    ("https://user:pw@hooks.slack.com/x", False),
    ("https://evil.example/hooks.slack.com", False),
    ("http://127.0.0.1:5555/response/1", True),  # the configured SLACK_API_URL host
    ("http://127.0.0.1:5556/response/1", False),
    ("", False),
])
def test_response_urls_go_only_to_slack(url: str, allowed: bool) -> None:
    assert trust.ResponseUrls("http://127.0.0.1:5555/api/").allowed(url) is allowed


@pytest.mark.parametrize(("kind", "value", "ok"), [
    ("user", "U0ALICE", True), ("user", "W12AB", True), ("user", "u0alice", False),
    ("user", "U0<!channel>", False), ("user", "U", False), ("team", "T0TEST", True),
    ("team", "U0TEST", False), ("channel", "C0GENERAL", True), ("channel", "D0X", True),
    ("channel", "C0 GENERAL", False), ("enterprise", "E0ORG", True),
])
def test_slack_ids_are_checked_against_slacks_format(kind: str, value: str, ok: bool) -> None:
    assert trust.is_id(kind, value) is ok


def test_owner_and_sender_round_trip() -> None:
    assert sender_of(slack_owner("T1", "U1")) == "U1"
    assert sender_of(slack_owner(None, None)) is None
    assert sender_of("anon") is None and sender_of("alice@example.com") is None


def test_messages_pass_slacks_block_checks() -> None:
    messages = [
        blocks.secret_link_message(link="https://x/secret/" + LONG_KEY, expires_at=1,
                                   passphrase=True, label="db <prod> & co",
                                   burn_value=burn_value(KEY, "U", [LONG_KEY], [])),
        blocks.sent_to_recipients_message(delivered=["U1", "U2"], failed=[("U3", "a bot")],
                                          expires_at=1, burn_value="{}", label="x"),
        blocks.sent_to_recipients_message(delivered=[], failed=[("U3", "a bot.")],
                                          expires_at=1),
        blocks.recipient_message(sender="U1", link="https://x/secret/k", expires_at=1,
                                 passphrase=True, reveal_value="{}", label="l"),
        blocks.revealed_dm_message(sender="U1", at=1),
        blocks.burn_outcome_message(burned=1, gone=1, failed=1),
        blocks.burn_outcome_message(burned=0, gone=0, failed=0, unknown=1),
        blocks.notification_message(kind="expired", via="expiry", recipients=(), created=1),
        blocks.usage_message(),
    ]
    for message in messages:
        assert message["text"] and check_blocks(message["blocks"]) is None, message


def test_modals_pass_slacks_checks_and_hold_no_secret_in_metadata() -> None:
    settings = Settings()
    share = modals.share_modal(private_metadata="{}", default_ttl=settings.default_ttl,
                               max_ttl=settings.max_ttl, initial_text="x" * 3000,
                               initial_users=[f"U{i}" for i in range(12)], notes=["n"])
    assert check_blocks(share["blocks"], modal=True) is None
    recipients = next(b for b in share["blocks"] if b.get("block_id") == "recipients_block")
    assert len(recipients["element"]["initial_users"]) == 10
    revealed = modals.revealed_modal(sender="U1", value="v" * 7000)
    cells = [e["elements"][0]["text"] for b in revealed["blocks"] if b["type"] == "rich_text"
             for e in b["elements"]]
    assert "".join(cells) == "v" * 7000 and max(map(len, cells)) <= 3000
    for view in (share, revealed, modals.generated_modal("pw", "s"),
                 modals.reveal_modal(sender="U1", passphrase_required=True,
                                     private_metadata="{}"),
                 modals.notice_modal("A title longer than Slack allows", "t")):
        assert all(len(view[k]["text"]) <= 24 for k in ("title", "submit", "close") if k in view)


@pytest.mark.parametrize(("default", "maximum", "offered"), [
    (7 * 86400, 30 * 86400, [300, 3600, 86400, 7 * 86400, 14 * 86400, 30 * 86400]),
    (7200, 86400, [300, 3600, 7200, 86400]),
])
def test_lifetimes_offered_respect_the_maximum_and_include_the_default(
    default: int, maximum: int, offered: list[int]
) -> None:
    assert modals.ttl_choices(default, maximum) == offered


def test_slack_failures_read_as_sentences() -> None:
    assert SlackFailure("cannot_dm_bot").reason.startswith("they are a bot")
    assert "weird_error" in SlackFailure("weird_error").reason


def test_the_block_kit_validator_refuses_what_slack_would() -> None:
    from slack_sdk.errors import SlackObjectFormationError

    from tests.support.block_kit import validate_message, validate_view

    validate_view(modals.notice_modal("Secret gone", "text"))
    with pytest.raises(SlackObjectFormationError):
        validate_view({**modals.notice_modal("x", "text"),
                       "title": {"type": "plain_text", "text": "t" * 25}})
    with pytest.raises(AssertionError):
        validate_message({"blocks": [{"type": "no_such_block"}]})


def test_a_burn_whose_answer_was_lost_never_reads_as_done_or_as_nothing() -> None:
    text = blocks.burn_outcome_message(burned=1, gone=0, failed=0, unknown=1)["text"]
    assert "may have been used up" in text and "not known whether the burn went through" in text
    assert "Burned 1 of them" in text  # the partial wording, not "all burned"
    alone = blocks.burn_outcome_message(burned=0, gone=0, failed=0, unknown=1)["text"]
    assert "may have been used up" in alone and "could not be burned" not in alone
