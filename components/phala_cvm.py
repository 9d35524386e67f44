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
    lost: str  # what deleting the CVM loses, e.g. "the state on its volumes (storage local)"
    how: str  # how to allow it, e.g. "set allowDataLoss: true on tenant staging-agent"


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


def trigger_values(cvm_name: str, instance_type: str, phala: PhalaSettings) -> list[Any]:
    """Values in REPLACEMENT_TRIGGER_NAMES order."""
    return [
        cvm_name,
        instance_type,
        phala.disk_size_gb,
        phala.region or "",
        phala.kms,
        phala.os_image or "",
        phala.dev_os,
    ]


def replacement_triggers(args: PhalaCvmArgs) -> list[Any]:
    return trigger_values(args.cvm_name, args.instance_type, args.phala)


def local_state_guard_name(cvm_resource_name: str, local_state: LocalState) -> str:
    """The guard's name leads every engine error about it: it says the way out."""
    return f"{cvm_resource_name}-local-state-needs-{local_state.opt_in_setting}"


# The guard's `delete` while the loss is not allowed: it fails, printing why and how.
REFUSAL_VAR = "OPENCLAW_PHALA_REFUSAL"
REFUSE_DELETE = f'printf "%s\\n" "${REFUSAL_VAR}" >&2; exit 1'


def deletion_refusal(cvm_name: str, local_state: LocalState) -> str:
    return (
        f"refusing to delete CVM {cvm_name}: {local_state.lost} would be lost. If that is "
        f"intended, {local_state.how}, run `pulumi up`, then delete it"
    )


def driver_environment(args: PhalaCvmArgs) -> dict[str, pulumi.Input[str]]:
    """The Command's environment: settings for the driver plus each CVM env value.

    A secret name's value always travels secret, whatever the caller passed: a value that
    flips between plain and secret is a change that restarts the CVM."""
    return {
        name: pulumi.Output.secret(value) if name in secret_value_vars(args) else value
        for name, value in driver_environment_values(args).items()
    }


def secret_value_vars(args: PhalaCvmArgs) -> frozenset[str]:
    return frozenset(protocol.env_value_var(name) for name in args.env.secret_names)


def driver_environment_values(args: PhalaCvmArgs) -> dict[str, pulumi.Input[str]]:
    """driver_environment's values, before the secret ones are marked secret."""
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
    replaced_when: dict[str, Any]  # REPLACEMENT_TRIGGER_NAMES -> this CVM's values
    data_loss_allowed: bool | None  # None: the CVM keeps no state of its own
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
                depends_on=list(args.after),
            ),
        )
        if args.local_state is not None:
            # Deleting this CVM (its tenant or mux removed, or `pulumi destroy`, which
            # does not run the program) must fail naming the opt-in. The engine's own
            # `protect` cannot: its delete error advises `pulumi state unprotect`. So a
            # guard that depends on the CVM, and so is deleted before it, fails its
            # delete until the opt-in was deployed; the engine then stops before the CVM.
            # Replacement is refused earlier, at preview (components/data_guards.py).
            refused = not args.local_state.allowed
            local.Command(
                local_state_guard_name(name, args.local_state),
                delete=REFUSE_DELETE if refused else None,
                environment=(
                    {REFUSAL_VAR: deletion_refusal(args.cvm_name, args.local_state)}
                    if refused
                    else None
                ),
                logging=local.Logging.NONE,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[command]),
            )
        self.command = command
        # Exported, so the next run can tell a replacement or removal that loses the
        # local state before anything happens (components/data_guards.py).
        self.replaced_when = dict(
            zip(REPLACEMENT_TRIGGER_NAMES, replacement_triggers(args), strict=True)
        )
        self.data_loss_allowed = args.local_state.allowed if args.local_state else None

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
