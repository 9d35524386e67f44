"""Two stacks joined by `muxStack` through their whole life with the state in R2, as
the README's "Working as a team" sets it up: Pulumi's S3 backend against a private
bucket behind the R2 front (tests/support/r2_state.py: HTTPS, path-style, region
`auto`, S3 credentials derived from the bucket's R2 token).

The steps (tests/support/backend_lifecycle.py) run in file order on one workspace:
create, a no-op `up` of each stack with no vendor write, a change, the MASTER_KEY guard,
drift repair, destroy; after each, the checkpoints parse, no lock is left and the front
accepted every request. The same steps on a `file://` backend are already covered by
the other engine tests; benchmarks/state_backends.py times both side by side. The wall
time of each step is printed at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import backend_lifecycle
from tests.support.backend_lifecycle import Lifecycle, lifecycle_on
from tests.support.engine_stacks import print_past_capture
from tests.support.moto_server import MotoServer

STEP_NAMES = {function.__name__: name for name, function in backend_lifecycle.STEPS}


@pytest.fixture(scope="module")
def step_times(request: pytest.FixtureRequest) -> Iterator[list[tuple[str, float]]]:
    timings: list[tuple[str, float]] = []
    yield timings
    if timings:
        lines = ["", "two joined stacks with the state in R2 (wall time per step):"]
        lines += [f"  {step:<58} {seconds:6.1f} s" for step, seconds in timings]
        lines.append(f"  {'total':<58} {sum(s for _, s in timings):6.1f} s")
        print_past_capture(request, lines)


@pytest.fixture(scope="module")
def cycle(
    engine_dir: Path, moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lifecycle]:
    with lifecycle_on("r2", engine_dir, tmp_path_factory.mktemp("r2-cycle"), moto_server) as on:
        yield on


@pytest.fixture
def run_step(
    cycle: Lifecycle, step_times: list[tuple[str, float]]
) -> Callable[[Callable[[Lifecycle], None]], None]:
    def run(step: Callable[[Lifecycle], None]) -> None:
        started = time.monotonic()
        step(cycle)
        step_times.append((STEP_NAMES[step.__name__], time.monotonic() - started))

    return run


Step = Callable[[Callable[[Lifecycle], None]], None]


def test_01_both_stacks_are_created_and_the_tenants_join_the_mux(run_step: Step) -> None:
    run_step(backend_lifecycle.create)


def test_02_a_no_op_up_of_each_stack_writes_to_no_vendor(run_step: Step) -> None:
    run_step(backend_lifecycle.no_op)


def test_03_a_new_image_digest_updates_the_tenants_in_place(run_step: Step) -> None:
    run_step(backend_lifecycle.change)


def test_04_a_changed_master_key_is_refused_before_any_write(run_step: Step) -> None:
    run_step(backend_lifecycle.key_guard)


def test_05_drift_made_out_of_band_is_repaired_by_a_plain_up(run_step: Step) -> None:
    run_step(backend_lifecycle.drift)


def test_06_destroy_leaves_no_cvm_and_empty_stacks(run_step: Step) -> None:
    run_step(backend_lifecycle.destroy)
