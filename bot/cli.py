"""`ots`: one-time secrets from the command line, over the app's own Onetime Secret client.

Works against onetimesecret.com (`--region eu`, …) or any Onetime Secret v1
server (`--url`), this app included; with neither (and no OTS_URL or OTS_REGION
in the environment or `.env`) it talks to the local app at http://localhost:3000
(or $PORT), which is where `python -m bot` listens.

    ots share [SECRET]              the secret from the argument, or stdin byte for byte
    ots generate                    the server makes a random secret
    ots get KEY|LINK                reveal (once!) and print the secret exactly
    ots receipt KEY|LINK            the state of a secret you shared
    ots burn KEY|LINK               destroy a secret nobody has read yet
    ots recent                      your account's recent secrets (needs credentials)
    ots status                      is the server up?

`--passphrase` without a value takes $OTS_PASSPHRASE or asks without echo: a value
on the command line is visible to every local user in `ps`.

Output is the link (or the secret) by default and JSON with `--json`. Failures
print one line on stderr and exit 1 (the service said no or could not be
reached) or 2 (the command line or the settings are wrong); never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import getpass
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
from dotenv import load_dotenv

from bot.backends.base import Receipt
from bot.backends.onetimesecret import OnetimeSecretBackend, new_client, origin_of
from bot.config import OTS_REGIONS, has_userinfo
from bot.errors import BackendError, BackendUnavailable
from bot.logs import pin_noisy_loggers

EXIT_FAILED = 1
EXIT_USAGE = 2
_KEY = re.compile(r"[0-9A-Za-z]{1,128}")
_DURATION = re.compile(r"(\d+)\s*([smhdw]?)", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SECRET_PATHS = ("secret",)
RECEIPT_PATHS = ("private", "receipt", "metadata")


# `--passphrase` given without a value: take $OTS_PASSPHRASE, or ask on the terminal.
ASK = object()
NEW_SECRET_COMMANDS = ("share", "generate")


class UsageError(Exception):
    """The command line or the settings are wrong; the message says how."""


@dataclass(frozen=True)
class Server:
    origin: str
    username: str | None = None
    token: str | None = field(default=None, repr=False)
    configured: bool = True  # False: nothing was set and the local default is used

    def for_link(self, origin: str | None) -> Server:
        """The server a pasted link belongs to. Credentials go only to their own server."""
        if origin is None or origin == self.origin:
            return self
        return Server(origin)


# -- the command line -------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other failure (argparse would print the usage too).
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def duration(text: str) -> int:
    """Seconds from `3600`, `90s`, `30m`, `12h`, `7d` or `2w`."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a lifetime: give seconds, or a number with s, m, h, d or w"
        )
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _add_connection_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Accepted before or after the command; on the command they must not reset
    # what was given before it, hence SUPPRESS there.
    default: Any = None if defaults else argparse.SUPPRESS
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", default=default, metavar="URL",
                       help="any Onetime Secret v1 server, e.g. http://localhost:3000 "
                            "(env OTS_URL)")
    where.add_argument("--region", default=default, choices=OTS_REGIONS,
                       help="onetimesecret.com region (env OTS_REGION)")
    parser.add_argument("--username", default=default, metavar="EMAIL",
                        help="account email (env OTS_USERNAME)")
    parser.add_argument("--token", default=default, metavar="TOKEN",
                        help="API token (env OTS_API_TOKEN; prefer the environment: "
                             "options are visible to other users in `ps`)")
    parser.add_argument("--json", action="store_true",
                        default=False if defaults else argparse.SUPPRESS,
                        help="print the whole answer as JSON")
    parser.add_argument("--timeout", type=seconds, default=10.0 if defaults else argparse.SUPPRESS,
                        metavar="SECONDS", help="give up on the server after this long, "
                                                "retries included (default 10)")
    parser.add_argument("--env-file", default=default, metavar="PATH",
                        help="read settings from this file instead of ./.env")


def _add_passphrase_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--passphrase", nargs="?", const=ASK, metavar="WORDS",
        help=f"{help_text}; give it without WORDS to be asked for it without echo "
             "(or to use $OTS_PASSPHRASE): WORDS on the command line are visible to "
             "other local users in `ps`",
    )


