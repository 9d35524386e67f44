"""The same lifecycle of two joined stacks on a `file://` backend and with the state in R2.

Runs the steps of tests/support/backend_lifecycle.py (create the mux and tenants stacks,
a no-op `up` of each, an image change, the MASTER_KEY guard, drift repair, destroy),
with every assertion the engine test makes, once on a `file://` folder and once on
Pulumi's S3 backend against moto behind the R2 front (HTTPS, SigV4 checked, region
`auto`, path-style: tests/support/r2_state.py), and prints the wall time of each step on
both and their ratio. With --rounds N the order of the backends alternates between
rounds and the median of each step counts.

    .venv/bin/python -m benchmarks.state_backends [--rounds N]

Targets: none enforced; it measures, for reading (what keeping state in R2 costs per
step over a local folder). Exit status: 0 when both backends ran every step, 1 on a
failure (for example no engine). Needs the engine (scripts/engine). Every process and
server it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.support.backend_lifecycle import STEPS, lifecycle_on
from tests.support.engine_harness import EngineUnavailableError, locate_engine
from tests.support.moto_server import MotoServer, start_moto_server

BACKENDS = ("file", "r2")


def run_lifecycle(backend: str, engine: Path, root: Path, moto: MotoServer) -> list[float]:
    seconds: list[float] = []
    with lifecycle_on(backend, engine, root, moto) as cycle:
        for _name, step in STEPS:
            started = time.monotonic()
            step(cycle)
            seconds.append(time.monotonic() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    try:
        engine = locate_engine()
    except EngineUnavailableError as error:
        print(f"state_backends: {error}", file=sys.stderr)
        return 1
    measured: dict[str, list[list[float]]] = {backend: [] for backend in BACKENDS}
    moto = start_moto_server()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-state-backends-") as scratch:
            for round_index in range(options.rounds):
                order = BACKENDS if round_index % 2 == 0 else BACKENDS[::-1]
                for backend in order:
                    root = Path(scratch) / f"{backend}-{round_index}"
                    measured[backend].append(run_lifecycle(backend, engine, root, moto))
    except Exception:  # a failed step: say which, exit 1
        traceback.print_exc()
        return 1
    finally:
        moto.stop()

    medians = {
        backend: [statistics.median(column) for column in zip(*rounds, strict=True)]
        for backend, rounds in measured.items()
    }
    print(f"{'step':<52}{'file':>10}{'r2':>10}{'r2/file':>10}")
    for index, (name, _step) in enumerate(STEPS):
        file_s, r2_s = medians["file"][index], medians["r2"][index]
        print(f"{name:<52}{file_s:>8.1f} s{r2_s:>8.1f} s{r2_s / file_s:>9.2f}x")
    file_total, r2_total = sum(medians["file"]), sum(medians["r2"])
    print(f"{'total':<52}{file_total:>8.1f} s{r2_total:>8.1f} s{r2_total / file_total:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
