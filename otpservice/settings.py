"""Configuration: environment variables (OTP_*) and an optional TOML file, loaded once at start.

`load_settings(environ)` validates everything and raises one ConfigError listing every bad
setting it found, each by name.
Nothing else in the package reads the environment.
"""

from __future__ import annotations

import base64
import difflib
import functools
import hashlib
import os
import secrets
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from otpservice.domain.codes import MAX_CODE_LENGTH
from otpservice.domain.message import DEFAULT_TEMPLATES, check_template
from otpservice.domain.phone import check_destination_allowed, known_number_types, parse_e164
from otpservice.domain.policy import Policy, ttl_minutes
from otpservice.errors import ConfigError, OtpError

Environment = Literal["development", "production"]
ProviderName = Literal["sandbox", "messageflow", "flowstates"]
ServerName = Literal["uvicorn", "granian"]
_T = TypeVar("_T")

MIN_PRODUCTION_PEPPER_BYTES = 32

ENVIRONMENT_VARIABLES: frozenset[str] = frozenset(
    {
        "OTP_ENV", "OTP_HOST", "OTP_PORT", "OTP_WORKERS", "OTP_SERVER", "OTP_LOG_LEVEL",
        "OTP_REDIS_URL", "OTP_REDIS_TIMEOUT_SECONDS", "OTP_PEPPER", "OTP_CONFIG_FILE",
        "OTP_DEV_API_KEY", "OTP_ARGON2_PROFILE", "OTP_HASH_THREADS", "OTP_HASH_QUEUE_SECONDS",
        "OTP_TRUSTED_PROXIES", "OTP_MAX_BODY_BYTES", "OTP_RETENTION_SECONDS", "OTP_PUBLIC_URL",
        "OTP_PROVIDER", "OTP_MESSAGEFLOW_PRIORITY_BASE_URL", "OTP_MESSAGEFLOW_PRIORITY_API_KEY",
        "OTP_MESSAGEFLOW_PRIORITY_APP_KEY", "OTP_FLOWSTATES_BASE_URL", "OTP_FLOWSTATES_API_KEY",
        "OTP_MESSAGEFLOW_WEBHOOK_SECRET", "OTP_FLOWSTATES_WEBHOOK_SECRET",
        "OTP_SANDBOX_WEBHOOK_SECRET", "OTP_PROVIDER_CONNECT_TIMEOUT_SECONDS",
        "OTP_PROVIDER_READ_TIMEOUT_SECONDS", "OTP_PROVIDER_TOTAL_TIMEOUT_SECONDS",
        "OTP_PROVIDER_BREAKER_FAILURES", "OTP_PROVIDER_BREAKER_RESET_SECONDS",
        "OTP_SANDBOX_ECHO", "OTP_SANDBOX_DLR_DELAY_SECONDS", "OTP_SANDBOX_OUTCOMES",
        "OTP_SHUTDOWN_DEADLINE_SECONDS", "OTP_LANE_CONCURRENCY", "OTP_LANE_VISIBILITY_SECONDS",
        "OTP_LANE_SWEEP_SECONDS", "OTP_EVENTS_POLL_SECONDS", "OTP_EVENTS_TIMEOUT_SECONDS",
        "OTP_EVENTS_RETRY_MIN_SECONDS", "OTP_EVENTS_RETRY_MAX_SECONDS", "OTP_EVENTS_CONCURRENCY",
        "OTP_EVENTS_LEASE_SECONDS", "OTP_CONSOLE",
    }
)  # fmt: skip
"""Every OTP_* variable the service reads: any other one set is most likely a typo, and
`check-config` says so (tests/unit/test_config_check.py keeps this list complete)."""


class Secret:
    """A secret value that never shows in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    def __bool__(self) -> bool:
        return bool(self._value)


class Argon2Params(msgspec.Struct, frozen=True, kw_only=True):
    time_cost: int
    memory_kib: int
    parallelism: int = 1
    hash_len: int = 32


ARGON2_PROFILES: dict[str, Argon2Params] = {
    # ~10 ms per hash on one core here: the pepper, not the cost, protects a stolen dump.
    "default": Argon2Params(time_cost=2, memory_kib=8 * 1024),
    # OWASP Password Storage Cheat Sheet's argon2id minimum: m=19 MiB, t=2, p=1.
    "owasp": Argon2Params(time_cost=2, memory_kib=19 * 1024),
    # RFC 9106's second recommended option: m=64 MiB, t=3, p=4.
    "rfc9106-low-memory": Argon2Params(time_cost=3, memory_kib=64 * 1024, parallelism=4),
    # argon2-cffi's CHEAPEST: only for tests.
    "test": Argon2Params(time_cost=1, memory_kib=8, parallelism=1),
}


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    api_key_digests: tuple[bytes, ...]
    """SHA-256 digests of the tenant's API keys."""
    sender: str
    app_name: str
    default_locale: str = "en"
    webotp_domain: str | None = None
    templates: Mapping[str, str] = msgspec.field(default_factory=dict)
    policy: Policy = Policy()
    test_numbers: Mapping[str, Secret] = msgspec.field(default_factory=dict)
    """E.164 number -> its fixed code: a start stores that code and sends no SMS (app-store
    review accounts, integrators' end-to-end tests)."""
    events_url: str | None = None
    """Where the tenant's event webhooks go (events.py); None: no events are queued."""
    events_secret: Secret | None = None
    """The Standard Webhooks signing secret (`whsec_` + base64 of at least 24 bytes)."""


