"""The section of bench/README.md that `bench/pumping.py --update-readme` writes: how to run the
simulator, what it simulates, its table, and what the figures say, with the run's own numbers."""

from __future__ import annotations

import re
import textwrap

from .attacks import SHAPES
from .report import HEADING, pct, summary
from .results import MemoryFigures, RunResult, ShapeResult
from .traffic import COUNTRIES


def wrap(text: str, width: int = 100) -> str:
    """Markdown re-wrapped at `width`: each paragraph and list item is refilled, tables, code
    blocks and headings are kept as they are."""
    out: list[str] = []
    item: list[str] = []

    def flush() -> None:
        if item:
            marker = re.match(r"^(\s*(?:[-*] |\d+\. )?)", item[0])
            lead = marker.group(1) if marker else ""
            body = " ".join(line.strip() for line in item)[len(lead.strip()) :].strip()
            out.extend(
                textwrap.wrap(
                    body,
                    width,
                    initial_indent=lead,
                    subsequent_indent=" " * len(lead),
                    break_on_hyphens=False,
                    break_long_words=False,
                )
            )
            item.clear()

    fenced = False
    for line in text.split("\n"):
        if line.startswith("```"):
            flush()
            fenced = not fenced
            out.append(line)
        elif fenced or not line.strip() or line.startswith(("|", "#")):
            flush()
            out.append(line)
        else:
            if re.match(r"^\s*(?:[-*] |\d+\. )", line):
                flush()
            item.append(line)
    flush()
    return "\n".join(out)


def _shape(result: RunResult, key: str) -> ShapeResult | None:
    return next((s for s in result.shapes if s.key == key), None)


def _attack(result: RunResult, key: str) -> str:
    """'40 of 96 attack SMS out (58.3 % refused)' for shape `key` (or: not in this run)."""
    shape = _shape(result, key)
    if shape is None or shape.attack is None:
        return f"(shape {key} not in this run)"
    a = shape.attack
    return f"{a.sent} of {a.sends.attempts} attack SMS out ({pct(a.sends.share)} refused)"


def _legit_in(result: RunResult, key: str, region: str) -> str:
    shape = _shape(result, key)
    if shape is None or region not in shape.legit.by_country:
        return "(not in this run)"
    sends = shape.legit.by_country[region]
    return f"{sends.refused} of {sends.attempts} ({pct(sends.share)})"


def _traffic() -> str:
    volumes = ", ".join(f"{c.region} {c.per_day}" for c in COUNTRIES)
    conversion = ", ".join(f"{c.region} {c.conversion:.0%}" for c in COUNTRIES)
    return f"""- **Real users**: {volumes} logins on a weekday (weekends 15 to 20 % fewer, ±5 % from
  day to day), spread over each country's local day (0.3 % of a day's logins an hour at night,
  7 % at the evening peak). Codes entered: {conversion}, after a log-normal delay (median 30 s,
  95 % within 10 to 90 s); 7 % of those users ask for a resend first, and 30 % of those who
  never enter their code ask for one too. A user base of six times the daily logins: people
  come back every few days.
- **Numbers**: valid mobiles (phonenumbers) drawn over each country's mobile blocks in
  proportion to their density (so never `+48 70x`, premium rate): thousands of 4-digit prefixes.
- **End-user IPs**: 55 % of logins from a carrier NAT (a large pool; a tenth of those behind
  two heavily shared NAT IPs, each carrying some 80 of the tenant's PL users a day), 40 % from a
  home line (the same IP 80 % of the time), 5 % from an office NAT.
- **Attacks** (a bot never enters a code, but in (f)), during the measured days only:"""


def _attacks(result: RunResult) -> str:
    ran = {s.key for s in result.shapes}
    lines = []
    for key, (shape, _) in SHAPES.items():
        if key in ran:
            text = " ".join(shape.description.split())
            lines.append(f"  - ({key}) {text}")
    return "\n".join(lines)


def _memory(m: MemoryFigures | None) -> str:
    if m is None:
        return "Not measured in this run."
    total = (m.day_hash_bytes + m.hour_hash_bytes) / 1e6
    day, hour = m.day_hash_bytes / 1e6, m.hour_hash_bytes / 1e6
    prefixes, ips, countries = m.scopes["prefixes"], m.scopes["ips"], m.scopes["countries"]
    kept = 15 * m.day_hash_bytes / max(1, m.day_keys) / 1e6
    return f"""The baseline tenant's counters after {m.day_keys} days: {total:.1f} MB
({day:.1f} MB of day hashes, {hour:.2f} MB of the last 24 hour hashes), counting {prefixes}
prefixes, {ips} IPs and {countries} countries: **{m.bytes_per_scope_day:.0f} bytes per active prefix
or IP and day**
(MEMORY USAGE with SAMPLES 0 of each day hash, over the scopes it counts; {m.bytes_per_scope:.0f}
bytes per distinct scope over the whole run, hour hashes included). Day hashes are kept 15 days,
so a tenant holds about 15 x (distinct prefixes and IPs a day) x {m.bytes_per_scope_day:.0f}
bytes: about {kept:.0f} MB here, for some 4 000 logins a day, nearly all of it per IP (an IP has
four fields a day, a prefix two). The blocks hash held {m.blocks_bytes} bytes."""


