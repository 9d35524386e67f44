"""What the driver is asked to do: its inputs, read from the environment the Command sets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driver import protocol
from driver.dstack_env import delivery_problem
from driver.errors import DriverError

# Operator/test knobs, deliberately not Command inputs (tests/driver checks they never
# share a name with one): how often to poll, and where to send health checks instead
# (a URL template with {app_id} and {base_domain}, e.g. through a tunnel).
POLL_SECONDS_VAR = "OPENCLAW_PHALA_POLL_SECONDS"
HEALTH_URL_OVERRIDE_VAR = "OPENCLAW_PHALA_HEALTH_URL_OVERRIDE"


@dataclass(frozen=True)
class HealthCheck:
    url_template: str
    expect: str


@dataclass(frozen=True)
class CvmSpec:
    role: str
    name: str
    existing_cvm_id: str | None
    instance_type: str
    disk_size_gb: int
    region: str | None
    os_image: str | None
    kms: str
    dev_os: bool
    ssh_public_key: str | None
    wait_timeout_seconds: int
    compose: str
    env: dict[str, str] = field(repr=False)
    secret_env_names: frozenset[str] = frozenset()
    health: HealthCheck | None = None

    @property
    def secret_values(self) -> list[str]:
        return [self.env[name] for name in self.secret_env_names if name in self.env]

    def env_for_update(self) -> dict[str, str]:
        """The env an update sends. The CLI ignores --ssh-pubkey on update and replaces the
        whole env, so the key the CLI added at creation is carried here, or SSH is lost."""
        env = dict(self.env)
        if self.dev_os and self.ssh_public_key:
            env["DSTACK_AUTHORIZED_KEYS"] = self.ssh_public_key
        return env


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name)
    if value is None or value == "":
        raise DriverError(f"missing driver input {name}")
    return value


def read_spec(environ: Mapping[str, str]) -> CvmSpec:
    role = _required(environ, protocol.ROLE)
    if role not in protocol.ROLES:
        raise DriverError(f"{protocol.ROLE} must be one of {', '.join(protocol.ROLES)}")
    env_names = [name for name in environ.get(protocol.ENV_KEYS, "").split(",") if name]
    env: dict[str, str] = {}
    for name in env_names:
        value = environ.get(protocol.env_value_var(name))
        if value is None:
            raise DriverError(f"missing value for CVM env var {name}")
        env[name] = value
    secret_names = frozenset(
        name for name in environ.get(protocol.SECRET_ENV_KEYS, "").split(",") if name
    )
    template = environ.get(protocol.HEALTH_URL_TEMPLATE, "")
    if template and environ.get(HEALTH_URL_OVERRIDE_VAR):
        template = environ[HEALTH_URL_OVERRIDE_VAR]
    health = (
        HealthCheck(template, environ.get(protocol.HEALTH_EXPECT, protocol.HEALTH_EXPECT_HTTP))
        if template
        else None
    )
    try:
        disk = int(environ.get(protocol.DISK_SIZE_GB, "40"))
        timeout = int(environ.get(protocol.WAIT_TIMEOUT_SECONDS, "600"))
    except ValueError as error:
        raise DriverError(f"disk size and wait timeout must be integers: {error}") from None
    return CvmSpec(
        role=role,
        name=_required(environ, protocol.CVM_NAME),
        existing_cvm_id=environ.get(protocol.EXISTING_CVM_ID) or None,
        instance_type=_required(environ, protocol.INSTANCE_TYPE),
        disk_size_gb=disk,
        region=environ.get(protocol.REGION) or None,
        os_image=environ.get(protocol.OS_IMAGE) or None,
        kms=environ.get(protocol.KMS) or "phala",
        dev_os=environ.get(protocol.DEV_OS, "false") == "true",
        ssh_public_key=environ.get(protocol.SSH_PUBLIC_KEY) or None,
        wait_timeout_seconds=timeout,
        compose=_required(environ, protocol.COMPOSE),
        env=env,
        secret_env_names=secret_names,
        health=health,
    )


def check_env_reaches_the_container(spec: CvmSpec) -> None:
    """Refuse to deploy an env value the container would receive altered.

    The CLI's encrypted env keeps every character, but dstack re-quotes the values for
    systemd inside the CVM (driver/dstack_env.py), e.g. a PEM's line breaks arrive as
    literal backslash-n. Only for create/update: a delete must still work with whatever an
    older program deployed.
    """
    for name, value in spec.env.items():
        problem = delivery_problem(value)
        if problem is not None:
            raise DriverError(f"CVM env var {name} would not reach the container intact: {problem}")


def previous_record(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """The JSON line this driver printed last time (pulumi_command passes it back)."""
    lines = [line for line in environ.get("PULUMI_COMMAND_STDOUT", "").splitlines() if line]
    if not lines:
        return None
    try:
        record = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and record.get("cvmId") else None
