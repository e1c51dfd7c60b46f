"""Languages: the catalogues are complete and current, every word on the pages goes
through them, and a Māori reader gets Māori pages (real HTTP, headless Chromium)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot import i18n
from bot.config import Settings
from bot.web.app import create_app
from tests.support import pseudo as pseudo_locale
from tests.support.browser import is_problem, open_tab
from tests.support.servers import ServedApp

ROOT = Path(__file__).parent.parent
LOCALES = ROOT / "bot" / "locales"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
PSEUDO = pseudo_locale.PSEUDO  # every translated text is wrapped in ⟦ ⟧


def catalogue(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def template() -> Catalog:
    with (LOCALES / "messages.pot").open("rb") as f:
        return read_po(f)


def ids(catalog: Catalog) -> set[object]:
    return {m.id for m in catalog if m.id}


def test_the_template_is_what_the_code_says(tmp_path: Path) -> None:
    """Drift test: extracting again gives the committed template's message ids."""
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "-k", "N_", "-k", "plural:1,2", "--no-location", "-o", str(fresh), "."],
        cwd=ROOT, check=True, capture_output=True,
    )
    with fresh.open("rb") as f:
        assert ids(read_po(f)) == ids(template())


@pytest.mark.parametrize("language", [lang for lang in i18n.languages() if lang != "en"])
def test_every_message_has_a_translation_with_the_same_placeholders(language: str) -> None:
    shipped = catalogue(language)
    assert ids(shipped) == ids(template())
    for message in shipped:
        if not message.id:
            continue
        sources = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {message.id!r}"
        wanted = set(PLACEHOLDER.findall(sources[0]))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == wanted, message.id


def test_the_english_catalogue_lists_every_message() -> None:
    assert ids(catalogue("en")) == ids(template())


def test_the_maori_catalogue_keeps_its_terms_and_macrons() -> None:
    text = " ".join(
        s for m in catalogue("mi") if m.id
        for s in (m.string if isinstance(m.string, tuple) else (m.string,))
    )
    for term in ("karere muna", "kupu karapa", "hononga", "kaiwhiwhi", "Kāore"):
        assert term in text
    # Common words whose macrons are easy to drop.
    for unmarked in (" Kaore ", " tena ", " wa ", " mahi-a ", "Tapirihia", "Tohaina nga"):
        assert unmarked not in f" {text} "


@pytest.mark.parametrize(("header", "language"), [
    ("mi", "mi"), ("mi-NZ,en;q=0.8", "mi"), ("en-NZ,mi;q=0.9", "en"),
    ("fr-FR,mi;q=0.5", "mi"), ("fr", "en"), ("", "en"), ("mi;q=0", "en"),
    ("*", "en"), ("de;q=0.9,mi;q=0.95", "mi"),
])
def test_accept_language_picks_the_best_language_we_have(header: str, language: str) -> None:
    assert i18n.from_accept_language(header) == language


@pytest.mark.parametrize(("slack", "language"), [
    ("mi-NZ", "mi"), ("en-US", "en"), ("fr-FR", "en"), (None, "en"), ("mi_NZ", "mi"),
])
def test_slack_locales_map_to_a_catalogue_or_english(slack: str | None, language: str) -> None:
    assert i18n.from_slack_locale(slack) == language


# -- the pages, through the catalogue and in Māori ----------------------------------------


@pytest.fixture(scope="module")
def pseudo() -> Iterator[None]:
    """A pseudo-locale built from the template: text that bypasses the catalogue shows."""
    pseudo_locale.install()
    yield


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    path = tmp_path_factory.mktemp("i18n")
    settings = Settings.from_env({"DATA_DIR": str(path), "PUBLIC_URL": "http://ots.test"})
    with ServedApp(create_app(settings, scrypt_n=2**10)) as served:
        yield served


