"""Defence in depth if Slack's signing secret leaks: forged button values, modal
metadata, response_urls and ids are refused (signed requests, real HTTP, fake Slack)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from bot.slack import ids
from tests.support.fake_slack import FakeSlack
from tests.support.servers import RedisServer
from tests.support.slack_requests import command_body, post_signed
from tests.support.slack_world import (
    SlackWorld,
    eventually,
    find_element,
    link_in,
    new_user,
    reveal_by_link,
    signed_value,
    slack_world,
)


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_srv: RedisServer) -> Iterator[SlackWorld]:
    with slack_world(request.param, tmp_path_factory.mktemp("trust"), redis_srv.url) as world:
        yield world


def with_value(message: dict, action_id: str, value: str) -> dict:
    """The message as a forger would send it back: one button's value replaced."""
    forged = json.loads(json.dumps(message))
    button, _ = find_element(forged, action_id)
    button["value"] = value
    return forged


def test_a_forged_burn_button_burns_nothing(world: SlackWorld) -> None:
    alice, mallory = new_user(), new_user()
    _, response_url, _ = world.command("kept-from-mallory", user=alice)
    answer = world.replies(response_url)[0]
    button, _ = find_element(answer, ids.BURN_ACTION)
    value = signed_value(button["value"])
    tag = button["value"].partition(".")[0]
    forgeries = [
        json.dumps({**value, "by": mallory}),  # unsigned
        tag + "." + json.dumps({**value, "by": mallory}, separators=(",", ":")),  # re-tagged
    ]
    for forged in forgeries:
        ack, _, _ = world.click(with_value(answer, ids.BURN_ACTION, forged), ids.BURN_ACTION,
                                user=mallory, channel="C0GENERAL")
        assert ack.status_code == 200
    assert reveal_by_link(world, link_in(answer)) == "kept-from-mallory"


def test_a_forged_reveal_button_opens_no_modal(world: SlackWorld) -> None:
    alice, bob, mallory = new_user(), new_user(), new_user()
    _, response_url, trigger = world.command(f"<@{bob}> for-bob-only", user=alice)
    dm = world.dms(bob)[0]
    button, _ = find_element(dm, ids.REVEAL_ACTION)
    value = signed_value(button["value"])
    opened_before = len(world.fake.calls_to("views.open"))
    forged = json.dumps({**value, "to": mallory})
    ack, _, _ = world.click(with_value(dm, ids.REVEAL_ACTION, forged), ids.REVEAL_ACTION,
                            user=mallory, channel=f"D{mallory}")
    assert ack.status_code == 200
    assert len(world.fake.calls_to("views.open")) == opened_before
    assert reveal_by_link(world, link_in(dm)) == "for-bob-only"


def test_a_response_url_off_slacks_hosts_never_gets_the_link(world: SlackWorld) -> None:
    alice = new_user()
    with FakeSlack() as elsewhere:
        stolen = elsewhere.response_url()  # another host:port than SLACK_API_URL's
        body = command_body("for-alice-only", response_url=stolen, user_id=alice)
        assert post_signed(world.served.url, body).status_code == 200

        def ephemeral() -> dict | None:
            found = [c.body for c in world.fake.calls_to("chat.postEphemeral")
                     if c.body.get("user") == alice]
            return found[0] if found else None

        answer = eventually(ephemeral, what="the answer, sent another way")
        assert elsewhere.calls_to("response_url") == []
    assert reveal_by_link(world, link_in(answer)) == "for-alice-only"


@pytest.mark.parametrize("field", ["user_id", "team_id", "channel_id"])
def test_malformed_slack_ids_are_refused(world: SlackWorld, field: str) -> None:
    body = command_body("never-stored", response_url=world.fake.response_url())
    fields = dict(httpx.QueryParams(body.decode()))
    fields[field] = "U0<!channel>"
    response = post_signed(world.served.url, str(httpx.QueryParams(fields)).encode())
    assert response.status_code == 400
    assert "malformed" in response.text
