"""Cluster fixtures: a real 3-master Redis Cluster for the session, and a client that empties it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from recsys.cache.connect import connect
from recsys.cache.server import RedisClusterServer, start_redis_cluster


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServer]:
    """A private Redis Cluster of 3 masters on loopback ports, started once per session."""
    cluster = start_redis_cluster(n_masters=3)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def cluster_url(redis_cluster: RedisClusterServer) -> str:
    """The `redis+cluster://` URL of the session's cluster."""
    return redis_cluster.url


@pytest.fixture()
def cluster_client(cluster_url: str) -> Iterator[Any]:
    """A synchronous cluster client on an emptied cluster (every master flushed)."""
    client = connect(cluster_url)
    client.flushall(target_nodes=client.PRIMARIES)
    yield client
    client.close()


def keys_by_node(client: Any) -> dict[int, set[str]]:
    """Every key of the cluster, by the port of the master that holds it."""
    return {
        node.port: {k.decode() for k in client.scan_iter(count=1000, target_nodes=node)}
        for node in client.get_primaries()
    }
