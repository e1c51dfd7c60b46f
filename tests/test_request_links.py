"""Request links, for someone outside Slack: `/ots request what for` gives the requester a
one-time link; its page (GET, any number of times) shows who asks and a form; one POST
stores the secret like any other and DMs it to the requester; every later POST, and
POSTs after cancellation or expiry, get the same "not available" page. Concurrent POSTs:
exactly one fulfils. On SQLite, Redis and the Onetime Secret backend, over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import redis

from bot.config import Settings
from bot.slack import ids
from bot.web import limits, pages
from bot.web.app import create_app
from tests.support.browser import is_problem, open_tab
from tests.support.fake_slack import FakeSlack
from tests.support.servers import TEST_SCRYPT_N, RedisServer, ServedApp
from tests.support.slack_world import (
    KINDS,
    SlackWorld,
    eventually,
    new_user,
    slack_world,
)
from tests.test_distribution import ALPHA, BETA, bearer, command, distribution_env, install
from tests.test_i18n import PSEUDO, pseudo, untranslated  # noqa: F401 (a fixture)
from tests.test_slack_recipients import reveal_in_slack, revealed_value
from tests.test_slack_requests import slack_escaped

REQUEST_LINK = re.compile(r"http://ots\.test(/request/[A-Za-z0-9_-]{32})")
CONCURRENT = 16


@pytest.fixture(scope="module", params=KINDS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          redis_srv: RedisServer) -> Iterator[SlackWorld]:
    with slack_world(request.param, tmp_path_factory.mktemp("links"), redis_srv.url) as world:
        yield world


def request_link(world: SlackWorld, requester: str, what_for: str = "the vendor API key"
                 ) -> tuple[str, dict[str, Any]]:
    """`/ots request what for`; (the link's path on our server, the requester's answer)."""
    _, response_url, _ = world.command(f"request {slack_escaped(what_for)}", user=requester)
    reply = world.replies(response_url)[0]
    match = REQUEST_LINK.search(json.dumps(reply))
    assert match, reply
    return match.group(1), reply


def requester_dms(world: SlackWorld, user: str) -> list[dict[str, Any]]:
    return [c.body for c in world.fake.calls_to("chat.postMessage")
            if c.body.get("channel") == f"D{user}"]


def post(world: SlackWorld, path: str, secret: str, **extra: str) -> httpx.Response:
    return httpx.post(world.served.url + path, data={"secret": secret, **extra}, timeout=20)


def test_get_twice_then_one_post_then_refused(world: SlackWorld) -> None:
    alice = new_user()
    world.fake.add_user(alice, name="Alice Example")
    path, reply = request_link(world, alice)
    assert "expires" in reply["text"] or "expires" in json.dumps(reply)
    assert ids.CANCEL_REQUEST_ACTION in json.dumps(reply)
    for _ in range(2):  # scanners open links: GET uses nothing up
        page = httpx.get(world.served.url + path, timeout=10)
        assert page.status_code == 200
        assert "Alice Example" in page.text and "the vendor API key" in page.text
        assert '<textarea id="secret" name="secret"' in page.text
        assert "tell them the passphrase another way" in page.text
        for name, value in pages.SECURITY_HEADERS.items():
            assert page.headers[name] == value
    secret = "sk_live_\u00e9\u202e 42\nsecond line\n"
    sent = post(world, path, secret)
    assert sent.status_code == 200 and "Sent. The link no longer works." in sent.text
    assert sent.headers["Cache-Control"] == "no-store"
    dm = eventually(lambda: requester_dms(world, alice), what="the requester's DM")[0]
    assert dm["text"] == "Someone outside Slack sent you a one-time secret"
    assert "for your request: *the vendor API key*" in json.dumps(dm)
    assert ids.REVEAL_ACTION in json.dumps(dm)
    again = post(world, path, "a second answer")
    assert again.status_code == 404 and "This request is not available" in again.text
    assert httpx.get(world.served.url + path, timeout=10).status_code == 404
    _, revealed = reveal_in_slack(world, dm, alice)
    assert revealed_value(revealed) == secret
    assert "The secret from someone outside Slack" in json.dumps(revealed)
    assert len(requester_dms(world, alice)) == 1


def test_a_passphrase_is_asked_before_the_secret_is_shown(world: SlackWorld) -> None:
    alice = new_user()
    path, _ = request_link(world, alice)
    assert post(world, path, "behind a phrase", passphrase="open sesame").status_code == 200
    dm = eventually(lambda: requester_dms(world, alice))[0]
    assert "You need the passphrase someone outside Slack gives you" in json.dumps(dm)
    _, revealed = reveal_in_slack(world, dm, alice, passphrase="open sesame")
    assert revealed_value(revealed) == "behind a phrase"


def test_concurrent_posts_exactly_one_fulfils(world: SlackWorld) -> None:
    alice = new_user()
    path, _ = request_link(world, alice)

    async def race() -> list[tuple[int, str]]:
        async with aiohttp.ClientSession() as session:
            async def one(i: int) -> tuple[int, str]:
                async with session.post(world.served.url + path,
                                        data={"secret": f"answer {i}"}) as response:
                    return response.status, await response.text()

            return await asyncio.gather(*(one(i) for i in range(CONCURRENT)))

    answers = asyncio.run(race())
    sent = [a for a in answers if a[0] == 200]
    assert len(sent) == 1 and "Sent. The link no longer works." in sent[0][1]
    assert all(status == 404 and "not available" in text for status, text in answers
               if (status, text) not in sent)
    dm = eventually(lambda: requester_dms(world, alice))[0]
    _, revealed = reveal_in_slack(world, dm, alice)
    assert re.fullmatch(r"answer \d+", revealed_value(revealed))
    assert len(requester_dms(world, alice)) == 1


def test_a_mistake_does_not_use_the_link_up(world: SlackWorld) -> None:
    alice = new_user()
    path, _ = request_link(world, alice)
    empty = post(world, path, "   ")
    assert empty.status_code == 400 and "Type the secret" in empty.text
    too_long = post(world, path, "x" * (world.settings.max_secret_bytes + 1))
    assert too_long.status_code == 400 and "too long" in too_long.text
    same = post(world, path, "s3cret", passphrase="s3cret")
    assert same.status_code == 400
    huge = httpx.post(world.served.url + path, content=b"secret=" + b"x" * (
        world.settings.max_body_bytes + 1), timeout=20,
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert huge.status_code == 413
    assert post(world, path, "at last").status_code == 200


def test_a_failed_delivery_puts_the_request_back(world: SlackWorld) -> None:
    alice = new_user()
    path, _ = request_link(world, alice)
    world.fake.fail("conversations.open", "ratelimited", match={"users": alice})
    failed = post(world, path, "first try")
    assert failed.status_code == 503 and "the link still works" in failed.text
    assert post(world, path, "second try").status_code == 200
    dm = eventually(lambda: requester_dms(world, alice))[0]
    _, revealed = reveal_in_slack(world, dm, alice)
    assert revealed_value(revealed) == "second try"


def test_cancelled_links_are_not_available(world: SlackWorld) -> None:
    alice = new_user()
    path, reply = request_link(world, alice)
    _, response_url, _ = world.click(reply, ids.CANCEL_REQUEST_ACTION, user=alice,
                                     channel="C0GENERAL")
    assert "Its link no longer works" in world.replies(response_url)[0]["text"]
    refused = post(world, path, "too late")
    assert refused.status_code == 404 and "This request is not available" in refused.text
    assert httpx.get(world.served.url + path, timeout=10).status_code == 404
    assert requester_dms(world, alice) == []


def test_unknown_and_malformed_links_get_the_same_page(world: SlackWorld) -> None:
    for path in ("/request/" + "A" * 32, "/request/short", "/request/%3Cscript%3E"):
        for response in (httpx.get(world.served.url + path, timeout=10),
                         post(world, path, "x")):
            assert response.status_code == 404
            assert "This request is not available" in response.text


def test_a_copy_of_the_store_names_nobody(world: SlackWorld) -> None:
    """Neither who asked whom, nor what for, nor the link's key is in the store."""
    alice, bob = new_user(), new_user()
    path, _ = request_link(world, alice, what_for="payroll-db-credential")
    world.command(f"request <@{bob}|bob> quarterly-vpn-token", user=alice)
    eventually(lambda: [c for c in world.fake.calls_to("chat.postMessage")
                        if c.body.get("channel") == f"D{bob}"])
    link_key = path.rsplit("/", 1)[1]
    copy = store_bytes(world)
    for needle in (alice, bob, "payroll-db-credential", "quarterly-vpn-token", link_key):
        assert needle.encode() not in copy, needle


