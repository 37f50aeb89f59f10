"""From a RunResult to what a reader sees: the table of attack shapes against the issue's goals,
legitimate refusals per country, and the section of bench/README.md it replaces."""

from __future__ import annotations

from pathlib import Path

from .results import (
    GOAL_LEGIT_REFUSED_SHARE,
    GOAL_REFUSED_SHARE,
    GOAL_SENT_BEFORE_BLOCK,
    RunResult,
    Sends,
    ShapeResult,
)

HEADING = "## Fraud guard: the pumping simulator"


def pct(share: float) -> str:
    return f"{share * 100:.1f} %" if share >= 0.001 or share == 0 else f"{share * 100:.2f} %"


def _legit(sends: Sends) -> str:
    return f"{pct(sends.share)} ({sends.refused} / {sends.attempts})"


def _worst_country(shape: ShapeResult) -> str:
    refused = [(s.share, region, s) for region, s in shape.legit.by_country.items() if s.refused]
    if not refused:
        return "none"
    _, region, sends = max(refused)
    return f"{region} {_legit(sends)}"


def _verdict(shape: ShapeResult) -> str:
    goals = shape.goals()
    missed = [name for name, met in goals.items() if not met]
    if not missed:
        return "met"
    names = {"attack_refused": "refused", "before_block": "before block", "legit_refused": "legit"}
    return "**missed**: " + ", ".join(names[m] for m in missed)


def table(result: RunResult) -> str:
    """One row per attack shape (and the baseline): the attack's figures and the legitimate
    sends refused beside it, during the measured days."""
    rows = [
        (
            "| shape | attack SMS asked | sent | refused | sent before the first refusal (rule)"
            " | legitimate sends refused | worst country | goals |"
        ),
        "|---|---:|---:|---:|---|---:|---|---|",
    ]
    for shape in result.shapes:
        attack = shape.attack
        name = shape.name if shape.in_issue else f"{shape.name} *(extra)*"
        label = f"({shape.key}) {name}" if attack is not None else name
        if attack is None:
            cells = ["-"] * 4
        else:
            rule = attack.first_refusal_rule or "never refused"
            cells = [
                str(attack.sends.attempts),
                str(attack.sent),
                pct(attack.sends.share),
                f"{attack.sent_before_first_refusal} ({rule})",
            ]
        rows.append(
            f"| {label} | {' | '.join(cells)} | {_legit(shape.legit.total)}"
            f" | {_worst_country(shape)} | {_verdict(shape)} |"
        )
    return "\n".join(rows)


def country_table(result: RunResult) -> str:
    """Legitimate sends refused per country and shape (measured days)."""
    regions = list(result.legit_volume)
    rows = [
        "| shape | " + " | ".join(f"{r} ({result.legit_volume[r]}/day)" for r in regions) + " |",
        "|---|" + "---:|" * len(regions),
    ]
    for shape in result.shapes:
        cells = [_legit(shape.legit.by_country.get(r, Sends())) for r in regions]
        rows.append(f"| {shape.key if shape.attack else 'baseline'} | {' | '.join(cells)} |")
    return "\n".join(rows)


def goals_line() -> str:
    return (
        f"Goals (issue 12): at least {GOAL_REFUSED_SHARE:.0%} of an attack's SMS refused, at most"
        f" {GOAL_SENT_BEFORE_BLOCK} out before the first refusal, at most"
        f" {GOAL_LEGIT_REFUSED_SHARE * 100:.1f} % of legitimate sends refused."
    )


def summary(result: RunResult) -> str:
    """The table and the figures printed after a run."""
    s = result.scenario
    head = (
        f"{s.warmup_days} days of history, then {s.measured_days} measured days with the attacks;"
        f" legitimate logins a weekday: "
        + ", ".join(f"{r} {n}" for r, n in result.legit_volume.items())
        + f"; {result.sessions} verifications in all; {result.seconds:.0f} s on Redis"
        f" {result.redis_version}."
    )
    parts = [head, "", goals_line(), "", table(result), "", country_table(result)]
    base = result.shapes[0]
    if base.legit_warmup.by_day:
        first = base.legit_warmup.by_day[0]
        parts += ["", f"A new tenant's first day (no history yet): {_legit(first)} refused."]
    if result.memory is not None:
        m = result.memory
        parts += [
            "",
            (
                f"Memory: {m.bytes_per_scope_day:.0f} bytes per active scope and day"
                f" ({m.scopes['prefixes']} prefixes, {m.scopes['ips']} IPs,"
                f" {m.scopes['countries']} countries over {m.day_keys} days;"
                f" {(m.day_hash_bytes + m.hour_hash_bytes) / 1e6:.1f} MB of counters)."
            ),
        ]
    return "\n".join(parts)


def update_readme(readme: Path, section: str) -> None:
    """Replace the section under HEADING (up to the next `## ` heading), or append it."""
    content = readme.read_text(encoding="utf-8") if readme.exists() else ""
    block = section.rstrip("\n") + "\n"
    if HEADING + "\n" in content:
        head, _, rest = content.partition(HEADING + "\n")
        following = rest.find("\n## ")
        tail = rest[following + 1 :] if following >= 0 else ""
        content = head + block + ("\n" + tail if tail else "")
    else:
        content = content.rstrip("\n") + "\n\n" + block if content else block
    readme.write_text(content, encoding="utf-8")
