"""The shape the code keeps: layers import only inwards, classes stay small, and every Lua
script touches only keys it was given in KEYS (Redis' rule, which Cluster proxies enforce)."""

from __future__ import annotations

import ast
import re
from importlib import resources
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "otpservice"
LUA = resources.files("otpservice.store") / "lua"

# What each part of the package must not import (by module prefix).
FORBIDDEN = {
    "domain": ("redis", "httpx", "litestar", "fakeredis", "otpservice.store", "otpservice.api",
               "otpservice.usecases", "otpservice.lane", "otpservice.app", "otpservice.console"),
    "usecases": ("redis", "httpx", "litestar", "fakeredis", "otpservice.store", "otpservice.api",
                 "otpservice.app", "otpservice.services", "otpservice.console"),
    "api": ("redis", "fakeredis", "otpservice.store", "otpservice.usecases.memory",
            "otpservice.console"),
    "lane.py": ("redis", "litestar", "otpservice.store", "otpservice.usecases", "otpservice.api"),
    "events.py": ("redis", "litestar", "otpservice.store", "otpservice.api", "otpservice.console"),
    "providers": ("redis", "litestar", "otpservice.store", "otpservice.usecases",
                  "otpservice.api", "otpservice.console"),
    "store": ("litestar", "httpx", "otpservice.api", "otpservice.app", "otpservice.services",
              "otpservice.console"),
    # The console is a web layer beside api/: its pages reach Redis only through the use cases
    # (console/wiring.py builds them, as services.py does for the API).
    "console/pages.py": ("redis", "otpservice.store", "otpservice.usecases.memory"),
    "console/views.py": ("redis", "otpservice.store", "otpservice.usecases.memory"),
}  # fmt: skip


def python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_each_layer_imports_only_what_it_may(part: str) -> None:
    target = PACKAGE / part
    files = [target] if target.suffix == ".py" else sorted(target.rglob("*.py"))
    assert files
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in imports_of(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[part])
    }
    assert not wrong, sorted(wrong)


def test_only_the_store_and_the_wiring_import_redis() -> None:
    allowed = {"store", "app.py"}
    wrong = [
        str(path.relative_to(PACKAGE))
        for path in python_files()
        if path.relative_to(PACKAGE).parts[0] not in allowed
        and any(n == "redis" or n.startswith("redis.") for n in imports_of(path))
    ]
    assert wrong == []


def test_no_class_is_over_300_lines() -> None:
    long = [
        f"{path.relative_to(PACKAGE)}:{node.name} {node.end_lineno - node.lineno + 1} lines"
        for path in python_files()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > 300
    ]
    assert long == []


# --- Lua: keys come from KEYS only ----------------------------------------------------------------


def _calls(source: str, function: str) -> list[tuple[str, list[str]]]:
    """Every call of `function` in `source`: (the function, its top-level arguments)."""
    found = []
    for match in re.finditer(rf"(?<![\w.]){re.escape(function)}\(", source):
        depth, args, current = 1, [], ""
        for char in source[match.end() :]:
            if char in "({[":
                depth += 1
            elif char in ")}]":
                depth -= 1
                if depth == 0:
                    break
            if char == "," and depth == 1:
                args.append(current.strip())
                current = ""
            else:
                current += char
        args.append(current.strip())
        found.append((function, args))
    return found


_NO_KEY = {"TIME"}
_KEY_AT = {"XGROUP": 1, "XINFO": 1}
"""Commands whose key is not their first argument: its index among the arguments."""
_TWO_KEYS = {"RENAME"}
_HELPERS = {
    "gcra": 1, "gcra_commit": 1, "send_buckets": 1, "send_buckets_commit": 1, "home_of": 2,
    "push_event": 1, "ack": 1, "expire_no_sooner": 1, "record_snapshot": 1, "queue_event": 3,
    "count_stat": 2, "count_delivery": 2,
}  # fmt: skip
"""The prelude's helpers that take keys: how many of their first arguments are keys."""


def _keys_of(command: str, args: list[str]) -> list[str]:
    if command in _NO_KEY:
        return []
    if command == "XREADGROUP":
        return [args[args.index("'STREAMS'") + 1]]
    if command in _TWO_KEYS:
        return args[:2]
    return [args[_KEY_AT.get(command, 0)]]


def _bound_from_keys(source: str) -> set[str]:
    """Names a script binds to KEYS: `local a, b = KEYS[1], KEYS[2]`, and `home` (home_of)."""
    names: set[str] = {"home"}
    for left, right in re.findall(r"local ([\w, ]+?) = ([^\n]+)", source):
        targets = [n.strip() for n in left.split(",")]
        values = [v.strip() for v in right.split(",")]
        names.update(
            t for t, v in zip(targets, values, strict=False) if re.fullmatch(r"KEYS\[\d+\]", v)
        )
    return names


def _script_names() -> list[str]:
    return sorted(p.name for p in LUA.iterdir() if p.name.endswith(".lua"))


@pytest.mark.parametrize("name", _script_names())
def test_every_key_a_script_touches_arrives_in_keys(name: str) -> None:
    source = (LUA / name).read_text(encoding="utf-8")
    if name == "_prelude.lua":
        # Helpers take their keys as parameters: none may be built or read from ARGV there.
        assert "ARGV" not in source
        allowed = set(re.findall(r"local function \w+\(([\w, ]+)\)", source))
        allowed = {p.strip() for params in allowed for p in params.split(",")}
    else:
        allowed = _bound_from_keys(source)
    calls = [args for _, args in _calls(source, "redis.call")]
    helpers = [] if name == "_prelude.lua" else [c for h in _HELPERS for c in _calls(source, h)]
    assert calls or helpers, f"{name}: no call found: the patterns are stale"
    for command, *args in calls:
        for key in _keys_of(command.strip("'"), args):
            from_keys = re.fullmatch(r"KEYS\[\w+\]", key) is not None  # KEYS[i] itself
            assert key in allowed or from_keys, f"{name}: {command} on {key!r}, not from KEYS"
    for helper, args in helpers:
        for key in args[: _HELPERS[helper]]:
            assert key in allowed, f"{name}: {helper}() on {key!r}, which is not from KEYS"