def store_bytes(world: SlackWorld) -> bytes:
    if world.kind == "redis":
        assert world.settings.redis_url
        client = redis.Redis.from_url(world.settings.redis_url)
        try:
            parts = []
            for key in client.scan_iter(count=1000):
                parts.append(key)
                kind = client.type(key)
                if kind == b"string":
                    parts.append(client.get(key) or b"")
                elif kind == b"zset":
                    parts += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
            return b"\n".join(parts)
        finally:
            client.close()
    data_dir = Path(world.settings.data_dir)
    parts = []
    for file in data_dir.glob("*.sqlite3*"):
        parts.append(file.read_bytes())
    database = next(data_dir.glob("*.sqlite3"))
    with contextlib.closing(sqlite3.connect(database)) as db:  # live rows, whatever the WAL
        for table in ("kv", "idx"):
            for row in db.execute(f"select * from {table}"):  # noqa: S608 (our own names)
                parts += [c if isinstance(c, bytes) else str(c).encode() for c in row]
    return b"\n".join(parts)


def test_request_pages_are_rate_limited() -> None:
    assert limits.classify("POST", "/request/abc") == limits.CREATE
    assert limits.classify("GET", "/request/abc") == limits.REVEAL


@pytest.fixture(scope="module")
def short_world(world: SlackWorld, tmp_path_factory: pytest.TempPathFactory,
                redis_srv: RedisServer) -> Iterator[SlackWorld]:
    """Requests that live 2 seconds; 4 page views a window per address."""
    with slack_world(world.kind, tmp_path_factory.mktemp("short-links"), redis_srv.url,
                     change=lambda s: dataclasses.replace(s, request_ttl=2),
                     RATE_LIMIT_REVEAL="4") as short:
        yield short


