"""HTML pages for people, in their language.

Every value is escaped; no style or script runs unless its hash is in the CSP.
Each page takes the reader's `Text` (bot/i18n.py) and says every word through
it; pages that can be reloaded safely carry links to the other languages.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from html import escape

from bot.i18n import N_, Text, language_name, languages

_CSS = """
:root{color-scheme:light dark;--fg:#1d1c1d;--bg:#f8f8f8;--card:#fff;--accent:#4a154b;
--muted:#616061}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--bg:#1a1d21;--card:#222529;
--accent:#c5a3ff;--muted:#ababad}}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg)}
main{max-width:42rem;margin:3rem auto;padding:2rem;background:var(--card);border-radius:12px;
box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin-top:0}
p.muted{color:var(--muted);font-size:.9rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;unicode-bidi:plaintext;padding:1rem;border-radius:8px;
background:var(--bg);border:1px solid var(--muted);max-height:60vh;overflow:auto;
font:15px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
label{display:block;margin:.5rem 0 .25rem}
nav.lang{text-align:right;font-size:.85rem;margin:-1rem 0 1rem}
nav.lang a{color:var(--accent);margin-left:.75rem}
input[type=password],textarea{width:100%;padding:.6rem;font:inherit;border-radius:6px;
border:1px solid var(--muted)}
textarea{min-height:8rem;font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
button,a.button{display:inline-block;margin-top:1rem;padding:.65rem 1.4rem;font:inherit;
font-weight:600;color:#fff;background:var(--accent);border:0;border-radius:6px;cursor:pointer;
text-decoration:none}
""".strip()

_COPY_JS = (
    "document.getElementById('copy').addEventListener('click',function(){"
    "navigator.clipboard.writeText(document.getElementById('secret').textContent)"
    ".then(function(){document.getElementById('copy').textContent='Copied';});});"
)


def _sha256(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_sha256(_CSS)}; script-src {_sha256(_COPY_JS)}; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}


def _page(_: Text, title: str, body: str, *, script: bool = False,
          switch: str | None = None) -> str:
    """A whole page. `switch`: the path to offer in the other languages (only pages a
    reload cannot harm: never the one showing a secret)."""
    js = f"<script>{_COPY_JS}</script>" if script else ""
    return (
        f'<!doctype html><html lang="{escape(_.language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{_switch(_, switch)}{body}</main>{js}</body></html>"
    )


def _switch(_: Text, path: str | None) -> str:
    if path is None:
        return ""
    links = "".join(
        f'<a href="{escape(path, quote=True)}?lang={lang}" hreflang="{lang}" lang="{lang}">'
        f"{escape(language_name(lang))}</a>"
        for lang in languages() if lang != _.language
    )
    return '<nav class="lang" aria-label="' + escape(_("Language"), quote=True) + f'">{links}</nav>'


def with_language(_: Text, path: str) -> str:
    """A form's action that keeps the reader's language for the answer."""
    return f"{path}?lang={_.language}"


def reveal_prompt(_: Text, *, action: str, passphrase_required: bool) -> str:
    field = (
        '<label for="passphrase">' + escape(_("Passphrase")) + '</label>'
        '<input type="password" id="passphrase" name="passphrase" required '
        'autocomplete="off" autofocus>'
        if passphrase_required
        else ""
    )
    title = _("A secret was shared with you")
    return _page(
        _, title,
        f"<h1>{escape(title)}</h1>"
        "<p>" + escape(_("It can be viewed only once. After you reveal it, this link stops "
                      "working for everyone.")) + "</p>"
        f'<form method="post" action="{escape(with_language(_, action))}">{field}'
        f'<button type="submit">' + escape(_("Reveal secret")) + '</button></form>',
        switch=action,
    )


def has_hidden_characters(value: str) -> bool:
    """Direction overrides, zero-width and other invisible format characters."""
    return any(unicodedata.category(c) == "Cf" for c in value)


def revealed(_: Text, value: str) -> str:
    # "\u202etxt.exe" shows as "exe.txt": say so, since what is seen is not all there is.
    hidden = (
        '<p class="muted">'
        + escape(_("This secret contains invisible or text-direction characters: what you "
                   "see may differ from what it is. Copy gives it exactly as it was sent."))
        + "</p>"
        if has_hidden_characters(value)
        else ""
    )
    title = _("Your secret")
    return _page(
        _, title,
        f"<h1>{escape(title)}</h1>"
        "<p>" + escape(_("This is the only time it is shown. Copy it now: reloading this "
                      "page will not show it again.")) + "</p>"
        f"{hidden}"
        # The parser drops one newline right after <pre>: ours, not the secret's.
        # A literal CR would be read as LF; as a character reference it stays CR.
        f'<pre id="secret">\n{escape(value).replace(chr(13), "&#13;")}</pre>'
        f'<button type="button" id="copy">' + escape(_("Copy to clipboard")) + '</button>',
        script=True,
    )


def unknown_secret(_: Text, switch: str | None = None) -> str:
    return _page(
        _, _("Unknown secret"),
        "<h1>" + escape(_("This secret is not available")) + "</h1>"
        "<p>" + escape(_("It may have been viewed already, burned, or it expired, or the "
                      "passphrase was wrong. Ask the sender to share it again.")) + "</p>",
        switch=switch,
    )


def unavailable(_: Text) -> str:
    title = _("Temporarily unavailable")
    return _page(
        _, title,
        f"<h1>{escape(title)}</h1>"
        "<p>" + escape(_("The secret store cannot be reached right now. Nothing was revealed "
                      "or lost: try again in a minute.")) + "</p>",
    )


def outcome_unknown(_: Text) -> str:
    """A reveal or burn was sent, but the store's answer never came: never "nothing
    happened", since the secret may have been used up."""
    title = _("Outcome unknown")
    return _page(
        _, title,
        f"<h1>{escape(title)}</h1>"
        "<p>" + escape(_("The secret store did not answer in time, so it is not known whether "
                      "this went through: the secret may have been used up. Reload in a "
                      "minute to see; if it is gone, ask the sender to share it again."))
        + "</p>",
    )


def message(_: Text, title: str, text: str, *, switch: str | None = None) -> str:
    """A page of one title and one paragraph, both already in the reader's language."""
    return _page(_, title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>", switch=switch)


_STATE_TEXT = {
    "new": N_("Not viewed yet."),
    "viewed": N_("Not viewed yet."),
    "received": N_("Viewed by the recipient {when}. The link no longer works."),
    "burned": N_("Burned {when}. Nobody can view it now."),
    "expired": N_("Expired without being viewed."),
    "orphaned": N_("The secret is gone; nobody can view it now."),
}


def receipt_page(
    _: Text,
    *,
    state: str,
    link: str | None,
    expires: str,
    changed: str,
    passphrase_required: bool,
    burn_action: str,
    path: str,
    burn_refused: bool = False,
) -> str:
    """The sender's receipt: the state, and while unread the link and a Burn button.

    Times arrive as display text; `changed` is when the state last changed. A
    passphrase-protected secret is burned only with its passphrase (as on the API).
    """
    fallback = N_("Unknown state.")
    text = _(_STATE_TEXT.get(state, fallback), when=changed)
    title = _("Your secret")
    body = f"<h1>{escape(title)}</h1><p><strong>{escape(text)}</strong></p>"
    if burn_refused:
        body += (
            "<p><strong>" + escape(_("Not burned: the passphrase was wrong.")) + "</strong> "
            + escape(_("Wrong passphrases count towards the limit after which the secret is "
                       "burned anyway.")) + "</p>"
        )
    if link is not None:
        send = _("Send this one-time link to the recipient. It expires {when}.", when=expires)
        if passphrase_required:
            send += " " + _("It needs the passphrase you set.")
        field = (
            '<label for="passphrase">' + escape(_("Passphrase (needed to burn it)"))
            + '</label><input type="password" id="passphrase" name="passphrase" required '
            'autocomplete="off">'
            if passphrase_required
            else ""
        )
        body += (
            f"<p>{escape(send)}</p>"
            f'<pre id="secret">{escape(link)}</pre>'
            f'<button type="button" id="copy">' + escape(_("Copy to clipboard")) + f'</button>'
            f'<form method="post" action="{escape(with_language(_, burn_action))}">'
            "<p>" + escape(_("Changed your mind? Burning destroys the secret before anyone "
                          "views it.")) + "</p>"
            + field
            + '<button type="submit">' + escape(_("Burn this secret")) + '</button></form>'
        )
    body += (
        '<p class="muted">'
        + escape(_("Keep this page to yourself: whoever has its address can see the link "
                   "and burn the secret."))
        + "</p>"
    )
    return _page(_, title, body, script=link is not None, switch=path)


def _with_values(template: str, **values: str) -> str:
    """A translated sentence, escaped, with values that are already HTML put in."""
    return escape(template).format(**values)


def request_form(
    _: Text, *, name: str, what_for: str, expires: str, action: str, max_chars: int
) -> str:
    """A request link's page: who asks, what for, until when; the form that answers it.

    The name and "what for" come from Slack and the requester: escaped, and in
    <bdi> so that direction characters in them cannot reorder the text around them.
    """
    who = f"<bdi>{escape(name)}</bdi>"
    what = (
        "<p>" + _with_values(_("What for: {what_for}"), what_for=f"<bdi>{escape(what_for)}</bdi>")
        + "</p>"
        if what_for else ""
    )
    title = _("A secret is requested")
    return _page(
        _, title,
        f"<h1>{escape(title)}</h1>"
        "<p>" + _with_values(_("{name} asks you for a secret through Slack."), name=who)
        + f"</p>{what}"
        "<p>" + escape(_("This link works once and expires {when}. Opening it uses nothing "
                      "up: only Send does.", when=expires)) + "</p>"
        f'<form method="post" action="{escape(with_language(_, action))}">'
        '<label for="secret">' + escape(_("Secret")) + "</label>"
        f'<textarea id="secret" name="secret" required maxlength="{max_chars}" '
        'autocomplete="off" spellcheck="false"></textarea>'
        '<label for="passphrase">' + escape(_("Passphrase (optional)")) + "</label>"
        '<input type="password" id="passphrase" name="passphrase" autocomplete="off">'
        '<p class="muted">' + escape(_("If you set a passphrase, tell them the passphrase "
                                       "another way: never in the same message or channel "
                                       "as this link.")) + "</p>"
        '<button type="submit">' + escape(_("Send")) + "</button></form>"
        '<p class="muted">' + escape(_("They get it as a one-time secret in Slack: it can be "
                                       "viewed once, then it is gone.")) + "</p>",
        switch=action,
    )


def request_sent(_: Text) -> str:
    title = _("Sent")
    return _page(
        _, title,
        f"<h1>{escape(title)}</h1>"
        "<p>" + escape(_("Sent. The link no longer works.")) + "</p>"
        '<p class="muted">' + escape(_("They got it as a one-time secret in Slack. You can "
                                       "close this page.")) + "</p>",
    )


def request_unavailable(_: Text, switch: str | None = None) -> str:
    return _page(
        _, _("Request not available"),
        "<h1>" + escape(_("This request is not available")) + "</h1>"
        "<p>" + escape(_("It was already answered or cancelled, or it expired. Nothing was "
                      "sent. Ask the person who needs the secret for a new link.")) + "</p>",
        switch=switch,
    )


def unknown_receipt(_: Text, switch: str | None = None) -> str:
    return _page(
        _, _("Unknown receipt"),
        "<h1>" + escape(_("This receipt is not available")) + "</h1>"
        "<p>" + escape(_("The address may be mistyped, or the receipt expired (receipts are "
                      "kept twice as long as their secret).")) + "</p>",
        switch=switch,
    )


def add_to_slack(_: Text, url: str, switch: str) -> str:
    """The install page of distribution mode: what the app does, and the button."""
    title = _("Add One-Time Secret to Slack")
    return _page(
        _, title,
        f"<h1>{escape(title)}</h1>"
        + "<p>" + escape(_("Share passwords and other secrets as one-time links instead of "
                           "leaving them in chat history. After installing, type /ots in any "
                           "conversation.")) + "</p>"
        f'<p><a class="button" href="{escape(url, quote=True)}">'
        f"" + escape(_("Add to Slack")) + "</a></p>"
        + '<p class="muted">' + escape(_("You will be asked to allow the app into your "
                                         "workspace. An admin may need to approve it."))
        + "</p>",
        switch=switch,
    )


def installed(_: Text, team: str) -> str:
    return message(
        _, _("Installed"),
        _("One-Time Secret is now installed in {team}. Open Slack and type /ots in any "
          "conversation to share a secret; /ots help says more. You can close this page.",
          team=team),
    )


def install_failed(_: Text, reason: str) -> str:
    return message(_, _("Not installed"), reason)