class MessageFlowSettings(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str
    api_key: Secret
    app_key: Secret


class FlowstatesSettings(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str
    api_key: Secret


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    name: ProviderName
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    total_timeout: float = 8.0
    messageflow: MessageFlowSettings | None = None
    flowstates: FlowstatesSettings | None = None
    webhook_secrets: Mapping[str, Secret] = msgspec.field(default_factory=dict)
    sandbox_echo: bool = True
    """The sandbox prints each SMS to stdout: development only."""
    breaker_failures: int = 5
    """Consecutive unavailable answers that open the provider's circuit."""
    breaker_reset_seconds: float = 10.0
    """How long an open circuit waits before letting one probe through."""
    sandbox_dlr_delay: float = 1.0
    """Seconds after a sandbox send before its simulated delivery report is posted back."""
    sandbox_outcomes: tuple[tuple[str, int], ...] = (
        ("delivered", 90),
        ("undelivered", 4),
        ("expired", 3),
        ("rejected", 1),
        ("none", 2),
    )
    """Weighted outcomes of sandbox sends: delivered, undelivered, expired, rejected or none."""


class LaneSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The durable priority lane (lane.py)."""

    concurrency: int = 32
    """Provider calls in flight at once, per process."""
    visibility_seconds: float = 10.0
    """A send its process has neither finished nor kept alive for this long is claimed by
    another process (the owner renews its claim every third of this)."""
    sweep_seconds: float = 1.0
    """How often each process claims abandoned sends and refreshes the lane gauges."""


class EventSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Tenant event webhooks (events.py)."""

    poll_seconds: float = 0.5
    """How often each process takes due events from the outbox of every shard."""
    timeout_seconds: float = 5.0
    """One delivery attempt: connect, send and read the answer."""
    retry_min_seconds: float = 5.0
    """The first retry's delay; each later one waits as long as the event has waited so far."""
    retry_max_seconds: float = 600.0
    """The longest delay between two attempts (a receiver back up gets its events within it)."""
    give_up_seconds: float = 24 * 3600.0
    """An event still undelivered this long after it happened is dropped (and counted)."""
    concurrency: int = 16
    """Deliveries in flight at once, per process."""
    lease_seconds: float = 30.0
    """A process that claimed an event has this long to settle it; if it dies, another process
    takes the event once the lease ends."""


class SupportUser(msgspec.Struct, frozen=True, kw_only=True):
    """A support console user ([[support_users]] in the TOML file)."""

    name: str
    password_hash: Secret
    """An argon2id PHC string made by `otpservice hash-password`."""
    tenants: tuple[str, ...]
    """The tenants whose verifications this user may look up."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting of the service. A default written here is the one the loader uses."""

    env: Environment
    host: str
    port: int = 8000
    workers: int = 1
    server: ServerName = "uvicorn"
    """The ASGI server `otpservice serve` runs: uvicorn (uvloop, httptools) or granian."""
    redis_url: str | None
    """None: the embedded in-process store (development only)."""
    redis_timeout: float = 0.5
    pepper: Secret
    public_url: str | None
    tenants: tuple[Tenant, ...]
    provider: ProviderSettings
    argon2: Argon2Params
    argon2_profile: str = "default"
    hash_threads: int
    hash_queue_seconds: float = 0.1
    """A request that would wait longer than this for argon2 is shed (503 overloaded)."""
    trusted_proxies: int = 0
    log_level: str = "INFO"
    max_body_bytes: int = 16 * 1024
    retention_seconds: int = 3600
    """How long a finished or expired verification stays readable by GET /otp/{id}."""
    idempotency_ttl_seconds: int = 24 * 3600
    dev_api_key: Secret | None = None
    """Development mode's generated key, shown once at start."""
    shutdown_deadline: float = 20.0
    """Seconds a worker may take to finish in-flight requests after SIGTERM."""
    lane: LaneSettings = msgspec.field(default_factory=LaneSettings)
    events: EventSettings = msgspec.field(default_factory=EventSettings)
    metrics_dir: str | None = None
    """PROMETHEUS_MULTIPROC_DIR: set when several worker processes share /metrics."""
    console: bool = False
    """The support console at /console/ (OTP_CONSOLE: on in development, off in production)."""
    support_users: tuple[SupportUser, ...] = ()

    @property
    def production(self) -> bool:
        return self.env == "production"


class _FileTenant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    api_key_sha256: list[str]
    sender: str
    app_name: str | None = None
    default_locale: str = "en"
    webotp_domain: str | None = None
    templates: dict[str, str] = msgspec.field(default_factory=dict)
    policy: dict[str, Any] = msgspec.field(default_factory=dict)
    events_url: str | None = None
    events_secret: str | None = None
    test_numbers: dict[str, str] = msgspec.field(default_factory=dict)


class _File(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    policy: dict[str, Any] = msgspec.field(default_factory=dict)
    tenants: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """Each read as a _FileTenant on its own (`_tenant`), so one tenant's mistake does not hide
    another's."""
    support_users: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """The support console's users (`_support_users`)."""


class _FileSupportUser(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    password_hash: str
    tenants: list[str]


def default(struct: type[msgspec.Struct], name: str) -> Any:
    """The default `struct` declares for its field `name`: each default is written once, there."""
    for field in msgspec.structs.fields(struct):
        if field.name == name:
            if field.default is not msgspec.NODEFAULT:
                return field.default
            if field.default_factory is not msgspec.NODEFAULT:
                return field.default_factory()
    raise LookupError(f"{struct.__name__}.{name} has no default")


def api_key_digest(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting. Raises one ConfigError that lists every problem found
    (each names its setting), not only the first."""
    reader = _Env(dict(os.environ if environ is None else environ))
    settings = reader.attempt(lambda: _read_settings(reader), None)
    if reader.problems or settings is None:
        raise ConfigError(*reader.problems)
    return settings


def _read_settings(reader: _Env) -> Settings:
    """Every setting; a problem is reported to `reader` and reading goes on where it can."""
    env = reader.choice("OTP_ENV", ("development", "production"), "development")
    production = env == "production"

    redis_url = reader.text("OTP_REDIS_URL") or None
    if redis_url is not None:
        from otpservice.store.connection import RedisUrlError, parse_url  # noqa: PLC0415

        try:
            parse_url(redis_url)
        except RedisUrlError as exc:
            reader.report(f"OTP_REDIS_URL {exc}")
    if production and redis_url is None:
        reader.report("OTP_REDIS_URL is required in production (the embedded store is not)")

    # A placeholder stands in for a bad pepper: nothing is hashed before the problems are raised.
    pepper = reader.attempt(lambda: _pepper(reader, production=production), Secret(b"?"))
    profile = reader.choice(
        "OTP_ARGON2_PROFILE", tuple(ARGON2_PROFILES), default(Settings, "argon2_profile")
    )
    if production and profile == "test":
        reader.report("OTP_ARGON2_PROFILE=test is for tests only and refused in production")

    provider = _provider(reader, production=production)
    public_url = reader.text("OTP_PUBLIC_URL") or None
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        reader.report("OTP_PUBLIC_URL must be an http:// or https:// URL")

    file = _config_file(reader)
    tenants, dev_key = _tenants(reader, file, production=production)
    workers = reader.integer("OTP_WORKERS", default(Settings, "workers"), low=1, high=64)
    if workers > 1 and redis_url is None:
        reader.report(
            "OTP_WORKERS > 1 needs OTP_REDIS_URL: the embedded store lives inside one process"
        )

    return Settings(
        env=env,  # type: ignore[arg-type]
        host=reader.text("OTP_HOST") or ("0.0.0.0" if production else "127.0.0.1"),  # noqa: S104
        port=reader.integer("OTP_PORT", default(Settings, "port"), low=1, high=65535),
        workers=workers,
        server=reader.choice(  # type: ignore[arg-type]
            "OTP_SERVER", ("uvicorn", "granian"), default(Settings, "server")
        ),
        redis_url=redis_url,
        redis_timeout=reader.number(
            "OTP_REDIS_TIMEOUT_SECONDS", default(Settings, "redis_timeout"), low=0.05, high=30
        ),
        pepper=pepper,
        public_url=public_url.rstrip("/") if public_url else None,
        tenants=tenants,
        provider=provider,
        argon2=ARGON2_PROFILES[profile],
        argon2_profile=profile,
        hash_threads=reader.integer("OTP_HASH_THREADS", os.cpu_count() or 1, low=1, high=256),
        hash_queue_seconds=reader.number(
            "OTP_HASH_QUEUE_SECONDS", default(Settings, "hash_queue_seconds"), low=0.001, high=30
        ),
        trusted_proxies=reader.integer(
            "OTP_TRUSTED_PROXIES", default(Settings, "trusted_proxies"), low=0, high=10
        ),
        log_level=reader.choice(
            "OTP_LOG_LEVEL",
            ("DEBUG", "INFO", "WARNING", "ERROR"),
            default(Settings, "log_level"),
            upper=True,
        ),
        max_body_bytes=reader.integer(
            "OTP_MAX_BODY_BYTES", default(Settings, "max_body_bytes"), low=1024, high=1 << 20
        ),
        retention_seconds=reader.integer(
            "OTP_RETENTION_SECONDS",
            default(Settings, "retention_seconds"),
            low=60,
            high=30 * 86400,
        ),
        dev_api_key=dev_key,
        shutdown_deadline=reader.number(
            "OTP_SHUTDOWN_DEADLINE_SECONDS", default(Settings, "shutdown_deadline"), low=1, high=600
        ),
        lane=_lane(reader),
        events=_events(reader),
        metrics_dir=reader.text("PROMETHEUS_MULTIPROC_DIR") or None,
        console=reader.flag("OTP_CONSOLE", default=not production),
        support_users=_support_users(reader, file, tenants),
    )


def _lane(reader: _Env) -> LaneSettings:
    visibility = reader.number(
        "OTP_LANE_VISIBILITY_SECONDS", default(LaneSettings, "visibility_seconds"), low=1, high=600
    )
    sweep = reader.number(
        "OTP_LANE_SWEEP_SECONDS", default(LaneSettings, "sweep_seconds"), low=0.05, high=60
    )
    if sweep >= visibility:
        reader.report("OTP_LANE_SWEEP_SECONDS must be shorter than OTP_LANE_VISIBILITY_SECONDS")
    return LaneSettings(
        concurrency=reader.integer(
            "OTP_LANE_CONCURRENCY", default(LaneSettings, "concurrency"), low=1, high=1024
        ),
        visibility_seconds=visibility,
        sweep_seconds=sweep,
    )


def _events(reader: _Env) -> EventSettings:
    retry_min = reader.number(
        "OTP_EVENTS_RETRY_MIN_SECONDS", default(EventSettings, "retry_min_seconds"), low=0.05,
        high=3600,
    )  # fmt: skip
    retry_max = reader.number(
        "OTP_EVENTS_RETRY_MAX_SECONDS", default(EventSettings, "retry_max_seconds"), low=0.1,
        high=86400,
    )  # fmt: skip
    timeout = reader.number(
        "OTP_EVENTS_TIMEOUT_SECONDS", default(EventSettings, "timeout_seconds"), low=0.1, high=60
    )
    lease = reader.number(
        "OTP_EVENTS_LEASE_SECONDS", default(EventSettings, "lease_seconds"), low=1, high=3600
    )
    if lease < 2 * timeout:
        reader.report("OTP_EVENTS_LEASE_SECONDS must be at least twice OTP_EVENTS_TIMEOUT_SECONDS")
    if retry_min > retry_max:
        reader.report("OTP_EVENTS_RETRY_MIN_SECONDS must not exceed OTP_EVENTS_RETRY_MAX_SECONDS")
    return EventSettings(
        poll_seconds=reader.number(
            "OTP_EVENTS_POLL_SECONDS", default(EventSettings, "poll_seconds"), low=0.05, high=60
        ),
        timeout_seconds=timeout,
        retry_min_seconds=retry_min,
        retry_max_seconds=retry_max,
        give_up_seconds=default(EventSettings, "give_up_seconds"),
        concurrency=reader.integer(
            "OTP_EVENTS_CONCURRENCY", default(EventSettings, "concurrency"), low=1, high=256
        ),
        lease_seconds=lease,
    )


class _Env:
    """Reads the environment and collects every problem instead of stopping at the first: a
    bad value is reported and its default stands in, so the rest is still checked and one run
    of `check-config` names every mistake (load_settings raises them together at the end)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def report(self, *problems: str) -> None:
        self.problems.extend(problems)

    def attempt(self, step: Callable[[], _T], fallback: _T) -> _T:
        """`step()`, or `fallback` once its ConfigError is reported."""
        try:
            return step()
        except ConfigError as exc:
            self.report(*exc.problems)
            return fallback

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def choice(
        self, name: str, options: tuple[str, ...], default: str, *, upper: bool = False
    ) -> str:
        value = self.text(name) or default
        value = value.upper() if upper else value.lower()
        if value not in options:
            self.report(f"{name} must be one of {', '.join(options)}; got {value!r}")
            return default
        return value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.report(f"{name} must be a whole number; got {raw!r}")
            return default
        if not low <= value <= high:
            self.report(f"{name} must be between {low} and {high}; got {value}")
            return default
        return value

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.report(f"{name} must be a number of seconds; got {raw!r}")
            return default
        if not low <= value <= high:
            self.report(f"{name} must be between {low} and {high}; got {value}")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        self.report(f"{name} must be true or false; got {raw!r}")
        return default


def _pepper(reader: _Env, *, production: bool) -> Secret:
    raw = reader.env.get("OTP_PEPPER", "")
    if not raw:
        if production:
            raise ConfigError(
                f"OTP_PEPPER is required in production ({MIN_PRODUCTION_PEPPER_BYTES}+ bytes;"
                " e.g. 'base64:' + 32 random bytes in base64)"
            )
        return Secret(secrets.token_bytes(32))
    if raw.startswith("base64:"):
        try:
            value = base64.b64decode(raw.removeprefix("base64:"), validate=True)
        except ValueError:
            raise ConfigError("OTP_PEPPER has a 'base64:' prefix but is not valid base64") from None
    else:
        value = raw.encode()
    if production and len(value) < MIN_PRODUCTION_PEPPER_BYTES:
        raise ConfigError(
            f"OTP_PEPPER must be at least {MIN_PRODUCTION_PEPPER_BYTES} bytes in production;"
            f" got {len(value)}"
        )
    if not value:
        raise ConfigError("OTP_PEPPER is empty")
    return Secret(value)


def _provider(reader: _Env, *, production: bool) -> ProviderSettings:
    name = reader.choice(
        "OTP_PROVIDER",
        ("sandbox", "messageflow", "flowstates"),
        "messageflow" if production else "sandbox",
    )
    if production and name == "sandbox":
        reader.report("OTP_PROVIDER=sandbox is refused in production: name a real provider")
    messageflow = None
    flowstates = None
    if reader.text("OTP_MESSAGEFLOW_PRIORITY_BASE_URL") or name == "messageflow":
        messageflow = MessageFlowSettings(
            base_url=_required_url(reader, "OTP_MESSAGEFLOW_PRIORITY_BASE_URL"),
            api_key=Secret(_required(reader, "OTP_MESSAGEFLOW_PRIORITY_API_KEY").encode()),
            app_key=Secret(_required(reader, "OTP_MESSAGEFLOW_PRIORITY_APP_KEY").encode()),
        )
    if reader.text("OTP_FLOWSTATES_BASE_URL") or name == "flowstates":
        flowstates = FlowstatesSettings(
            base_url=_required_url(reader, "OTP_FLOWSTATES_BASE_URL"),
            api_key=Secret(_required(reader, "OTP_FLOWSTATES_API_KEY").encode()),
        )
    webhook_secrets: dict[str, Secret] = {}
    for provider in ("messageflow", "flowstates", "sandbox"):
        secret = reader.text(f"OTP_{provider.upper()}_WEBHOOK_SECRET")
        if secret:
            webhook_secrets[provider] = Secret(secret.encode())
        elif provider == "sandbox":
            # The simulator posts its reports to this process: a fresh secret per start.
            webhook_secrets[provider] = Secret(secrets.token_urlsafe(24).encode())
        elif production and provider == name:
            reader.report(
                f"OTP_{provider.upper()}_WEBHOOK_SECRET is required in production: without it"
                " delivery reports cannot be authenticated"
            )
    connect = reader.number(
        "OTP_PROVIDER_CONNECT_TIMEOUT_SECONDS",
        default(ProviderSettings, "connect_timeout"),
        low=0.1,
        high=30,
    )
    read = reader.number(
        "OTP_PROVIDER_READ_TIMEOUT_SECONDS",
        default(ProviderSettings, "read_timeout"),
        low=0.1,
        high=60,
    )
    total = reader.number(
        "OTP_PROVIDER_TOTAL_TIMEOUT_SECONDS",
        default(ProviderSettings, "total_timeout"),
        low=0.1,
        high=120,
    )
    if total < max(connect, read):
        reader.report(
            "OTP_PROVIDER_TOTAL_TIMEOUT_SECONDS must be at least the connect and read timeouts"
        )
    return ProviderSettings(
        name=name,  # type: ignore[arg-type]
        connect_timeout=connect,
        read_timeout=read,
        total_timeout=total,
        messageflow=messageflow,
        flowstates=flowstates,
        webhook_secrets=webhook_secrets,
        sandbox_echo=reader.flag("OTP_SANDBOX_ECHO", default=not production),
        breaker_failures=reader.integer(
            "OTP_PROVIDER_BREAKER_FAILURES",
            default(ProviderSettings, "breaker_failures"),
            low=1,
            high=1000,
        ),
        breaker_reset_seconds=reader.number(
            "OTP_PROVIDER_BREAKER_RESET_SECONDS",
            default(ProviderSettings, "breaker_reset_seconds"),
            low=0.1,
            high=600,
        ),
        sandbox_dlr_delay=reader.number(
            "OTP_SANDBOX_DLR_DELAY_SECONDS",
            default(ProviderSettings, "sandbox_dlr_delay"),
            low=0,
            high=600,
        ),
        sandbox_outcomes=_sandbox_outcomes(reader),
    )


SANDBOX_OUTCOMES = ("delivered", "undelivered", "expired", "rejected", "none")


def _sandbox_outcomes(reader: _Env) -> tuple[tuple[str, int], ...]:
    raw = reader.text("OTP_SANDBOX_OUTCOMES")
    fallback: tuple[tuple[str, int], ...] = default(ProviderSettings, "sandbox_outcomes")
    return reader.attempt(lambda: parse_outcomes(raw), fallback) if raw else fallback


def parse_outcomes(raw: str) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for part in raw.split(","):
        name, _, weight = part.strip().partition("=")
        if name not in SANDBOX_OUTCOMES or not (weight.isascii() and weight.isdigit()):
            raise ConfigError(
                "OTP_SANDBOX_OUTCOMES must look like 'delivered=90,undelivered=5,none=5' with"
                f" outcomes from {', '.join(SANDBOX_OUTCOMES)}; got {part.strip()!r}"
            )
        out.append((name, int(weight)))
    if sum(w for _, w in out) <= 0:
        raise ConfigError("OTP_SANDBOX_OUTCOMES needs at least one positive weight")
    return tuple(out)


def _required(reader: _Env, name: str) -> str:
    value = reader.text(name)
    if not value:
        reader.report(f"{name} is required for the configured provider")
    return value


def _required_url(reader: _Env, name: str) -> str:
    value = _required(reader, name)
    if value and not value.startswith(("http://", "https://")):
        reader.report(f"{name} must be an http:// or https:// URL")
    return value.rstrip("/")


def _config_file(reader: _Env) -> _File | None:
    """OTP_CONFIG_FILE read once (an empty one without it); None when it cannot be read, which
    is reported: then nothing in it can be checked."""
    path = reader.text("OTP_CONFIG_FILE")
    return reader.attempt(lambda: _read_file(Path(path)), None) if path else _File()


def _tenants(
    reader: _Env, file: _File | None, *, production: bool
) -> tuple[tuple[Tenant, ...], Secret | None]:
    if file is None:
        return (), None  # unreadable: reported, and nothing in it can be checked
    base_policy = reader.attempt(lambda: _policy(file.policy, "policy"), Policy())
    read = [_tenant(reader, raw, i, base_policy) for i, raw in enumerate(file.tenants)]
    tenants = tuple(t for t in read if t is not None)
    names = [t.name for t in tenants]
    if len(set(names)) != len(names):
        reader.report("OTP_CONFIG_FILE: tenant names must be unique")
    digests = [d for t in tenants for d in t.api_key_digests]
    if len(set(digests)) != len(digests):
        reader.report("OTP_CONFIG_FILE: an API key digest is listed twice")
    for tenant in tenants:
        reader.attempt(functools.partial(_check_templates, tenant), None)
        if production and tenant.events_url and not tenant.events_url.startswith("https://"):
            reader.report(
                f"OTP_CONFIG_FILE: tenant {tenant.name}: events_url must be https:// in production"
            )
    if file.tenants:
        return tenants, None
    if production:
        reader.report("OTP_CONFIG_FILE must define at least one tenant in production")
        return (), None
    # Development: one tenant whose key is either given or generated and shown once at start.
    key = reader.text("OTP_DEV_API_KEY") or f"dev_{secrets.token_urlsafe(24)}"
    dev = Tenant(
        name="dev",
        api_key_digests=(api_key_digest(key),),
        sender="otpservice",
        app_name="otpservice",
        policy=base_policy,
    )
    return (dev,), Secret(key.encode())


def _support_users(
    reader: _Env, file: _File | None, tenants: tuple[Tenant, ...]
) -> tuple[SupportUser, ...]:
    """[[support_users]]: each a unique name, an argon2id hash and tenants that exist."""
    if file is None:
        return ()  # unreadable: already reported
    known = {t.name for t in tenants}
    users: list[SupportUser] = []
    for index, raw in enumerate(file.support_users):
        where = f"OTP_CONFIG_FILE: support_users[{index}]"
        try:
            entry = msgspec.convert(raw, _FileSupportUser)
        except msgspec.ValidationError as exc:
            reader.report(f"{where}: {exc}")
            continue
        name = entry.name.strip()
        if not name or len(name) > 64 or not name.isprintable() or name != entry.name:
            reader.report(f"{where}.name must be 1-64 printable characters, no outer spaces")
            continue
        where = f"{where} ({name})"
        if not _is_argon2id(entry.password_hash):
            reader.report(
                f"{where}.password_hash must be an argon2id hash made by `otpservice"
                " hash-password` ($argon2id$...)"
            )
            continue
        unknown = sorted(set(entry.tenants) - known)
        if unknown or not entry.tenants:
            reader.report(f"{where}.tenants must name configured tenants; unknown: {unknown}")
            continue
        users.append(
            SupportUser(
                name=name,
                password_hash=Secret(entry.password_hash.encode()),
                tenants=tuple(dict.fromkeys(entry.tenants)),
            )
        )
    names = [u.name for u in users]
    if len(set(names)) != len(names):
        reader.report("OTP_CONFIG_FILE: support_users names must be unique")
    return tuple(users)


def _is_argon2id(phc: str) -> bool:
    from argon2 import Type, extract_parameters  # noqa: PLC0415
    from argon2.exceptions import InvalidHashError  # noqa: PLC0415

    try:
        return phc.startswith("$argon2id$") and extract_parameters(phc).type is Type.ID
    except (InvalidHashError, ValueError):
        return False


def _check_templates(tenant: Tenant) -> None:
    """Every SMS text the tenant can send must fit one segment at the longest code length."""
    templates = {**DEFAULT_TEMPLATES, **tenant.templates}
    if tenant.default_locale not in templates:
        raise ConfigError(
            f"OTP_CONFIG_FILE: tenant {tenant.name}: default_locale {tenant.default_locale!r}"
            f" has no template (built in: {', '.join(sorted(DEFAULT_TEMPLATES))})"
        )
    for locale, template in templates.items():
        try:
            check_template(
                template,
                locale=locale,
                app=tenant.app_name,
                max_code_length=MAX_CODE_LENGTH,
                minutes=ttl_minutes(tenant.policy),
                webotp_domain=tenant.webotp_domain,
            )
        except ConfigError as exc:
            raise ConfigError(f"OTP_CONFIG_FILE: tenant {tenant.name}: {exc}") from None


def _read_file(path: Path) -> _File:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"OTP_CONFIG_FILE: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        # A directory, no permission, not UTF-8 text: still a message, never a traceback.
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"OTP_CONFIG_FILE: {path} cannot be read ({reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"OTP_CONFIG_FILE: {path} is not valid TOML: {exc}") from None
    try:
        return msgspec.convert(raw, _File)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"OTP_CONFIG_FILE: {exc}") from None


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`override` over `base`, table by table (a tenant's [tenants.policy.fraud.country] keeps
    the global fraud settings it does not name)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _policy(raw: Mapping[str, Any], where: str, base: Policy | None = None) -> Policy:
    merged = _deep_merge(msgspec.to_builtins(base) if base is not None else {}, raw)
    try:
        policy = msgspec.convert(merged, Policy)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"OTP_CONFIG_FILE: {where}: {exc}") from None
    unknown = set(policy.blocked_number_types) - known_number_types()
    if unknown:
        raise ConfigError(
            f"OTP_CONFIG_FILE: {where}.blocked_number_types: unknown types {sorted(unknown)}"
        )
    bad_regions = [r for r in policy.allowed_countries if len(r) != 2 or not r.isupper()]
    if bad_regions:
        raise ConfigError(
            f"OTP_CONFIG_FILE: {where}.allowed_countries: use ISO 3166 alpha-2 codes such as 'PL';"
            f" got {bad_regions}"
        )
    return policy


def _tenant(
    reader: _Env, table: Mapping[str, Any], index: int, base_policy: Policy
) -> Tenant | None:
    """One [[tenants]] table, every problem in it reported; None when it has any."""
    label = table.get("name") if isinstance(table.get("name"), str) else "?"
    where = f"tenants[{index}] ({label})"
    found_before = len(reader.problems)
    raw = _file_tenant(reader, table, where)
    if raw is None:
        return None
    if not raw.name or not raw.name.replace("-", "").replace("_", "").isalnum():
        reader.report(f"OTP_CONFIG_FILE: {where}.name must be letters, digits, '-' or '_'")
    digests: list[bytes] = []
    for hexdigest in raw.api_key_sha256:
        try:
            digest = bytes.fromhex(hexdigest)
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            reader.report(f"OTP_CONFIG_FILE: {where}.api_key_sha256 must hold hex SHA-256 digests")
            break
        digests.append(digest)
    if not raw.api_key_sha256:
        reader.report(f"OTP_CONFIG_FILE: {where}.api_key_sha256 must list at least one key")
    if not 1 <= len(raw.sender) <= 11 or not raw.sender.isascii():
        reader.report(
            f"OTP_CONFIG_FILE: {where}.sender must be 1-11 ASCII characters (an SMS sender id)"
        )
    policy = reader.attempt(lambda: _policy(raw.policy, f"{where}.policy", base_policy), None)
    events_secret = reader.attempt(lambda: _events_secret(raw, where), None)
    if policy is None:  # reported; its code_length is not known to check the test numbers
        return None
    test_numbers = _test_numbers(reader, raw.test_numbers, where, policy)
    if len(reader.problems) > found_before:
        return None
    return Tenant(
        name=raw.name,
        api_key_digests=tuple(digests),
        sender=raw.sender,
        app_name=raw.app_name or raw.sender,
        default_locale=raw.default_locale.lower(),
        webotp_domain=raw.webotp_domain,
        templates=dict(raw.templates),
        policy=policy,
        test_numbers=test_numbers,
        events_url=raw.events_url,
        events_secret=events_secret,
    )


_TENANT_KEYS = frozenset(f.name for f in msgspec.structs.fields(_FileTenant))


def _file_tenant(reader: _Env, table: Mapping[str, Any], where: str) -> _FileTenant | None:
    """The table as a _FileTenant. Unknown keys (typos, mostly) are reported with the closest
    known one, and the rest of the table is still read."""
    for key in sorted(set(table) - _TENANT_KEYS):
        close = difflib.get_close_matches(key, sorted(_TENANT_KEYS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        reader.report(f"OTP_CONFIG_FILE: {where}: unknown key {key!r}{hint}")
    known = {key: value for key, value in table.items() if key in _TENANT_KEYS}
    try:
        return msgspec.convert(known, _FileTenant)
    except msgspec.ValidationError as exc:
        reader.report(f"OTP_CONFIG_FILE: {where}: {exc}")
        return None


def _test_numbers(
    reader: _Env, raw: Mapping[str, str], where: str, policy: Policy
) -> dict[str, Secret]:
    """number -> fixed code. Each number must be one a start would accept (valid, and allowed
    by the tenant's policy), each code exactly the tenant's code_length in digits. A code is
    never echoed in a message: it is as good as a password for that number."""
    numbers: dict[str, Secret] = {}
    for number, code in raw.items():
        try:
            destination = parse_e164(number)
            check_destination_allowed(destination, policy)
        except OtpError as exc:
            reader.report(f"OTP_CONFIG_FILE: {where}.test_numbers: {number!r}: {exc.detail}")
            continue
        if destination.e164 in numbers:
            reader.report(
                f"OTP_CONFIG_FILE: {where}.test_numbers: {number!r} is listed twice"
                f" (as {destination.e164})"
            )
        if len(code) != policy.code_length or not (code.isascii() and code.isdigit()):
            reader.report(
                f"OTP_CONFIG_FILE: {where}.test_numbers: the code of {number!r} must be exactly"
                f" {policy.code_length} digits (the tenant's code_length)"
            )
            continue
        numbers[destination.e164] = Secret(code.encode())
    return numbers


EVENTS_SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks secret's prefix
EVENTS_SECRET_MIN_BYTES = 24


def _events_secret(raw: _FileTenant, where: str) -> Secret | None:
    """Both or neither of events_url and events_secret; the URL absolute http(s) (https in
    production: checked with the environment in `_check_events`), the secret in Standard
    Webhooks form."""
    if (raw.events_url is None) != (raw.events_secret is None):
        raise ConfigError(f"OTP_CONFIG_FILE: {where}: set both events_url and events_secret")
    if raw.events_url is None or raw.events_secret is None:
        return None
    if not raw.events_url.startswith(("https://", "http://")) or " " in raw.events_url:
        raise ConfigError(f"OTP_CONFIG_FILE: {where}.events_url must be an http(s) URL")
    body = raw.events_secret.removeprefix(EVENTS_SECRET_PREFIX)
    try:
        key = base64.b64decode(body, validate=True)
    except ValueError:
        key = b""
    if not raw.events_secret.startswith(EVENTS_SECRET_PREFIX) or len(key) < EVENTS_SECRET_MIN_BYTES:
        raise ConfigError(
            f"OTP_CONFIG_FILE: {where}.events_secret must be 'whsec_' and the base64 of at least"
            f' {EVENTS_SECRET_MIN_BYTES} random bytes (python -c "import base64, os;'
            " print('whsec_' + base64.b64encode(os.urandom(32)).decode())\")"
        )
    return Secret(raw.events_secret.encode())
