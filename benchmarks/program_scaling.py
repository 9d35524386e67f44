"""How evaluating the whole program scales with the number of tenants.

Runs the real __main__.py under Pulumi's mock runtime for 1, 10, 100 and 500
tenants in one process, after a warm-up run (so imports are not counted), and
prints each time, its ratio to 1 tenant, and the marginal cost per tenant.

    .venv/bin/python -m benchmarks.program_scaling [--repeat N] [--profile N]

Targets: none enforced; it measures, for reading (the marginal cost per tenant should
stay flat as N grows). Exit status: 0 when it has measured, 1 on a failure.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

from plan.evaluate import run_program
from tests.support.stack_configs import many_tenants

SIZES = (1, 10, 100, 500)


def evaluate_seconds(tenants: int) -> float:
    config, secret_keys = many_tenants(tenants)
    start = time.perf_counter()
    run_program(config, secret_keys, record=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median is shown)")
    parser.add_argument("--profile", type=int, default=0, help="also profile this many tenants")
    options = parser.parse_args()

    evaluate_seconds(1)  # warm-up: imports, provider SDK module loading
    medians = {
        size: statistics.median(evaluate_seconds(size) for _ in range(options.repeat))
        for size in SIZES
    }
    base = medians[SIZES[0]]
    print(f"{'tenants':>8} {'seconds':>9} {'x 1-tenant':>11} {'ms/tenant over 1':>17}")
    for size, seconds in medians.items():
        marginal = (seconds - base) / (size - 1) * 1000 if size > 1 else 0.0
        print(f"{size:>8} {seconds:>9.3f} {seconds / base:>11.1f} {marginal:>17.2f}")

    if options.profile:
        config, secret_keys = many_tenants(options.profile)
        profiler = cProfile.Profile()
        profiler.enable()
        run_program(config, secret_keys, record=False)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
