"""The breakdown's arithmetic: the program's CPU split at its first RPC, and the verdict
on its targets (benchmarks/preview_breakdown.py, benchmarks/support/engine_trace.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from benchmarks.preview_breakdown import (
    PROGRAM_CPU,
    PROGRAM_EVALUATION_CPU,
    PROGRAM_START_CPU,
    verdict,
)
from benchmarks.support.engine_trace import read_standin_timings
from standins.language_host import wait_cancellable
from standins.timings import pid_cpu_seconds


def preview_rows(program: dict[int, tuple[float, float]]) -> dict[int, dict[str, float]]:
    """size -> the rows verdict reads, from (start CPU, evaluation CPU) per size."""
    return {
        size: {
            PROGRAM_CPU: start + evaluation,
            PROGRAM_START_CPU: start,
            PROGRAM_EVALUATION_CPU: evaluation,
        }
        for size, (start, evaluation) in program.items()
    }


def test_a_noisy_start_does_not_make_a_linear_evaluation_superlinear() -> None:
    # 20 ms per tenant of evaluation; the start drifts by 0.3 s between runs.
    rows = preview_rows({10: (2.3, 0.2), 30: (2.0, 0.6), 100: (2.1, 2.0)})
    lines: list[str] = []
    assert verdict([10, 30, 100], rows, lines.append) == 0
    assert "ratio 1.00" in lines[-1] and "linear" in lines[-1]


def test_a_superlinear_evaluation_fails_the_verdict() -> None:
    rows = preview_rows({10: (2.0, 0.1), 30: (2.0, 0.3), 100: (2.0, 2.0)})  # 10 then 24 ms
    lines: list[str] = []
    assert verdict([10, 30, 100], rows, lines.append) == 1
    assert "superlinear" in lines[-1]


def test_more_than_30_ms_per_extra_tenant_fails_the_verdict() -> None:
    rows = preview_rows({10: (2.0, 0.35), 30: (2.0, 1.05), 100: (2.0, 3.5)})  # 35 ms each
    lines: list[str] = []
    assert verdict([10, 30, 100], rows, lines.append) == 1
    assert "35.0 ms per extra tenant" in lines[-2] and "NOT met" in lines[-2]


def test_the_program_cpu_at_a_moment_is_the_last_sample_taken_by_then(tmp_path: Path) -> None:
    record = {
        "plugin": "python",
        "method": "program",
        "start": 100.0,
        "seconds": 3.0,
        "program_cpu": 2.5,
        "program_cpu_samples": [[100.5, 0.4], [101.0, 1.1], [102.0, 2.2]],
    }
    (tmp_path / "python-1.jsonl").write_text(json.dumps(record) + "\n")
    timings = read_standin_timings(tmp_path)
    assert timings.program_cpu_at(100.0) == 0.0
    assert timings.program_cpu_at(101.5) == 1.1
    assert timings.program_cpu_at(200.0) == 2.2


def test_the_host_samples_a_busy_program_cpu_as_it_runs() -> None:
    busy = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
    process = subprocess.Popen([sys.executable, "-c", busy])
    samples: list[float] = []

    def sample() -> None:
        cpu = pid_cpu_seconds(process.pid)
        if cpu is not None:
            samples.append(cpu)

    assert wait_cancellable(process, threading.Event(), lambda: True, sample) == 0
    assert samples == sorted(samples)
    assert samples[-1] >= 0.3  # the busy loop's CPU was seen before it exited
    assert pid_cpu_seconds(process.pid) is None  # reaped: no such process
