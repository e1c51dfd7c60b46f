"""`ots`, run as a user runs it: a subprocess against a served app or the fake OTS.

Each run gets a clean environment (no OTS_* from the developer's shell) and a
temporary working directory, so only the .env a test writes is read.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import io
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from bot.cli import build_parser, duration, main, resolve_server, run, split_key
from bot.config import Settings
from bot.web.app import create_app
from tests.support import fake_ots
from tests.support.fake_ots import FakeOTS
from tests.support.hostile_http import MIB, HostileServer, bomb, drip, endless, gzip_bomb
from tests.support.servers import TEST_SCRYPT_N, ServedApp, free_port

ROOT = Path(__file__).resolve().parent.parent
ALICE = ("alice@example.com", "alice-cli-token-0123456789")
UNKNOWN_KEY = "k" * 31


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    env = {"DATA_DIR": str(tmp_path_factory.mktemp("cli-app")), "PUBLIC_URL": "http://ots.test",
           "API_USERS": f"{ALICE[0]}:{ALICE[1]}"}
    with ServedApp(create_app(Settings.from_env(env), scrypt_n=TEST_SCRYPT_N)) as served:
        yield served


def cli_env() -> dict[str, str]:
    """This process's environment without the app's settings, able to import bot."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OTS_", "SLACK_")) and k not in ("PORT", "API_USERS")}
    clean["PYTHONPATH"] = str(ROOT)
    return clean


@pytest.fixture
def ots(tmp_path: Path):
    def run(*args: str, stdin: bytes = b"", cwd: Path = tmp_path, **env: str) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True,
            cwd=cwd, env={**cli_env(), **env}, timeout=60,
            start_new_session=True,  # no controlling terminal: nothing can prompt
        )
        return Run(done.returncode, done.stdout, done.stderr.decode())

    return run


def assert_one_line_failure(run: Run, code: int, words: str) -> None:
    assert run.code == code, run
    assert run.stdout == b""
    assert run.stderr.startswith("ots") and run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert words in run.stderr, run.stderr


# -- against the app's own /api/v1 --------------------------------------------------


def test_share_from_stdin_prints_a_link_that_reveals_once(ots, app: ServedApp):
    secret = b"correct horse\tbattery staple\n"  # byte-exact: the newline stays
    shared = ots("--url", app.url, "share", stdin=secret)
    assert shared.code == 0, shared
    link = shared.out.strip()
    assert shared.out == link + "\n"
    assert link.startswith(f"{app.url}/secret/")

    got = ots("get", link)
    assert got.code == 0 and got.stdout == secret
    assert_one_line_failure(ots("get", link), 1, "does not exist")


def test_a_shared_link_opens_once_in_the_browser(ots, app: ServedApp):
    link = ots("share", "--url", app.url, "s3cret-for-a-person").out.strip()
    assert "Reveal" in httpx.get(link).text
    assert "s3cret-for-a-person" in httpx.post(link).text
    assert httpx.post(link).status_code == 404


def test_json_receipt_and_burn(ots, app: ServedApp):
    shared = ots("--url", app.url, "--json", "share", "--ttl", "1h", "burn me")
    data = json.loads(shared.out)
    assert data["ttl"] == 3600 and data["state"] == "new"
    assert data["secret_link"] == f"{app.url}/secret/{data['secret_key']}"
    assert data["receipt_link"] == f"{app.url}/private/{data['metadata_key']}"

    receipt = ots("receipt", data["receipt_link"])
    assert receipt.code == 0 and receipt.out.startswith("new\t")  # v1: the first read
    assert ots("receipt", data["receipt_link"]).out.startswith("viewed\t")
    assert data["secret_link"] in receipt.out

    burned = ots("--url", app.url, "burn", data["metadata_key"])
    assert (burned.code, burned.out) == (0, "burned\n")
    assert_one_line_failure(ots("get", data["secret_link"]), 1, "does not exist")
    after = json.loads(ots("--url", app.url, "receipt", "--json", data["metadata_key"]).out)
    assert after["state"] == "burned" and "secret_link" not in after


