"""REDIS_URL: the topology each form selects, and one clear line for a bad one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.backends.storage.redis_url import parse
from bot.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("url", "topology", "hosts", "service", "db", "tls"),
    [
        ("redis://127.0.0.1:6379/2", "standalone", (), "", 0, False),
        ("rediss://:pw@redis.example:6380/0", "standalone", (), "", 0, True),
        ("unix:///run/redis.sock?db=1", "standalone", (), "", 0, False),
        ("redis+cluster://a:7000,b:7001,[::1]:7002", "cluster",
         (("a", 7000), ("b", 7001), ("::1", 7002)), "", 0, False),
        ("rediss+cluster://user:pw@a:7000/", "cluster", (("a", 7000),), "", 0, True),
        ("redis+cluster://a", "cluster", (("a", 6379),), "", 0, False),
        ("redis+sentinel://s1:26379,s2:26380/mymaster/3", "sentinel",
         (("s1", 26379), ("s2", 26380)), "mymaster", 3, False),
        ("rediss+sentinel://:pw@s1/mymaster", "sentinel", (("s1", 26379),), "mymaster", 0, True),
    ],
)
def test_each_form_selects_its_topology(
    url: str, topology: str, hosts: tuple[tuple[str, int], ...], service: str, db: int, tls: bool
) -> None:
    target = parse(url)
    assert (target.topology, target.hosts, target.service, target.db, target.tls) == (
        topology, hosts, service, db, tls)
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


def test_credentials_are_read_from_a_node_list() -> None:
    target = parse("redis+sentinel://app:p%40ss@s1:1,s2:2/svc")
    assert (target.username, target.password) == ("app", "p@ss")
    assert "p@ss" not in repr(target)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("localhost:6379", "redis+cluster://"),
        ("http://:hunter2@redis.example", "redis+sentinel://"),
        ("redis+cluster://:hunter2@a:7000/5", "only database 0"),
        ("redis+cluster://:hunter2@a:x", "not a port number"),
        ("redis+cluster://:hunter2@a:1,,b:2", "empty cluster node"),
        ("redis+sentinel://:hunter2@s1:26379", "service name"),
        ("redis+sentinel://:hunter2@s1:26379/svc/one", "database that is not a number"),
        ("redis+sentinel://:hunter2@s1/svc/1/extra", "service name"),
        ("redis://:hunter2@a:1,b:2/0", "exactly one host"),
        ("redis://:hunter2@/0", "exactly one host"),
        ("redis://:hunter2@a:port/0", "not a number"),
        ("redis://:hunter2@a/zero", "database that is not a number"),
        ("unix://:hunter2@", "socket's path"),
    ],
)
def test_a_bad_url_names_redis_url_and_the_forms_never_the_password(
    url: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": url})
    message = str(caught.value)
    assert message.startswith("REDIS_URL: ")
    assert words in message
    assert "redis+sentinel://host:port[,host:port…]/SERVICE[/db]" in message
    assert "hunter2" not in message and "\n" not in message


def test_a_bad_url_stops_start_up_with_exit_status_2(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path),
           "REDIS_URL": "redis+sentinel://:hunter2@s1:26379"}
    result = subprocess.run([sys.executable, "-m", "bot"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "REDIS_URL" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
