"""Command line: `otpservice serve`, `check-config`, `hash-password` and `--version`.
The only reader of os.environ."""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from otpservice import __version__
from otpservice.config_check import environment_warnings, settings_warnings
from otpservice.errors import ConfigError
from otpservice.settings import Settings, load_settings

log = logging.getLogger("otpservice")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_RULE = "=" * 80
EXIT_CONFIG_ERRORS = 1


def banner(settings: Settings, environ: Mapping[str, str]) -> str:
    """What development mode really uses, from the settings loaded: never a secret (but the
    generated API key, which is shown once because nobody else knows it)."""
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host  # noqa: S104
    base = f"http://{host}:{settings.port}"
    if settings.redis_url is None:
        store = "embedded in-process Redis emulation (data is lost on exit)"
    else:
        store = f"Redis at {redis_location(settings.redis_url)} (OTP_REDIS_URL)"
    pepper = (
        "from OTP_PEPPER"
        if environ.get("OTP_PEPPER")
        else "random, new on every start (codes pending at a restart no longer match)"
    )
    key_lines, key = _api_key_lines(settings, environ)
    lines = [
        "",
        _RULE,
        f"  otpservice {__version__} is running in DEVELOPMENT MODE",
        f"  - store:  {store}",
        f"  - SMS:    {_sms_line(settings)}",
        f"  - pepper: {pepper}",
        *(
            [f"  - inbox:  GET {base}/dev/inbox?to=+48601234567 (with the API key) lists its SMS"]
            if settings.provider.name == "sandbox"
            else []
        ),
        "  Never use this mode for real users: set OTP_ENV=production.",
        "",
        *key_lines,
        "",
        "  Try it:",
        f'    curl -s {base}/otp/start -H "Authorization: Bearer {key}" \\',
        "         -H 'Content-Type: application/json' -d '{\"to\": \"+48601234567\"}'",
        _RULE,
        "",
    ]
    return "\n".join(lines)


def redis_location(url: str) -> str:
    """The URL without its credentials or query (a sentinel password may be there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _sms_line(settings: Settings) -> str:
    provider = settings.provider
    if provider.name == "messageflow" and provider.messageflow is not None:
        return f"MessageFlow Priority at {provider.messageflow.base_url}: REAL SMS are sent"
    if provider.name == "flowstates" and provider.flowstates is not None:
        return f"Flowstates at {provider.flowstates.base_url}: REAL SMS are sent"
    if provider.sandbox_echo:
        return "sandbox provider (nothing is sent); each SMS, code included, is printed below"
    return "sandbox provider (nothing is sent); SMS are not printed (OTP_SANDBOX_ECHO=off)"


def _api_key_lines(settings: Settings, environ: Mapping[str, str]) -> tuple[list[str], str]:
    """The lines about the API key, and what the curl example puts in its place."""
    if settings.dev_api_key is not None and not environ.get("OTP_DEV_API_KEY", "").strip():
        key = settings.dev_api_key.reveal().decode()
        return [f"  Development API key (generated, shown once):  {key}"], key
    if settings.dev_api_key is not None:
        return ["  API key: the value of OTP_DEV_API_KEY"], "$OTP_DEV_API_KEY"
    names = ", ".join(t.name for t in settings.tenants)
    where = environ.get("OTP_CONFIG_FILE", "OTP_CONFIG_FILE")
    return [f"  API keys: those of the tenants in {where} ({names}); not shown"], "$KEY"


def _write_list(stream: TextIO, what: str, items: list[str] | tuple[str, ...]) -> None:
    if items:
        stream.write(f"otpservice: {len(items)} {what}{'s' if len(items) > 1 else ''}:\n")
        stream.writelines(f"  - {item}\n" for item in items)


def check_config(environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    """Every configuration error in one run, then every warning: 0 when there is no error
    (warnings alone do not fail it), 1 when there is one."""
    warnings = environment_warnings(environ)
    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        _write_list(err, "configuration error", exc.problems)
        _write_list(err, "warning", warnings)
        return EXIT_CONFIG_ERRORS
    warnings += settings_warnings(settings, environ)
    tenants = ", ".join(t.name for t in settings.tenants)
    out.write(
        f"configuration OK: env={settings.env} provider={settings.provider.name}"
        f" tenants=[{tenants}] argon2={settings.argon2_profile}\n"
    )
    _write_list(err, "warning", warnings)
    return 0


def _settings_or_exit() -> Settings:
    try:
        return load_settings(os.environ)
    except ConfigError as exc:
        _write_list(sys.stderr, "configuration error", exc.problems)
        _write_list(sys.stderr, "warning", environment_warnings(os.environ))
        raise SystemExit(EXIT_CONFIG_ERRORS) from None


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
    for warning in environment_warnings(os.environ) + settings_warnings(settings, os.environ):
        log.warning("configuration: %s", warning)
    if not settings.production:
        sys.stdout.write(banner(settings, os.environ))
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
    parser.add_argument("--version", action="version", version=f"otpservice {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP service (configuration from OTP_* variables)")
    commands.add_parser(
        "check-config",
        help="list every configuration error and warning, and exit (1 when there is an error)",
    )
    hashing = commands.add_parser(
        "hash-password",
        help="print the argon2id hash of a support console user's password ([[support_users]])",
    )
    hashing.add_argument(
        "--stdin",
        action="store_true",
        help="read the password from the first line of stdin (scripts) instead of a prompt",
    )
    args = parser.parse_args(argv)
    if args.command == "check-config":
        raise SystemExit(check_config(os.environ, sys.stdout, sys.stderr))
    if args.command == "hash-password":
        raise SystemExit(hash_password_command(from_stdin=args.stdin))
    serve(_settings_or_exit())


def hash_password_command(*, from_stdin: bool) -> int:
    """Reads a password without echo (or from stdin), prints its argon2id PHC string."""
    import getpass  # noqa: PLC0415

    from otpservice.console.passwords import hash_password  # noqa: PLC0415

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            sys.stderr.write("otpservice: the two passwords differ\n")
            return 2
    else:
        sys.stderr.write("otpservice: no terminal to ask on; pipe the password with --stdin\n")
        return 2
    try:
        sys.stdout.write(hash_password(password) + "\n")
    except ValueError as exc:
        sys.stderr.write(f"otpservice: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    main()