def test_generate_prints_the_link_then_the_secret(ots, app: ServedApp):
    made = ots("--url", app.url, "generate", "--length", "16")
    link, value = made.out.splitlines()
    assert link.startswith(f"{app.url}/secret/") and len(value) == 16
    assert ots("get", link).stdout == value.encode()


def test_settings_come_from_dotenv_in_the_working_directory(ots, app: ServedApp,
                                                           tmp_path: Path):
    (tmp_path / ".env").write_text(
        f"OTS_URL={app.url}\nOTS_USERNAME={ALICE[0]}\nOTS_API_TOKEN={ALICE[1]}\n"
    )
    status = ots("status")
    assert (status.code, status.out) == (0, f"{app.url}: nominal\n")
    shared = json.loads(ots("share", "--json", "from .env").out)
    assert shared["custid"] == ALICE[0]
    recent = json.loads(ots("recent", "--json").out)
    assert shared["metadata_key"] in [r["metadata_key"] for r in recent]
    # The environment wins over .env, as for the server.
    assert ots("status", OTS_URL=f"http://127.0.0.1:{free_port()}").code == 1


def test_a_dotenv_in_a_parent_directory_is_not_read(ots, tmp_path: Path):
    # A .env planted in a shared parent must not redirect secrets (or credentials).
    with FakeOTS() as planted:
        (tmp_path / ".env").write_text(
            f"OTS_URL={planted.url}\nOTS_USERNAME={fake_ots.USERNAME}\n"
            f"OTS_API_TOKEN={fake_ots.API_TOKEN}\n")
        below = tmp_path / "project"
        below.mkdir()
        run = ots("share", "s3cret", cwd=below, PORT=str(free_port()))
        assert_one_line_failure(run, 1, "no server is configured")
        assert planted.requests == []


def test_an_explicit_env_file_is_read_from_anywhere(ots, app: ServedApp, tmp_path: Path):
    settings = tmp_path / "settings" / "ots.env"
    settings.parent.mkdir()
    settings.write_text(f"OTS_URL={app.url}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = ots("--env-file", str(settings), "status", cwd=elsewhere)
    assert (status.code, status.out) == (0, f"{app.url}: nominal\n")
    assert ots("status", "--env-file", str(settings), cwd=elsewhere).code == 0
    assert_one_line_failure(ots("--env-file", str(tmp_path / "missing.env"), "status"), 2,
                            "--env-file")


# -- against the fake onetimesecret.com --------------------------------------------------


def test_a_region_style_server_gets_the_request_the_real_service_expects(ots):
    with FakeOTS() as fake:
        credentials = {"OTS_URL": fake.url, "OTS_USERNAME": fake_ots.USERNAME,
                       "OTS_API_TOKEN": fake_ots.API_TOKEN}
        shared = ots("share", "--ttl", "2h", "--passphrase", "pass phrase", "s3cret\n",
                     **credentials)
        assert shared.code == 0, shared
        [request] = fake.requests_to("/api/v1/share")
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert request.custid == fake_ots.USERNAME  # Basic, sent without a challenge
        assert request.params == {"secret": ["s3cret\n"], "ttl": ["7200"],
                                  "passphrase": ["pass phrase"]}
        link = shared.out.strip()
        assert link.startswith(f"{fake.url}/secret/")
        got = ots("get", link, "--passphrase", "pass phrase", **credentials)
        assert got.stdout == b"s3cret\n"


def test_a_region_gets_the_request_onetimesecret_com_expects():
    # No network here: the real region's URL, answered by a MockTransport.
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return fake_ots.streamed(httpx.Response(200, json={
            "custid": "alice@example.com", "metadata_key": "m" * 31, "secret_key": "s" * 31,
            "ttl": "3600", "metadata_ttl": "7200", "secret_ttl": "3600", "state": "new",
            "updated": "1700000000", "created": "1700000000", "recipient": [],
            "passphrase_required": False}))

    args = build_parser().parse_args(["--region", "eu", "share", "--ttl", "1h", "s3cret"])
    server = resolve_server(args, {"OTS_USERNAME": ALICE[0], "OTS_API_TOKEN": ALICE[1]})
    output = asyncio.run(run(args, server, lambda timeout: httpx.AsyncClient(
        transport=httpx.MockTransport(answer), timeout=timeout)))

    assert output == f"https://eu.onetimesecret.com/secret/{'s' * 31}\n"
    [request] = seen
    assert (request.method, str(request.url)) == (
        "POST", "https://eu.onetimesecret.com/api/v1/share")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        f"{ALICE[0]}:{ALICE[1]}".encode()).decode()
    assert parse_qs(request.content.decode()) == {"secret": ["s3cret"], "ttl": ["3600"]}
    assert request.extensions["timeout"]["read"] == 10.0


