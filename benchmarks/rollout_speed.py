"""Rollout speed under the real engine against the Phala API emulator, side by side.

The emulator takes T seconds to provision or update a CVM. In one run this measures:
- a real `pulumi up` creating N local tenants, and the seed's way (the real `phala
  deploy` for one tenant after another, each waited for until `running`), for each N;
- an image-update rollout of the same N tenants (`pulumi up` after a new digest);
- the same N tenants in two rollout waves, against one wave;
- a no-op `pulumi preview` for several N, and its marginal cost per tenant.

It prints wall times and the ratios `sequential / pulumi` and `pulumi / ideal`, where
ideal = T x ceil(N / parallelism) (the engine's default parallelism is 8).

    .venv/bin/python -m benchmarks.rollout_speed [--seconds T] [--sizes 1,10,30]
                                                 [--preview-sizes 10,30,100]

Targets: a 30-tenant rollout within 1.5x of ideal; a no-op preview under 50 ms per tenant.
They are printed for reading, not enforced. Exit status: 0 when every measurement ran,
1 on a failure (for example no engine). Needs the engine (scripts/engine). Every
process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from components.compose import openclaw_compose
from driver.env_handoff import render_env_file
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace, locate_engine
from tests.support.engine_stacks import local_stack_config
from tests.support.phala_cli import run_phala
from tests.support.stack_configs import IMAGE, master_key_for

PARALLELISM = 8  # `pulumi up --parallel` default in the pinned engine
IMAGE_V2 = "h4x3rotab/openclaw-cvm@sha256:" + "b" * 64
STACK = "bench"


def tenant_names(count: int, prefix: str = "bench") -> tuple[str, ...]:
    return tuple(f"{prefix}-agent-{index:03d}" for index in range(count))


def timed(action: Callable[..., object], *args: object) -> float:
    started = time.monotonic()
    action(*args)
    return time.monotonic() - started


def new_workspace(
    engine: Path,
    root: Path,
    emulator: PhalaCloudEmulator,
    names: tuple[str, ...],
    **overrides: object,
) -> PulumiWorkspace:
    workspace = PulumiWorkspace(engine, root, emulator)
    config, secret_keys = local_stack_config(names, **overrides)
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    return workspace


def up(workspace: PulumiWorkspace) -> None:
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK, timeout=3600).expect_success()


def no_op_preview(workspace: PulumiWorkspace) -> None:
    workspace.run("preview", "--expect-no-changes", "--stack", STACK, timeout=3600).expect_success()


def sequential_deploys(emulator: PhalaCloudEmulator, names: tuple[str, ...], scratch: Path) -> None:
    """The seed's way: `phala deploy`, wait for running, next tenant."""
    env = emulator.cli_env(scratch / "home")
    compose = scratch / "docker-compose.yml"
    compose.write_text(openclaw_compose(IMAGE))
    for name in names:
        env_file = scratch / f"{name}.env"
        env_file.write_text(render_env_file({"MASTER_KEY": master_key_for(name)}))
        args = ["deploy", "-n", name, "-c", str(compose), "-e", str(env_file), "--json"]
        result = run_phala(args, env=env, cwd=scratch, timeout=300)
        assert result.returncode == 0, result.stderr
        while (cvm := emulator.cvm_by_name(name)) is None or cvm.status != "running":
            time.sleep(0.2)


def ideal(seconds: float, count: int) -> float:
    return seconds * math.ceil(count / PARALLELISM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="provisioning delay T")
    parser.add_argument("--sizes", default="1,10,30")
    parser.add_argument("--preview-sizes", default="10,30,100")
    options = parser.parse_args(argv)
    delay = options.seconds
    sizes = [int(n) for n in options.sizes.split(",")]
    preview_sizes = [int(n) for n in options.preview_sizes.split(",")]
    engine = locate_engine()
    rows: list[tuple[str, int, float, str]] = []

    with tempfile.TemporaryDirectory(prefix="openclaw-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        for count in sizes:
            names = tenant_names(count)
            with PhalaCloudEmulator(provision_seconds=delay, update_seconds=delay) as emulator:
                workspace = new_workspace(engine, scratch / f"up-{count}", emulator, names)
                try:
                    create = timed(up, workspace)
                    workspace.write_plain_config(STACK, {"openclawImage": IMAGE_V2})
                    update = timed(up, workspace)
                finally:
                    workspace.close()
            with PhalaCloudEmulator(provision_seconds=delay, update_seconds=delay) as emulator:
                seq_dir = scratch / f"seq-{count}"
                seq_dir.mkdir()
                sequential = timed(
                    sequential_deploys, emulator, tenant_names(count, "seq"), seq_dir
                )
            rows.append(
                ("pulumi up (create)", count, create, f"/ideal {create / ideal(delay, count):.2f}")
            )
            rows.append(
                (
                    "phala deploy, one after another",
                    count,
                    sequential,
                    f"sequential/pulumi {sequential / create:.2f}",
                )
            )
            rows.append(
                (
                    "pulumi up (image update)",
                    count,
                    update,
                    f"/ideal {update / ideal(delay, count):.2f}",
                )
            )

        wave_count = max(sizes)
        names = tenant_names(wave_count, "wave")
        timings = {}
        for wave_split in (False, True):
            with PhalaCloudEmulator(provision_seconds=delay, update_seconds=delay) as emulator:
                workspace = new_workspace(engine, scratch / f"waves-{wave_split}", emulator, names)
                try:
                    if wave_split:
                        config, _ = local_stack_config(names)
                        for index, tenant in enumerate(config["tenants"]):
                            tenant["rolloutWave"] = 0 if index < wave_count // 2 else 1
                        workspace.write_plain_config(STACK, {"tenants": config["tenants"]})
                    timings[wave_split] = timed(up, workspace)
                finally:
                    workspace.close()
        rows.append(
            (
                "pulumi up, 2 waves vs 1",
                wave_count,
                timings[True],
                f"2 waves/1 wave {timings[True] / timings[False]:.2f}",
            )
        )

        previews = {}
        for count in preview_sizes:
            with PhalaCloudEmulator(provision_seconds=0.1, update_seconds=0.1) as emulator:
                workspace = new_workspace(
                    engine, scratch / f"pv-{count}", emulator, tenant_names(count)
                )
                try:
                    up(workspace)
                    no_op_preview(workspace)  # warm
                    previews[count] = min(timed(no_op_preview, workspace) for _ in range(2))
                finally:
                    workspace.close()
        for count, seconds in previews.items():
            rows.append(("no-op pulumi preview", count, seconds, ""))
        small, large = min(previews), max(previews)
        marginal_ms = (previews[large] - previews[small]) / (large - small) * 1000

    print(f"T = {delay:g} s, engine parallelism {PARALLELISM}; ideal = T x ceil(N / {PARALLELISM})")
    print(f"{'what':<34} {'N':>4} {'wall s':>8}  ratio")
    for what, count, seconds, ratio in rows:
        print(f"{what:<34} {count:>4} {seconds:>8.1f}  {ratio}")
    print(f"no-op preview marginal cost per tenant: {marginal_ms:.0f} ms ({small} -> {large})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
