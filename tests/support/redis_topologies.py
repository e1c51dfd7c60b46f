"""A real Redis Cluster and a real Sentinel setup, started from Debian's binaries.

- `RedisClusterSetup`: six `redis-server --cluster-enabled yes` on 127.0.0.1, joined
  by `redis-cli --cluster create … --cluster-replicas 1` (3 masters, 3 replicas).
- `SentinelSetup`: one master, one replica (`--replicaof`), three `redis-sentinel`.

Every process binds 127.0.0.1 on a port from `free_port` and is stopped by its PID.
Timeouts are short (node timeout 1 s, down-after 1 s) so a failover takes seconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from tests.support.servers import free_port, wait_for_pong


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (bash .ci/run installs it)")
    return found


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


class RedisProcess:
    """One redis-server or redis-sentinel process that can be stopped, killed, paused."""

    def __init__(self, workdir: Path, args: list[str], *, binary: str = "redis-server") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.args = args
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        # A replica's full sync starts at once: by default a master waits 5 s
        # (repl-diskless-sync-delay) for more replicas to share one transfer, which
        # every set-up, failover and restart here would sit through.
        sync = ["--repl-diskless-sync-delay", "0"] if self.binary == "redis-server" else []
        return [_binary(self.binary), *self.args, *sync, "--bind", "127.0.0.1",
                "--port", str(self.port), "--dir", str(self.workdir),
                "--logfile", str(self.workdir / "log.txt")]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(), cwd=self.workdir,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_pong(self.port, self.process, self.binary)

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a paused server cannot exit
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class RedisClusterSetup:
    """3 masters + 3 replicas. `url` names all six as seeds."""

    def __init__(self, workdir: Path) -> None:
        self.nodes: list[RedisProcess] = []
        for i in range(6):
            node = RedisProcess(workdir / f"node{i}", [])
            bus = free_port()
            node.args = [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000", "--cluster-port", str(bus),
                "--save", "", "--appendonly", "no", "--protected-mode", "yes",
                # Every slot stays writable while one master is down and failing over.
                "--cluster-require-full-coverage", "no",
            ]
            self.nodes.append(node)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [_binary("redis-cli"), "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in self.nodes),
             "--cluster-replicas", "1", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
        )
        self.wait_healthy()

    def masters(self) -> list[RedisProcess]:
        return [n for n in self.nodes if n.alive and _role(n) == "master"]

    def wait_healthy(self, timeout: float = 30) -> None:
        """Every live node says cluster_state:ok, 3 masters, each with a synced replica."""

        def healthy() -> bool:
            for node in self.nodes:
                if not node.alive:
                    return False
                with node.client() as c:
                    if c.cluster("info")["cluster_state"] != "ok":
                        return False
            masters = self.masters()
            if len(masters) != 3:
                return False
            for master in masters:
                with master.client() as c:
                    info = c.info("replication")
                    if info["connected_slaves"] < 1 or info["slave0"]["state"] != "online":
                        return False
            return True

        wait_until(healthy, timeout, "a healthy Redis Cluster")

    def flush(self) -> None:
        for master in self.masters():
            with master.client() as c:
                c.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelSetup:
    """A master and its replica, watched by three sentinels (quorum 2), service `ots`."""

    SERVICE = "ots"

    def __init__(self, workdir: Path) -> None:
        data = ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        self.servers = [RedisProcess(workdir / "a", list(data)),
                        RedisProcess(workdir / "b", list(data))]
        self.servers[1].args += ["--replicaof", "127.0.0.1", str(self.servers[0].port)]
        self.sentinels = [
            RedisProcess(workdir / f"sentinel{i}", [], binary="redis-sentinel")
            for i in range(3)
        ]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/0"

    def start(self) -> None:
        for server in self.servers:
            server.start()
        first = self.servers[0].port
        for sentinel in self.sentinels:
            conf = sentinel.workdir / "sentinel.conf"
            conf.write_text(
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {first} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n"
                f"sentinel parallel-syncs {self.SERVICE} 1\n"
            )
            sentinel.args = [str(conf), "--sentinel"]
            sentinel.binary = "redis-sentinel"
            sentinel.start()
        self.wait_healthy()

    def master(self) -> RedisProcess:
        with self.sentinels[0].client() as c:
            host, port = c.sentinel_get_master_addr_by_name(self.SERVICE)
        return next(s for s in self.servers if s.port == int(port))

    def wait_healthy(self, timeout: float = 30) -> None:
        """All sentinels agree on a master that has its replica online."""

        def healthy() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                with sentinel.client() as c:
                    master = c.sentinel_master(self.SERVICE)
                    if master["num-other-sentinels"] < 2 or "s_down" in master["flags"]:
                        return False
                    ports.add(master["port"])
            if len(ports) != 1 or not all(s.alive for s in self.servers):
                return False
            with self.master().client() as c:
                info = c.info("replication")
                return info["role"] == "master" and info.get("connected_slaves", 0) == 1 and (
                    info["slave0"]["state"] == "online")

        wait_until(healthy, timeout, "a healthy Sentinel setup")

    def flush(self) -> None:
        with self.master().client() as c:
            c.flushall()

    def stop(self) -> None:
        for process in (*self.sentinels, *self.servers):
            process.stop()


def _role(node: RedisProcess) -> str:
    with node.client() as c:
        return str(c.info("replication")["role"])


REDIS_URL_FIXTURES = {
    "redis": "redis_url", "redis-cluster": "cluster_url", "redis-sentinel": "sentinel_url",
}


def redis_url_for(kind: str, request: pytest.FixtureRequest) -> str | None:
    """REDIS_URL of a store kind (None for sqlite)."""
    fixture = REDIS_URL_FIXTURES.get(kind)
    return None if fixture is None else str(request.getfixturevalue(fixture))
