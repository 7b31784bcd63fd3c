"""Redis URLs: `redis+cluster://` names a cluster, everything else one server; errors say why."""

from __future__ import annotations

import re

import pytest
import redis
from redis.cluster import RedisCluster

from recsys.cache.connect import (
    connect,
    is_cluster_url,
    parse_redis_url,
    redact_url,
)
from recsys.cache.keys import CacheKeys

pytestmark = pytest.mark.cluster


def test_cluster_url_lists_its_seeds_and_maps_to_a_plain_url() -> None:
    address = parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001")
    assert address.cluster is True
    assert address.url == "redis://10.0.0.1:7000/0"
    assert address.seeds == (("10.0.0.1", 7000), ("10.0.0.2", 7001))


def test_cluster_url_keeps_credentials_tls_and_options() -> None:
    address = parse_redis_url("rediss+cluster://app:s3cret@[::1]:7000/0?ssl_cert_reqs=none")
    assert address.url == "rediss://app:s3cret@[::1]:7000/0?ssl_cert_reqs=none"
    assert address.seeds == (("::1", 7000),)
    assert is_cluster_url("REDIS+CLUSTER://h:1") and not is_cluster_url("redis://h:1/0")


def test_single_server_urls_pass_through_unchanged() -> None:
    for url in ("redis://127.0.0.1:6379/3", "rediss://:pw@h:6380/0", "unix:///tmp/r.sock"):
        assert parse_redis_url(url).url == url
        assert parse_redis_url(url).cluster is False


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://h:7000/2", "a Redis Cluster has only database 0"),
        ("redis+cluster://h", "cluster seed 'h' in 'redis+cluster://h' is not host:port"),
        ("redis+cluster://h:7000,h:x", "cluster seed 'h:x'"),
        ("redis+cluster:///", "no seed node in Redis Cluster URL"),
        ("http://u:pw@h:1", "unknown Redis URL 'http://u:***@h:1'"),
        ("127.0.0.1:6379", "unknown Redis URL '127.0.0.1:6379'"),
    ],
)
def test_bad_redis_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_redis_url(url)


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("redis+cluster://app:pw@h:1,h:2") == "redis+cluster://app:***@h:1,h:2"
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_connect_builds_the_client_the_scheme_names() -> None:
    single = connect("redis://127.0.0.1:1/0")
    assert type(single) is redis.Redis
    single.close()
    # A cluster client discovers the nodes at construction: it needs a live cluster (below).
    with pytest.raises(redis.exceptions.RedisClusterException, match="cannot be connected"):
        connect("redis+cluster://127.0.0.1:1", socket_connect_timeout=0.2)


def test_connect_to_the_session_cluster_knows_all_masters(cluster_url: str) -> None:
    client = connect(cluster_url)
    assert isinstance(client, RedisCluster)
    assert sorted(n.port for n in client.get_primaries()) == sorted(
        int(s.rsplit(":", 1)[1]) for s in cluster_url.split("//", 1)[1].split(",")
    )
    client.close()


def test_a_prefix_with_braces_is_refused() -> None:
    # It would be a hash tag: every key of every snapshot in one slot, on one node.
    with pytest.raises(ValueError, match="prefix must not contain braces"):
        CacheKeys("agent", prefix="{reco}:v1")
