"""A real SMTP server for tests (aiosmtpd) on 127.0.0.1, recording what it receives.

It speaks real SMTP (EHLO, MAIL, RCPT, DATA); the app reaches it through SMTP_URL
exactly as it would reach a production relay. Recipients can be refused per
address (`refuse`), as a relay answers 550 for a mailbox it does not know.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.support.servers import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def part(self, content_type: str) -> str:
        body = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert body is not None and body.get_content_type() == content_type, content_type
        return str(body.get_content())


class SMTPServer:
    """With `login`, AUTH (PLAIN, LOGIN) is offered and a wrong login refused."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refused: set[str] = set()
        self.logins: list[str] = []
        self._login = login
        self._lock = threading.Lock()
        auth: dict[str, Any] = (
            # Plain-text AUTH on loopback only: the tests have no certificate to offer.
            {"authenticator": self._authenticate, "auth_required": False,
             "auth_require_tls": False}
            if login else {}
        )
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **auth)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        assert self._login is not None
        login = (auth_data.login.decode(), auth_data.password.decode())
        with self._lock:
            self.logins.append(login[0])
        # handled=False: aiosmtpd answers 535 itself when the login is wrong.
        return AuthResult(success=login == self._login, handled=False)

    def refuse(self, address: str) -> None:
        self.refused.add(address.casefold())

    # -- aiosmtpd's handler hooks ---------------------------------------------

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.casefold() in self.refused:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    # -- for tests -----------------------------------------------------------

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} message(s), got {len(self.received)}")
            time.sleep(0.02)

    def __enter__(self) -> Self:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
