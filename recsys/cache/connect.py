"""Redis clients from one URL: a single server (`redis://`) or a Redis Cluster (`redis+cluster://`).

The URL scheme alone says which: it travels unchanged through `REDIS_URL`, `RECSYS_REDIS_URL`,
`--redis-url` and into every uvicorn worker, so there is no separate flag to forget.

- `redis://[user:password@]host:port/db` and `rediss://...` (TLS): one server;
- `redis+cluster://[user:password@]host:port[,host:port...]` and `rediss+cluster://...`: a Redis
  Cluster, discovered from the seed node(s) listed (any master or replica; list several so a
  seed that is down does not stop the start). A cluster has only database 0.

Both clients speak the same commands for what the picks cache does (docs/cache-contract.md,
"Redis Cluster"); callers only pick the client here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
SINGLE_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class RedisAddress:
    """A parsed Redis URL: the plain URL redis-py understands, and the cluster seeds if any."""

    url: str
    cluster: bool
    seeds: tuple[tuple[str, int], ...] = ()


def is_cluster_url(url: str) -> bool:
    """True when `url` names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`)."""
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def parse_redis_url(url: str) -> RedisAddress:
    """Split a Redis URL into the redis-py URL and, for a cluster, its seed nodes.

    Raises
    ------
    ValueError
        If the scheme is unknown, a cluster seed is not `host:port`, or a cluster URL names a
        database other than 0.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or (scheme not in CLUSTER_SCHEMES and scheme not in SINGLE_SCHEMES):
        forms = "redis://host:port/db, rediss://..., or redis+cluster://host:port[,host:port]"
        raise ValueError(f"unknown Redis URL {redact_url(url)!r}; use {forms}")
    if scheme not in CLUSTER_SCHEMES:
        return RedisAddress(url=url, cluster=False)
    netloc, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    if path not in ("", "0"):
        raise ValueError(
            f"a Redis Cluster has only database 0; {redact_url(url)!r} asks for {path}"
        )
    userinfo, _, hosts = netloc.rpartition("@")
    seeds = tuple(_seed(h, url) for h in hosts.split(",") if h)
    if not seeds:
        raise ValueError(f"no seed node in Redis Cluster URL {redact_url(url)!r}")
    host, port = seeds[0]
    host = f"[{host}]" if ":" in host else host  # IPv6 back in brackets for the URL
    auth = f"{userinfo}@" if userinfo else ""
    plain = f"{CLUSTER_SCHEMES[scheme]}://{auth}{host}:{port}/0" + (f"?{query}" if query else "")
    return RedisAddress(url=plain, cluster=True, seeds=seeds)


def _seed(hostport: str, url: str) -> tuple[str, int]:
    """(host, port) of one `host:port` seed (IPv6 in brackets)."""
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"cluster seed {hostport!r} in {redact_url(url)!r} is not host:port")
    return unquote(host.strip("[]")), int(port)


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***` (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hosts}"
    return f"{scheme}{sep}{netloc}{slash}{tail}"


def connect(url: str, **kwargs: Any) -> Any:
    """A synchronous client for `url`: `redis.Redis`, or `redis.cluster.RedisCluster`.

    `kwargs` (timeouts, ...) go to every connection. Nothing is sent until the first command.
    """
    address = parse_redis_url(url)
    if not address.cluster:
        import redis

        return redis.Redis.from_url(url, **kwargs)
    from redis.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(host, port) for host, port in address.seeds[1:]]
    return RedisCluster.from_url(address.url, startup_nodes=nodes or None, **kwargs)


def connect_async_cluster(url: str, **kwargs: Any) -> Any:
    """An asyncio `redis.asyncio.cluster.RedisCluster` for a `redis+cluster://` URL.

    `max_connections` in `kwargs` bounds the connections per node; beyond it a command fails
    at once with `MaxConnectionsError` (there is no blocking pool in cluster mode).
    """
    address = parse_redis_url(url)
    if not address.cluster:
        raise ValueError(f"not a Redis Cluster URL: {redact_url(url)!r}")
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(host, port) for host, port in address.seeds[1:]]
    return RedisCluster.from_url(address.url, startup_nodes=nodes or None, **kwargs)


def redis_failures() -> tuple[type[BaseException], ...]:
    """Exception types a Redis or Redis Cluster client raises when the server side fails."""
    from redis.exceptions import RedisClusterException, RedisError

    return (RedisError, RedisClusterException)
