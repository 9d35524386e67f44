"""Run the real __main__.py under Pulumi's mock runtime and record everything it did.

Used by the offline plan, the test suite and the scaling benchmark. The mock
monitor receives resource inputs the way the engine would, with secret values
still wrapped, so callers can check both what was registered and whether each
value was marked secret on its way there. Provider outputs are faked
deterministically per resource name (FakeCloud): no cloud is contacted.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import runpy
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.sync_await import _sync_await

from components import r2
from components.deployed_stack import READ_STACK_OUTPUTS
from driver import protocol
from plan.stack_file import read_stack_file

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT = "openclaw-phala"
MAIN = REPO_ROOT / "__main__.py"
BUCKET_WRITE_GROUP_ID = "2efd5506f9c8494dacb1fa10a3e7d5b6"
FAKE_BASE_DOMAIN = "dstack-pha-test.phala.network"

COMMAND_TYPE = "command:local:Command"
BUCKET_TYPE = "cloudflare:index/r2Bucket:R2Bucket"
TOKEN_TYPE = "cloudflare:index/accountToken:AccountToken"  # noqa: S105 - a type token
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"


def is_secret(value: Any) -> bool:
    return rpc.is_rpc_secret(value)


def unwrap(value: Any) -> Any:
    """The plain value, with every secret wrapper removed at any depth."""
    if is_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def is_deploy_command(inputs: Mapping[str, Any]) -> bool:
    """A CVM's deploy Command (it runs the driver), as opposed to a guard Command."""
    environment = unwrap(inputs.get("environment"))
    return isinstance(environment, dict) and protocol.CVM_NAME in environment


def fake_app_id(cvm_name: str) -> str:
    return hashlib.sha1(cvm_name.encode()).hexdigest()  # noqa: S324 - a fake id, not security