def _add_secret_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ttl", type=duration, metavar="LIFETIME",
                        help="how long the secret lives: seconds or 30m, 12h, 7d "
                             "(the server clamps it; default: the server's, 7 days)")
    _add_passphrase_option(parser, "the reader must also know this")
    parser.add_argument("--recipient", action="append", default=[], metavar="EMAIL",
                        help="the server emails the link here (needs an account)")
    parser.add_argument("--share-domain", default="", metavar="HOST",
                        help="build the link on this host (one the server lists, e.g. "
                             "this app's SHARE_DOMAINS)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ots",
        description="Share one-time secrets through Onetime Secret or this app's own server.",
        epilog="With no --url/--region and no OTS_URL/OTS_REGION, the local app at "
               "http://localhost:3000 ($PORT) is used. Settings are also read from .env.",
    )
    _add_connection_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=_Parser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_connection_options(sub, defaults=False)
        return sub

    share = command("share", "share a secret; prints its one-time link")
    share.add_argument("secret", nargs="?", default=None,
                       help="the secret; omit it (or give -) to read stdin byte for byte")
    _add_secret_options(share)
    generate = command("generate", "have the server make a random secret; prints the link, "
                                    "then the secret")
    _add_secret_options(generate)
    generate.add_argument("--length", type=int, metavar="N",
                          help="characters (newer servers, up to 128; default 12)")
    get = command("get", "reveal a secret (this uses it up) and print it exactly")
    get.add_argument("key", metavar="KEY|LINK")
    _add_passphrase_option(get, "the secret's passphrase")
    receipt = command("receipt", "show the state of a secret you shared")
    receipt.add_argument("key", metavar="KEY|LINK", help="the receipt (metadata) key or link")
    burn = command("burn", "destroy a secret nobody has read yet")
    burn.add_argument("key", metavar="KEY|LINK", help="the receipt (metadata) key or link")
    _add_passphrase_option(burn, "the secret's passphrase, if the server asks for it")
    command("recent", "list your account's recent secrets (needs --username and --token)")
    command("status", "check that the server answers")
    return parser


# -- settings -------------------------------------------------------------------------


def resolve_server(args: argparse.Namespace, environ: Mapping[str, str]) -> Server:
    """Options first, then the environment (and .env), then the local app."""

    def env(name: str) -> str | None:
        return (environ.get(name) or "").strip() or None

    username = args.username or env("OTS_USERNAME")
    token = args.token or env("OTS_API_TOKEN")
    if bool(username) != bool(token):
        raise UsageError("the username and the API token go together: give both "
                         "(--username/--token or OTS_USERNAME/OTS_API_TOKEN) or neither")
    if args.url:
        return Server(_checked_url(args.url, "--url"), username, token)
    if args.region:
        return Server(_region_origin(args.region, "--region"), username, token)
    if env("OTS_URL"):
        return Server(_checked_url(str(env("OTS_URL")), "OTS_URL"), username, token)
    if env("OTS_REGION"):
        return Server(_region_origin(str(env("OTS_REGION")), "OTS_REGION"), username, token)
    port = env("PORT") or "3000"
    if not port.isdigit():
        raise UsageError(f"PORT must be a port number, got {port!r}")
    return Server(f"http://localhost:{port}", username, token, configured=False)


