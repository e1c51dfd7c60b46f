"""What an operator sees: /metrics, JSON logs and request ids, from real served apps.

Metrics are scraped over HTTP from the app on a real SQLite file and a real
redis-server, and read with prometheus_client's own parser. Logs come from
`python -m bot` processes and are parsed line by line. The metric registry is one
per process, so in-process tests compare a scrape before with one after.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from bot.web.app import create_app
from tests.support.fake_slack import FakeSlack
from tests.support.server_process import ServerProcess
from tests.support.servers import ServedApp
from tests.support.slack_requests import SIGNING_SECRET, command_body, signature

TOKEN = "metrics-token-" + "x" * 20
BEARER = {"Authorization": f"Bearer {TOKEN}"}
API_USER = ("ops@example.com", "ops-api-token")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# -- helpers --------------------------------------------------------------------


def scrape(url: str) -> tuple[str, Samples]:
    answer = httpx.get(f"{url}/metrics", headers=BEARER, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        assert family.name.startswith("ots_"), family.name
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return answer.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def json_lines(log: str) -> list[dict[str, object]]:
    """Every line of the log as a JSON object; fails on the first line that is not one."""
    entries = []
    for number, line in enumerate(log.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"log line {number} is not JSON: {line!r}")
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    return entries


@pytest.fixture(params=["sqlite", "redis"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "PUBLIC_URL": "http://ots.test",
        "METRICS_TOKEN": TOKEN,
        "API_USERS": ":".join(API_USER),
        "RATE_LIMIT_REVEAL": "4",
    }
    if request.param == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        env["SERVER_KEY"] = secrets.token_urlsafe(32)  # replicas on one Redis share it
    return env


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[ServedApp]:
    with ServedApp(create_app(Settings.from_env(env))) as server:
        yield server


# -- /metrics ---------------------------------------------------------------------


def test_metrics_count_what_happened_and_hold_no_key(
    served: ServedApp, env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    api = httpx.Client(base_url=served.url + "/api/v1", timeout=10)
    request.addfinalizer(api.close)
    _, before = scrape(served.url)

    shared = [api.post("/share", data={"secret": f"value-{i}"}, auth=API_USER).json()
              for i in range(3)]
    revealed = api.post(f"/secret/{shared[0]['secret_key']}")
    burned = api.post(f"/private/{shared[1]['metadata_key']}/burn", auth=API_USER)
    assert (revealed.status_code, burned.status_code) == (200, 200)
    page = httpx.get(f"{served.url}/secret/{shared[2]['secret_key']}", timeout=10)
    assert page.status_code == 200
    unknown = ["".join(secrets.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(31))
               for _ in range(4)]
    answers = [api.post(f"/secret/{key}") for key in unknown]
    assert [a.status_code for a in answers] == [404] * 4  # OTS v1: every error is a 404
    assert answers[-1].headers["X-OTS-Intended-Status"] == "429"  # the 5th attempt, limit 4

    text, after = scrape(served.url)
    share = {"route": "/api/v1/share", "method": "POST"}
    assert delta(before, after, "ots_http_requests_total", **share, status="200") == 3
    assert delta(before, after, "ots_http_request_duration_seconds_count", **share) == 3
    assert value(after, "ots_http_request_duration_seconds_bucket", **share, le="+Inf") >= 3
    reveal = {"route": "/api/v1/secret/{key}", "method": "POST"}
    assert delta(before, after, "ots_http_requests_total", **reveal, status="200") == 1
    # Unknown keys answer 404 (OTS v1), the refused one too, with the real status in a header.
    assert delta(before, after, "ots_http_requests_total", **reveal, status="404") == 4
    assert delta(before, after, "ots_http_requests_total", route="/secret/{secret_key}",
                 method="GET", status="200") == 1
    for event, count in (("created", 3), ("revealed", 1), ("burned", 1)):
        assert delta(before, after, "ots_secrets_total", event=event) == count, event
    assert delta(before, after, "ots_rate_limited_total", kind="reveal") == 1
    # One store operation per request on the hot paths: a create is one put_all (the
    # count, receipt and secret), a reveal one take_settle (count, take, receipt). The
    # unknown keys are 31 characters, as keys made before slot tags: those take the
    # old steps, a count then a take (3 got past the limit; the 4th was not taken).
    assert delta(before, after, "ots_store_operations_total", operation="take_settle") == 1
    assert delta(before, after, "ots_store_operations_total", operation="take") == 3
    assert delta(before, after, "ots_store_operation_duration_seconds_count",
                 operation="put_all") == 3
    assert delta(before, after, "ots_store_operations_total", operation="put") == 0
    assert value(after, "ots_store_errors_total", operation="take") == value(
        before, "ots_store_errors_total", operation="take")
    assert value(after, "ots_store_pool_size") == (100 if "REDIS_URL" in env else 1)
    assert value(after, "ots_store_pool_in_use") == 0  # every operation let go of it

    # No key or secret anywhere in the exposition, least of all in a label.
    for receipt in shared:
        for field in ("secret_key", "metadata_key"):
            assert receipt[field] not in text
    for key in unknown:
        assert key not in text
    assert "value-" not in text and API_USER[1] not in text
    routes = {dict(labels).get("route") for _, labels in after} - {None}
    assert all(r == "unmatched" or r.startswith("/") and not re.search(r"[0-9a-z]{20}", r)
               for r in routes), routes


def test_metrics_need_the_token(served: ServedApp) -> None:
    url = f"{served.url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}):
        answer = httpx.get(url, headers=headers, timeout=10)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "ots_" not in answer.text
    assert httpx.get(url, headers=BEARER, timeout=10).status_code == 200


def test_no_metrics_without_a_token(tmp_path: Path) -> None:
    settings = Settings.from_env({"DATA_DIR": str(tmp_path)})
    with ServedApp(create_app(settings)) as server:
        answer = httpx.get(f"{server.url}/metrics", headers=BEARER, timeout=10)
    assert answer.status_code == 404


def test_a_short_metrics_token_is_refused() -> None:
    from bot.config import ConfigError

    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"METRICS_TOKEN": "short"})
    assert refused.value.variable == "METRICS_TOKEN" and "short" not in str(refused.value)


def test_store_errors_are_counted_and_logged_without_flooding(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis nobody listens on: every operation fails; each is counted, few are logged."""
    from tests.support.servers import free_port

    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "METRICS_TOKEN": TOKEN}
    with caplog.at_level("WARNING"), ServedApp(create_app(Settings.from_env(env))) as server:
        _, before = scrape(server.url)
        for _ in range(20):
            answer = httpx.post(f"{server.url}/api/v1/share", data={"secret": "v"}, timeout=10)
            assert answer.status_code == 503
        _, after = scrape(server.url)
    # The count is part of the create's one store operation.
    assert delta(before, after, "ots_store_errors_total", operation="put_all") == 20
    assert delta(before, after, "ots_http_requests_total", route="/api/v1/share",
                 method="POST", status="503") == 20
    failures = [r.getMessage() for r in caplog.records if "store put_all failed" in r.getMessage()]
    assert failures == ["store put_all failed: The secret store (Redis) is unavailable: "
                        "ConnectionError."]


