"""Configuration: environment variables (OTP_*) and an optional TOML file, loaded once at start.

`load_settings(environ)` validates everything and raises ConfigError naming the bad setting.
Nothing else in the package reads the environment.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from otpservice.domain.codes import MAX_CODE_LENGTH
from otpservice.domain.message import DEFAULT_TEMPLATES, check_template
from otpservice.domain.phone import known_number_types
from otpservice.domain.policy import Policy, ttl_minutes
from otpservice.errors import ConfigError

Environment = Literal["development", "production"]
ProviderName = Literal["sandbox", "messageflow", "flowstates"]
ServerName = Literal["uvicorn", "granian"]

MIN_PRODUCTION_PEPPER_BYTES = 32


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
    metrics_dir: str | None = None
    """PROMETHEUS_MULTIPROC_DIR: set when several worker processes share /metrics."""

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


class _File(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    policy: dict[str, Any] = msgspec.field(default_factory=dict)
    tenants: list[_FileTenant] = msgspec.field(default_factory=list)


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
    """Read and validate every setting. Raises ConfigError naming the first bad one."""
    env_map = dict(os.environ if environ is None else environ)
    reader = _Env(env_map)
    env = reader.choice("OTP_ENV", ("development", "production"), "development")
    production = env == "production"

    redis_url = reader.text("OTP_REDIS_URL") or None
    if redis_url is not None:
        from otpservice.store.connection import RedisUrlError, parse_url  # noqa: PLC0415

        try:
            parse_url(redis_url)
        except RedisUrlError as exc:
            raise ConfigError(f"OTP_REDIS_URL {exc}") from None
    if production and redis_url is None:
        raise ConfigError("OTP_REDIS_URL is required in production (the embedded store is not)")

    pepper = _pepper(reader, production=production)
    profile = reader.choice(
        "OTP_ARGON2_PROFILE", tuple(ARGON2_PROFILES), default(Settings, "argon2_profile")
    )
    if production and profile == "test":
        raise ConfigError("OTP_ARGON2_PROFILE=test is for tests only and refused in production")

    provider = _provider(reader, production=production)
    public_url = reader.text("OTP_PUBLIC_URL") or None
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise ConfigError("OTP_PUBLIC_URL must be an http:// or https:// URL")

    tenants, dev_key = _tenants(reader, production=production)
    workers = reader.integer("OTP_WORKERS", default(Settings, "workers"), low=1, high=64)
    if workers > 1 and redis_url is None:
        raise ConfigError(
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
        metrics_dir=reader.text("PROMETHEUS_MULTIPROC_DIR") or None,
    )


def _lane(reader: _Env) -> LaneSettings:
    visibility = reader.number(
        "OTP_LANE_VISIBILITY_SECONDS", default(LaneSettings, "visibility_seconds"), low=1, high=600
    )
    sweep = reader.number(
        "OTP_LANE_SWEEP_SECONDS", default(LaneSettings, "sweep_seconds"), low=0.05, high=60
    )
    if sweep >= visibility:
        raise ConfigError("OTP_LANE_SWEEP_SECONDS must be shorter than OTP_LANE_VISIBILITY_SECONDS")
    return LaneSettings(
        concurrency=reader.integer(
            "OTP_LANE_CONCURRENCY", default(LaneSettings, "concurrency"), low=1, high=1024
        ),
        visibility_seconds=visibility,
        sweep_seconds=sweep,
    )


class _Env:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def choice(
        self, name: str, options: tuple[str, ...], default: str, *, upper: bool = False
    ) -> str:
        value = self.text(name) or default
        value = value.upper() if upper else value.lower()
        if value not in options:
            raise ConfigError(f"{name} must be one of {', '.join(options)}; got {value!r}")
        return value

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number; got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}; got {value}")
        return value

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number of seconds; got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}; got {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false; got {raw!r}")


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
        raise ConfigError("OTP_PROVIDER=sandbox is refused in production: name a real provider")
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
            raise ConfigError(
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
        raise ConfigError(
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
        sandbox_outcomes=(
            parse_outcomes(outcomes)
            if (outcomes := reader.text("OTP_SANDBOX_OUTCOMES"))
            else default(ProviderSettings, "sandbox_outcomes")
        ),
    )


SANDBOX_OUTCOMES = ("delivered", "undelivered", "expired", "rejected", "none")


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
        raise ConfigError(f"{name} is required for the configured provider")
    return value


def _required_url(reader: _Env, name: str) -> str:
    value = _required(reader, name)
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL")
    return value.rstrip("/")


def _tenants(reader: _Env, *, production: bool) -> tuple[tuple[Tenant, ...], Secret | None]:
    path = reader.text("OTP_CONFIG_FILE")
    file = _read_file(Path(path)) if path else _File()
    base_policy = _policy(file.policy, "policy")
    tenants = tuple(_tenant(t, i, base_policy) for i, t in enumerate(file.tenants))
    names = [t.name for t in tenants]
    if len(set(names)) != len(names):
        raise ConfigError("OTP_CONFIG_FILE: tenant names must be unique")
    digests = [d for t in tenants for d in t.api_key_digests]
    if len(set(digests)) != len(digests):
        raise ConfigError("OTP_CONFIG_FILE: an API key digest is listed twice")
    for tenant in tenants:
        _check_templates(tenant)
    if tenants:
        return tenants, None
    if production:
        raise ConfigError("OTP_CONFIG_FILE must define at least one tenant in production")
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


def _tenant(raw: _FileTenant, index: int, base_policy: Policy) -> Tenant:
    where = f"tenants[{index}] ({raw.name})"
    if not raw.name or not raw.name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"OTP_CONFIG_FILE: {where}.name must be letters, digits, '-' or '_'")
    digests: list[bytes] = []
    for hexdigest in raw.api_key_sha256:
        try:
            digest = bytes.fromhex(hexdigest)
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise ConfigError(
                f"OTP_CONFIG_FILE: {where}.api_key_sha256 must hold hex SHA-256 digests"
            )
        digests.append(digest)
    if not digests:
        raise ConfigError(f"OTP_CONFIG_FILE: {where}.api_key_sha256 must list at least one key")
    if not 1 <= len(raw.sender) <= 11 or not raw.sender.isascii():
        raise ConfigError(
            f"OTP_CONFIG_FILE: {where}.sender must be 1-11 ASCII characters (an SMS sender id)"
        )
    return Tenant(
        name=raw.name,
        api_key_digests=tuple(digests),
        sender=raw.sender,
        app_name=raw.app_name or raw.sender,
        default_locale=raw.default_locale.lower(),
        webotp_domain=raw.webotp_domain,
        templates=dict(raw.templates),
        policy=_policy(raw.policy, f"{where}.policy", base_policy),
    )
