"""The Onetime Secret client against this app's own /api/v1, over real HTTP.

One server (SQLite in a temporary directory) for the module; the client runs in
the test's own event loop and talks to it through a real socket. Together with
tests/test_onetimesecret_backend.py (recorded shapes of onetimesecret.com) this
shows the one client serves both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from bot.backends.onetimesecret import OnetimeSecretBackend, new_client
from bot.config import Settings
from bot.errors import NotAuthorized, SecretNotFound
from bot.web.app import create_app
from tests.support.servers import TEST_SCRYPT_N, ServedApp

ALICE = ("alice@example.com", "alice-token-0123456789abcdef")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    env = {"DATA_DIR": str(tmp_path_factory.mktemp("own-api")), "PUBLIC_URL": "http://ots.test",
           "API_USERS": f"{ALICE[0]}:{ALICE[1]}"}
    with ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N)) as served:
        yield served


def use(server: ServedApp, steps: Callable[[OnetimeSecretBackend], Awaitable[Any]],
        credentials: tuple[str, str] | None = ALICE) -> Any:
    async def go() -> Any:
        username, token = credentials or (None, None)
        backend = OnetimeSecretBackend(new_client(), server.url, username=username,
                                       api_token=token, backoff=0)
        try:
            return await steps(backend)
        finally:
            await backend.close()

    return asyncio.run(go())


def test_share_reveals_once_and_the_receipt_follows(server: ServedApp):
    secret = "line one\nline two & ünïcode = 100%\n"

    async def steps(ots: OnetimeSecretBackend) -> None:
        shared = await ots.share(secret, ttl=3600)
        assert shared.state == "new" and shared.custid == ALICE[0]
        assert shared.ttl == 3600 and shared.secret_key
        assert ots.secret_url(shared.secret_key) == f"{server.url}/secret/{shared.secret_key}"

        first = await ots.receipt(shared.metadata_key)  # v1: the first read is still new
        assert first.state == "new" and first.secret_key == shared.secret_key
        viewed = await ots.receipt(shared.metadata_key)
        assert viewed.state == "viewed" and viewed.secret_key == shared.secret_key

        revealed = await ots.reveal(shared.secret_key)
        assert revealed.value == secret  # byte-exact, trailing newline included
        with pytest.raises(SecretNotFound):
            await ots.reveal(shared.secret_key)

        received = await ots.receipt(shared.metadata_key)
        assert received.state == "received" and received.secret_key is None
        assert received.updated >= received.created  # no `received` field (strict clients)

    use(server, steps)


def test_a_wrong_passphrase_does_not_consume(server: ServedApp):
    async def steps(ots: OnetimeSecretBackend) -> None:
        shared = await ots.share("guarded", passphrase="right words")
        assert shared.passphrase_required is True
        assert shared.secret_key
        with pytest.raises(SecretNotFound):
            await ots.reveal(shared.secret_key, "wrong words")
        assert (await ots.reveal(shared.secret_key, "right words")).value == "guarded"

    use(server, steps, credentials=None)


def test_generate_burn_and_recent(server: ServedApp):
    async def steps(ots: OnetimeSecretBackend) -> None:
        made = await ots.generate(length=20)
        assert made.value is not None and len(made.value) == 20
        burned = await ots.burn(made.metadata_key)
        assert burned.state == "burned"
        assert made.secret_key
        with pytest.raises(SecretNotFound):
            await ots.reveal(made.secret_key)
        recent = await ots.recent(ALICE[0])
        assert made.metadata_key in [r.metadata_key for r in recent]

    use(server, steps)


def test_anonymous_secrets_belong_to_anon(server: ServedApp):
    receipt = use(server, lambda ots: ots.share("from nobody"), credentials=None)
    assert receipt.custid == "anon"


def test_authcheck_and_status(server: ServedApp):
    use(server, lambda ots: ots.authcheck())
    use(server, lambda ots: ots.status(), credentials=None)
    with pytest.raises(NotAuthorized, match="OTS_API_TOKEN"):
        use(server, lambda ots: ots.authcheck(), credentials=(ALICE[0], "not-the-token"))
    with pytest.raises(NotAuthorized):
        use(server, lambda ots: ots.share("never stored"),
            credentials=(ALICE[0], "not-the-token"))


def test_an_unknown_receipt_is_not_found(server: ServedApp):
    with pytest.raises(SecretNotFound):
        use(server, lambda ots: ots.receipt("a" * 31))


def test_a_url_ending_in_api_v1_still_works(server: ServedApp):
    async def steps(_: OnetimeSecretBackend) -> None:
        ots = OnetimeSecretBackend(httpx.AsyncClient(), server.url + "/api/v1")
        try:
            await ots.status()
        finally:
            await ots.close()

    use(server, steps)
