"""One manager for the processes the tests and the benchmark start.

Each process runs in its own session, so its whole process group (uvicorn's or granian's
workers too) can be signalled at once: SIGTERM, SIGKILL, SIGSTOP/SIGCONT. Its output goes to a
log file whose tail is shown when it fails to become ready. Every wait is bounded, and whatever
is still running when the interpreter exits is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from tests.support.ports import port_open

REPO = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 15.0
"""Seconds a process gets to exit after SIGTERM before its group is SIGKILLed."""

_started: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


def poll_until(
    what: str, check: Callable[[], bool], timeout: float, interval: float = 0.05
) -> None:
    """Call `check()` until it returns true; RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def http_ok(url: str, status: int = 200) -> bool:
    """Whether GET `url` answers `status` within a second."""
    try:
        return httpx.get(url, timeout=1.0).status_code == status
    except httpx.HTTPError:
        return False


def tail(path: Path, size: int = 4000) -> str:
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - size))
            return log.read().decode(errors="replace")
    except OSError:
        return ""


class ManagedProcess:
    """One command, started (and restartable) in its own session with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.popen.pid if self.popen else None})"

    @property
    def pid(self) -> int:
        """The process id, which is also its process group id."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.running():
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        _started.add(self)

    def wait_until(
        self, what: str, ready: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05
    ) -> None:
        """Until `ready()`; RuntimeError with the log's tail if the process exits first or
        `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise RuntimeError(
                    f"{self.name} exited with code {self.returncode} before {what}:\n{self.logs()}"
                )
            if ready():
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name}: no {what} within {timeout} s:\n{self.logs()}")
            time.sleep(interval)

    def wait_http(self, url: str, timeout: float = 30.0, status: int = 200) -> None:
        self.wait_until(f"{status} from {url}", lambda: http_ok(url, status), timeout, 0.1)

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        self.wait_until(f"connections on port {port}", lambda: port_open(port), timeout)

    def signal(self, sig: int) -> None:
        """`sig` to the process alone (not its group)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def signal_group(self, sig: int) -> None:
        """`sig` to every process of its group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def terminate(self) -> None:
        """SIGTERM to the process alone, as an orchestrator stopping a container sends it."""
        self.signal(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP the group: the process keeps its sockets open and answers nothing."""
        self.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole group at once and reap the process: nothing of it runs on."""
        if self.popen is None:
            return
        self.signal_group(signal.SIGCONT)
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the group, SIGKILL it after `timeout` seconds; members left behind by a
        process that exited first are SIGKILLed too."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            self.signal_group(signal.SIGCONT)  # a stopped process acts on SIGTERM only now
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        self.kill()

    def wait(self, timeout: float) -> int | None:
        """The exit status once the process exited, None if it still runs after `timeout` s."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def logs(self, size: int = 4000) -> str:
        return tail(self.log_path, size)


class ServiceProcess(ManagedProcess):
    """`python -m otpservice serve` with the given environment; OTP_HOST and OTP_PORT say where."""

    def __init__(
        self, name: str, env: Mapping[str, str], *, log_path: Path, cwd: Path = REPO
    ) -> None:
        super().__init__(
            name,
            [sys.executable, "-m", "otpservice", "serve"],
            log_path=log_path,
            env=env,
            cwd=cwd,
        )
        self.host = env.get("OTP_HOST", "127.0.0.1")
        self.port = int(env.get("OTP_PORT", "8000"))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_http(f"{self.url}/readyz", timeout)


class Processes:
    """The processes one test or one benchmark run started, by name; `stop_all()` (or leaving
    the `with` block) stops every one of them."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.started: dict[str, ManagedProcess] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_all()

    def add(self, process: ManagedProcess) -> ManagedProcess:
        """Track `process` (not started yet) under its name."""
        old = self.started.get(process.name)
        if old is not None and old.running():
            raise RuntimeError(f"a process named {process.name} is already running")
        self.started[process.name] = process
        return process

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO,
        ready_url: str | None = None,
        ready_port: int | None = None,
        timeout: float = 30.0,
    ) -> ManagedProcess:
        """Start `argv` as `name`, logging to <logdir>/<name>.log; wait (at most `timeout` s)
        until `ready_url` answers 200 or `ready_port` accepts connections, if given. A process
        that fails to become ready is stopped before the error is raised."""
        process = self.add(
            ManagedProcess(name, argv, log_path=self.logdir / f"{name}.log", env=env, cwd=cwd)
        )
        process.start()
        try:
            if ready_url is not None:
                process.wait_http(ready_url, timeout)
            if ready_port is not None:
                process.wait_port(ready_port, timeout)
        except BaseException:
            self.stop(name)
            raise
        return process

    def service(
        self, name: str, env: Mapping[str, str], *, timeout: float = 30.0
    ) -> ServiceProcess:
        """`otpservice serve` as `name` with `env`, once its /readyz answers 200."""
        service = ServiceProcess(name, env, log_path=self.logdir / f"{name}.log")
        self.add(service)
        service.start()
        try:
            service.wait_ready(timeout)
        except BaseException:
            self.stop(name)
            raise
        return service

    def check(self, name: str) -> None:
        """RuntimeError with the log's tail if `name` has exited."""
        process = self.started[name]
        if not process.running():
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{process.logs(3000)}")

    def stop(self, name: str, timeout: float = STOP_TIMEOUT) -> None:
        """Stop `name` (SIGTERM, then SIGKILL) and forget it."""
        process = self.started.pop(name, None)
        if process is not None:
            process.stop(timeout)

    def stop_all(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every group at once, SIGKILL what is left after `timeout` seconds."""
        processes = list(self.started.values())
        self.started.clear()
        for process in processes:
            if process.running():
                process.signal_group(signal.SIGTERM)
                process.signal_group(signal.SIGCONT)
        deadline = time.monotonic() + timeout
        for process in processes:
            process.wait(max(0.0, deadline - time.monotonic()))
            process.kill()

    def group_ids(self) -> set[int]:
        """The process groups of every tracked process, and this process' own."""
        return {p.pid for p in self.started.values() if p.popen is not None} | {os.getpgrp()}

    def logs(self, size: int = 2000) -> str:
        return "\n".join(f"--- {p.name}\n{p.logs(size)}" for p in self.started.values())


@atexit.register
def _kill_leftovers() -> None:
    """Whatever a crashed test or benchmark left running dies with the interpreter."""
    for process in list(_started):
        if process.running():
            process.kill()
