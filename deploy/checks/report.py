"""The `ok` / `FAIL` lines the checks print, and the failures they count."""

from __future__ import annotations


class Report:
    """Prints one `ok` or `FAIL` line per check, in deploy/check.sh's format, and keeps failures."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def ok(self, message: str) -> None:
        print(f"ok    {message}")

    def bad(self, message: str) -> None:
        print(f"FAIL  {message}")
        self.failures.append(message)

    def check(self, passed: object, message: str) -> bool:
        if passed:
            self.ok(message)
            return True
        self.bad(message)
        return False
