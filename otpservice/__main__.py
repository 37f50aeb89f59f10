"""Command line: `otpservice serve` and `otpservice check-config`. The only reader of os.environ."""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from otpservice.errors import ConfigError
from otpservice.settings import Settings, load_settings

log = logging.getLogger("otpservice")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_BANNER = """
================================================================================
  otpservice is running in DEVELOPMENT MODE
  - store: embedded in-process Redis emulation (data is lost on exit)
  - SMS:   sandbox provider; each SMS, code included, is printed below
  - pepper: random, new on every start
  Never use this mode for real users: set OTP_ENV=production.

  Development API key (shown once):  {key}

  Try it:
    curl -s http://{host}:{port}/otp/start -H 'Authorization: Bearer {key}' \\
         -H 'Content-Type: application/json' -d '{{"to": "+48601234567"}}'
================================================================================
"""


def _settings_or_exit() -> Settings:
    try:
        return load_settings(os.environ)
    except ConfigError as exc:
        sys.stderr.write(f"otpservice: configuration error: {exc}\n")
        raise SystemExit(2) from None


def _prepare_workers(settings: Settings) -> None:
    """Make every worker process agree with this one before they are spawned."""
    if settings.dev_api_key is not None:
        # Development's generated key and random pepper must be the same in every worker.
        os.environ["OTP_DEV_API_KEY"] = settings.dev_api_key.reveal().decode()
        os.environ["OTP_PEPPER"] = "base64:" + base64.b64encode(settings.pepper.reveal()).decode()
    if settings.workers == 1:
        return  # one process: its own registry is the whole of /metrics
    directory = settings.metrics_dir or tempfile.mkdtemp(prefix="otpservice-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    # Files of an earlier run (a restarted container keeps its emptyDir) would be summed too.
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


def worker_app() -> Any:
    """The server's factory in each worker process: settings from the environment, then the app."""
    from otpservice.app import create_app  # noqa: PLC0415

    settings = _settings_or_exit()
    logging.basicConfig(level=settings.log_level, format=_LOG_FORMAT)
    return create_app(settings)


def _exit_cleanly(signum: int, frame: object) -> None:  # noqa: ARG001
    raise SystemExit(0)


def serve(settings: Settings) -> None:
    # The server handles SIGTERM itself (stop accepting, finish requests, lifespan shutdown);
    # uvicorn then raises the signal again with the handler found at start: exit 0, not -15.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    logging.basicConfig(level=settings.log_level, format=_LOG_FORMAT)
    if not settings.production:
        key = settings.dev_api_key.reveal().decode() if settings.dev_api_key else "(from config)"
        sys.stdout.write(_BANNER.format(key=key, host=settings.host, port=settings.port))
        sys.stdout.flush()
    if settings.server == "granian":
        _serve_granian(settings)
    else:
        _serve_uvicorn(settings)


def _serve_uvicorn(settings: Settings) -> None:
    import uvicorn  # noqa: PLC0415

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        # uvloop + httptools: plain h11 workers lost TCP_NODELAY and half the throughput here.
        "loop": "uvloop",
        "http": "httptools",
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "proxy_headers": False,
        # Half the deadline for in-flight requests, a quarter for the lane's queued sends (app.py),
        # the rest for handing unfinished sends back and exiting.
        "timeout_graceful_shutdown": max(1, int(settings.shutdown_deadline / 2)),
    }
    if settings.workers == 1:
        from otpservice.app import create_app  # noqa: PLC0415

        uvicorn.run(create_app(settings), **common)
        return
    _prepare_workers(settings)
    uvicorn.run("otpservice.__main__:worker_app", factory=True, workers=settings.workers, **common)


def _serve_granian(settings: Settings) -> None:
    try:
        from granian.constants import HTTPModes, Interfaces, Loops  # noqa: PLC0415
        from granian.log import LogLevels  # noqa: PLC0415
        from granian.server import Server  # noqa: PLC0415
    except ImportError:
        sys.stderr.write(
            "otpservice: OTP_SERVER=granian needs the granian package"
            " (pip install 'otpservice[granian]')\n"
        )
        raise SystemExit(2) from None

    # Granian runs the app in worker processes even when there is one: each builds its own.
    _prepare_workers(settings)
    server = Server(
        "otpservice.__main__:worker_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,  # with lifespan: the app's start-up and shutdown run
        workers=settings.workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels(settings.log_level.lower()),
        log_access=False,
        # After SIGTERM a worker drains its connections and runs the lifespan shutdown; one
        # still alive after the deadline is killed.
        workers_kill_timeout=int(settings.shutdown_deadline),
    )
    server.serve()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="otpservice", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service (configuration from OTP_* variables)")
    commands.add_parser("check-config", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    settings = _settings_or_exit()
    if args.command == "check-config":
        tenants = ", ".join(t.name for t in settings.tenants)
        sys.stdout.write(
            f"configuration OK: env={settings.env} provider={settings.provider.name}"
            f" tenants=[{tenants}] argon2={settings.argon2_profile}\n"
        )
        return
    serve(settings)


if __name__ == "__main__":
    main()
