"""A Redis call cut off by the service's own timeout leaves no trace on the connection: its
reply, arriving late, is never read as the answer to a later call. (redis-py's per-socket
timeouts are off: StoreClient bounds each whole call, and a cancelled call drops its
connection.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from otpservice.errors import ServiceUnavailable
from otpservice.store.client import StoreClient
from otpservice.store.connection import connect
from tests.support.binaries import redis_server_binary
from tests.support.redis_servers import RedisServer


@pytest.fixture
def server(tmp_path: Path) -> RedisServer:
    found = RedisServer(redis_server_binary(), directory=tmp_path / "redis")
    found.start()
    return found


async def test_a_timed_out_call_never_lends_its_late_reply_to_the_next_one(
    server: RedisServer,
) -> None:
    client = connect(server.url, 0.3)
    store = StoreClient(client, timeout=0.3)
    try:
        await store.call("set", client.mset({"first": b"1", "second": b"2"}))
        server.pause()
        try:
            with pytest.raises(ServiceUnavailable):
                await store.call("get", client.get("first"))
        finally:
            server.resume()
        # The reply to GET first is on its way now; the next calls must get their own.
        for _ in range(20):
            assert await store.call("get", client.get("second")) == b"2"
        assert await store.call("ping", client.ping()) is True
    finally:
        await client.aclose()
        server.close()
