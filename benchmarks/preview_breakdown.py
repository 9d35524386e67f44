"""Where the time of a no-op `pulumi preview` and a no-op `pulumi up` goes, by phase.

For each fleet size, in one run: deploy the fleet with the real engine (stand-in plugins,
the Phala and Cloudflare emulators), then time no-op previews and no-op ups, each traced
by the engine itself (`--otel-traces`, read by benchmarks/support/engine_trace.py) with the
stand-ins' per-call timings on (standins/timings.py). It prints, per phase, the median
over --repeat runs at each size, the marginal cost per tenant between sizes, and each
phase's share at the largest size:

- wall phases from the trace: the engine's start (CLI, state, the language host's
  GetRequiredPackages), the program's start (interpreter, the SDK's and our imports,
  the settings), its readStackOutputs, its registering (evaluation while the engine
  steps), its exit, and the engine's finish;
- CPU per process: the program (from the language host), the engine (the rest of the
  process tree), each stand-in (labelled so: real plugins are Go), the emulators;
- the RPCs behind them: what the engine served the program (RegisterResource, Engine/Log,
  Invoke...), and each plugin's Check/Diff/Read/Invoke calls as the engine timed them;
- the program's own reads: readStackOutputs, and the drift GETs the emulator answered.

Untraced previews are timed too, so the tracing's own cost shows. A no-op up must write
nothing to either emulator; a write fails the run.

    .venv/bin/python -m benchmarks.preview_breakdown [--sizes 10,30,100] [--repeat 2]
                                                     [--fleet mixed|local|s3] [--no-mux]
                                                     [--baseline REF]

With --baseline REF the same fleets are deployed and measured with the project of a git
ref's tree too, size by size, alternating which tree goes first, and the ratios of the
main rows (current / REF) are printed. Only the project differs: the engine, the
stand-ins and this script are this checkout's in both, and REF's tree runs with this
checkout's .venv and node_modules.

Fleets: `mixed` is benchmarks' usual one (every fifth tenant local, the rest in R2) with a
mux; `local` is rollout_speed's (local storage only).

Targets: the program's CPU in a no-op preview at most 30 ms per extra tenant (the
marginal cost between the two largest sizes, as issue 25 counts per tenant), and linear:
the marginal CPU of its evaluation (from its first RPC to its exit, split off by the
language host's CPU samples) between the two largest sizes at most 1.5x the one between
the two smallest. The start is left out of that ratio because it is a fixed cost whose
spread from run to run (0.2 s) outweighs what 20 tenants add. The program's CPU divided
by the tenants is printed too: the fixed start (imports) weighs on it.

Exit status: 0 when both targets are met, 1 when not or on a failure (for example no
engine). Every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.support.engine_trace import Phases, phases, read_spans, read_standin_timings
from benchmarks.support.side_by_side import trees
from emulators.cloudflare import CloudflareEmulator
from emulators.phala import Behaviour, PhalaCloudEmulator
from standins.timings import TIMINGS_VAR
from tests.support.engine_harness import REPO_ROOT, PulumiWorkspace, locate_engine
from tests.support.engine_stacks import ENGINE_TIMINGS, local_stack_config
from tests.support.stack_configs import ACCOUNT_ID, many_tenants

STACK = "bench"
PROGRAM_CPU_TARGET_MS = 30.0  # per extra tenant, between the largest sizes (issue 25)
LINEARITY_TARGET = 1.5  # marginal cost between the largest sizes / between the smallest
STANDIN_LABEL = " (stand-in)"
PROGRAM_CPU = "  program (SDK and ours)"
PROGRAM_START_CPU = "    of which its start (to its first RPC)"
PROGRAM_EVALUATION_CPU = "    of which its evaluation (first RPC to exit)"
# The calls that grow with the fleet; the rest (Handshake, Configure...) happen once.
STEP_METHODS = frozenset({"Check", "Diff", "Read", "Invoke", "Create", "Update", "Delete"})
PROGRAM_RPCS = frozenset(
    {
        "ResourceMonitor/RegisterResource",
        "ResourceMonitor/RegisterResourceOutputs",
        "ResourceMonitor/Invoke",
        "Engine/Log",
    }
)


def fleet_config(fleet: str, count: int, mux: bool) -> tuple[dict[str, Any], list[str]]:
    names = [f"tenant-{index:04d}" for index in range(count)]
    if fleet == "local":
        return local_stack_config(names, mux="shared-mux" if mux else None)
    if fleet == "s3":
        config, secret_keys = many_tenants(count, with_mux=mux)
        for tenant in config["tenants"]:
            tenant["storage"] = "s3"
    else:
        config, secret_keys = many_tenants(count, with_mux=mux)
    # The emulator's gateway domain does not resolve: health checks off, as in the tests.
    config["phalaVerifyHealth"] = False
    return config, secret_keys


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Sample:
    """One traced run's numbers: name -> seconds (or a count), in print order."""

    values: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values[name] = self.values.get(name, 0.0) + value