def test_rate_limit_trips_are_logged_without_flooding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"DATA_DIR": str(tmp_path), "RATE_LIMIT_CREATE": "2"}
    with caplog.at_level("WARNING"), ServedApp(create_app(Settings.from_env(env))) as server:
        codes = [httpx.post(f"{server.url}/api/v1/share", data={"secret": "v"}, timeout=10)
                 .headers.get("X-OTS-Intended-Status", "200") for _ in range(22)]
    assert codes == ["200"] * 2 + ["429"] * 20
    trips = [r for r in caplog.records if r.name == "bot.web.limits"]
    assert [r.getMessage() for r in trips] == [
        "rate limit: refused a create request from a client over 2 per 1200 s"]
    assert "127.0.0.1" not in caplog.text


def test_a_throttled_log_says_how_many_lines_it_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from bot.logs import Throttled

    now = [100.0]
    throttled = Throttled(logging.getLogger("test.throttled"), every=10, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="test.throttled"):
        for _ in range(5):
            throttled.warning("a", "store %s failed", "get")
            now[0] += 1
        throttled.warning("b", "another kind")  # kinds are throttled apart
        now[0] = 112.0
        throttled.warning("a", "store %s failed", "get")
    assert [r.getMessage() for r in caplog.records] == [
        "store get failed", "another kind",
        "store get failed (and 4 more like it in the last 12 s)",
    ]


