"""OTP_REDIS_URL: the scheme picks one server, a Redis Cluster or a Sentinel-managed primary."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from otpservice.errors import ConfigError
from otpservice.settings import load_settings
from otpservice.store.connection import RedisUrlError, SentinelManagedRedis, connect, parse_url


def test_cluster_url_lists_seed_nodes_with_default_ports_and_credentials() -> None:
    parsed = parse_url("rediss+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert parsed.kind == "cluster"
    assert parsed.tls
    assert parsed.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (parsed.username, parsed.password) == ("app", "s@cret")


def test_sentinel_url_names_the_service_and_database() -> None:
    parsed = parse_url("redis+sentinel://:pw@s1:26380,s2/mymaster/3?sentinel_password=sp")
    assert parsed.kind == "sentinel"
    assert parsed.nodes == (("s1", 26380), ("s2", 26379))
    assert (parsed.service_name, parsed.db, parsed.password) == ("mymaster", 3, "pw")
    assert parsed.sentinel_auth == {"password": "sp"}


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:6379",
        "redis+cluster://h:1/2",
        "redis+cluster://h:99999",
        "redis+cluster://h:1?db=1",
        "redis+sentinel://h:26379",
        "redis+sentinel://h:26379/svc/x",
        "redis+sentinel://h:26379/svc?foo=1",
        "redis+sentinel://:1/svc",
    ],
)
def test_unusable_urls_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(RedisUrlError):
        parse_url(url)
    with pytest.raises(ConfigError, match="OTP_REDIS_URL"):
        load_settings({"OTP_REDIS_URL": url})


async def test_each_scheme_gets_its_client_with_the_timeout() -> None:
    """Connecting is bounded by the timeout; each call is bounded by StoreClient as a whole,
    so the data connections have no per-socket timeout of their own (it cost a third of a
    GET's CPU). Sentinel queries keep theirs."""
    single = connect("redis://127.0.0.1:1/0", 0.25)
    cluster = connect("redis+cluster://127.0.0.1:1,127.0.0.1:2", 0.25)
    sentinel = connect("redis+sentinel://127.0.0.1:1/svc/2", 0.25)
    try:
        assert type(single) is Redis
        single_kwargs = single.connection_pool.connection_kwargs
        assert (single_kwargs["socket_timeout"], single_kwargs["socket_connect_timeout"]) == (
            None,
            0.25,
        )
        assert isinstance(cluster, RedisCluster)
        kwargs = cluster.nodes_manager.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (None, 0.25)
        assert len(cluster.nodes_manager.startup_nodes) == 2
        assert isinstance(sentinel, SentinelManagedRedis)
        assert sentinel.connection_pool.connection_kwargs["socket_connect_timeout"] == 0.25
        assert sentinel.connection_pool.connection_kwargs["db"] == 2
        assert sentinel.sentinel_manager is not None
        assert all(
            s.connection_pool.connection_kwargs["socket_timeout"] == 0.25
            for s in sentinel.sentinel_manager.sentinels
        )
    finally:
        await single.aclose()
        await cluster.aclose()
        await sentinel.aclose()
