"""Loads the package's Lua scripts and registers each once (EVALSHA, reloaded on NOSCRIPT)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript

SCRIPT_NAMES = (
    "send_check",
    "send_commit",
    "check_begin",
    "check_finish",
    "cancel",
    "read",
    "record_delivery",
    "rate_take",
    "idempotency_reserve",
    "lane_sweep",
)


def script_source(name: str) -> str:
    lua = resources.files("otpservice.store") / "lua"
    prelude = (lua / "_prelude.lua").read_text(encoding="utf-8")
    return prelude + "\n" + (lua / f"{name}.lua").read_text(encoding="utf-8")


def register_scripts(client: Any) -> dict[str, AsyncScript]:
    return {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}
