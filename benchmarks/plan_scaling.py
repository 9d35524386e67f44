"""How `plan show` scales with the number of tenants.

For each size, times the whole of what `python -m plan show` does after reading the
stack file: evaluating the program under the mock runtime, `describe` (registrations
to plan blocks) and rendering the text, in a fresh process set up as `python -m plan`
sets itself up. The best of --repeat runs counts. With --baseline REF the same
measurement runs in the tree of a git ref too, side by side (rounds alternate which
goes first).

    .venv/bin/python -m benchmarks.plan_scaling [--small 200] [--large 1000] [--repeat 1]
                                                [--rounds 1] [--baseline REF]

Targets: `plan show` for the large size at most 5x its time for the small one when the
large is 5x the small (linear; the allowed ratio scales with large / small), and at most
25 ms per tenant at the large size (issue 25), in this checkout, counted in CPU time
(wall time is printed too; on a shared machine it measures the load as well).

Exit status: 0 when both targets are met, 1 when not or on a failure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

MAX_RATIO_AT_5X = 5.0  # linear
MAX_MS_PER_TENANT = 25.0  # at the large size
CHILD_FLAG = "--measure-json"  # benchmarks/support/side_by_side.py runs this mode


def plan_show_seconds(tenants: int, repeat: int) -> dict[str, float]:
    """The best wall and CPU seconds of `repeat` runs."""
    # Imported here: in the child mode, from the tree being measured (PYTHONPATH).
    from plan.__main__ import blocks_for
    from plan.describe import render_plan
    from tests.support.stack_configs import many_tenants

    config, secret_keys = many_tenants(tenants)
    best = {"wall": float("inf"), "cpu": float("inf")}
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        render_plan(blocks_for(config, secret_keys, "bench"), "bench")
        best["wall"] = min(best["wall"], time.perf_counter() - start)
        best["cpu"] = min(best["cpu"], time.process_time() - cpu)
    return best


def measure(small: int, large: int, repeat: int) -> dict[str, dict[str, float]]:
    import plan.__main__ as plan_cli

    # The process settings `python -m plan` runs with, where the tree has any.
    configure = getattr(plan_cli, "configure_process", None)
    if configure is not None:
        configure()
    plan_show_seconds(10, 1)  # warm-up: imports and SDK module loading are not counted
    return {
        "small": plan_show_seconds(small, repeat),
        "large": plan_show_seconds(large, repeat),
    }


def main() -> int:
    if sys.argv[1:2] == [CHILD_FLAG]:
        small, large, repeat = (int(arg) for arg in sys.argv[2:5])
        print(json.dumps(measure(small, large, repeat)))
        return 0
    # Imported only in the parent: the child may run against a tree without them.
    from benchmarks.support.side_by_side import rounds, trees

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (best counts)")
    parser.add_argument("--rounds", type=int, default=1, help="fresh processes per tree")
    parser.add_argument("--baseline", help="a git ref to measure side by side")
    options = parser.parse_args()
    args = [str(options.small), str(options.large), str(options.repeat)]
    allowed = MAX_RATIO_AT_5X * options.large / (5 * options.small)

    with trees(options.baseline) as labelled:
        measured = rounds(labelled, Path(__file__).resolve(), args, options.rounds)
    verdicts = {}
    for label, runs in measured.items():
        print(f"{label} (median of {options.rounds} process(es))")
        for kind in ("wall", "cpu"):
            small = statistics.median(run["small"][kind] for run in runs)
            large = statistics.median(run["large"][kind] for run in runs)
            spread = ", ".join(f"{r['small'][kind]:.2f}/{r['large'][kind]:.2f}" for r in runs)
            ratio = large / small
            per_tenant_ms = large / options.large * 1000
            print(
                f"  {kind:>4}: {options.small} tenants {small:.2f} s, {options.large} tenants "
                f"{large:.2f} s ({per_tenant_ms:.1f} ms/tenant), ratio {ratio:.2f} "
                f"(runs small/large: {spread})"
            )
            if kind == "cpu":
                verdicts[label] = ratio <= allowed and per_tenant_ms <= MAX_MS_PER_TENANT
    print(f"targets: ratio <= {allowed:.2f}, <= {MAX_MS_PER_TENANT:g} ms/tenant at {options.large}")
    return 0 if verdicts["current"] else 1


if __name__ == "__main__":
    sys.exit(main())
