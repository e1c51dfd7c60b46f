"""REDIS_URL: which Redis topology to connect to, read without touching the network.

    redis://[[user]:password@]host[:port][/db]      one server (TLS: rediss://)
    unix://[[user]:password@]/path/to/socket[?db=N]  one server on a Unix socket
    redis+cluster://[[user]:password@]host:port[,host:port…]
                                                     Redis Cluster (TLS: rediss+cluster://)
    redis+sentinel://[[user]:password@]host:port[,host:port…]/SERVICE[/db]
                                                     the master Sentinel names SERVICE
                                                     (TLS: rediss+sentinel://)

The credentials are those of the data nodes (cluster nodes, or the master and its
replicas); sentinels are asked without credentials. Errors never quote the URL: it
may hold a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

FORMS = (
    "redis://host:port/db, rediss://…, unix:///path, "
    "redis+cluster://host:port[,host:port…], rediss+cluster://…, "
    "redis+sentinel://host:port[,host:port…]/SERVICE[/db] or rediss+sentinel://…"
)
STANDALONE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_PORT = 6379
SENTINEL_PORT = 26379

Topology = Literal["standalone", "cluster", "sentinel"]


@dataclass(frozen=True)
class RedisTarget:
    topology: Topology
    url: str = field(repr=False)  # as given (standalone: handed to redis-py as is)
    hosts: tuple[tuple[str, int], ...] = ()  # cluster seed nodes or sentinels
    service: str = ""  # sentinel: the master's name
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    tls: bool = False


class BadRedisURL(ValueError):
    """The problem, worded for `REDIS_URL: …`; never holds the URL itself."""


def parse(url: str) -> RedisTarget:
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in (*STANDALONE_SCHEMES, *CLUSTER_SCHEMES, *SENTINEL_SCHEMES):
        raise BadRedisURL(f"must be one of {FORMS}")
    if scheme in STANDALONE_SCHEMES:
        return _standalone(url, scheme)
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo)
    tls = scheme.startswith("rediss")
    if scheme in CLUSTER_SCHEMES:
        hosts = _hosts(hostlist, DEFAULT_PORT, "cluster node")
        if parts.path.strip("/"):
            raise BadRedisURL(
                f"a Redis Cluster has only database 0: no path after the nodes ({FORMS})"
            )
        return RedisTarget("cluster", url, hosts, username=username, password=password, tls=tls)
    hosts = _hosts(hostlist, SENTINEL_PORT, "sentinel")
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2:
        raise BadRedisURL(f"needs the master's service name after the sentinels ({FORMS})")
    db = _db(path[1]) if len(path) == 2 else 0
    return RedisTarget(
        "sentinel", url, hosts, service=unquote(path[0]), db=db,
        username=username, password=password, tls=tls,
    )


def _standalone(url: str, scheme: str) -> RedisTarget:
    parts = urlsplit(url)
    if scheme == "unix":
        if not parts.path:
            raise BadRedisURL(f"a unix:// URL needs the socket's path ({FORMS})")
        return RedisTarget("standalone", url)
    if not parts.hostname or "," in parts.netloc:
        raise BadRedisURL(
            f"needs exactly one host for {scheme}:// (several nodes: redis+cluster:// or "
            f"redis+sentinel://) ({FORMS})"
        )
    try:
        parts.port  # noqa: B018  (raises for a port that is not a number)
    except ValueError:
        raise BadRedisURL(f"has a port that is not a number ({FORMS})") from None
    db = parts.path.strip("/")
    if db:
        _db(db)
    return RedisTarget("standalone", url, tls=scheme == "rediss")


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, sep, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if sep else None)


def _hosts(hostlist: str, default_port: int, what: str) -> tuple[tuple[str, int], ...]:
    hosts = []
    for entry in hostlist.split(","):
        entry = entry.strip()
        if entry.startswith("["):  # [IPv6]:port
            host, _, rest = entry[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, _, port_text = entry.partition(":")
        if not host:
            raise BadRedisURL(f"has an empty {what} address ({FORMS})")
        if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise BadRedisURL(f"has a {what} port that is not a port number ({FORMS})")
        hosts.append((host, int(port_text) if port_text else default_port))
    return tuple(hosts)


def _db(text: str) -> int:
    if not text.isdigit():
        raise BadRedisURL(f"has a database that is not a number ({FORMS})")
    return int(text)
