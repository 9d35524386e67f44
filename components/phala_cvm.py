"""PhalaCvm: one Phala Cloud CVM, deployed and updated by the driver around `phala`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_command import local

from components.cvm_env import CvmEnv
from components.settings import PhalaSettings
from driver import protocol


@dataclass(frozen=True)
class HealthCheck:
    """Checked by the driver once the CVM is running; {app_id} and {base_domain} are filled."""

    url_template: str
    expect: str  # protocol.HEALTH_EXPECT_*


@dataclass(frozen=True)
class LocalState:
    """The CVM keeps state on its own volumes: replacing or deleting it destroys that state."""

    opt_in_setting: str  # the config setting that allows it, e.g. "allowDataLoss"
    allowed: bool


@dataclass(frozen=True)
class PhalaCvmArgs:
    cvm_name: str
    role: str  # protocol.ROLES: the driver refuses to put one role's compose on another's CVM
    compose: pulumi.Input[str]
    env: CvmEnv
    phala: PhalaSettings
    instance_type: str
    existing_cvm_id: str | None = None
    # Local-volume state dies with the CVM: refuse replacement and deletion unless allowed.
    local_state: LocalState | None = None
    health_check: HealthCheck | None = None  # applied when phalaVerifyHealth is on
    repair_generation: int | pulumi.Output[int] = 0  # see components/drift_repair.py
    # Deploy only once these are deployed (and healthy): the previous rollout wave.
    after: tuple[pulumi.Resource, ...] = ()


# What `phala deploy --cvm-id` cannot change in place, so a change means a new CVM.
REPLACEMENT_TRIGGER_NAMES: tuple[str, ...] = (
    "name",
    "instanceType",
    "diskSizeGb",
    "region",
    "kms",
    "osImage",
    "devOs",
)


def replacement_triggers(args: PhalaCvmArgs) -> list[Any]:
    """Values in REPLACEMENT_TRIGGER_NAMES order."""
    phala = args.phala
    return [
        args.cvm_name,
        args.instance_type,
        phala.disk_size_gb,
        phala.region or "",
        phala.kms,
        phala.os_image or "",
        phala.dev_os,
    ]


def local_state_guard_name(cvm_resource_name: str, local_state: LocalState) -> str:
    """The guard's name is what the engine's protection error shows: it says the way out."""
    return f"{cvm_resource_name}-local-state-needs-{local_state.opt_in_setting}"


def driver_environment(args: PhalaCvmArgs) -> dict[str, pulumi.Input[str]]:
    """The Command's environment: settings for the driver plus each CVM env value."""
    phala = args.phala
    environment: dict[str, pulumi.Input[str]] = {
        protocol.ROLE: args.role,
        protocol.CVM_NAME: args.cvm_name,
        protocol.EXISTING_CVM_ID: args.existing_cvm_id or "",
        protocol.INSTANCE_TYPE: args.instance_type,
        protocol.DISK_SIZE_GB: str(phala.disk_size_gb),
        protocol.REGION: phala.region or "",
        protocol.OS_IMAGE: phala.os_image or "",
        protocol.KMS: phala.kms,
        protocol.DEV_OS: "true" if phala.dev_os else "false",
        protocol.SSH_PUBLIC_KEY: phala.ssh_public_key or "",
        protocol.WAIT_TIMEOUT_SECONDS: str(phala.wait_timeout_seconds),
        protocol.REPAIR_GENERATION: (
            str(args.repair_generation)
            if isinstance(args.repair_generation, int)
            else args.repair_generation.apply(str)
        ),
        protocol.COMPOSE: args.compose,
        protocol.ENV_KEYS: ",".join(args.env.values),
        protocol.SECRET_ENV_KEYS: ",".join(
            name for name in args.env.values if name in args.env.secret_names
        ),
    }
    if args.health_check is not None and phala.verify_health:
        environment[protocol.HEALTH_URL_TEMPLATE] = args.health_check.url_template
        environment[protocol.HEALTH_EXPECT] = args.health_check.expect
    for name, value in args.env.values.items():
        environment[protocol.env_value_var(name)] = value
    return environment


