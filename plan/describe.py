"""The desired state of a stack as reviewable blocks, one per resource.

Blocks are plain, JSON-serialisable and deterministic: no fake ids, no secret
values, sorted by kind and name. A CVM's env shows each non-secret value; a secret
entry shows only that it is set, plus, when the caller supplies a fingerprint key
(`plan diff` does, for the two plans it compares), a keyed fingerprint of what the
offline run put there. That value is itself derived from the stack file's ciphertexts
(plan/placeholders.py), never from a secret, and the key is random per diff, so the
fingerprint says "changed" and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from typing import Any

from components import r2
from components.phala_cvm import REPLACEMENT_TRIGGER_NAMES
from driver import protocol
from plan.evaluate import (
    BUCKET_TYPE,
    BUCKET_WRITE_GROUP_ID,
    COMMAND_TYPE,
    STACK_REFERENCE_TYPE,
    TOKEN_TYPE,
    ProgramRun,
    Registration,
    is_deploy_command,
    is_secret,
    unwrap,
)
from plan.placeholders import NOT_SET_MARK

TENANT_COMPONENT = "openclaw-phala:index:OpenClawTenant"
MUX_COMPONENT = "openclaw-phala:index:MuxServer"
# The offline cloud answers the permission-group lookup with a fixed id; show its name.
PERMISSION_GROUP_NAMES = {BUCKET_WRITE_GROUP_ID: r2.BUCKET_ITEM_WRITE_PERMISSION}
_IMAGE_LINE = re.compile(r"^\s+image:\s*(\S+)\s*$", re.MULTILINE)
KIND_ORDER = {
    "secret-not-set": -2,
    "setting": -1,
    "stack-reference": 0,
    "cvm": 1,
    "guard": 2,
    "bucket": 3,
    "token": 4,
}
# Hex key for secret env fingerprints; `plan diff` sets it for both plans it compares.
FINGERPRINT_KEY_ENV = "OPENCLAW_PLAN_FINGERPRINT_KEY"
# Command environment entries a CVM block shows under their own field names; every
# other driver input lands in "driverSettings", so none can change unseen.
_SHOWN_DRIVER_INPUTS = frozenset(
    {
        protocol.ROLE,
        protocol.CVM_NAME,
        protocol.INSTANCE_TYPE,
        protocol.DISK_SIZE_GB,
        protocol.REGION,
        protocol.OS_IMAGE,
        protocol.KMS,
        protocol.DEV_OS,
        protocol.SSH_PUBLIC_KEY,
        protocol.EXISTING_CVM_ID,
        protocol.HEALTH_URL_TEMPLATE,
        protocol.COMPOSE,
        protocol.ENV_KEYS,
        protocol.SECRET_ENV_KEYS,
    }
)


def _fingerprint_key() -> bytes | None:
    text = os.environ.get(FINGERPRINT_KEY_ENV, "")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        return None
    return key if len(key) >= 16 else None


def env_entries(
    environment: dict[str, Any], marked: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The CVM env in the order it is written: each non-secret value, and for each
    secret only that it is set (and a keyed fingerprint when a key is given).

    `marked` is the environment as the engine receives it, each secret still wrapped: a
    value is shown as secret when the driver is told so or when it travels as a secret,
    so a value that changes only between plain and secret (a change to the command
    provider, which restarts the CVM) shows as changed."""
    secret_names = set(_names(environment[protocol.SECRET_ENV_KEYS]))
    if marked is not None:
        secret_names |= {
            name
            for name in _names(environment[protocol.ENV_KEYS])
            if is_secret(marked.get(protocol.env_value_var(name)))
        }
    key = _fingerprint_key()
    entries: list[dict[str, Any]] = []
    for name in _names(environment[protocol.ENV_KEYS]):
        value = environment.get(protocol.env_value_var(name))
        if name not in secret_names:
            entries.append({"name": name, "value": value})
            continue
        entry: dict[str, Any] = {"name": name, "secret": True}
        if isinstance(value, str) and value.startswith(NOT_SET_MARK):
            entry["notSet"] = True  # the plan stands in for it (--stand-in-missing-secrets)
        if key is not None and isinstance(value, str):
            digest = hmac.new(key, f"{name}\0{value}".encode(), hashlib.sha256)
            entry["fingerprint"] = digest.hexdigest()[:16]
        entries.append(entry)
    return entries