def section(result: RunResult) -> str:
    memory = _memory(result.memory)
    return wrap(f"""{HEADING}

`bench/pumping.py` plays simulated days of one tenant's logins, mixed with SMS pumping attacks,
through the fraud guard's real code on a real Redis: `FraudGuard.query` asks each question,
`fraud_check.lua` decides (`store/fraud.py` `check_call`), `RedisFraud` settles approvals, and
the guard's clock is the simulation's (nothing sleeps). Each attack shape runs as its own tenant
beside a baseline tenant without attack; all of them see the same real users at the same
simulated moments, every tenant with the guard's default settings (enforce).

```sh
.venv/bin/python bench/pumping.py                  # 7 days of history + 2 measured: about 2 minutes
.venv/bin/python bench/pumping.py --quick          # 3 + 1 days, a quarter of the volume: about 15 s
.venv/bin/python bench/pumping.py --update-readme  # and this section is written from the run
```

Options: `--seed`, `--warmup-days`, `--measured-days`, `--scale` (the legitimate volumes),
`--shapes e,e2`, `--redis-url` (instead of starting `redis-server` on 127.0.0.1 through
`tests/support/redis_servers.py`), `--render JSON` (show an earlier run). Results:
`bench/results/pumping-latest.json`. The code is `bench/pumping_sim/` (its `__init__` lists the
modules). `tests/integration/test_pumping_simulator.py` runs 3 + 1 days at half the volume
(about 20 s, on the test session's Redis) and holds the guard to the goals below.

### What it simulates

{_traffic()}
{_attacks(result)}

### Results

{summary(result)}

"Sent before the first refusal" counts the attack's SMS until the guard first refused one of
its requests; "legitimate sends refused" are first sends and resends of real users refused
during the measured days (the first day's figure is the baseline tenant's, when it had no
history at all). Shapes marked *extra* are not among the issue's five: they show where the guard
stops.

### Reading the misses

- **(b) The slow drip** misses the 95 % by design: {_attack(result, "b")}. A country without
  verified history has a floor of 20 unverified sends a day; a bot that stays under the hourly
  floor gets exactly those 20 a day, and is refused only when it asks for more. The cost is
  bounded (20 SMS a day per country it targets), but the share refused is the arithmetic of two
  requests an hour against 20 a day. Refusing more needs a lower floor, which refuses the first
  real users of a country the tenant starts to serve.
- **(e3) 30 prefixes of the busiest country**: {_attack(result, "e3")}. Each prefix gets its
  hour floor (3) before its first block and its day floor (10) a day, so the figures grow with
  the number of prefixes; PL's own day budget (a fifth of its best verified day: about 665
  unverified sends, of which its real users use 260 to 390) leaves the country rule out of play.
  The real users whose numbers fall in those prefixes are refused while they are blocked:
  {_legit_in(result, "e3", "PL")} of PL's sends (with eight prefixes, (e2):
  {_legit_in(result, "e2", "PL")}).

### What the guard cannot catch

The guard counts unverified sends per country, prefix and IP; what stays inside every budget,
or looks converted, passes. A slow drip in a country the tenant serves, (b2), got
{_attack(result, "b2")}: two requests an hour to random PL mobiles from fresh IPs reach no prefix
floor (3 an hour, 10 a day, over more than a thousand PL prefixes), no IP floor, and add a
rounding error to PL's budget of about 665 unverified sends a day; the same holds for any attack
at the tenant's usual volume in its usual prefixes. An attack that mimics conversion, (f), where
a complicit operator reads the codes its ranges receive and the bot enters 85 % of them, got
{_attack(result, "f")}: only the codes it does not enter count against it, and the ones it
enters raise its prefixes' budgets as a real user's would. And the guard sees a prefix, not a
person: a real user whose number lies in an attacked prefix is refused like the bot while that
prefix is blocked (the figures of (e2) and (e3) above). A number that has verified before could
be let through a prefix block, but that history lives in the number's own keys, in another
slot than the guard's counters: it would cost a round trip per send.

### What the simulator changed in the guard

Three changes, each measured on this simulator with seed 1 against the guard of commit d6a9933
(before, then now):

1. **The hour budget also grows with the verified sends of this hour or the last** (a fifth of
   the larger; Authgear's hourly rule has the same term). A new tenant, or one that just turned
   the guard on, has no history: its first day refused 25.1 % of its real users' sends (1 033 of
   4 121, the country hour floor of 3 against PL's morning rush), now 0.4 %.
2. **A country with verified history is refused as a whole only past twice its day budget.**
   Past its budget (hour or day) only sends to prefixes that convert less than half of today's
   codes (two unverified sends or more, and more of them than verified ones) are refused, with
   the new rule `country_prefix`. Before, the attack on eight GB prefixes, (e), used up GB's
   budget and the guard then refused GB's real users for the rest of each day: 83.1 % of their
   sends (353 of 425; 4.0 % of all legitimate sends), now {_legit_in(result, "e", "GB")}, with
   the attack as well refused as before (95.4 % then). A country without verified history keeps
   the hard budget (shapes a, b, d).
3. **The per-IP budget grows with 0.5 of the IP's verified sends, not 0.2** (floors unchanged, so
   a fresh attacker IP gets no more). About one in ten of the 80 users a day behind each of the
   two heavily shared carrier NAT IPs never enters the code, and each such user may ask twice:
   on a bad day that passed 0.2 x the IP's verified sends, and the doubling cool-off then kept
   the IP blocked for hours (10.7 h in one run), all its users with it. Over the nine simulated
   days, 53 real users' sends were refused that way (36 of them, 0.7 %, on one day); now 3.

### Memory per active prefix or IP

{memory}
""")
