"""The offline plan reads a stack file exactly as `pulumi preview` does (issue 13, item 3).

Differential, under the real engine: for every hostile stack file in
tests/support/hostile_stack_files.py, `pulumi preview` runs with the stand-in language
host recording the config it would hand the program (PULUMI_CONFIG and its secret keys)
instead of running it. The plan's reader (plan/stack_file.py) must produce the same
config map, key for key, with the same secret keys, and the settings parsed from each
(the program's parse on the engine's map; the plan's offline path, placeholders and
all, on its own) must be equal, or fail with the same message. Where Pulumi refuses the
file itself, the plan must refuse it too, both naming the same thing.

Cost: one `preview` per file (~1-4 s: it stops before the program), on a few stacks at
once; the ciphertexts are made once by the stacks' own passphrase provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.config_keys import PROJECT
from components.config_parser import parse_settings
from components.settings import RawConfig, SettingsError, read_raw_config
from emulators.phala import PhalaCloudEmulator
from plan.evaluate import _engine_value as plan_engine_value
from plan.placeholders import offline_config_of
from plan.stack_file import (
    Encrypted,
    EngineConfig,
    StackFileError,
    declared_keys,
    engine_config,
)
from standins.language_host import RECORD_CONFIG_VAR
from tests.support.engine_harness import REPO_ROOT, PulumiWorkspace
from tests.support.engine_stacks import print_past_capture
from tests.support.hostile_stack_files import HOSTILE_FILES, PLAINTEXTS, HostileFile

STACKS = ("parity-a", "parity-b", "parity-c")
DECLARED = declared_keys(REPO_ROOT / "Pulumi.yaml")


@dataclass(frozen=True)
class EngineRun:
    config: dict[str, str] | None  # what the program would get; None if Pulumi refused
    secret_keys: frozenset[str]
    output: str
    seconds: float


@dataclass
class ParityWorld:
    workspace: PulumiWorkspace
    record_dir: Path
    salt_line: str
    ciphertexts: dict[str, str]  # token -> ciphertext
    results: dict[str, tuple[str, EngineRun]]  # case -> (file text, engine run)

    def text_of(self, case: HostileFile) -> str:
        text = case.text.replace("@SALT@", self.salt_line)
        for token, ciphertext in self.ciphertexts.items():
            text = text.replace(token, ciphertext)
        return text

    def plaintext_of(self, ciphertext: str) -> str:
        token = next(t for t, c in self.ciphertexts.items() if c == ciphertext)
        return PLAINTEXTS[token]

    def preview(self, stack: str, text: str) -> EngineRun:
        self.workspace.stack_file(stack).write_text(text, encoding="utf-8")
        record = self.record_dir / f"{stack}.json"
        record.unlink(missing_ok=True)
        result = self.workspace.run("preview", "--stack", stack, "--non-interactive", timeout=120)
        if not record.exists():
            return EngineRun(None, frozenset(), result.output, result.seconds)
        recorded = json.loads(record.read_text())
        return EngineRun(
            recorded["config"], frozenset(recorded["secretKeys"]), result.output, result.seconds
        )


@pytest.fixture(scope="module")
def parity(engine_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParityWorld]:
    root = tmp_path_factory.mktemp("parity")
    record_dir = root / "recorded"
    record_dir.mkdir(mode=0o700)
    with PhalaCloudEmulator() as emulator:
        # TZ=UTC: Go prints a timestamp in the engine's local zone (a documented limit).
        workspace = PulumiWorkspace(engine_dir, root / "engine", emulator, extra_env={"TZ": "UTC"})
        try:
            for stack in STACKS:
                workspace.init_stack(stack)
            for index, plaintext in enumerate(PLAINTEXTS.values()):
                workspace.set_secret(STACKS[0], f"probe{index}", plaintext)
            first = workspace.stack_file(STACKS[0]).read_text()
            salt_line = next(line for line in first.splitlines() if line.startswith("encryption"))
            ciphertexts = {
                token: first.split(f"probe{index}:\n    secure: ", 1)[1].split("\n", 1)[0]
                for index, token in enumerate(PLAINTEXTS)
            }
            workspace.extra_env[RECORD_CONFIG_VAR] = str(record_dir)
            world = ParityWorld(workspace, record_dir, salt_line, ciphertexts, {})
            queues = [HOSTILE_FILES[i :: len(STACKS)] for i in range(len(STACKS))]

            def work(stack: str, cases: tuple[HostileFile, ...]) -> None:
                for case in cases:
                    text = world.text_of(case)
                    world.results[case.name] = (text, world.preview(stack, text))

            with ThreadPoolExecutor(len(STACKS)) as pool:
                list(pool.map(work, STACKS, queues))
            yield world
        finally:
            workspace.close()


def _decrypted(value: Any, world: ParityWorld) -> Any:
    if isinstance(value, Encrypted):
        return world.plaintext_of(value.ciphertext)
    if isinstance(value, dict):
        return {key: _decrypted(item, world) for key, item in value.items()}
    if isinstance(value, list):
        return [_decrypted(item, world) for item in value]
    return value


def _as_received(value: Any) -> Any:
    """A config value as the program's json.loads would see it (text stays text)."""
    return value if isinstance(value, str) else json.loads(json.dumps(value))