def test_credentials_go_only_to_their_own_server(ots, app: ServedApp):
    with FakeOTS() as fake:
        shared = ots("--url", fake.url, "share", "elsewhere")
        got = ots("get", shared.out.strip(), OTS_URL=app.url,
                  OTS_USERNAME=ALICE[0], OTS_API_TOKEN=ALICE[1])
        assert got.stdout == b"elsewhere"
        [reveal] = fake.requests_to("/api/v1/secret/")
        assert "Authorization" not in reveal.headers


def run_main(argv: list[str], stdin: bytes, capsysbinary) -> Run:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsysbinary.readouterr()
    return Run(code, out, err.decode())


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """main() in this process, as the console script calls it, in an empty directory."""
    monkeypatch.chdir(tmp_path)


# -- failures ------------------------------------------------------------------------------


def test_nothing_configured_and_nothing_listening_says_what_to_do(ots):
    run = ots("status", PORT=str(free_port()))
    assert_one_line_failure(run, 1, "could not be reached")
    assert "python -m bot" in run.stderr and "OTS_URL" in run.stderr


@pytest.mark.parametrize(("args", "stdin", "words"), [
    (("share", "--ttl", "soon", "x"), b"", "--ttl"),
    (("share",), b"\xff\xfe not utf-8", "not UTF-8"),
    (("--region", "mars", "status"), b"", "--region"),
    (("get", "../../status"), b"", "not a key"),
    (("receipt", "https://eu.onetimesecret.com/secret/" + UNKNOWN_KEY), b"", "ots get"),
    (("--username", "a@b.test", "status"), b"", "go together"),
    (("frobnicate",), b"", "invalid choice"),
    (("--timeout", "0", "status"), b"", "--timeout"),
], ids=["ttl", "stdin", "region", "key", "link-kind", "half-credentials", "command",
        "timeout"])
def test_usage_errors_exit_2_with_one_line(in_process, monkeypatch, capsysbinary,
                                          args, stdin, words):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    run = run_main(["--url", "http://127.0.0.1:9", *args], stdin, capsysbinary)
    assert_one_line_failure(run, 2, words)


@pytest.mark.parametrize(("args", "stdin", "words"), [
    (("share",), b"", "did not provide anything"),
    (("get", UNKNOWN_KEY), b"", "does not exist"),
    (("--username", ALICE[0], "--token", "wrong-token-abcdef", "share", "x"), b"",
     "rejected the credentials"),
], ids=["empty", "unknown", "rejected"])
def test_service_refusals_exit_1_with_one_line(app: ServedApp, in_process, monkeypatch,
                                               capsysbinary, args, stdin, words):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    run = run_main(["--url", app.url, *args], stdin, capsysbinary)
    assert_one_line_failure(run, 1, words)
    assert "wrong-token-abcdef" not in run.stderr


@pytest.mark.parametrize(("args", "env", "name"), [
    (("--url", "https://alice:hunter2@ots.example", "status"), {}, "--url"),
    (("status",), {"OTS_URL": "https://alice:hunter2@ots.example"}, "OTS_URL"),
    (("get", f"https://alice:hunter2@ots.example/secret/{UNKNOWN_KEY}"), {}, "link"),
    (("burn", f"http://alice:hunter2@127.0.0.1:9/private/{UNKNOWN_KEY}"), {}, "link"),
], ids=["option", "environment", "secret-link", "receipt-link"])
def test_credentials_in_a_url_are_refused_and_never_printed(ots, args, env, name):
    run = ots(*args, **env)
    assert_one_line_failure(run, 2, name)
    assert "user name or password" in run.stderr
    assert "hunter2" not in run.stderr and "alice" not in run.stderr