def _owner(run: ProgramRun, registration: Registration) -> tuple[str, str]:
    """(role, name) of the tenant or mux component a resource belongs to."""
    urn = registration.parent
    while urn:
        parent = run.by_urn(urn)
        if parent.type == TENANT_COMPONENT:
            return "tenant", parent.name
        if parent.type == MUX_COMPONENT:
            return "mux", parent.name
        urn = parent.parent
    return "stack", ""


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def rollout_waves(run: ProgramRun) -> dict[str, int]:
    """Tenant deploy Command URN -> its rollout wave, read from the dependencies the program
    gave it: one more than the highest wave among the tenant CVMs it waits for."""
    tenant_commands = {
        r.urn: r
        for r in run.deploy_commands
        if unwrap(r.inputs["environment"])[protocol.ROLE] == "openclaw"
    }
    found: dict[str, int] = {}

    def wave(urn: str) -> int:
        if urn not in found:
            before = [d for d in tenant_commands[urn].dependencies if d in tenant_commands]
            found[urn] = 1 + max(wave(d) for d in before) if before else 0
        return found[urn]

    return {urn: wave(urn) for urn in tenant_commands}


def _guard_refuses(guard: Registration | None) -> bool:
    """Whether a CVM's guard fails its delete (components/phala_cvm.py): the CVM keeps
    state of its own and its opt-in is not set."""
    return guard is not None and bool(guard.plain_inputs.get("delete"))


def describe_cvm(
    run: ProgramRun,
    command: Registration,
    waves: dict[str, int] | None = None,
    guard: Registration | None = None,
) -> dict[str, Any]:
    inputs = command.plain_inputs
    env = inputs["environment"]
    env_names = _names(env[protocol.ENV_KEYS])
    compose = env[protocol.COMPOSE]
    image = _IMAGE_LINE.search(compose)
    role, owner = _owner(run, command)
    if role == "mux":
        storage = "local volumes (mux pairing DB, WhatsApp auth)"
    else:
        storage = "s3" if "S3_BUCKET" in env_names else "local"
    return {
        "kind": "cvm",
        "key": f"cvm/{env[protocol.CVM_NAME]}",
        "resource": command.name,
        "owner": f"{role}/{owner}",
        "role": env[protocol.ROLE],
        "name": env[protocol.CVM_NAME],
        "instanceType": env[protocol.INSTANCE_TYPE],
        "diskSizeGb": int(env[protocol.DISK_SIZE_GB]),
        "region": env[protocol.REGION] or "(Phala chooses)",
        "osImage": env[protocol.OS_IMAGE] or "(Phala default)",
        "kms": env[protocol.KMS],
        "devOs": env[protocol.DEV_OS] == "true",
        "sshPublicKey": env[protocol.SSH_PUBLIC_KEY] or None,
        "adoptCvmId": env[protocol.EXISTING_CVM_ID] or None,
        "image": image.group(1) if image else None,
        "storage": storage,
        # Replacing or removing it is refused (components/data_guards.py).
        "protectedFromReplacement": _guard_refuses(guard),
        "replacedWhenChanged": list(REPLACEMENT_TRIGGER_NAMES),
        "healthCheck": env.get(protocol.HEALTH_URL_TEMPLATE) or None,
        "rolloutWave": (waves if waves is not None else rollout_waves(run)).get(command.urn),
        # What the Command runs: a change redeploys through the driver like any input.
        "driverCommands": {phase: inputs.get(phase) for phase in ("create", "update", "delete")},
        "env": env_entries(env, command.inputs["environment"]),
        "driverSettings": {
            name.removeprefix(protocol.PREFIX): value
            for name, value in sorted(env.items())
            if name not in _SHOWN_DRIVER_INPUTS and not name.startswith(protocol.ENV_VALUE_PREFIX)
        },
        "compose": compose,
    }