def fake_cvm_id(cvm_name: str) -> str:
    digest = hashlib.sha256(cvm_name.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _account_tag(account_id: str) -> str:
    return hashlib.sha256(account_id.encode()).hexdigest()[:8]


def fake_token_id(resource_name: str, account_id: str) -> str:
    """A token's id. A token moved to another account is a new token (its one
    replace-forcing input), with new S3 credentials the CVM's env must show."""
    return f"{resource_name}-id-{_account_tag(account_id)}"


def fake_token_value(resource_name: str, account_id: str) -> str:
    return f"cf-token-value-for-{resource_name}-{_account_tag(account_id)}-{'x' * 20}"


def fake_driver_stdout(cvm_name: str) -> str:
    record = {
        "cvmId": fake_cvm_id(cvm_name),
        "appId": fake_app_id(cvm_name),
        "name": cvm_name,
        "status": "running",
        "gatewayBaseDomain": FAKE_BASE_DOMAIN,
        "composeHash": hashlib.sha256(f"compose-{cvm_name}".encode()).hexdigest(),
    }
    return json.dumps(record)


class FakeCloud(pulumi.runtime.Mocks):
    """Outputs shaped like the real providers', deterministic per resource name."""

    def __init__(
        self,
        stack_references: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        stack: str = "prod",
        deployed_outputs: Mapping[str, Any] | None = None,
    ) -> None:
        self.stack_references = stack_references or {}
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        # The program reads its own last outputs; by default the stack was never deployed.
        self.own_stack_suffix = f"/{PROJECT}/{stack}"
        self.deployed_outputs = dict(deployed_outputs or {})

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        if args.typ == TOKEN_TYPE:
            account_id = str(inputs.get("accountId", ""))
            return fake_token_id(args.name, account_id), {
                **inputs,
                "value": fake_token_value(args.name, account_id),
            }
        if args.typ == COMMAND_TYPE and is_deploy_command(inputs):
            cvm_name = unwrap(inputs["environment"])[protocol.CVM_NAME]
            return f"{args.name}-id", {**inputs, "stdout": fake_driver_stdout(cvm_name)}
        if args.typ == COMMAND_TYPE:  # a guard: it runs nothing and prints nothing
            return f"{args.name}-id", {**inputs, "stdout": "", "stderr": ""}
        if args.typ == STACK_REFERENCE_TYPE:
            reference = self.stack_references.get(inputs["name"])
            if reference is None and inputs["name"].endswith(self.own_stack_suffix):
                reference = {"outputs": self.deployed_outputs}
            if reference is None:
                raise KeyError(f"no fake stack {inputs['name']!r}")
            return inputs["name"], {
                "name": inputs["name"],
                "outputs": dict(reference["outputs"]),
                "secretOutputNames": list(reference.get("secret", ())),
            }
        return f"{args.name}-id", inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        """(result, check failures): the mock runtime's form; no call here ever fails."""
        return self._answer(args), []

    def _answer(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == READ_STACK_OUTPUTS:
            name = args.args.get("name", "")
            reference = self.stack_references.get(name)
            if reference is None and name.endswith(self.own_stack_suffix):
                reference = {"outputs": self.deployed_outputs}
            return {"name": name, "outputs": dict((reference or {}).get("outputs", {}))}
        self.calls.append(args)
        if args.token.endswith("getAccountApiTokenPermissionGroupsList"):
            groups = [
                (BUCKET_WRITE_GROUP_ID, r2.BUCKET_ITEM_WRITE_PERMISSION),
                ("6a018a9f2fc74eb6b293b0c548f38b39", "Workers R2 Storage Bucket Item Read"),
                ("bf7481a1826f439697cb59a20b22293e", "Workers R2 Storage Write"),
            ]
            return {
                "results": [
                    {
                        "id": group_id,
                        "name": name,
                        "category": "developer_platform",
                        "is_selectable": True,
                        "scopes": ["com.cloudflare.edge.r2.bucket"],
                    }
                    for group_id, name in groups
                ]
            }
        return {}


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]  # as the engine receives them, secret values still wrapped
    protect: bool
    delete_before_replace: bool
    retain_on_delete: bool
    additional_secret_outputs: list[str]
    replace_on_changes: list[str]
    dependencies: list[str]

    @property
    def plain_inputs(self) -> dict[str, Any]:
        return unwrap(self.inputs)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: FakeCloud) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        # URN -> what a component passed to register_outputs. The SDK's mock monitor
        # drops these, but a real engine writes them to state like any other output.
        self.component_outputs: dict[str, dict[str, Any]] = {}

    def _record(self, request: Any, urn: str, inputs: Any, *, read: bool) -> None:
        self.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=urn,
                parent=request.parent,
                # The SDK's deserializer lifts a nested secret to the whole object; read
                # the raw struct instead so each value keeps its own secret marker.
                inputs=json_format.MessageToDict(inputs),
                protect=not read and bool(request.protect),
                delete_before_replace=not read and bool(request.deleteBeforeReplace),
                retain_on_delete=not read and bool(request.retainOnDelete),
                additional_secret_outputs=list(request.additionalSecretOutputs),
                replace_on_changes=[] if read else list(request.replaceOnChanges),
                dependencies=list(request.dependencies),
            )
        )

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response.urn, request.object, read=False)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        response = super().RegisterResourceOutputs(request)
        if not request.urn.split("::")[-2].endswith("pulumi:pulumi:Stack"):
            # Raw struct, so each value keeps its own secret marker (as for inputs).
            self.component_outputs[request.urn] = json_format.MessageToDict(request.outputs)
        return response

    def ReadResource(self, request: Any) -> Any:
        """Reads, such as a StackReference, are recorded like registrations."""
        response = super().ReadResource(request)
        self._record(request, response.urn, request.properties, read=True)
        return response


@dataclass
class ProgramRun:
    registrations: list[Registration]
    exports: dict[str, Any]  # serialized as the engine would store them, secrets wrapped
    calls: list[pulumi.runtime.MockCallArgs] = field(default_factory=list)
    # URN -> a component's registered outputs, serialized with secrets wrapped
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    @property
    def deploy_commands(self) -> list[Registration]:
        """The Commands that deploy a CVM each (not the guards)."""
        return [r for r in self.of_type(COMMAND_TYPE) if is_deploy_command(r.inputs)]

    @property
    def guards(self) -> list[Registration]:
        """The guards of CVMs that keep state on their own volumes (components/phala_cvm.py)."""
        return [r for r in self.of_type(COMMAND_TYPE) if not is_deploy_command(r.inputs)]

    @cached_property
    def _index(self) -> tuple[dict[str, list[Registration]], dict[str, list[Registration]]]:
        """(name -> registrations, URN -> registrations), built in one pass: a plan looks
        up each resource's parents, and a scan per lookup made 1000 tenants cost 25x
        what 200 did."""
        names: dict[str, list[Registration]] = {}
        urns: dict[str, list[Registration]] = {}
        for registration in self.registrations:
            names.setdefault(registration.name, []).append(registration)
            urns.setdefault(registration.urn, []).append(registration)
        return names, urns

    def named(self, name: str) -> Registration:
        (match,) = self._index[0].get(name, [])
        return match

    def by_urn(self, urn: str) -> Registration:
        (match,) = self._index[1].get(urn, [])
        return match

    @property
    def plain_exports(self) -> dict[str, Any]:
        return unwrap(self.exports)


