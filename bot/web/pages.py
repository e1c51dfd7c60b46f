"""HTML pages for people.

Every value is escaped; no style or script runs unless its hash is in the CSP.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
from html import escape

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
input[type=password]{width:100%;padding:.6rem;font:inherit;border-radius:6px;
border:1px solid var(--muted)}
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


def _page(title: str, body: str, *, script: bool = False) -> str:
    js = f"<script>{_COPY_JS}</script>" if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main>{js}</body></html>"
    )


def reveal_prompt(*, action: str, passphrase_required: bool) -> str:
    field = (
        '<label for="passphrase">Passphrase</label>'
        '<input type="password" id="passphrase" name="passphrase" required '
        'autocomplete="off" autofocus>'
        if passphrase_required
        else ""
    )
    return _page(
        "A secret was shared with you",
        "<h1>A secret was shared with you</h1>"
        "<p>It can be viewed <strong>only once</strong>. After you reveal it, "
        "this link stops working for everyone.</p>"
        f'<form method="post" action="{escape(action)}">{field}'
        '<button type="submit">Reveal secret</button></form>',
    )


def has_hidden_characters(value: str) -> bool:
    """Direction overrides, zero-width and other invisible format characters."""
    return any(unicodedata.category(c) == "Cf" for c in value)


def revealed(value: str) -> str:
    # "\u202etxt.exe" shows as "exe.txt": say so, since what is seen is not all there is.
    hidden = (
        '<p class="muted">This secret contains invisible or text-direction characters: '
        "what you see may differ from what it is. Copy gives it exactly as it was sent.</p>"
        if has_hidden_characters(value)
        else ""
    )
    return _page(
        "Your secret",
        "<h1>Your secret</h1>"
        "<p>This is the only time it is shown. Copy it now: "
        "reloading this page will not show it again.</p>"
        f"{hidden}"
        # The parser drops one newline right after <pre>: ours, not the secret's.
        # A literal CR would be read as LF; as a character reference it stays CR.
        f'<pre id="secret">\n{escape(value).replace(chr(13), "&#13;")}</pre>'
        '<button type="button" id="copy">Copy to clipboard</button>',
        script=True,
    )


def unknown_secret() -> str:
    return _page(
        "Unknown secret",
        "<h1>This secret is not available</h1>"
        "<p>It may have been viewed already, burned, or it expired, "
        "or the passphrase was wrong. Ask the sender to share it again.</p>",
    )


def unavailable() -> str:
    return _page(
        "Temporarily unavailable",
        "<h1>Temporarily unavailable</h1>"
        "<p>The secret store cannot be reached right now. Nothing was revealed "
        "or lost: try again in a minute.</p>",
    )


def message(title: str, text: str) -> str:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(text)}</p>")


_STATE_TEXT = {
    "new": "Not viewed yet.",
    "viewed": "Not viewed yet.",
    "received": "Viewed by the recipient {when}. The link no longer works.",
    "burned": "Burned {when}. Nobody can view it now.",
    "expired": "Expired without being viewed.",
    "orphaned": "The secret is gone; nobody can view it now.",
}


def receipt_page(
    *,
    state: str,
    link: str | None,
    expires: str,
    changed: str,
    passphrase_required: bool,
    burn_action: str,
) -> str:
    """The sender's receipt: the state, and while unread the link and a Burn button.

    Times arrive as display text; `changed` is when the state last changed.
    """
    text = _STATE_TEXT.get(state, "Unknown state.").format(when=changed)
    body = f"<h1>Your secret</h1><p><strong>{escape(text)}</strong></p>"
    if link is not None:
        passphrase = " It needs the passphrase you set." if passphrase_required else ""
        body += (
            f"<p>Send this one-time link to the recipient. It expires {escape(expires)}."
            f"{escape(passphrase)}</p>"
            f'<pre id="secret">{escape(link)}</pre>'
            '<button type="button" id="copy">Copy to clipboard</button>'
            f'<form method="post" action="{escape(burn_action)}">'
            "<p>Changed your mind? Burning destroys the secret before anyone views it.</p>"
            '<button type="submit">Burn this secret</button></form>'
        )
    body += (
        '<p class="muted">Keep this page to yourself: whoever has its address can see '
        "the link and burn the secret.</p>"
    )
    return _page("Your secret", body, script=link is not None)


def unknown_receipt() -> str:
    return _page(
        "Unknown receipt",
        "<h1>This receipt is not available</h1>"
        "<p>The address may be mistyped, or the receipt expired (receipts are kept "
        "twice as long as their secret).</p>",
    )


def add_to_slack(url: str) -> str:
    """The install page of distribution mode: what the app does, and the button."""
    return _page(
        "Add One-Time Secret to Slack",
        "<h1>Add One-Time Secret to Slack</h1>"
        "<p>Share passwords and other secrets as one-time links instead of leaving them "
        "in chat history. After installing, type <code>/ots</code> in any conversation.</p>"
        f'<p><a class="button" href="{escape(url, quote=True)}">Add to Slack</a></p>'
        '<p class="muted">You will be asked to allow the app into your workspace. '
        "Only an admin may need to approve it.</p>",
    )


def installed(team: str) -> str:
    return message(
        "Installed",
        f"One-Time Secret is now installed in {team}. Open Slack and type /ots in any "
        "conversation to share a secret; /ots help says more. You can close this page.",
    )


def install_failed(reason: str) -> str:
    return message("Not installed", reason)