# -- request ids --------------------------------------------------------------------


def test_request_ids_are_echoed_or_made(served: ServedApp) -> None:
    url = served.url
    given = httpx.get(f"{url}/healthz", headers={"X-Request-ID": "lb-7f3a.42:x_y"}, timeout=10)
    assert given.headers["X-Request-ID"] == "lb-7f3a.42:x_y"
    made = [httpx.get(f"{url}/healthz", timeout=10).headers["X-Request-ID"] for _ in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", m) for m in made) and made[0] != made[1]
    for bad in ("x" * 65, "has space", "semi;colon", "<script>", ""):
        answer = httpx.get(f"{url}/healthz", headers={"X-Request-ID": bad}, timeout=10)
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-ID"]), bad
    # On every kind of answer: a 404, a 413 refused before the body is read, a 401.
    ident = {"X-Request-ID": "req-1"}
    for answer in (
        httpx.get(f"{url}/nowhere", headers=ident, timeout=10),
        httpx.get(f"{url}/metrics", headers=ident, timeout=10),
        httpx.get(f"{url}/api/v1/private/recent", headers=ident, timeout=10),
    ):
        assert answer.headers["X-Request-ID"] == "req-1", answer.status_code
    head = announce_too_much(url, "req-2")
    assert head.startswith("HTTP/1.1 413") and "\r\nx-request-id: req-2\r\n" in head.lower()


def announce_too_much(url: str, request_id: str) -> str:
    """A POST whose Content-Length is over the cap, without a body; returns the answer's head."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /secret/" + b"k" * 31 + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
            b"X-Request-ID: " + request_id.encode() + b"\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n\r\n")[0].decode("latin-1") + "\r\n"


# -- logs from `python -m bot` ---------------------------------------------------------


def signed_command(url: str, body: bytes, request_id: str, *,
                   timestamp: int | None = None) -> httpx.Response:
    ts = int(time.time()) if timestamp is None else timestamp
    return httpx.post(f"{url}/slack/events", content=body, timeout=10, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(body, ts),
        "X-Request-ID": request_id,
    })


def test_json_logs_carry_each_requests_id(tmp_path: Path, fake_slack: FakeSlack) -> None:
    env = {
        "DATA_DIR": str(tmp_path / "data"), "LOG_FORMAT": "json", "METRICS_TOKEN": TOKEN,
        "RATE_LIMIT_REVEAL": "1", "SLACK_BOT_TOKEN": fake_slack.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": fake_slack.api_url,
    }
    # `/ots help` answers by response_url, else ephemeral, else DM: two failures, two
    # log lines, both written by a task the request started.
    fake_slack.fail("response_url", "gone", status=404)
    fake_slack.fail("chat.postEphemeral", "channel_not_found")
    fake_slack.add_user("U0ALICE")  # Slack knows who acts (and their language)
    with ServerProcess.python_m_bot(env, tmp_path / "server.log") as server:
        body = command_body("help", response_url=fake_slack.response_url())
        ts = int(time.time())
        assert signed_command(server.url, body, "slack-help-1", timestamp=ts).status_code == 200
        fake_slack.wait_for("chat.postMessage")
        replay = signed_command(server.url, body, "slack-replay-1", timestamp=ts)
        assert replay.status_code == 200
        for rid in ("reveal-1", "reveal-2"):
            httpx.post(f"{server.url}/api/v1/secret/{'k' * 31}", headers={"X-Request-ID": rid},
                       timeout=10)
        _, samples = scrape(server.url)
        server.stop()
        log = server.log()

    assert value(samples, "ots_slack_api_errors_total", method="chat.postEphemeral",
                 error="channel_not_found") == 1
    assert value(samples, "ots_slack_api_errors_total", method="response_url",
                 error="http_404") == 1
    assert value(samples, "ots_replay_guard_hits_total") == 1
    assert value(samples, "ots_rate_limited_total", kind="reveal") == 1

    entries = json_lines(log)
    messages = [e["message"] for e in entries]
    assert any("Application startup complete" in str(m) for m in messages)
    assert any("Finished server process" in str(m) for m in messages)
    by_id: dict[object, list[str]] = {}
    for entry in entries:
        by_id.setdefault(entry.get("request_id"), []).append(str(entry["message"]))
    assert by_id["slack-help-1"] == [
        "response_url post failed: HTTP 404", "Slack chat.postEphemeral failed: channel_not_found",
    ]
    assert by_id["slack-replay-1"] == ["ignored a replayed Slack request (signature seen before)"]
    assert by_id["reveal-2"] == ["rate limit: refused a reveal request from a client over 1 per "
                                 "1200 s"]
    assert "reveal-1" not in by_id  # it logged nothing
    # Nothing these requests caused was logged without their id.
    per_request = ("bot.slack.delivery", "bot.slack.replay", "bot.web.limits")
    assert not [e for e in entries if "request_id" not in e and e["logger"] in per_request]


def test_a_configuration_error_is_json_too(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.server_process import APP_VARIABLES

    env = {**{k: "" for k in APP_VARIABLES}, "PATH": "/usr/bin:/bin",
           "LOG_FORMAT": "json", "MAX_TTL": "soon"}
    done = subprocess.run([sys.executable, "-m", "bot"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    (entry,) = json_lines(done.stdout + done.stderr)
    assert entry["level"] == "ERROR" and "MAX_TTL" in str(entry["message"])


def test_two_workers_report_one_sum_and_log_json(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "data"), "LOG_FORMAT": "json", "METRICS_TOKEN": TOKEN}
    with ServerProcess.python_m_bot(env, tmp_path / "server.log", workers=2) as server:
        for _ in range(30):  # a connection each, so both workers take some
            assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        # Whichever worker answers, it reports both workers' requests.
        for _ in range(6):
            _, samples = scrape(server.url)
            assert value(samples, "ots_http_requests_total", route="/healthz", method="GET",
                         status="200") == 30
        server.stop()
        entries = json_lines(server.log())
    started = [e for e in entries if str(e["message"]).startswith("Started server process")]
    assert len(started) == 2
    (kept,) = [e for e in entries if "metrics of the 2 workers" in str(e["message"])]
    directory = Path(str(kept["message"]).rsplit(" ", 1)[1])
    assert directory.name.startswith("ots-metrics-") and not directory.exists()


def test_the_route_read_off_the_endpoint_is_the_one_matching_finds(tmp_path: Path) -> None:
    """Requests are labelled by the endpoint the router chose (no second matching);
    for every route of the app that gives what matching the routes again gives."""
    from starlette.routing import BaseRoute, Mount, Route

    from bot.web.observe import route_template, templates_by_endpoint

    app = create_app(Settings.from_env({"DATA_DIR": str(tmp_path), "METRICS_TOKEN": TOKEN}))
    routes = app.router.routes
    found = templates_by_endpoint(routes)

    def walk(items: list[BaseRoute], prefix: str = "") -> Iterator[tuple[object, str]]:
        for route in items:
            if isinstance(route, Mount):
                yield from walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                yield route.endpoint, prefix + route.path

    checked = 0
    for endpoint, template in walk(routes):
        if found.get(id(endpoint)) is None:
            continue  # shared by two templates: matched again, as before
        path = re.sub(r"\{[^}:]+(:path)?\}", "k3y", template)
        for method in sorted(getattr(route_for(routes, endpoint), "methods", None) or {"GET"}):
            scope = {"type": "http", "method": method, "path": path, "root_path": ""}
            assert route_template(routes, scope) == found[id(endpoint)] == template
            checked += 1
    assert checked > 20


def route_for(routes: list[object], endpoint: object) -> object:
    from starlette.routing import Mount, Route

    for route in routes:
        if isinstance(route, Mount):
            inner = route_for(route.routes, endpoint)
            if inner is not None:
                return inner
        elif isinstance(route, Route) and route.endpoint is endpoint:
            return route
    return None
