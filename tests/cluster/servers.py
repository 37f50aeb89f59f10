"""Throwaway Redis topologies on 127.0.0.1: a 3-master Redis Cluster and a Sentinel-watched
primary with one replica. Every process is bounded in time at start and killed at stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from tests.redis_server import MISSING, find_server_binary

SERVICE = "otp-primary"
NO_CLI = (
    "The cluster tests need redis-cli (for `redis-cli --cluster create`). Install it:\n"
    "  apt-get install -y redis-tools   (Debian/Ubuntu; redis-server depends on it)\n"
    "or point OTP_TEST_REDIS_CLI at a redis-cli or valkey-cli binary."
)


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all bound at once, so none repeats)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def find_cli_binary() -> str | None:
    return os.environ.get("OTP_TEST_REDIS_CLI") or shutil.which("redis-cli")


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sync_redis.RedisError, OSError):
            if check():
                return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def _ping(port: int) -> bool:
    with sync_redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1) as client:
        return bool(client.ping())


class _Processes:
    """Owns a temp directory and the server processes started in it."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="otp-redis-topology-"))
        self.processes: list[subprocess.Popen[bytes]] = []

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.dir / f"server-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [self.binary, *args], stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
        )
        log.close()
        self.processes.append(process)
        return process

    def server(self, port: int, *extra: str) -> subprocess.Popen[bytes]:
        process = self.spawn(
            "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.dir), "--daemonize", "no", "--maxmemory-policy", "noeviction",
            *extra,
        )  # fmt: skip
        _wait(f"redis on port {port}", lambda: process.poll() is None and _ping(port), 10)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
            for p in sorted(self.dir.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalCluster:
    """Three masters, no replicas, every slot covered; `url` is a redis+cluster:// URL."""

    kind = "cluster"

    def __init__(self, binary: str, cli: str) -> None:
        self.cli = cli
        self.procs = _Processes(binary)
        ports = free_ports(6)
        self.ports, self.bus_ports = ports[:3], ports[3:]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> None:
        for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
            # The bus port is chosen too (cluster-port, Redis >= 7): port + 10000 may be taken.
            self.procs.server(
                port,
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "5000",
                "--cluster-port", str(bus_port),
            )  # fmt: skip
        nodes = [f"127.0.0.1:{p}" for p in self.ports]
        create = subprocess.run(
            [self.cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{create.stdout.decode()}")
        _wait("cluster_state:ok on every node", self._ok, 30)

    def _ok(self) -> bool:
        for port in self.ports:
            with sync_redis.Redis(port=port, socket_timeout=1) as client:
                info = client.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text:
                    return False
                if len(client.execute_command("CLUSTER", "SLOTS")) != 3:
                    return False
        return True

    def client(self) -> Any:
        """An async client for test assertions; its scan_iter and flushall cover every master."""
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports], socket_timeout=5
        )

    def stop(self) -> None:
        self.procs.stop()


class LocalSentinel:
    """A primary, one replica and one Sentinel watching them; `url` is a redis+sentinel:// URL."""

    kind = "sentinel"

    def __init__(self, binary: str) -> None:
        self.procs = _Processes(binary)
        self.primary_port, self.replica_port, self.sentinel_port = free_ports(3)

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def start(self) -> None:
        self.procs.server(self.primary_port, "--repl-diskless-sync-delay", "0")
        self.procs.server(self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port))
        _wait("the replica to sync", self._replica_synced, 20)
        config = self.procs.dir / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.procs.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 2000\n"
            f"sentinel failover-timeout {SERVICE} 6000\n"
        )
        sentinel = self.procs.spawn(str(config), "--sentinel")
        _wait(
            "the Sentinel to know the primary",
            lambda: sentinel.poll() is None and self.primary_address() is not None,
            10,
        )

    def _replica_synced(self) -> bool:
        with sync_redis.Redis(port=self.replica_port, socket_timeout=1) as client:
            return client.info("replication").get("master_link_status") == "up"

    def sentinel_command(self, *args: str) -> Any:
        with sync_redis.Redis(port=self.sentinel_port, socket_timeout=2) as client:
            return client.execute_command("SENTINEL", *args)

    def primary_address(self) -> tuple[str, int] | None:
        found = self.sentinel_command("get-master-addr-by-name", SERVICE)
        if not found:
            return None
        host, port = found
        return (host.decode() if isinstance(host, bytes) else host), int(port)

    def known_replicas(self) -> int:
        return len(self.sentinel_command("replicas", SERVICE))

    def client(self) -> Redis:
        """An async client on the current primary, for test assertions."""
        address = self.primary_address()
        assert address is not None
        return Redis(host=address[0], port=address[1], socket_timeout=5)

    def stop(self) -> None:
        self.procs.stop()


@contextlib.contextmanager
def running(kind: str) -> Iterator[LocalCluster | LocalSentinel]:
    """Start a topology ("cluster" or "sentinel"); stop it on exit, even when the start fails."""
    binary = find_server_binary()
    if binary is None:
        raise RuntimeError(MISSING)
    topology: LocalCluster | LocalSentinel
    if kind == "cluster":
        cli = find_cli_binary()
        if cli is None:
            raise RuntimeError(NO_CLI)
        topology = LocalCluster(binary, cli)
    elif kind == "sentinel":
        topology = LocalSentinel(binary)
    else:
        raise ValueError(f"unknown Redis topology {kind!r}: single, cluster or sentinel")
    try:
        try:
            topology.start()
        except Exception as exc:
            raise RuntimeError(f"{exc}\n{topology.procs.logs()}") from exc
        yield topology
    finally:
        topology.stop()