def parse_driver_output(stdout: str) -> dict[str, str]:
    """The driver's last stdout line is one JSON object of protocol.OUTPUT_FIELDS."""
    lines = [line for line in stdout.strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError("the deploy driver printed nothing")
    record = json.loads(lines[-1])
    missing = [name for name in protocol.OUTPUT_FIELDS if not isinstance(record.get(name), str)]
    if missing:
        raise ValueError(f"the deploy driver output lacks {', '.join(missing)}")
    return {name: record[name] for name in protocol.OUTPUT_FIELDS}


class PhalaCvm(pulumi.ComponentResource):
    """A CVM as a pulumi_command Command that runs the deploy driver.

    Create adopts an existing CVM of the same name (or the configured id) before
    creating one; compose and env changes update in place; the settings in
    `replacement_triggers` replace the CVM, deleting the old one first because two
    CVMs with one name cannot coexist.
    """

    cvm_id: pulumi.Output[str]
    app_id: pulumi.Output[str]
    status: pulumi.Output[str]
    gateway_base_domain: pulumi.Output[str]
    compose_hash: pulumi.Output[str]
    repair_generation: pulumi.Output[int]
    command: local.Command
    _record: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        name: str,
        args: PhalaCvmArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("openclaw-phala:index:PhalaCvm", name, None, opts)
        if args.role not in protocol.ROLES:
            raise ValueError(f"unknown CVM role {args.role!r}")

        protect = args.local_state is not None and not args.local_state.allowed
        guard: list[pulumi.Resource] = []
        if args.local_state is not None:
            # The engine's refusal of a protected resource can only name the resource, and
            # tells the operator to edit the program. This protected stand-in for the CVM is
            # replaced exactly when the CVM would be, and the CVM waits for it, so its name,
            # which says which setting allows the loss, leads the error.
            guard.append(
                local.Command(
                    local_state_guard_name(name, args.local_state),
                    triggers=replacement_triggers(args),
                    opts=pulumi.ResourceOptions(parent=self, protect=protect),
                )
            )

        command = local.Command(
            f"{name}-deploy",
            create=protocol.CREATE_COMMAND,
            update=protocol.UPDATE_COMMAND,
            delete=protocol.DELETE_COMMAND,
            environment=driver_environment(args),
            triggers=replacement_triggers(args),
            # The driver scrubs secrets from what it prints, and nothing is streamed anyway.
            logging=local.Logging.NONE,
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["stdout", "stderr"],
                delete_before_replace=True,
                protect=protect,
                depends_on=[*guard, *args.after],
            ),
        )
        self.command = command

        # stdout is secret-marked as a precaution; the driver guarantees these fields
        # hold no secret, and ids and URLs must stay readable in outputs and diffs.
        record = pulumi.Output.unsecret(command.stdout.apply(parse_driver_output))
        self._record = record
        self.cvm_id = record.apply(lambda r: r["cvmId"])
        self.app_id = record.apply(lambda r: r["appId"])
        self.status = record.apply(lambda r: r["status"])
        self.gateway_base_domain = record.apply(lambda r: r["gatewayBaseDomain"])
        self.compose_hash = record.apply(lambda r: r["composeHash"])
        self.repair_generation = pulumi.Output.from_input(args.repair_generation)

        self.register_outputs(
            {
                "cvmId": self.cvm_id,
                "appId": self.app_id,
                "status": self.status,
                "gatewayBaseDomain": self.gateway_base_domain,
                "composeHash": self.compose_hash,
            }
        )

    def address(self, build: Callable[[str, str], str]) -> pulumi.Output[str]:
        """A URL or host built from this CVM's app id and gateway domain (see urls)."""
        return self._record.apply(lambda r: build(r["appId"], r["gatewayBaseDomain"]))