def plugin_label(plugin: str) -> str:
    return plugin + STANDIN_LABEL


def sample_from(
    wall: float,
    tree_cpu: float,
    emulator_cpu: float,
    found: Phases,
    timings_dir: Path,
    drift_gets: int,
    drift_window: float,
) -> Sample:
    timings = read_standin_timings(timings_dir)
    sample = Sample()
    sample.add("wall", wall)
    sample.add("wall: traced by the engine", found.total)
    sample.add("  engine start (CLI, state, plugins, GetRequiredPackages)", found.engine_start)
    sample.add("  program start (interpreter, imports, settings)", found.program_start)
    sample.add("  program's readStackOutputs", found.read_stack_outputs)
    sample.add("  program registering (evaluation, engine steps)", found.program_registering)
    sample.add("  program exit", found.program_end)
    sample.add("  engine finish (snapshot, summary)", found.engine_finish)
    standin_cpu = sum(timings.cpu.values())
    sample.add("CPU: all processes", tree_cpu + emulator_cpu)
    sample.add(PROGRAM_CPU, timings.program_cpu)
    started = min(timings.program_cpu_at(found.program_first_rpc_at), timings.program_cpu)
    sample.add(PROGRAM_START_CPU, started)
    sample.add(PROGRAM_EVALUATION_CPU, timings.program_cpu - started)
    sample.add("  engine (pulumi)", max(0.0, tree_cpu - timings.program_cpu - standin_cpu))
    for plugin in sorted(timings.cpu):
        sample.add(f"  {plugin_label(plugin)}", timings.cpu[plugin])
    sample.add("  emulators (this process)", emulator_cpu)
    for name, (count, seconds) in found.monitor_calls.items():
        if name not in PROGRAM_RPCS:
            continue
        sample.add(f"engine served {name}: calls", count)
        sample.add(f"engine served {name}: s", seconds)
    for (plugin, method), (count, seconds) in found.plugin_calls.items():
        if method not in STEP_METHODS:
            continue
        sample.add(f"{plugin_label(plugin)} {method}: calls", count)
        sample.add(f"{plugin_label(plugin)} {method}: s", seconds)
    served: dict[str, float] = defaultdict(float)
    for call in timings.calls:
        if call.method not in STEP_METHODS and call.method != "GetRequiredPackages":
            continue
        served[f"{plugin_label(call.plugin)} served {call.method}: s"] += call.seconds
    for name, seconds in sorted(served.items()):
        sample.add(name, seconds)
    sample.add("drift GETs: calls", drift_gets)
    sample.add("drift GETs: first to last, s", drift_window)
    return sample