# -- a hostile server ------------------------------------------------------------------------


def test_timeout_bounds_the_whole_command_against_a_dripping_server(ots):
    # A byte every 0.3 s never trips a read timeout; --timeout still ends it.
    with HostileServer(drip(b'{"status": "nominal"}', every=0.3)) as server:
        started = time.monotonic()
        run = ots("--url", server.url, "--timeout", "2", "status")
        elapsed = time.monotonic() - started
    assert_one_line_failure(run, 1, "did not answer in time")
    assert elapsed < 8, elapsed  # 2 s and starting Python, not the 90 s of dripping


# `ots`, reporting its peak resident memory as it exits. VmHWM belongs to the
# program after exec (getrusage's ru_maxrss of a child would also count the
# pages it shared with pytest between fork and exec).
_PEAK_MEMORY = """
import atexit, sys
from bot.cli import main

def report():
    with open("/proc/self/status") as status, open(sys.argv[1], "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")))

atexit.register(report)
sys.exit(main(sys.argv[2:]))
"""


def ots_peak_memory(args: list[str], cwd: Path) -> tuple[Run, int]:
    """Run `ots` and return its result and its peak resident memory, in bytes."""
    report = cwd / "peak-memory"
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_MEMORY, str(report), *args], stdin=subprocess.DEVNULL,
        capture_output=True, cwd=cwd, env=cli_env(), timeout=60, start_new_session=True)
    kib = int(report.read_text().split()[1])  # "VmHWM:   34567 kB"
    return Run(done.returncode, done.stdout, done.stderr.decode()), kib * 1024


@pytest.mark.parametrize("answer", [endless(), bomb(256 * MIB)], ids=["endless", "gzip-bomb"])
def test_a_huge_or_inflating_answer_is_refused_in_bounded_memory(answer, tmp_path: Path):
    gzip_bomb(256 * MIB)  # built before the clock runs
    with HostileServer(answer) as server:
        run, peak = ots_peak_memory(["--url", server.url, "status"], tmp_path)
    assert peak < 100 * MIB, peak // MIB  # `ots status` needs about 35 MiB
    assert_one_line_failure(run, 1, "more than 1,048,576 bytes")


def test_the_servers_own_words_are_printed_without_control_characters(ots):
    with FakeOTS() as fake:
        fake.fail_next("/share", message="Account \x1b[2J\x1b]0;pwned\x07locked")
        run = ots("--url", fake.url, "share", stdin=b"s3cret")
    assert_one_line_failure(run, 1, "refused the request. It said: Account [2J]0;pwnedlocked")
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr


# -- on a terminal ----------------------------------------------------------------------


