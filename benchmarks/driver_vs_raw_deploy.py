"""What the deploy driver costs over the raw `phala deploy` it wraps.

Against one local API emulator (lifecycle delays 0, so waiting for `running` is not
measured), each round times a raw `phala deploy -n <new name> ... --json` and the
driver's `create` for another new name, then a raw `phala deploy --cvm-id ... --wait`
and the driver's `update`. The order alternates between rounds so neither side always
runs warm. API calls are counted from the emulator's request log.

    .venv/bin/python -m benchmarks.driver_vs_raw_deploy [--rounds N]

Targets: driver create <= 1.15x the raw deploy, and at most 2 extra API calls.
Exit status: 0 when both targets are met, 1 when either is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from components.compose import openclaw_compose
from components.cvm_env import tenant_env
from components.phala_cvm import PhalaCvmArgs, driver_environment_values
from components.settings import PhalaSettings
from driver import protocol
from driver.env_handoff import render_env_file
from driver.spec import POLL_SECONDS_VAR
from emulators.phala import PhalaCloudEmulator
from tests.support.phala_cli import PHALA_BIN

REPO_ROOT = Path(__file__).resolve().parent.parent
# pulumi_command runs `python3` outside the venv; time the driver the same way.
ENGINE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")
INSTANCE_TYPE = "tdx.medium"
IMAGES = tuple(f"ghcr.io/openclaw/openclaw-cvm@sha256:{digit * 64}" for digit in "12")
MAX_RATIO = 1.15
MAX_EXTRA_CALLS = 2


@dataclass
class Measurements:
    seconds: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def calls_per_run(self) -> int:
        return max(self.calls)  # constant in practice; max so a stray call is not hidden


@dataclass
class Bench:
    emulator: PhalaCloudEmulator
    workdir: Path
    env: dict[str, str]
    tenant_values: dict[str, str]

    def measure(self, run: Callable[[], str], into: Measurements) -> str:
        before = self.emulator.count()
        started = time.perf_counter()
        output = run()
        into.seconds.append(time.perf_counter() - started)
        into.calls.append(self.emulator.count() - before)
        return output

    def raw(self, *args: str) -> str:
        completed = subprocess.run(
            [str(PHALA_BIN), *args],
            cwd=self.workdir,  # no phala.toml here
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise SystemExit(f"raw phala {args[0]} failed: {completed.stderr}")
        return completed.stdout

    def driver(self, command: str, name: str, image: str, previous_stdout: str = "") -> str:
        env = {**self.env, **self.driver_inputs(name, image)}
        if previous_stdout:
            env["PULUMI_COMMAND_STDOUT"] = previous_stdout
        completed = subprocess.run(
            [ENGINE_PYTHON, *protocol.PYTHON_FLAGS, protocol.DRIVER_SCRIPT, command],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise SystemExit(f"driver {command} failed: {completed.stderr}")
        return completed.stdout

    def driver_inputs(self, name: str, image: str) -> dict[str, str]:
        settings = PhalaSettings(
            instance_type=INSTANCE_TYPE,
            dev_os=False,
            ssh_public_key=None,
            wait_timeout_seconds=60,
            region=None,
            disk_size_gb=40,
            os_image=None,
            kms="phala",
            verify_health=False,
        )
        env = tenant_env(
            self.tenant_values["MASTER_KEY"], self.tenant_values["REDPILL_API_KEY"], None, None
        )
        args = PhalaCvmArgs(
            cvm_name=name,
            role="openclaw",
            compose=openclaw_compose(image),
            env=env,
            phala=settings,
            instance_type=INSTANCE_TYPE,
        )
        return {key: str(value) for key, value in driver_environment_values(args).items()}


def run_rounds(bench: Bench, rounds: int, first_round: int = 0) -> dict[str, Measurements]:
    results = {key: Measurements() for key in ("raw create", "driver create")}
    results |= {key: Measurements() for key in ("raw update", "driver update")}
    compose_files = []
    for index, image in enumerate(IMAGES):
        path = bench.workdir / f"compose-{index}.yml"
        path.write_text(openclaw_compose(image))
        compose_files.append(path)
    env_file = bench.workdir / "tenant.env"
    env_file.write_text(render_env_file(bench.tenant_values))

    for round_number in range(first_round, first_round + rounds):
        raw_name, driver_name = f"raw-bench-{round_number}", f"drv-bench-{round_number}"

        def raw_create(name: str = raw_name) -> str:
            return bench.raw(
                *("deploy", "-n", name, "-c", str(compose_files[0]), "-e", str(env_file)),
                *("-t", INSTANCE_TYPE, "--no-dev-os", "--json"),
            )

        def driver_create(name: str = driver_name) -> str:
            return bench.driver("create", name, IMAGES[0])

        creates = [(raw_create, "raw create"), (driver_create, "driver create")]
        if round_number % 2:
            creates.reverse()
        outputs = {label: bench.measure(run, results[label]) for run, label in creates}

        raw_uuid = json.loads(outputs["raw create"][outputs["raw create"].index("{") :])["vm_uuid"]
        driver_stdout = outputs["driver create"]

        def raw_update(cvm_id: str = raw_uuid) -> str:
            return bench.raw(
                *("deploy", "--cvm-id", cvm_id, "-c", str(compose_files[1])),
                *("-e", str(env_file), "--wait", "--json"),
            )

        def driver_update(name: str = driver_name, previous: str = driver_stdout) -> str:
            return bench.driver("update", name, IMAGES[1], previous)

        updates = [(raw_update, "raw update"), (driver_update, "driver update")]
        if round_number % 2:
            updates.reverse()
        for run, label in updates:
            bench.measure(run, results[label])
    return results


def report(results: Mapping[str, Measurements], rounds: int, driver_create_calls: str) -> bool:
    print(f"driver vs raw phala deploy: {rounds} rounds, median wall seconds, API calls per run")
    header = f"{'':8} {'raw s':>7} {'driver s':>9} {'ratio':>6} {'raw calls':>10}"
    print(header + f" {'driver calls':>13} {'extra':>6}")
    verdicts = []
    for operation in ("create", "update"):
        raw, driver = results[f"raw {operation}"], results[f"driver {operation}"]
        ratio = driver.median_seconds / raw.median_seconds
        extra = driver.calls_per_run - raw.calls_per_run
        print(
            f"{operation:8} {raw.median_seconds:>7.3f} {driver.median_seconds:>9.3f} "
            f"{ratio:>5.2f}x {raw.calls_per_run:>10} {driver.calls_per_run:>13} {extra:>+6}"
        )
        if operation == "create":
            verdicts.append(ratio <= MAX_RATIO and extra <= MAX_EXTRA_CALLS)
    for label, measured in results.items():
        low, high = min(measured.seconds), max(measured.seconds)
        print(f"  {label:14} spread {low:.3f}-{high:.3f} s")
    print(f"driver create calls: {driver_create_calls}")
    passed = all(verdicts)
    print(
        f"targets (create ratio <= {MAX_RATIO}, <= {MAX_EXTRA_CALLS} extra calls): "
        + ("met" if passed else "MISSED")
    )
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()

    tenant_values = {
        "MASTER_KEY": "bench-master-key-0123456789abcdef0123456789",
        "REDPILL_API_KEY": "bench-redpill-key-0123456789",
    }
    with (
        tempfile.TemporaryDirectory(prefix="driver-bench-") as scratch,
        PhalaCloudEmulator(provision_seconds=0, update_seconds=0) as emulator,
    ):
        workdir = Path(scratch) / "work"
        workdir.mkdir()
        tmpdir = Path(scratch) / "tmp"
        tmpdir.mkdir()
        env = emulator.cli_env(Path(scratch) / "home")
        env |= {"TMPDIR": str(tmpdir), POLL_SECONDS_VAR: "0.05"}
        bench = Bench(emulator, workdir, env, tenant_values)
        run_rounds(bench, 1)  # warm-up, not counted: the first Node start reads a cold disk
        results = run_rounds(bench, options.rounds, first_round=1)

        # One more driver create, only to show which calls it makes.
        emulator.clear_log()
        bench.driver("create", "drv-bench-calls", IMAGES[0])
        calls = ", ".join(f"{record.method} {record.path}" for record in emulator.request_log)
    passed = report(results, options.rounds, calls)
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
