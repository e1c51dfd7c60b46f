"""Email delivery of one-time links (SMTP_URL, SMTP_FROM), with aiosmtplib.

`smtp://[user:pass@]host:port` upgrades with STARTTLS whenever the server offers
it; `smtps://` speaks TLS from the first byte. The message has a plain-text and
an HTML part saying who sent the link, until when it works, and that opening
it does not use it up (mail scanners open links; the reveal page only reveals
on a button press). It never holds the secret, the passphrase or the metadata
key. SMTP failures become `DeliveryFailed` here, logged by kind only.
"""

from __future__ import annotations

import datetime as dt
import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from html import escape
from urllib.parse import unquote, urlsplit

import aiosmtplib

from bot.recipients import DeliveryFailed, LinkNotice, Recipient, sentence_start

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 15.0  # seconds for connecting and for each SMTP reply
_DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


class SmtpServer:
    """Where and how to send mail, read from SMTP_URL."""

    def __init__(self, url: str, sender: str, *, timeout: float = SMTP_TIMEOUT) -> None:
        parts = urlsplit(url)
        self.hostname = parts.hostname or "localhost"
        self.port = parts.port or _DEFAULT_PORTS[parts.scheme]
        self.implicit_tls = parts.scheme == "smtps"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                # None: STARTTLS whenever the server offers it.
                start_tls=False if self.implicit_tls else None,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused:
            log.warning("email delivery refused: the mail server rejected the recipient")
            raise DeliveryFailed("the mail server refused the recipient address") from None
        except aiosmtplib.SMTPAuthenticationError:
            log.warning("email delivery failed: SMTP authentication was refused")
            raise DeliveryFailed("the mail server refused this server's credentials") from None
        except aiosmtplib.SMTPResponseException as exc:
            log.warning("email delivery failed: SMTP %s", exc.code)
            raise DeliveryFailed(f"the mail server refused the message (SMTP {exc.code})") from None
        except (OSError, TimeoutError) as exc:  # aiosmtplib's connect errors are OSErrors
            log.warning("email delivery failed: %s", type(exc).__name__)
            raise DeliveryFailed("the mail server could not be reached") from None
        except aiosmtplib.SMTPException as exc:
            log.warning("email delivery failed: %s", type(exc).__name__)
            raise DeliveryFailed("the mail server did not accept the message") from None


class EmailDelivery:
    """Reaches any address, by mail."""

    ways = ("email",)

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def find(self, address: str) -> Recipient | None:
        return EmailRecipient(self.server, address)


class EmailRecipient:
    how = "email"

    def __init__(self, server: SmtpServer, address: str) -> None:
        self.server = server
        self.address = address

    async def send(self, notice: LinkNotice) -> None:
        await self.server.send(link_email(notice, sender=self.server.sender, to=self.address))


def _expiry(notice: LinkNotice) -> str:
    when = dt.datetime.fromtimestamp(notice.expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{when} (in {_duration(notice.ttl)})"


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = round(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def link_email(notice: LinkNotice, *, sender: str, to: str) -> EmailMessage:
    """The message a recipient gets: the link and how it works; no secret, no receipt key."""
    who = notice.sender
    who_title = sentence_start(who)
    lines = [
        f"{who_title} sent you a one-time secret.",
        "",
        "Open it here:",
        notice.link,
        "",
        "Opening the link does not use it up: the secret is shown only when you press "
        "Reveal on that page. After that it is gone for good, so copy it then.",
        f"The link expires {_expiry(notice)}.",
    ]
    if notice.passphrase_required:
        lines.append(f"You also need the passphrase, which {who} should give you separately.")
    lines += ["", "If you did not expect this message, you can ignore it."]
    html = (
        f"<p>{escape(who_title)} sent you a one-time secret.</p>"
        f'<p><a href="{escape(notice.link)}">Open the one-time secret</a><br>'
        f"<code>{escape(notice.link)}</code></p>"
        "<p>Opening the link does not use it up: the secret is shown only when you press "
        "<strong>Reveal</strong> on that page. After that it is gone for good, so copy it "
        "then.</p>"
        f"<p>The link expires {escape(_expiry(notice))}.</p>"
        + (
            f"<p>You also need the passphrase, which {escape(who)} should give you "
            "separately.</p>"
            if notice.passphrase_required
            else ""
        )
        + "<p>If you did not expect this message, you can ignore it.</p>"
    )
    message = EmailMessage()
    message["Subject"] = f"{who_title} sent you a one-time secret"
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(lines) + "\n")
    message.add_alternative(
        f'<!doctype html><html><body style="font-family:sans-serif">{html}</body></html>\n',
        subtype="html",
    )
    return message