class Words(HTMLParser):
    """The text a person reads on a page (and attribute text they see or hear)."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script", "pre", "nav"):
            self._skip += 1
        for name, value in attrs:
            if name in ("aria-label", "title", "placeholder", "alt") and value:
                self.words.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "pre", "nav"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.words.append(data.strip())


def untranslated(html: str) -> list[str]:
    parser = Words()
    parser.feed(html)
    # What is left once every ⟦…⟧ is removed must be no words (values like a date are
    # inside the translated text; the secret itself is in <pre>, skipped).
    leftovers = [pseudo_locale.unwrap(w).strip(" .:;,") for w in parser.words]
    return [w for w in leftovers if re.search(r"[A-Za-z]{2,}", w)]


def share(server: ServedApp, passphrase: str | None = None) -> dict[str, str]:
    data = {"secret": "s3cret value"} | ({"passphrase": passphrase} if passphrase else {})
    answer: dict[str, str] = httpx.post(f"{server.url}/api/v1/share", data=data).json()
    return answer


def test_no_page_bypasses_the_catalogue(server: ServedApp, pseudo: None) -> None:
    lang = {"lang": PSEUDO}
    plain, protected = share(server), share(server, "pw")
    unknown = "a" * 31
    pages = [
        httpx.get(f"{server.url}/secret/{protected['secret_key']}", params=lang),
        httpx.get(f"{server.url}/secret/{unknown}", params=lang),
        httpx.post(f"{server.url}/secret/{unknown}", params=lang),
        httpx.get(f"{server.url}/private/{plain['metadata_key']}", params=lang),
        httpx.get(f"{server.url}/private/{unknown}", params=lang),
        httpx.post(f"{server.url}/secret/{plain['secret_key']}", params=lang),
        httpx.post(f"{server.url}/private/{protected['metadata_key']}/burn", params=lang,
                   follow_redirects=True),
    ]
    for page in pages:
        assert page.headers["content-type"].startswith("text/html"), (page.url, page.text)
        assert f'<html lang="{PSEUDO}">' in page.text
        assert untranslated(page.text) == [], page.url


def test_a_maori_reader_gets_maori_pages_and_can_switch(server: ServedApp) -> None:
    shared = share(server)
    page = httpx.get(f"{server.url}/secret/{shared['secret_key']}",
                     headers={"Accept-Language": "mi-NZ,en;q=0.5"})
    assert '<html lang="mi">' in page.text
    assert "Kua tukuna he karere muna ki a koe" in page.text
    assert "Whakaaturia te karere muna" in page.text
    assert 'href="/secret/' in page.text and '?lang=en" hreflang="en"' in page.text
    english = httpx.get(f"{server.url}/secret/{shared['secret_key']}",
                        params={"lang": "en"}, headers={"Accept-Language": "mi"})
    assert '<html lang="en">' in english.text and "A secret was shared with you" in english.text
    # The answer to the form keeps the language the reader chose.
    revealed = httpx.post(f"{server.url}/secret/{shared['secret_key']}", params={"lang": "mi"})
    assert '<html lang="mi">' in revealed.text and "Tō karere muna" in revealed.text
    assert "s3cret value" in revealed.text


def test_the_api_stays_english_whatever_the_reader_asks(server: ServedApp) -> None:
    answer = httpx.post(f"{server.url}/api/v1/secret/{'a' * 31}",
                        headers={"Accept-Language": "mi"}, params={"lang": "mi"})
    assert answer.json()["message"] == "Unknown secret"


LAYOUT = """JSON.stringify({
  lang: document.documentElement.lang,
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  heading: document.querySelector('h1').textContent,
  buttonFits: [...document.querySelectorAll('button, a.button')].every(
    b => b.scrollWidth <= b.clientWidth + 1),
})"""


async def look(devtools: str, url: str) -> tuple[dict[str, object], list[str]]:
    import json

    async with open_tab(devtools, ("Page", "Runtime", "Log", "Network")) as tab:
        # A phone-sized window, and a browser that prefers Māori.
        await tab.call("Emulation.setDeviceMetricsOverride", width=360, height=740,
                       deviceScaleFactor=1, mobile=True)
        await tab.call("Network.setExtraHTTPHeaders", headers={"Accept-Language": "mi"})
        await tab.call("Page.navigate", url=url)
        await tab.until("Page.loadEventFired")
        seen = json.loads(await tab.evaluate(LAYOUT))
        problems = [str(e["params"]) for e in tab.events if is_problem(e)]
    return seen, problems


def test_maori_pages_hold_their_layout_in_a_real_browser(
    server: ServedApp, chromium: str
) -> None:
    shared = share(server, "pw")
    for path in (f"/secret/{shared['secret_key']}", f"/private/{shared['metadata_key']}",
                 f"/secret/{'b' * 31}"):
        seen, problems = asyncio.run(look(chromium, server.url + path))
        assert seen["lang"] == "mi", path
        assert seen["overflow"] == 0, (path, seen)  # nothing wider than the screen
        assert seen["buttonFits"] is True, path
        # No CSP violation (the unknown secret's 404 itself is logged as a network error).
        assert [p for p in problems if "'source': 'network'" not in p] == [], problems