def read_stack_config(stack: str) -> tuple[dict[str, Any], frozenset[str]]:
    """A stack file's config for this project as the engine hands it to the program
    (keys without namespace; text for scalars, objects with Encrypted leaves), and the
    keys the engine marks secret. StackFileError where Pulumi would refuse the file."""
    read = read_stack_file(REPO_ROOT / f"Pulumi.{stack}.yaml", PROJECT, REPO_ROOT / "Pulumi.yaml")
    prefix = f"{PROJECT}:"
    values = {
        key.removeprefix(prefix): value
        for key, value in read.values.items()
        if key.startswith(prefix)
    }
    secret = frozenset(
        key.removeprefix(prefix) for key in read.secret_keys if key.startswith(prefix)
    )
    return values, secret


def stack_file_config(stack: str) -> dict[str, Any]:
    """A stack file's config for this project (keys without namespace), as the engine
    hands it to the program."""
    return read_stack_config(stack)[0]


def _engine_value(value: Any) -> str:
    """Config as the engine hands it to the program: strings, objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _quiet_expected_failures(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A failed run leaves Output futures holding its RunError; the error was already
    raised to the caller, so asyncio's "never retrieved" report is only noise."""
    if isinstance(context.get("exception"), pulumi.RunError):
        return
    loop.default_exception_handler(context)


def _cancel_leftover_tasks() -> None:
    loop = asyncio.get_event_loop()
    loop.set_exception_handler(_quiet_expected_failures)
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_program(
    config: Mapping[str, Any],
    secret_keys: Iterable[str] = (),
    *,
    preview: bool = False,
    stack: str = "prod",
    cwd: Path | None = None,
    stack_references: Mapping[str, Mapping[str, Any]] | None = None,
    deployed_outputs: Mapping[str, Any] | None = None,
    record: bool = True,
) -> ProgramRun:
    """Evaluate __main__.py with this config (keys without the project namespace).

    With record=False the plain mock monitor is used, so timing the program does
    not also time this harness's bookkeeping.
    """
    mocks = FakeCloud(stack_references, stack=stack, deployed_outputs=deployed_outputs)
    monitor = RecordingMonitor(mocks) if record else pulumi_mocks.MockMonitor(mocks)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{key}": _engine_value(value) for key, value in config.items()},
        [f"{PROJECT}:{key}" for key in secret_keys],
    )

    # The runtime keeps its RPC bookkeeping across set_mocks calls; start clean, as
    # pulumi.runtime.test does, so an earlier failed run cannot fail this one.
    runtime_settings.SETTINGS.rpc_manager.clear()
    runtime_settings.SETTINGS.outputs.clear()

    def evaluate() -> None:
        runpy.run_path(str(MAIN), run_name="__main__")

    collecting = gc.isenabled()  # the program turns the cyclic collector off (__main__.py)
    try:
        with _working_directory(cwd or REPO_ROOT):
            try:
                _sync_await(pulumi.runtime.stack.run_pulumi_func(evaluate))
            except BaseException:
                _cancel_leftover_tasks()  # a failed run must not leak into the next one
                raise
            root = runtime_settings.get_root_resource()
            outputs = dict(root.outputs) if root is not None else {}  # type: ignore[attr-defined]
            serialized = _sync_await(rpc.serialize_properties(outputs, {}))
        return ProgramRun(
            registrations=monitor.registrations if isinstance(monitor, RecordingMonitor) else [],
            exports=json_format.MessageToDict(serialized),
            calls=mocks.calls,
            component_outputs=(
                monitor.component_outputs if isinstance(monitor, RecordingMonitor) else {}
            ),
        )
    finally:
        # A test session runs the program hundreds of times in one process: collect
        # again once the run is over (all of it: the program froze what it found),
        # unless the caller had turned collection off. Last, so the catching-up
        # collection this starts falls to the caller's next allocation, not to the run
        # (a real run never makes it: benchmarks/program_scaling.py times the program).
        if collecting:
            gc.unfreeze()
            gc.enable()
