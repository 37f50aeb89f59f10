"""The pumping simulator: simulated days of a tenant's legitimate logins mixed with SMS pumping
attacks of several shapes, decided by the fraud guard's real scripts on a real Redis.

    .venv/bin/python bench/pumping.py                  # 7 days of history + 2 measured days
    .venv/bin/python bench/pumping.py --quick          # 3 + 1 days at a quarter of the volume
    .venv/bin/python bench/pumping.py --update-readme  # and its section of bench/README.md

It starts its own redis-server on 127.0.0.1 (tests/support/redis_servers.py), or uses
`--redis-url`. Each attack shape runs as its own tenant beside a baseline tenant with no attack,
all fed the same legitimate users at the same simulated moments; the guard gets the simulated
clock, nothing sleeps. Prints a markdown table, writes bench/results/pumping-latest.json. The
exit status is 0 when the run completed, whatever the goals say (the README's table says which
shape misses which goal, and tests/integration/test_pumping_simulator.py holds them).

The simulation itself is bench/pumping_sim/ (its __init__ lists the modules).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.pumping_sim.attacks import SHAPES  # noqa: E402
from bench.pumping_sim.readme import section  # noqa: E402
from bench.pumping_sim.report import summary, update_readme  # noqa: E402
from bench.pumping_sim.results import FULL, QUICK, load, save  # noqa: E402
from bench.pumping_sim.runner import simulate  # noqa: E402
from tests.support.redis_servers import running  # noqa: E402

RESULTS = REPO / "bench" / "results" / "pumping-latest.json"
README = REPO / "bench" / "README.md"


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 + 1 days, a quarter of the volume")
    parser.add_argument("--seed", type=int, default=FULL.seed)
    parser.add_argument("--warmup-days", type=int, help="days of history before the attacks")
    parser.add_argument("--measured-days", type=int, help="days with the attacks")
    parser.add_argument("--scale", type=float, help="legitimate volume, times the defaults")
    parser.add_argument(
        "--shapes", help=f"comma-separated attack shapes (default: all of {','.join(SHAPES)})"
    )
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--render", type=Path, help="measure nothing: show an earlier JSON")
    parser.add_argument(
        "--update-readme", action="store_true", help=f"write the section of {README.name}"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = arguments(argv)
    if args.render is not None:
        result = load(args.render)
    else:
        base = QUICK if args.quick else FULL
        chosen = msgspec.structs.replace(
            base,
            seed=args.seed,
            warmup_days=args.warmup_days or base.warmup_days,
            measured_days=args.measured_days or base.measured_days,
            scale=args.scale or base.scale,
            shapes=tuple(args.shapes.split(",")) if args.shapes else base.shapes,
        )
        unknown = [s for s in chosen.shapes if s not in SHAPES]
        if unknown:
            sys.stderr.write(f"unknown shapes {unknown}; known: {', '.join(SHAPES)}\n")
            return 2
        if args.redis_url:
            result = asyncio.run(simulate(args.redis_url, chosen))
        else:
            with running("single") as server:
                result = asyncio.run(simulate(server.url, chosen))
        save(result, RESULTS)
    print(summary(result))
    if args.update_readme:
        update_readme(README, section(result))
        print(f"\n{README.relative_to(REPO)}: section updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
