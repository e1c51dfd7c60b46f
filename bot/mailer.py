"""Email delivery of one-time links (SMTP_URL, SMTP_FROM), with aiosmtplib.

`smtp://[user:pass@]host:port` upgrades with STARTTLS whenever the server offers
it; `smtps://` speaks TLS from the first byte. The message has a plain-text and
an HTML part saying who sent the link, until when it works, and that opening
it does not use it up (mail scanners open links; the reveal page only reveals
on a button press). It never holds the secret, the passphrase or the metadata
key. SMTP failures become `DeliveryFailed` here, logged by kind only.

Language: the recipient's is unknown (an address is all we have), so the mail
speaks the API caller's: the `Accept-Language` of the request that asked for the
delivery, when it names a language with a catalogue, else English. Whoever
shares a secret with someone usually writes to them in a language they share.
The API's own answer stays English whatever the header says (bot/web/api.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from html import escape
from urllib.parse import unquote, urlsplit

import aiosmtplib

from bot import i18n
from bot.i18n import N_, Text, text_for
from bot.recipients import ANONYMOUS_SENDER, DeliveryFailed, LinkNotice, Recipient

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


def _expiry(_: Text, notice: LinkNotice) -> str:
    # The date as digits (ISO order, UTC) reads the same in every language.
    when = dt.datetime.fromtimestamp(notice.expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return _("The link expires {when} (in {duration}).", when=when,
             duration=i18n.duration(_, notice.ttl))


def _sent_you(_: Text, sender: str) -> str:
    if sender == ANONYMOUS_SENDER:
        return _("Someone using the API sent you a one-time secret.")
    return _("{sender} sent you a one-time secret.", sender=sender)


def _subject(_: Text, sender: str) -> str:
    if sender == ANONYMOUS_SENDER:
        return _("Someone using the API sent you a one-time secret")
    return _("{sender} sent you a one-time secret", sender=sender)


def _passphrase_needed(_: Text, sender: str) -> str:
    if sender == ANONYMOUS_SENDER:
        return _("You also need the passphrase, which the sender should give you separately.")
    return _("You also need the passphrase, which {sender} should give you separately.",
             sender=sender)


_OPENING = N_(
    "Opening the link does not use it up: the secret is shown only when you press "
    "{button} on that page. After that it is gone for good, so copy it then."
)


def link_email(notice: LinkNotice, *, sender: str, to: str) -> EmailMessage:
    """The message a recipient gets: the link and how it works; no secret, no receipt key.

    In `notice.language` (see the module docstring for how it is chosen)."""
    _ = text_for(notice.language)
    who = notice.sender
    # The reveal page's button, named as the reader will see it there.
    button = _("Reveal secret")
    how = _(_OPENING, button=button)
    lines = [
        _sent_you(_, who),
        "",
        _("Open it here:"),
        notice.link,
        "",
        how,
        _expiry(_, notice),
    ]
    if notice.passphrase_required:
        lines.append(_passphrase_needed(_, who))
    ignore = _("If you did not expect this message, you can ignore it.")
    lines += ["", ignore]
    html = (
        f"<p>{escape(_sent_you(_, who))}</p>"
        f'<p><a href="{escape(notice.link)}">' + escape(_("Open the one-time secret"))
        + f"</a><br><code>{escape(notice.link)}</code></p>"
        "<p>" + escape(_(_OPENING, button="\0")).replace(
            "\0", f"<strong>{escape(button)}</strong>") + "</p>"
        f"<p>{escape(_expiry(_, notice))}</p>"
        + (f"<p>{escape(_passphrase_needed(_, who))}</p>" if notice.passphrase_required else "")
        + f"<p>{escape(ignore)}</p>"
    )
    message = EmailMessage()
    message["Subject"] = _subject(_, who)
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(lines) + "\n")
    message.add_alternative(
        f'<!doctype html><html lang="{_.language}"><body style="font-family:sans-serif">'
        f"{html}</body></html>\n",
        subtype="html",
    )
    # After the parts: making the message multipart moves Content-* headers into them.
    message["Content-Language"] = _.language
    return message
