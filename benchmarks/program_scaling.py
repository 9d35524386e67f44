"""How evaluating the whole program scales with the number of tenants.

Runs the real __main__.py under Pulumi's mock runtime for 1, 10, 100 and 500 tenants in
a fresh process, after a warm-up run (so imports are not counted), and prints each time,
its ratio to 1 tenant, and the marginal cost per tenant. With --baseline REF the same
measurement runs in the tree of a git ref too, side by side (rounds alternate which goes
first), and the ratio of the two is printed.

    .venv/bin/python -m benchmarks.program_scaling [--repeat N] [--rounds R]
                                                   [--baseline REF] [--profile N]

Targets: at most 15 ms per tenant at 500 tenants (the marginal cost over 1 tenant), in
this checkout, counted in CPU time: wall time is printed too, but on a shared machine it
measures the load as much as the program (on an idle one the two agree).

Exit status: 0 when the target is met, 1 when it is not or on a failure.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

SIZES = (1, 10, 100, 500)
TARGET_MS_PER_TENANT = 15.0  # at the largest size (issue 25)
CHILD_FLAG = "--measure-json"  # benchmarks/support/side_by_side.py runs this mode


def evaluate_seconds(tenants: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one evaluation."""
    # Imported here: in the child mode, from the tree being measured (PYTHONPATH).
    from plan.evaluate import run_program
    from tests.support.stack_configs import many_tenants

    config, secret_keys = many_tenants(tenants)
    gc.collect()  # what earlier runs left is not this run's to collect (a fresh process)
    start, cpu = time.perf_counter(), time.process_time()
    run_program(config, secret_keys, record=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    # The mock runtime turns collection back on after the program; the catching-up
    # collection is the harness's, which a real run never makes.
    gc.collect()
    return wall, cpu


def measure(repeat: int) -> dict[str, dict[int, float]]:
    """Median wall and CPU seconds per size, in this process."""
    evaluate_seconds(1)  # warm-up: imports, provider SDK module loading
    runs = {size: [evaluate_seconds(size) for _ in range(repeat)] for size in SIZES}
    return {
        kind: {size: statistics.median(run[index] for run in runs[size]) for size in SIZES}
        for index, kind in enumerate(("wall", "cpu"))
    }


def per_tenant_ms(seconds: dict[int, float], size: int) -> float:
    base = seconds[SIZES[0]]
    return (seconds[size] - base) / (size - SIZES[0]) * 1000 if size > SIZES[0] else 0.0


def print_table(label: str, seconds: dict[int, float], spread: dict[int, str]) -> None:
    print(label)
    print(f"{'tenants':>8} {'seconds':>9} {'x 1-tenant':>11} {'ms/tenant over 1':>17}  spread s")
    base = seconds[SIZES[0]]
    for size in SIZES:
        print(
            f"{size:>8} {seconds[size]:>9.3f} {seconds[size] / base:>11.1f} "
            f"{per_tenant_ms(seconds, size):>17.2f}  {spread[size]}"
        )


def main() -> int:
    if sys.argv[1:2] == [CHILD_FLAG]:
        repeat = int(sys.argv[2])
        print(json.dumps(measure(repeat)))
        return 0
    # Imported only in the parent: the child may run against a tree without them.
    from benchmarks.support.side_by_side import rounds, trees

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median is shown)")
    parser.add_argument("--rounds", type=int, default=1, help="fresh processes per tree")
    parser.add_argument("--baseline", help="a git ref to measure side by side")
    parser.add_argument("--profile", type=int, default=0, help="also profile this many tenants")
    options = parser.parse_args()

    with trees(options.baseline) as labelled:
        measured = rounds(labelled, Path(__file__).resolve(), [str(options.repeat)], options.rounds)
    results: dict[str, dict[str, dict[int, float]]] = {}
    for label, runs in measured.items():
        results[label] = {}
        for kind in ("wall", "cpu"):
            by_size = {size: [run[kind][str(size)] for run in runs] for size in SIZES}
            results[label][kind] = {size: statistics.median(v) for size, v in by_size.items()}
            spread = {size: f"{min(v):.3f}-{max(v):.3f}" for size, v in by_size.items()}
            title = f"{label}, {kind} seconds (median of {options.rounds} process(es))"
            print_table(title, results[label][kind], spread)
            print()
    if options.baseline:
        for kind in ("wall", "cpu"):
            current, baseline = results["current"][kind], results[options.baseline][kind]
            print(f"ms/tenant over 1 ({kind}), current / {options.baseline}:")
            for size in SIZES[1:]:
                ratio = per_tenant_ms(current, size) / per_tenant_ms(baseline, size)
                print(f"{size:>8} {ratio:>6.2f}")
        print()

    if options.profile:
        from plan.evaluate import run_program
        from tests.support.stack_configs import many_tenants

        config, secret_keys = many_tenants(options.profile)
        profiler = cProfile.Profile()
        profiler.enable()
        run_program(config, secret_keys, record=False)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)

    largest = per_tenant_ms(results["current"]["cpu"], SIZES[-1])
    target = TARGET_MS_PER_TENANT
    print(f"{largest:.1f} ms of CPU per tenant at {SIZES[-1]} tenants (target <= {target:g})")
    return 0 if largest <= TARGET_MS_PER_TENANT else 1


if __name__ == "__main__":
    sys.exit(main())
