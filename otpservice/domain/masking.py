"""Phone numbers as support staff see them: every digit hidden but the last two."""

from __future__ import annotations

MASK = "•"
SHOWN_DIGITS = 2


def mask_number(e164: str) -> str:
    """'+48601234567' -> '+•••••••••67'. Anything that is not digits after the '+' is dropped,
    so nothing but the last two digits can leak through the mask."""
    digits = [c for c in e164 if c.isascii() and c.isdigit()]
    if len(digits) <= SHOWN_DIGITS:
        return "+" + MASK * len(digits)
    return "+" + MASK * (len(digits) - SHOWN_DIGITS) + "".join(digits[-SHOWN_DIGITS:])