class Fleet:
    """One deployed fleet under the real engine, and its traced no-op runs."""

    def __init__(self, root: Path, workspace: PulumiWorkspace, emulators: list[Any]) -> None:
        self.root = root
        self.workspace = workspace
        self.phala: PhalaCloudEmulator = emulators[0]
        self.emulators = emulators
        self.runs = 0

    def writes(self) -> list[str]:
        found = []
        for emulator in self.emulators:
            found += [
                f"{r.method} {r.path}"
                for r in emulator.request_log
                if r.method not in ("GET", "HEAD")
                and not (r.method == "POST" and r.path == "/status/batch")
            ]
        return found

    def traced(self, *args: str) -> Sample:
        self.runs += 1
        trace = self.root / f"trace-{self.runs}.jsonl"
        timings_dir = self.root / f"timings-{self.runs}"
        self.workspace.extra_env[TIMINGS_VAR] = str(timings_dir)
        for emulator in self.emulators:
            emulator.clear_log()
        try:
            cpu_before, own_before = children_cpu(), own_cpu()
            started = time.time()
            result = self.workspace.run(
                *args, "--stack", STACK, "--otel-traces", f"file://{trace}", timeout=3600
            )
            wall = time.time() - started
            tree_cpu, emulator_cpu = children_cpu() - cpu_before, own_cpu() - own_before
        finally:
            del self.workspace.extra_env[TIMINGS_VAR]
        result.expect_success()
        if writes := self.writes():
            raise AssertionError(f"a no-op `pulumi {args[0]}` wrote: {writes[:5]}")
        gets = [
            r.at
            for r in self.phala.request_log
            if r.method == "GET" and r.path.startswith("/cvms/") and r.path.count("/") == 2
        ]
        window = max(gets) - min(gets) if gets else 0.0
        found = phases(read_spans(trace), read_standin_timings(timings_dir).ports)
        return sample_from(wall, tree_cpu, emulator_cpu, found, timings_dir, len(gets), window)

    def untraced(self, *args: str) -> float:
        started = time.time()
        self.workspace.run(*args, "--stack", STACK, timeout=3600).expect_success()
        return time.time() - started


PREVIEW = ("preview", "--expect-no-changes")
UP = ("up", "--yes", "--skip-preview", "--expect-no-changes")


def deployed_fleet(
    stack: ExitStack,
    engine: Path,
    root: Path,
    fleet: str,
    count: int,
    mux: bool,
    project_source: Path = REPO_ROOT,
) -> Fleet:
    config, secret_keys = fleet_config(fleet, count, mux)
    phala = stack.enter_context(PhalaCloudEmulator(behaviour=Behaviour(timings=ENGINE_TIMINGS)))
    cloudflare = (
        stack.enter_context(CloudflareEmulator(account_id=ACCOUNT_ID)) if fleet != "local" else None
    )
    workspace = PulumiWorkspace(engine, root, phala, cloudflare, project_source=project_source)
    stack.callback(workspace.close)
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK, timeout=3600).expect_success()
    return Fleet(root, workspace, [phala] + ([cloudflare] if cloudflare else []))


def measure(
    engine: Path,
    scratch: Path,
    fleet: str,
    count: int,
    mux: bool,
    repeat: int,
    project_source: Path = REPO_ROOT,
) -> dict[str, list[Sample]]:
    with ExitStack() as stack:
        deployed = deployed_fleet(
            stack, engine, scratch, fleet, count, mux, project_source=project_source
        )
        deployed.untraced(*PREVIEW)  # warm: page cache, .pyc files
        samples: dict[str, list[Sample]] = {"preview": [], "up": []}
        for _ in range(repeat):
            untraced = deployed.untraced(*PREVIEW)
            preview = deployed.traced(*PREVIEW)
            preview.add("wall, untraced", untraced)
            samples["preview"].append(preview)
            samples["up"].append(deployed.traced(*UP))
        return samples


def medians(samples: list[Sample]) -> dict[str, float]:
    names: dict[str, None] = {}
    for sample in samples:
        names.update(dict.fromkeys(sample.values))
    return {
        name: statistics.median(sample.values.get(name, 0.0) for sample in samples)
        for name in names
    }


