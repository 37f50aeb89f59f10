"""The Redis client for OTP_REDIS_URL: one server, a Redis Cluster or a Sentinel-managed primary.

The URL's scheme chooses the client:

- `redis://`, `rediss://` (TLS), `unix://`: one server, as `redis.asyncio.Redis.from_url` reads it.
- `redis+cluster://[[user]:password@]host:port[,host:port...]` (`rediss+cluster://` for TLS):
  a Redis Cluster, found from any of the listed seed nodes. No database number (clusters have
  only database 0). Every multi-key script of the service touches one hash slot (store/keys.py).
- `redis+sentinel://[[user]:password@]host:port[,host:port...]/<service name>[/<db>]`
  (`rediss+sentinel://` for TLS): the primary that the listed Sentinels name for the service,
  re-resolved after a failover. The credentials are the data nodes'; add
  `?sentinel_password=...` (and `sentinel_username=...`) when the Sentinels require their own.

Ports default to 6379 (cluster nodes) and 26379 (Sentinels). Every client gets the same connect
and read timeout, so no Redis call can hang.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.maint_notifications import MaintNotificationsConfig

RedisClient: TypeAlias = Redis | RedisCluster

SINGLE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
MAX_CONNECTIONS = 512  # per server


class RedisUrlError(ValueError):
    """OTP_REDIS_URL cannot be used; the message says why."""


@dataclass(frozen=True)
class ParsedUrl:
    kind: str  # "single" | "cluster" | "sentinel"
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    service_name: str = ""
    db: int = 0
    sentinel_auth: dict[str, str] = field(default_factory=dict)


def parse_url(url: str) -> ParsedUrl:
    """Validate a Redis URL; raises RedisUrlError naming the problem."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SINGLE_SCHEMES + CLUSTER_SCHEMES + SENTINEL_SCHEMES:
        raise RedisUrlError(
            "must start with redis://, rediss://, unix://, redis+cluster://, rediss+cluster://, "
            "redis+sentinel:// or rediss+sentinel://"
        )
    if scheme in SINGLE_SCHEMES:
        return ParsedUrl("single")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    if not at:
        hostlist = netloc
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    cluster = scheme in CLUSTER_SCHEMES
    nodes = tuple(_host_port(h, 6379 if cluster else 26379) for h in hostlist.split(","))
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    tls = scheme.startswith("rediss")
    if cluster:
        if path.strip("/") not in ("", "0"):
            raise RedisUrlError("a Redis Cluster has only database 0: drop the /<db> path")
        if params:
            raise RedisUrlError(f"unknown cluster URL parameter(s): {', '.join(sorted(params))}")
        return ParsedUrl("cluster", tls, nodes, username, password)
    service_name, db = _service_and_db(path)
    unknown = set(params) - {"sentinel_password", "sentinel_username"}
    if unknown:
        raise RedisUrlError(f"unknown Sentinel URL parameter(s): {', '.join(sorted(unknown))}")
    sentinel_auth = {k.removeprefix("sentinel_"): v for k, v in params.items()}
    return ParsedUrl("sentinel", tls, nodes, username, password, service_name, db, sentinel_auth)


def _service_and_db(path: str) -> tuple[str, int]:
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2:
        raise RedisUrlError("a Sentinel URL ends in /<service name> or /<service name>/<db>")
    if len(parts) == 2 and not (parts[1].isascii() and parts[1].isdigit()):
        raise RedisUrlError("the database after the service name must be a number")
    return unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def _host_port(item: str, default_port: int) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [IPv6]:port
        host, _, tail = item[1:].partition("]")
        port = tail.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host:
        raise RedisUrlError("every node needs a host (host:port, comma-separated)")
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise RedisUrlError(f"bad port in {item!r}")
    return host, int(port) if port else default_port


class SentinelManagedRedis(Redis):
    """The primary of a Sentinel service; closing it also closes the Sentinel connections."""

    sentinel_manager: Sentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            for client in self.sentinel_manager.sentinels:
                await client.aclose()


def connect(url: str, timeout: float) -> RedisClient:
    """A client for `url` whose every call (and connect) is bounded by `timeout` seconds."""
    parsed = parse_url(url)
    common: dict[str, Any] = {
        # No socket_timeout: redis-py wraps every write and read of every command in its own
        # timeout for it (a third of a GET's CPU here). StoreClient bounds each whole call with
        # one timeout instead; a call cancelled by it drops its connection.
        "socket_timeout": None,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
        # redis-py checks a pooled connection before lending it (a closed one is reconnected)
        # only while maintenance notifications are off: their default, "auto", is truthy and
        # skips that check, so after a Redis restart every pooled connection failed one
        # request. We use none of those notifications (a Redis Enterprise feature).
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
    }
    if parsed.kind == "single":
        return Redis.from_url(url, max_connections=MAX_CONNECTIONS, **common)
    auth: dict[str, Any] = {"username": parsed.username, "password": parsed.password}
    if parsed.tls:
        common["ssl"] = True
    if parsed.kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
            max_connections=MAX_CONNECTIONS,
            **auth,
            **common,
        )
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        **parsed.sentinel_auth,
    }
    if parsed.tls:
        sentinel_kwargs["ssl"] = True
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(parsed.nodes), sentinel_kwargs=sentinel_kwargs, **common
    )
    client: SentinelManagedRedis = sentinel.master_for(
        parsed.service_name,
        redis_class=SentinelManagedRedis,
        db=parsed.db,
        max_connections=MAX_CONNECTIONS,
        **auth,
    )
    client.sentinel_manager = sentinel
    return client