def _checked_url(url: str, name: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{name} must be an http:// or https:// URL")
    if has_userinfo(url):
        # Never echoed, never used: it would be printed in every link.
        raise UsageError(f"{name} must not hold a user name or password (user:password@host): "
                         "set OTS_USERNAME and OTS_API_TOKEN (or --username and --token)")
    if parts.query or parts.fragment:
        raise UsageError(f"{name} must not have a query string or fragment")
    return origin_of(url.strip())


def _region_origin(region: str, name: str) -> str:
    if region.lower() not in OTS_REGIONS:
        raise UsageError(f"{name} must be one of {', '.join(OTS_REGIONS)}, got {region!r}")
    return f"https://{region.lower()}.onetimesecret.com"


def split_key(text: str, kinds: tuple[str, ...]) -> tuple[str | None, str]:
    """(origin or None, key) from a bare key or a link whose path ends in /{kind}/{key}."""
    text = text.strip()
    if "://" not in text:
        if not _KEY.fullmatch(text):
            raise UsageError("that is not a key (letters and digits) or a link")
        return None, text
    parts = urlsplit(text)
    if has_userinfo(text):
        raise UsageError("that link holds a user name or password (user:password@host): "
                         "give the link without it")
    segments = parts.path.rstrip("/").split("/")
    if len(segments) < 3 or not _KEY.fullmatch(segments[-1]):
        raise UsageError("that link has no key in it")
    kind, key = segments[-2], segments[-1]
    if kind not in kinds:
        if kind in SECRET_PATHS:
            raise UsageError("that is a secret link: `ots get` reveals it (once)")
        if kind in RECEIPT_PATHS:
            raise UsageError("that is a receipt link: use `ots receipt` or `ots burn`")
        raise UsageError("that link is neither a secret link nor a receipt link")
    prefix = "/".join(segments[:-2])
    return f"{parts.scheme}://{parts.netloc}{prefix}", key


Ask = Callable[[str], str]


def resolve_passphrase(args: argparse.Namespace, environ: Mapping[str, str], ask: Ask) -> None:
    """Replace a bare `--passphrase` by $OTS_PASSPHRASE, or by what the user types unseen."""
    if getattr(args, "passphrase", None) is not ASK:
        return
    from_env = environ.get("OTS_PASSPHRASE")
    if from_env:
        args.passphrase = from_env
        return
    if not _has_terminal():
        # getpass would fall back to reading stdin, with echo: where the secret comes from.
        raise UsageError("--passphrase without a value asks on the terminal, and there is "
                         "none: set OTS_PASSPHRASE instead")
    try:
        passphrase = ask("Passphrase: ")
        if passphrase and args.command in NEW_SECRET_COMMANDS and \
                ask("Passphrase again: ") != passphrase:
            # A typo here would lock the reader out: the secret is not made.
            raise UsageError("the two passphrases differ; nothing was shared")
    except EOFError:
        passphrase = ""
    if not passphrase:
        raise UsageError("no passphrase was typed")
    args.passphrase = passphrase


def _has_terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def warn_about_arguments(args: argparse.Namespace) -> None:
    """Secrets typed as arguments are visible in `ps` and /proc and kept in shell history."""
    if not sys.stdin.isatty():
        return  # a script, not a person: it chose its way
    if args.command == "share" and args.secret not in (None, "-"):
        print("ots: warning: a secret given as an argument is visible to other users of "
              "this machine (ps, /proc) and stays in your shell history; pipe it in "
              "instead: printf '%s' '…' | ots share", file=sys.stderr)
    if isinstance(getattr(args, "passphrase", None), str):
        print("ots: warning: a passphrase given as an argument is visible to other users "
              "of this machine and stays in your shell history; give --passphrase "
              "without a value to be asked for it", file=sys.stderr)


def read_secret(argument: str | None) -> str:
    if argument is not None and argument != "-":
        return argument
    if sys.stdin.isatty():
        print("Type the secret, then Ctrl-D on a line of its own:", file=sys.stderr)
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            "the secret on stdin is not UTF-8 text (encode binary data first, e.g. base64)"
        ) from None


# -- the commands -------------------------------------------------------------------


def receipt_json(receipt: Receipt, backend: OnetimeSecretBackend) -> dict[str, Any]:
    data = dataclasses.asdict(receipt)
    data["recipient"] = list(receipt.recipient)
    if data["value"] is None:
        del data["value"]
    if data["received"] is None:
        del data["received"]
    if receipt.secret_key:
        data["secret_link"] = backend.secret_url(receipt.secret_key, receipt.share_domain)
    data["receipt_link"] = backend.receipt_url(receipt.metadata_key)
    return data