def spread(samples: list[Sample], name: str) -> str:
    values = [sample.values.get(name, 0.0) for sample in samples]
    return f"{min(values):.2f}-{max(values):.2f}"


def ordered_rows(by_size: dict[int, dict[str, float]]) -> Iterator[str]:
    names: dict[str, None] = {}
    for values in by_size.values():
        names.update(dict.fromkeys(values))
    # Counts and summed RPC seconds after the phases, grouped by what they describe.
    phases_first = [n for n in names if not n.endswith((": calls", ": s", ", s"))]
    rest = sorted(n for n in names if n not in phases_first)
    yield from phases_first
    yield from rest


def print_table(
    title: str, sizes: list[int], by_size: dict[int, dict[str, float]], out: Callable[[str], None]
) -> None:
    pairs = list(itertools.pairwise(sizes))
    largest = sizes[-1]
    header = f"{title:<66}" + "".join(f"{n:>9}" for n in sizes)
    header += "".join(f"{f'ms/t {a}-{b}':>14}" for a, b in pairs) + f"{'share@' + str(largest):>11}"
    out(header)
    wall = by_size[largest].get("wall: traced by the engine", 0.0)
    cpu = by_size[largest].get("CPU: all processes", 0.0)
    for name in ordered_rows(by_size):
        values = [by_size[n].get(name, 0.0) for n in sizes]
        is_count = name.endswith(": calls")
        cells = "".join(f"{v:>9.0f}" if is_count else f"{v:>9.2f}" for v in values)
        marginal = ""
        for a, b in pairs:
            step = (by_size[b].get(name, 0.0) - by_size[a].get(name, 0.0)) / (b - a)
            marginal += f"{step:>14.2f}" if is_count else f"{step * 1000:>14.1f}"
        share = ""
        if name.startswith("  ") and not is_count:
            whole = cpu if name.strip() in _cpu_rows(by_size[largest]) else wall
            share = f"{100 * values[-1] / whole:>10.0f}%" if whole else ""
        out(f"{name[:66]:<66}{cells}{marginal}{share}")


def _cpu_rows(values: dict[str, float]) -> set[str]:
    names = list(values)
    start = names.index("CPU: all processes") if "CPU: all processes" in names else len(names)
    rows = set()
    for name in names[start + 1 :]:
        if not name.startswith("  "):
            break
        rows.add(name.strip())
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,30,100", help="fleet sizes, smallest first")
    parser.add_argument("--repeat", type=int, default=2, help="traced runs per size (median)")
    parser.add_argument("--fleet", choices=("mixed", "local", "s3"), default="mixed")
    parser.add_argument("--no-mux", action="store_true", help="a fleet without the mux")
    parser.add_argument("--baseline", help="a git ref whose project to measure side by side")
    options = parser.parse_args(argv)
    sizes = sorted(int(n) for n in options.sizes.split(","))
    if len(sizes) < 2:
        parser.error("--sizes needs at least two sizes")
    engine = locate_engine()
    # label -> operation -> size -> samples
    results: dict[str, dict[str, dict[int, list[Sample]]]] = {}
    with (
        trees(options.baseline) as labelled,
        tempfile.TemporaryDirectory(prefix="openclaw-breakdown-") as scratch_dir,
    ):
        for label, tree in labelled.items():
            results[label] = {"preview": {}, "up": {}}
            if tree != REPO_ROOT:
                for shared in (".venv", "node_modules"):  # REF's tree runs with ours
                    (tree / shared).symlink_to(REPO_ROOT / shared)
        order = list(labelled)
        for index, count in enumerate(sizes):
            for label in order if index % 2 == 0 else reversed(order):
                measured = measure(
                    engine,
                    Path(scratch_dir) / f"{order.index(label)}-fleet-{count}",
                    options.fleet,
                    count,
                    not options.no_mux,
                    options.repeat,
                    project_source=labelled[label],
                )
                for operation, samples in measured.items():
                    results[label][operation][count] = samples

    fleet = f"{options.fleet} fleet, {'no mux' if options.no_mux else 'with mux'}"
    print(f"median of {options.repeat} runs per size; stand-ins are ours, the real plugins are Go")
    tables: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for label, by_operation in results.items():
        tables[label] = {}
        for operation, by_size in by_operation.items():
            print()
            table = {count: medians(samples) for count, samples in by_size.items()}
            tables[label][operation] = table
            title = f"no-op pulumi {operation}, {fleet}"
            print_table(title if label == "current" else f"{title} [{label}]", sizes, table, print)
            print(
                "wall spread (min-max): "
                + ", ".join(f"{n}: {spread(by_size[n], 'wall')} s" for n in sizes)
            )
    if options.baseline:
        print()
        print_ratios(sizes, tables["current"], tables[options.baseline], options.baseline, print)
    return verdict(sizes, tables["current"]["preview"], print)


