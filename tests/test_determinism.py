"""Same config, same bytes: in fresh interpreters with other hash seeds and directories.

Comparing f(x) with f(x) in one process cannot catch what differs between runs: set
and dict-of-set iteration order follows PYTHONHASHSEED, and `hash()` of a str changes
from one interpreter to the next. Each check here compares this process's result with
two fresh interpreters (hash seeds 1 and 2) that work from other directories.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HASH_SEEDS = ("1", "2")

# Everything whose bytes end up in resource inputs or in an offline plan.
ARTEFACTS = r"""
import dataclasses, json, sys
from pathlib import Path

from components.compose import mux_compose, openclaw_compose
from components.openclaw_config import encode_config, tenant_config
from plan.evaluate import run_program
from plan.placeholders import offline_config, placeholder
from tests.support.stack_configs import IMAGE, MUX_IMAGE, prod_config

config, secret_keys = prod_config()
run = run_program(config, secret_keys, cwd=Path(sys.argv[1]))
artefacts = {
    "openclaw compose": openclaw_compose(IMAGE),
    "mux compose": mux_compose(MUX_IMAGE),
    "bootstrap config": encode_config(tenant_config("tok", "https://mux.example", "reg")),
    "placeholders": [placeholder(path) for path in ("a", "tenantSecrets.x.masterKey")],
    # The example stack holds no secrets: the stand-ins for them are part of what is pinned.
    "offline config": dataclasses.asdict(offline_config("prod", stand_in_missing=True)),
    "program inputs": sorted(
        [r.urn, json.dumps(r.plain_inputs, sort_keys=True)] for r in run.registrations
    ),
}
print("ARTEFACTS " + json.dumps(artefacts))
"""


def _artefacts_in_a_fresh_interpreter(hash_seed: str, workdir: Path) -> dict[str, Any]:
    environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
    finished = subprocess.run(
        [sys.executable, "-c", ARTEFACTS, str(workdir)],
        cwd=REPO_ROOT,  # importable from here; the program itself runs in workdir
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    (line,) = [line for line in finished.stdout.splitlines() if line.startswith("ARTEFACTS ")]
    return json.loads(line.removeprefix("ARTEFACTS "))


def _artefacts_here(workdir: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    # The same code as the fresh interpreters run, without its print.
    code = ARTEFACTS.replace('print("ARTEFACTS " + json.dumps(artefacts))', "")
    argv = sys.argv
    sys.argv = ["-c", str(workdir)]
    try:
        exec(compile(code, "<artefacts>", "exec"), namespace)  # noqa: S102 - our own code
    finally:
        sys.argv = argv
    return json.loads(json.dumps(namespace["artefacts"]))


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """This process's artefacts, then one set per fresh interpreter."""
    here = _artefacts_here(tmp_path_factory.mktemp("here"))
    fresh = [
        _artefacts_in_a_fresh_interpreter(seed, tmp_path_factory.mktemp(f"seed-{seed}"))
        for seed in HASH_SEEDS
    ]
    return [here, *fresh]


@pytest.mark.parametrize(
    "name",
    [
        "openclaw compose",
        "mux compose",
        "bootstrap config",
        "placeholders",
        "offline config",
        "program inputs",
    ],
)
def test_is_identical_in_fresh_interpreters_with_other_hash_seeds(
    artefacts: list[dict[str, Any]], name: str
) -> None:
    here, *fresh = artefacts
    assert here[name], name  # something was produced
    for other in fresh:
        assert other[name] == here[name], name
