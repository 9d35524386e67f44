"""How `plan show` scales with the number of tenants.

For each size, times the whole of what `python -m plan show` does after reading the
stack file: evaluating the program under the mock runtime, `describe` (registrations
to plan blocks) and rendering the text. The best of --repeat runs counts.

    .venv/bin/python -m benchmarks.plan_scaling [--small 200] [--large 1000]

Target (issue 13): `plan show` for 1000 tenants costs at most about 5x the time for 200,
i.e. the ratio large/small stays at or below MAX_RATIO scaled by large / (5 x small).
Exit code: 0 when the ratio is within the target, 1 when it is not.
"""

from __future__ import annotations

import argparse
import sys
import time

from plan.__main__ import blocks_for
from plan.describe import render_plan
from tests.support.stack_configs import many_tenants

MAX_RATIO = 5.0 * 1.3  # linear, with 30% headroom for noise on a shared machine


def plan_show_seconds(tenants: int, repeat: int) -> float:
    config, secret_keys = many_tenants(tenants)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        render_plan(blocks_for(config, secret_keys, "bench"), "bench")
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (best counts)")
    options = parser.parse_args()
    plan_show_seconds(10, 1)  # warm-up: imports and SDK module loading are not counted
    small = plan_show_seconds(options.small, options.repeat)
    large = plan_show_seconds(options.large, options.repeat)
    ratio = large / small
    allowed = MAX_RATIO * options.large / (5 * options.small)
    print(f"plan show {options.small:>5} tenants: {small:.2f} s")
    print(f"plan show {options.large:>5} tenants: {large:.2f} s")
    print(f"ratio {ratio:.2f} (target <= {allowed:.2f})")
    return 0 if ratio <= allowed else 1


if __name__ == "__main__":
    sys.exit(main())
