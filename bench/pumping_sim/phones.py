"""Valid mobile numbers of a country, as phonenumbers' metadata knows its ranges: spread over the
country's real mobile blocks for users, or sequential inside one prefix for a pumping bot."""

from __future__ import annotations

import random
from functools import cache

import phonenumbers
from phonenumbers import PhoneNumberType

_PROBES_PER_BLOCK = 20
_MAX_TRIES = 400
"""Random draws before a number is given up on (a block is chosen by its density, so a few)."""


class MobilePlan:
    """The mobile numbering of one region: each two-digit block of national numbers of the
    usual length, weighted by the share of its numbers that are valid mobiles. A draw picks a
    block by weight, then random digits, and keeps only a valid MOBILE (never premium rate:
    +48 70x is not a mobile block of PL)."""

    def __init__(self, region: str) -> None:
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        if example is None:
            raise ValueError(f"phonenumbers has no mobile example for {region}")
        self.region = region
        self.country_code = int(example.country_code or 0)
        self.length = len(phonenumbers.national_significant_number(example))
        probe = random.Random(f"plan:{region}")
        blocks: list[str] = []
        weights: list[float] = []
        for lead in range(10, 100):
            hits = sum(
                self._mobile(f"{lead}{self._digits(probe, self.length - 2)}") is not None
                for _ in range(_PROBES_PER_BLOCK)
            )
            if hits:
                blocks.append(str(lead))
                weights.append(hits / _PROBES_PER_BLOCK)
        if not blocks:
            raise ValueError(f"no mobile block found for {region}")
        self.blocks = blocks
        self.weights = weights

    @staticmethod
    def _digits(rng: random.Random, count: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(count))

    def _mobile(self, national: str) -> str | None:
        """The E.164 form of `national` when it is a valid mobile of this region."""
        try:
            number = phonenumbers.parse(f"+{self.country_code}{national}")
        except phonenumbers.NumberParseException:
            return None
        if (
            phonenumbers.is_valid_number(number)
            and phonenumbers.number_type(number) == PhoneNumberType.MOBILE
            and phonenumbers.region_code_for_number(number) == self.region
        ):
            return f"+{self.country_code}{national}"
        return None

    def random_mobile(self, rng: random.Random) -> str:
        for _ in range(_MAX_TRIES):
            block = rng.choices(self.blocks, self.weights)[0]
            found = self._mobile(block + self._digits(rng, self.length - len(block)))
            if found is not None:
                return found
        raise RuntimeError(f"no valid mobile of {self.region} in {_MAX_TRIES} draws")

    def random_prefix_start(self, rng: random.Random, digits: int) -> str:
        """A national number that starts a run of valid mobiles: its first `digits` digits are
        the prefix a bot walks through."""
        national = self.random_mobile(rng)[len(str(self.country_code)) + 1 :]
        return national[:digits] + "0" * (self.length - digits)

    def sequential(self, start: str, count: int, digits: int) -> list[str]:
        """Up to `count` valid mobiles counting up from national number `start`, inside its
        prefix of `digits` digits (a bot's numbers: +998 9012 00001, 00002, ...)."""
        out: list[str] = []
        value = int(start)
        end = value + 10 ** (self.length - digits)
        while len(out) < count and value < end:
            found = self._mobile(str(value).zfill(self.length))
            if found is not None:
                out.append(found)
            value += 1
        return out


@cache
def plan(region: str) -> MobilePlan:
    return MobilePlan(region)
