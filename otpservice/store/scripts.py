"""Loads the package's Lua scripts and registers each once (EVALSHA, reloaded on NOSCRIPT).

Each script is the names of store/schema.py (`lua_constants`), the shared helpers of
`_prelude.lua`, then the script itself.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript

from otpservice.store.schema import lua_constants

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
    "lane_resume",
    "fraud_check",
    "fraud_settle",
    "fraud_admin",
    "events_claim",
    "events_settle",
    "events_expire",
)


@functools.cache
def script_source(name: str) -> str:
    lua = resources.files("otpservice.store") / "lua"
    prelude = (lua / "_prelude.lua").read_text(encoding="utf-8")
    body = (lua / f"{name}.lua").read_text(encoding="utf-8")
    return f"{lua_constants()}\n{prelude}\n{body}"


def register_scripts(client: Any) -> dict[str, AsyncScript]:
    return {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}