def test_expired_links_are_not_available(short_world: SlackWorld) -> None:
    alice = new_user()
    path, _ = request_link(short_world, alice)
    assert "Your request for a secret expired" in eventually(
        lambda: requester_dms(short_world, alice), what="the expiry note")[0]["text"]
    refused = post(short_world, path, "too late")
    assert refused.status_code == 404 and "This request is not available" in refused.text


def test_page_views_are_limited_per_address_on_every_backend(short_world: SlackWorld) -> None:
    answers = [httpx.get(f"{short_world.served.url}/request/{'B' * 32}", timeout=10)
               for _ in range(6)]
    assert [a.status_code for a in answers][-1] == 429
    assert "Too many requests from your address" in answers[-1].text


# -- in a real browser ------------------------------------------------------------------

HOSTILE_FOR = (
    '</p><script>alert(1)</script><img src=x onerror="alert(2)">'
    "\u202eevil\u202c <style>body{display:none}</style> & &amp; {{7*7}}"
)
HOSTILE_NAME = '<svg/onload=alert(3)>"\u202eAlice'
PAGE_CHECK = """JSON.stringify({
  text: document.querySelector('main').innerText,
  bdi: [...document.querySelectorAll('bdi')].map(e => e.textContent),
  tags: [...new Set([...document.querySelectorAll('*')].map(e => e.localName))],
  scripts: document.scripts.length,
  handlers: [...document.querySelectorAll('*')].flatMap(
    e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on')),
  links: [...document.querySelectorAll('a')].map(a => a.href),
  title: document.title,
})"""


async def open_in_browser(devtools: str, url: str, secret: str) -> tuple[
        dict[str, Any], dict[str, Any], list[str]]:
    async with open_tab(devtools) as tab:
        await tab.call("Page.navigate", url=url)
        await tab.until("Page.loadEventFired")
        seen = json.loads(await tab.evaluate(PAGE_CHECK))
        await tab.evaluate(f"document.getElementById('secret').value = {json.dumps(secret)};"
                           "document.querySelector('form').requestSubmit()")
        await tab.until("Page.loadEventFired")
        after = json.loads(await tab.evaluate(PAGE_CHECK))
        problems = [str(e["params"]) for e in tab.events if is_problem(e)]
    return seen, after, problems


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackWorld]:
    # The page is the same on every backend: one browser run is enough.
    with slack_world("sqlite", tmp_path_factory.mktemp("browser"), None) as world:
        yield world