def _take_terminal() -> None:
    """In the child, after setsid: make the pty on stdin its controlling terminal
    (/dev/tty, where getpass asks)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def on_terminal(args: list[str], answers: dict[bytes, bytes], cwd: Path,
                **env: str) -> tuple[int, bytes]:
    """`ots` with a pseudo-terminal as stdin, stdout, stderr and controlling terminal.
    Each prompt in `answers` is answered once when it appears; returns (exit status,
    everything the terminal showed)."""
    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args], stdin=child_fd, stdout=child_fd,
        stderr=child_fd, cwd=cwd, env={**cli_env(), **env}, start_new_session=True,
        preexec_fn=_take_terminal,  # noqa: PLW1509 (single call, no locks taken)
    )
    os.close(child_fd)
    shown, pending = b"", dict(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(main_fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            for prompt in [p for p in pending if shown.endswith(p)]:
                os.write(main_fd, pending.pop(prompt))
            if process.poll() is not None and not ready:
                break
        return process.wait(timeout=10), shown
    finally:
        os.close(main_fd)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_bare_passphrase_is_asked_twice_without_echo(tmp_path: Path):
    with FakeOTS() as fake:
        code, shown = on_terminal(
            ["--url", fake.url, "share", "s3cret-on-argv", "--passphrase"],
            {b"Passphrase: ": b"tuba kettle\n", b"Passphrase again: ": b"tuba kettle\n"},
            tmp_path)
        assert code == 0, shown
        assert b"tuba kettle" not in shown  # typed, never echoed
        [request] = fake.requests_to("/api/v1/share")
        assert request.params["passphrase"] == ["tuba kettle"]
        assert f"{fake.url}/secret/".encode() in shown
        # And on a terminal, the secret on argv is warned about.
        assert b"warning: a secret given as an argument is visible" in shown


def test_two_different_passphrases_share_nothing(tmp_path: Path):
    with FakeOTS() as fake:
        code, shown = on_terminal(
            ["--url", fake.url, "share", "--passphrase"],
            {b"Passphrase: ": b"tuba kettle\n", b"Passphrase again: ": b"tuba kettel\n"},
            tmp_path)
        assert code == 2, shown
        assert b"the two passphrases differ; nothing was shared" in shown
        assert fake.requests == []


def test_get_asks_once_and_a_passphrase_on_argv_is_warned_about(tmp_path: Path):
    with FakeOTS() as fake:
        shared = httpx.post(f"{fake.url}/api/v1/share",
                            data={"secret": "opened", "passphrase": "say friend"}).json()
        code, shown = on_terminal(
            ["--url", fake.url, "get", shared["secret_key"], "--passphrase"],
            {b"Passphrase: ": b"say friend\n"}, tmp_path)
        assert (code, shown.endswith(b"opened\r\n")) == (0, True), shown
        assert b"Passphrase again" not in shown and b"warning" not in shown

        code, shown = on_terminal(["--url", fake.url, "share", "--passphrase", "on argv"],
                                  {b"Ctrl-D on a line of its own:\r\n": b"x\n\x04"},
                                  tmp_path)
        assert code == 0, shown
        assert b"warning: a passphrase given as an argument is visible" in shown


def test_ots_passphrase_answers_a_bare_passphrase_without_a_terminal(ots):
    with FakeOTS() as fake:
        shared = ots("--url", fake.url, "share", "--passphrase", stdin=b"s3cret",
                     OTS_PASSPHRASE="from the environment")
        assert (shared.code, shared.stderr) == (0, ""), shared
        [request] = fake.requests_to("/api/v1/share")
        assert request.params["passphrase"] == ["from the environment"]
        # A script's arguments get no terminal warning.
        assert ots("--url", fake.url, "share", "s3cret-argv").stderr == ""
        # No terminal and no OTS_PASSPHRASE: refused, stdin (the secret) is not read.
        refused = ots("--url", fake.url, "share", "--passphrase", stdin=b"s3cret")
        assert_one_line_failure(refused, 2, "OTS_PASSPHRASE")
        assert len(fake.requests_to("/api/v1/share")) == 2


# -- pure parts, in process -------------------------------------------------------------


def test_server_resolution_order():
    parse = build_parser().parse_args
    assert resolve_server(parse(["--region", "eu", "status"]), {}).origin == \
        "https://eu.onetimesecret.com"
    assert resolve_server(parse(["status", "--url", "http://h:1/api/v1/"]),
                          {"OTS_REGION": "us"}).origin == "http://h:1"
    assert resolve_server(parse(["status"]), {"OTS_URL": "https://x.test",
                                              "OTS_REGION": "us"}).origin == "https://x.test"
    assert resolve_server(parse(["status"]), {"OTS_REGION": "NZ"}).origin == \
        "https://nz.onetimesecret.com"
    local = resolve_server(parse(["status"]), {"PORT": "8080"})
    assert (local.origin, local.configured) == ("http://localhost:8080", False)


@pytest.mark.parametrize(("text", "seconds"), [
    ("3600", 3600), ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2W", 1209600),
])
def test_lifetimes(text, seconds):
    assert duration(text) == seconds


def test_keys_and_links():
    assert split_key(f" {UNKNOWN_KEY} ", ("secret",)) == (None, UNKNOWN_KEY)
    assert split_key(f"https://eu.onetimesecret.com/secret/{UNKNOWN_KEY}", ("secret",)) == \
        ("https://eu.onetimesecret.com", UNKNOWN_KEY)
    assert split_key(f"https://h.test/ots/private/{UNKNOWN_KEY}/", ("private",)) == \
        ("https://h.test/ots", UNKNOWN_KEY)