def describe_guard(run: ProgramRun, guard: Registration) -> dict[str, Any]:
    return {
        "kind": "guard",
        "key": f"guard/{guard.name}",
        "resource": guard.name,
        "owner": "/".join(_owner(run, guard)),
        # An input of the guard Command: setting the opt-in updates it.
        "refusesDeletion": _guard_refuses(guard),
    }


def plain_number(value: Any) -> Any:
    """A whole number as the operator wrote it: inputs travel as protobuf doubles (40.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def describe_bucket(run: ProgramRun, bucket: Registration) -> dict[str, Any]:
    inputs = bucket.plain_inputs
    return {
        "kind": "bucket",
        "key": f"bucket/{inputs['name']}",
        "resource": bucket.name,
        "owner": "/".join(_owner(run, bucket)),
        "name": inputs["name"],
        "accountId": inputs["accountId"],
        "jurisdiction": inputs.get("jurisdiction", "default"),
        "keptWhenRemoved": bucket.retain_on_delete,
    }


def describe_token(run: ProgramRun, token: Registration) -> dict[str, Any]:
    inputs = token.plain_inputs
    return {
        "kind": "token",
        "key": f"token/{inputs['name']}",
        "resource": token.name,
        "owner": "/".join(_owner(run, token)),
        "name": inputs["name"],
        "policies": [
            {
                "effect": policy["effect"],
                "permissions": sorted(
                    PERMISSION_GROUP_NAMES.get(group["id"], group["id"])
                    for group in policy["permissionGroups"]
                ),
                "resources": json.loads(policy["resources"]),
            }
            for policy in inputs["policies"]
        ],
    }


def describe(run: ProgramRun) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    waves = rollout_waves(run)
    guards = {guard.parent: guard for guard in run.guards}  # one per PhalaCvm component
    for registration in run.registrations:
        if registration.type == COMMAND_TYPE and is_deploy_command(registration.inputs):
            guard = guards.get(registration.parent)
            blocks.append(describe_cvm(run, registration, waves, guard))
        elif registration.type == COMMAND_TYPE:
            blocks.append(describe_guard(run, registration))
        elif registration.type == BUCKET_TYPE:
            blocks.append(describe_bucket(run, registration))
        elif registration.type == TOKEN_TYPE:
            blocks.append(describe_token(run, registration))
        elif registration.type == STACK_REFERENCE_TYPE:
            name = registration.plain_inputs["name"]
            blocks.append(
                {
                    "kind": "stack-reference",
                    "key": f"stack/{name}",
                    "resource": registration.name,
                    "stack": name,
                }
            )
    return sorted(blocks, key=lambda block: (KIND_ORDER[block["kind"]], block["key"]))


# --------------------------------------------------------------------------- text


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _wave_line(wave: int | None) -> list[str]:
    if wave is None:  # the mux: deployed before every tenant that joins it
        return []
    after = "first" if wave == 0 else f"after wave {wave - 1} is deployed and healthy"
    return [f"  rollout wave   {wave} ({after})"]


def render_block(block: dict[str, Any]) -> list[str]:
    kind = block["kind"]
    if kind == "secret-not-set":
        count = block.get("count")
        summary = (
            [
                f"{count} secret{'s' if count != 1 else ''} NOT SET in the stack file (the plan "
                "stands in for each; a real preview refuses the stack until each is set):"
            ]
            if count is not None
            else []
        )
        return [*summary, f"secret {block['setting']} NOT SET"]
    if kind == "setting":
        return [
            f"setting {block['setting']}: {', '.join(block['value'])}",
            "  this run may remove these tenants although it removes many at once",
        ]
    if kind == "stack-reference":
        return [f"stack reference {block['stack']}", "  reads: mux.baseUrl, muxSecrets.registerKey"]
    if kind == "bucket":
        return [
            f"r2 bucket {block['name']}  ({block['owner']})",
            f"  account        {block['accountId']}",
            f"  jurisdiction   {block['jurisdiction']}",
            f"  kept when the tenant is removed: {_yes(block['keptWhenRemoved'])}",
        ]
    if kind == "guard":
        state = (
            "refuses to delete the CVM and its local state"
            if block["refusesDeletion"]
            else "released (the opt-in is set): deleting the CVM is allowed"
        )
        return [f"guard {block['key'].removeprefix('guard/')}  ({block['owner']})", f"  {state}"]
    if kind == "token":
        lines = [f"r2 token {block['name']}  ({block['owner']})"]
        for policy in block["policies"]:
            lines.append(f"  {policy['effect']}: {', '.join(policy['permissions'])}")
            lines += [f"    on {resource}" for resource in sorted(policy["resources"])]
        return lines
    opt_in = "muxAllowDataLoss" if block["role"] == "mux" else "allowDataLoss"
    protection = (
        f"REFUSED (state on the CVM's volumes would be lost; allow with {opt_in})"
        if block["protectedFromReplacement"]
        else "allowed (state is in R2)"
        if block["storage"] == "s3"
        else f"allowed: the local state WILL BE LOST ({opt_in} is set)"
    )
    lines = [
        f"cvm {block['name']}  ({block['owner']}, role {block['role']})",
        f"  instance type  {block['instanceType']}",
        f"  disk           {block['diskSizeGb']} GB",
        f"  region         {block['region']}",
        f"  os image       {block['osImage']}",
        f"  kms            {block['kms']}",
        f"  dev os         {_yes(block['devOs'])}"
        + (f"  (ssh key {block['sshPublicKey']})" if block["sshPublicKey"] else ""),
        f"  image          {block['image']}",
        f"  storage        {block['storage']}",
        f"  adopts         {block['adoptCvmId'] or 'the CVM of this name if one exists'}",
        f"  replaced when  {', '.join(block['replacedWhenChanged'])} change",
        f"  replacement    {protection}",
        f"  health check   {block['healthCheck'] or 'off'}",
        *_wave_line(block.get("rolloutWave")),
        *[
            f"  driver         {name} = {value}"
            for name, value in sorted(block.get("driverSettings", {}).items())
        ],
        *[
            f"  driver {phase:<7} {command}"
            for phase, command in block.get("driverCommands", {}).items()
        ],
        "  env",
        *[f"    {line}" for line in render_env(block["env"])],
        "  compose",
    ]
    lines += [f"    | {line}".rstrip() for line in block["compose"].splitlines()]
    return lines


def render_env(entries: list[Any]) -> list[str]:
    """One line per variable: NAME = value, or NAME (secret: set, value not shown)."""
    lines = []
    for entry in entries:
        if isinstance(entry, str):  # a plan from before env values were shown
            lines.append(entry)
        elif entry.get("notSet"):
            lines.append(f"{entry['name']} (secret: NOT SET, the plan stands in for it)")
        elif entry.get("secret"):
            lines.append(f"{entry['name']} (secret: set, value not shown)")
        else:
            lines.append(f"{entry['name']} = {entry['value']}")
    return lines


def render_plan(blocks: list[dict[str, Any]], stack: str) -> str:
    lines = [
        f"# openclaw-phala offline plan: stack {stack}",
        "# Desired state from the stack file and the program. Secret values are never shown",
        "# (secrets are placeholders); ids and URLs are only known after `pulumi up`.",
        "",
    ]
    for index, block in enumerate(blocks):
        lines += render_block(block)
        following = blocks[index + 1]["kind"] if index + 1 < len(blocks) else None
        if not (block["kind"] == "secret-not-set" and following == "secret-not-set"):
            lines.append("")
    return "\n".join(lines)