def test_in_a_real_browser_hostile_what_for_and_name_are_inert(
    sqlite_world: SlackWorld, chromium: str
) -> None:
    world = sqlite_world
    alice = new_user()
    world.fake.add_user(alice, name=HOSTILE_NAME)
    path, _ = request_link(world, alice, what_for=HOSTILE_FOR)
    secret = "typed in a browser \u00e9\n<b>bold?</b>"
    seen, after, problems = asyncio.run(
        open_in_browser(chromium, world.served.url + path, secret))
    assert seen["bdi"] == [HOSTILE_NAME, HOSTILE_FOR]
    # The only links are the language switch's, to this same page.
    assert seen["links"] and all(h.startswith(world.served.url + path + "?lang=")
                                 for h in seen["links"]), seen["links"]
    assert set(seen["tags"]) <= {"html", "head", "meta", "title", "style", "body", "main",
                                 "h1", "p", "strong", "bdi", "form", "label", "textarea",
                                 "input", "button", "nav", "a"}, seen["tags"]
    assert seen["scripts"] == 0 and seen["handlers"] == []
    assert seen["title"] == "A secret is requested"
    assert after["title"] == "Sent" and "Sent. The link no longer works." in after["text"]
    assert problems == []
    dm = eventually(lambda: requester_dms(world, alice))[0]
    _, revealed = reveal_in_slack(world, dm, alice)
    assert revealed_value(revealed) == secret


# -- in the reader's language ---------------------------------------------------------------


@pytest.mark.usefixtures("pseudo")
def test_the_pages_say_every_word_through_the_catalogue(sqlite_world: SlackWorld) -> None:
    world, lang = sqlite_world, {"lang": PSEUDO}
    path, _ = request_link(world, new_user())
    url = world.served.url + path
    answers = [
        httpx.get(url, params=lang),
        httpx.post(url, params=lang, data={"secret": " "}),
        httpx.post(url, params=lang, data={"secret": "s", "passphrase": "s"}),
        httpx.post(url, params=lang, data={"secret": "s3cret"}),
        httpx.post(url, params=lang, data={"secret": "again"}),
        httpx.get(world.served.url + "/request/" + "C" * 32, params=lang),
    ]
    assert [a.status_code for a in answers] == [200, 400, 400, 200, 404, 404]
    for answer in answers:
        assert f'<html lang="{PSEUDO}">' in answer.text
        # Names and what-for are values, not words of the page: each sits in a <bdi>.
        assert untranslated(re.sub(r"<bdi>.*?</bdi>", "", answer.text)) == [], answer.text


def test_a_maori_reader_gets_the_page_in_maori(sqlite_world: SlackWorld) -> None:
    path, _ = request_link(sqlite_world, new_user())
    page = httpx.get(sqlite_world.served.url + path, headers={"Accept-Language": "mi"})
    assert '<html lang="mi">' in page.text and "E tonoa ana he karere muna" in page.text
    assert f'action="{path}?lang=mi"' in page.text  # the answer keeps the language


# -- several workspaces (distribution mode) ---------------------------------------------


def test_in_distribution_mode_each_link_speaks_with_its_own_workspace(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    """A link answered by a stranger (no Slack request to take a token from) reaches
    the requester through their own workspace's installation, on the page and in the DM."""
    settings = Settings.from_env(distribution_env(fake_slack, tmp_path / "data"))
    with ServedApp(create_app(settings, scrypt_n=TEST_SCRYPT_N)) as app:
        for grant in (ALPHA, BETA):
            assert install(app, fake_slack, grant).status_code == 200
        for team in ("T0ALPHA", "T0BETA"):
            token, requester = fake_slack.tokens_of(team)[0], new_user()
            fake_slack.add_user(requester, name=f"Someone of {team}")
            _, response_url = command(app, fake_slack, team=team, user=requester,
                                      text="request the vendor key")
            path = path_in(eventually(lambda u=response_url: [
                c.body for c in fake_slack.calls_to("response_url")
                if c.path == u[len(fake_slack.url):]], what="the link"))
            page = httpx.get(app.url + path, timeout=10)
            assert f"Someone of {team}" in page.text
            assert post_to(app.url + path, "from a vendor").status_code == 200
            dm = eventually(lambda r=requester: [
                c for c in fake_slack.calls_to("chat.postMessage")
                if c.body.get("channel") == f"D{r}"], what="the DM")[0]
            assert bearer(dm) == token, team
            info = [c for c in fake_slack.calls_to("users.info")
                    if c.body.get("user") == requester]
            assert info and all(bearer(c) == token for c in info), team


def path_in(bodies: list[dict[str, Any]]) -> str:
    match = REQUEST_LINK.search(json.dumps(bodies[0]))
    assert match, bodies
    return match.group(1)


def post_to(url: str, secret: str) -> httpx.Response:
    return httpx.post(url, data={"secret": secret}, timeout=20)