def _when(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _describe(receipt: Receipt, backend: OnetimeSecretBackend) -> str:
    link = backend.secret_url(receipt.secret_key) if receipt.secret_key else "-"
    return f"{receipt.state}\texpires {_when(receipt.expires_at)}\t{link}"


async def do_share(args: argparse.Namespace, backend: OnetimeSecretBackend) -> str:
    receipt = await backend.share(
        read_secret(args.secret), ttl=args.ttl, passphrase=args.passphrase,
        recipient=tuple(args.recipient), share_domain=args.share_domain,
    )
    if args.json:
        return _dumps(receipt_json(receipt, backend))
    if not receipt.secret_key:
        raise BackendUnavailable("The server answered without a secret key.")
    return backend.secret_url(receipt.secret_key, receipt.share_domain) + "\n"


async def do_generate(args: argparse.Namespace, backend: OnetimeSecretBackend) -> str:
    receipt = await backend.generate(
        ttl=args.ttl, passphrase=args.passphrase, recipient=tuple(args.recipient),
        length=args.length, share_domain=args.share_domain,
    )
    if args.json:
        return _dumps(receipt_json(receipt, backend))
    if not receipt.secret_key:
        raise BackendUnavailable("The server answered without a secret key.")
    link = backend.secret_url(receipt.secret_key, receipt.share_domain)
    return f"{link}\n{receipt.value}\n"


async def do_get(args: argparse.Namespace, backend: OnetimeSecretBackend, key: str) -> str:
    revealed = await backend.reveal(key, args.passphrase, via="api")
    if args.json:
        return _dumps({"secret_key": revealed.secret_key, "value": revealed.value})
    value = revealed.value
    # Exactly the secret, so `ots get KEY > file` is byte-exact; a terminal gets a newline.
    if sys.stdout.isatty() and not value.endswith("\n"):
        value += "\n"
    return value


async def do_receipt(args: argparse.Namespace, backend: OnetimeSecretBackend, key: str) -> str:
    receipt = await backend.receipt(key)
    if args.json:
        return _dumps(receipt_json(receipt, backend))
    return _describe(receipt, backend) + "\n"


async def do_burn(args: argparse.Namespace, backend: OnetimeSecretBackend, key: str) -> str:
    receipt = await backend.burn(key, args.passphrase)
    if args.json:
        return _dumps(receipt_json(receipt, backend))
    return f"{receipt.state}\n"


async def do_recent(args: argparse.Namespace, backend: OnetimeSecretBackend) -> str:
    receipts = await backend.recent(backend.username or "anon")
    if args.json:
        return _dumps([receipt_json(r, backend) for r in receipts])
    return "".join(
        f"{r.metadata_key}\t{r.state}\tcreated {_when(r.created)}\n" for r in receipts
    )


async def do_status(args: argparse.Namespace, backend: OnetimeSecretBackend) -> str:
    await backend.status()
    if args.json:
        return _dumps({"status": "nominal", "server": backend.origin})
    return f"{backend.origin}: nominal\n"


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


Simple = Callable[[argparse.Namespace, OnetimeSecretBackend], Awaitable[str]]
Keyed = Callable[[argparse.Namespace, OnetimeSecretBackend, str], Awaitable[str]]
SIMPLE: dict[str, Simple] = {
    "share": do_share, "generate": do_generate, "recent": do_recent, "status": do_status,
}
KEYED: dict[str, tuple[Keyed, tuple[str, ...]]] = {
    "get": (do_get, SECRET_PATHS),
    "receipt": (do_receipt, RECEIPT_PATHS),
    "burn": (do_burn, RECEIPT_PATHS),
}


async def run(
    args: argparse.Namespace,
    server: Server,
    make_client: Callable[[httpx.Timeout], httpx.AsyncClient] = new_client,
) -> str:
    key = None
    if args.command in KEYED:
        origin, key = split_key(args.key, KEYED[args.command][1])
        server = server.for_link(origin)
    timeout = httpx.Timeout(args.timeout, connect=min(args.timeout, 5.0))
    backend = OnetimeSecretBackend(
        make_client(timeout), server.origin, username=server.username,
        api_token=server.token, timeout=timeout,
        # --timeout bounds the whole call, retries and a server dripping bytes included.
        deadline=args.timeout,
        # The server knows its own limit (ours is MAX_SECRET_BYTES): let it decide.
        max_secret_bytes=None,
    )
    try:
        if key is not None:
            return await KEYED[args.command][0](args, backend, key)
        return await SIMPLE[args.command](args, backend)
    finally:
        await backend.close()


def _write(text: str) -> None:
    sys.stdout.buffer.write(text.encode("utf-8", "surrogatepass"))
    sys.stdout.flush()


def _fail(message: str, code: int) -> int:
    print(f"ots: {message}", file=sys.stderr)
    return code


def load_env_file(path: str | None) -> None:
    """Fill what the environment leaves unset from `path`, or from ./.env.

    Only the working directory's .env, never a parent's: a .env planted in a
    shared parent directory would otherwise send secrets and credentials to
    another server. An explicit --env-file must exist.
    """
    if path is None:
        load_dotenv(Path.cwd() / ".env", override=False)
        return
    if not Path(path).is_file():
        raise UsageError(f"--env-file {path!r} is not a readable file")
    load_dotenv(path, override=False)


def main(argv: list[str] | None = None, ask: Ask = getpass.getpass) -> int:
    pin_noisy_loggers()
    args = build_parser().parse_args(argv)
    warn_about_arguments(args)
    try:
        load_env_file(args.env_file)
        server = resolve_server(args, os.environ)
        resolve_passphrase(args, os.environ, ask)
        output = asyncio.run(run(args, server))
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except BackendUnavailable as exc:
        hint = "" if server.configured else (
            f" (no server is configured, so {server.origin} was tried: start the app with "
            "`python -m bot`, or give --url or --region, or set OTS_URL or OTS_REGION)"
        )
        return _fail(exc.message + hint, EXIT_FAILED)
    except BackendError as exc:
        said = f" It said: {exc.service_text}" if exc.service_text else ""
        return _fail(exc.message + said, EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    _write(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