def _outcome(raw: RawConfig) -> str:
    """The program's settings (secrets redacted by their repr), or its error message."""
    try:
        return repr(parse_settings(raw))
    except SettingsError as error:
        return f"error: {error}"


def _plan_outcome(read: EngineConfig) -> str:
    prefix = f"{PROJECT}:"
    values = {k.removeprefix(prefix): v for k, v in read.values.items() if k.startswith(prefix)}
    secret = [k.removeprefix(prefix) for k in read.secret_keys if k.startswith(prefix)]
    try:
        offline = offline_config_of(values, secret)
    except SettingsError as error:
        return f"error: {error}"
    texts = {key: plan_engine_value(value) for key, value in offline.config.items()}
    return _outcome(RawConfig(texts, frozenset(offline.secret_keys)))


@pytest.mark.parametrize("case", HOSTILE_FILES, ids=lambda case: case.name)
def test_plan_reads_the_stack_file_as_pulumi_preview_does(
    case: HostileFile, parity: ParityWorld
) -> None:
    text, engine = parity.results[case.name]
    try:
        planned: EngineConfig | None = engine_config(
            text, PROJECT, _stack_of(case), DECLARED, with_defaults=True
        )
        plan_error = None
    except StackFileError as error:
        planned, plan_error = None, str(error)

    if engine.config is None:
        assert case.shared is not None, f"Pulumi refused the file:\n{engine.output}"
        assert plan_error is not None, f"the plan accepted what Pulumi refused:\n{engine.output}"
        assert case.shared in engine.output, engine.output
        assert case.shared in plan_error, plan_error
        assert "\n" not in plan_error
        return
    assert plan_error is None, f"the plan refused what Pulumi accepted: {plan_error}"
    assert planned is not None
    assert case.shared is None, "Pulumi accepted a file the case expects it to refuse"
    plan_values = {key: _decrypted(value, parity) for key, value in planned.values.items()}
    engine_values = {
        key: value if isinstance(plan_values.get(key), str) else json.loads(value)
        for key, value in engine.config.items()
    }
    assert {k: _as_received(v) for k, v in plan_values.items()} == engine_values
    assert planned.secret_keys == engine.secret_keys

    program_sees = read_raw_config(engine.config, lambda key: key in engine.secret_keys)
    assert _plan_outcome(planned) == _outcome(program_sees)


def _stack_of(case: HostileFile) -> str:
    return STACKS[HOSTILE_FILES.index(case) % len(STACKS)]


def test_parity_files_are_many_and_the_previews_affordable(
    parity: ParityWorld, request: pytest.FixtureRequest
) -> None:
    runs = [engine for _, engine in parity.results.values()]
    refused = sum(engine.config is None for engine in runs)
    assert len(runs) >= 30
    assert 0 < refused < len(runs)  # both kinds of case are exercised
    print_past_capture(
        request,
        [
            f"stack-file parity: {len(runs)} files, {refused} refused by Pulumi, "
            f"{sum(engine.seconds for engine in runs):.0f} s of preview on {len(STACKS)} stacks"
        ],
    )


def test_the_program_itself_refuses_a_plaintext_secret_with_the_plans_message(
    parity: ParityWorld,
) -> None:
    """The parity cases parse the recorded config with the program's own parse; this one
    lets the program run, once, to show that is what it says under `pulumi preview`."""
    case = next(case for case in HOSTILE_FILES if case.name == "plaintext-redpill-key")
    text = parity.text_of(case)
    message = (
        "openclaw-phala:redpillApiKey: holds a secret in plaintext; "
        "set it with: pulumi config set --secret redpillApiKey"
    )
    assert message in _plan_outcome(
        engine_config(text, PROJECT, STACKS[0], DECLARED, with_defaults=True)
    )
    del parity.workspace.extra_env[RECORD_CONFIG_VAR]
    try:
        run = parity.preview(STACKS[0], text)
    finally:
        parity.workspace.extra_env[RECORD_CONFIG_VAR] = str(parity.record_dir)
    assert run.config is None  # the program ran (nothing recorded) and failed
    assert message in run.output


def test_a_plaintext_value_inside_an_encrypted_object_passes_pulumi_but_not_the_plan(
    parity: ParityWorld,
) -> None:
    """The documented limit: the engine marks tenantSecrets secret as a whole, so the
    program cannot see that redpillApiKey inside it was written in plaintext."""
    text = parity.text_of(HostileFile("mixed", HOSTILE_FILES[0].text)).replace(
        "      masterKey:\n", "      redpillApiKey: rp-written-in-plaintext\n      masterKey:\n"
    )
    engine = parity.preview(STACKS[1], text)
    assert engine.config is not None, engine.output
    assert f"{PROJECT}:tenantSecrets" in engine.secret_keys
    program_sees = read_raw_config(engine.config, lambda key: key in engine.secret_keys)
    assert not _outcome(program_sees).startswith("error:")  # the program accepts it
    planned = engine_config(text, PROJECT, STACKS[1], DECLARED, with_defaults=True)
    assert _plan_outcome(planned) == (
        "error: invalid stack configuration (1 problem):\n"
        f"  - {PROJECT}:tenantSecrets.alice-agent.redpillApiKey: holds a secret in plaintext; "
        "set it with: pulumi config set --secret --path "
        "'tenantSecrets.alice-agent.redpillApiKey' <value>"
    )