RATIO_ROWS = ("wall", "CPU: all processes", PROGRAM_CPU, "  engine (pulumi)")


def print_ratios(
    sizes: list[int],
    current: dict[str, dict[int, dict[str, float]]],
    baseline: dict[str, dict[int, dict[str, float]]],
    label: str,
    out: Callable[[str], None],
) -> None:
    """current / baseline for the main rows of each operation, at each size."""
    out(f"{'current / ' + label:<40}" + "".join(f"{n:>9}" for n in sizes))
    for operation in current:
        for row in RATIO_ROWS:
            cells = ""
            for n in sizes:
                before = baseline[operation][n].get(row, 0.0)
                after = current[operation][n].get(row, 0.0)
                cells += f"{after / before:>9.2f}" if before else f"{'-':>9}"
            out(f"{(operation + ': ' + row.strip())[:40]:<40}{cells}")


def verdict(
    sizes: list[int], preview: dict[int, dict[str, float]], out: Callable[[str], None]
) -> int:
    """Print the program's targets and return the exit status: 0 when both are met."""

    def marginal(row: str, small: int, large: int) -> float:
        return (preview[large][row] - preview[small][row]) / (large - small)

    total_step = marginal(PROGRAM_CPU, sizes[-2], sizes[-1])
    # Linearity is judged on the evaluation: the start (interpreter, imports) is a fixed
    # cost whose run-to-run spread, over a small step, outweighs what the tenants add.
    small_step = marginal(PROGRAM_EVALUATION_CPU, sizes[0], sizes[1])
    large_step = marginal(PROGRAM_EVALUATION_CPU, sizes[-2], sizes[-1])
    ratio = large_step / max(small_step, 1e-9)
    cheap = total_step * 1000 <= PROGRAM_CPU_TARGET_MS
    linear = ratio <= LINEARITY_TARGET
    out("")
    out(
        f"program CPU in a no-op preview: {total_step * 1000:.1f} ms per extra tenant "
        f"({sizes[-2]}-{sizes[-1]}; target <= {PROGRAM_CPU_TARGET_MS:.0f}): "
        f"{'met' if cheap else 'NOT met'}; "
        f"{preview[sizes[-1]][PROGRAM_CPU] / sizes[-1] * 1000:.1f} ms per tenant at "
        f"{sizes[-1]} with the start"
    )
    out(
        f"its evaluation: {large_step * 1000:.1f} ms per extra tenant ({sizes[-2]}-{sizes[-1]}), "
        f"{small_step * 1000:.1f} ms ({sizes[0]}-{sizes[1]}), ratio {ratio:.2f} "
        f"(target <= {LINEARITY_TARGET}): {'linear' if linear else 'superlinear'}"
    )
    return 0 if cheap and linear else 1


if __name__ == "__main__":
    sys.exit(main())
