"""What the mux container receives from a rendered compose and CVM env, and a boot of it.

The path inside the CVM, step by step, each by the real thing where we have it:

1. dstack writes the decrypted env and systemd reads it back: driver/dstack_env.py
   (a model of dstack's and systemd's code, tested on their own vectors).
2. docker compose substitutes `${NAME}` and `$$` in the compose file's values:
   `interpolate` below, a model of compose-go's `template.Substitute`
   (compose-spec/compose-go, commit 1ce62c3e, template/template.go): `$$` is an escaped
   `$`, `$NAME` and `${NAME}` are references, `${NAME:-default}` and `${NAME:?message}`
   their soft-default and required forms, and any other `$` an invalid template.
3. The container runs the image's ENTRYPOINT (docker-entrypoint.sh of
   node:22-bookworm-slim) with the compose `command` as its arguments; for a first
   argument that is an executable path it execs them unchanged, so the real `/bin/sh`
   (dash, as in that image and on Debian here) runs compose/mux.yml's wrapper.
4. The wrapper execs the image's CMD; here the tail that names mux-server's entry point
   is replaced by the stand-in (tests/support/mux_jwks_standin.cjs), which reads its key
   with mux-server's own call under real Node.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.compose import MUX_SERVICE
from driver import protocol
from driver.dstack_env import delivered_env
from tests.support.process_groups import stop_group

STANDIN = Path(__file__).with_name("mux_jwks_standin.cjs")
# The image's CMD: h4x3rotab/openclaw 714b97af, mux-server/Dockerfile line 10.
MUX_IMAGE_CMD = ("node", "--import", "tsx", "mux-server/src/server.ts")
BOOT_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

_TEMPLATE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<named>[_a-z][_a-z0-9]*)|\{(?P<braced>[^}]*)\}|(?P<invalid>))",
    re.IGNORECASE,
)
_BRACED = re.compile(r"(?P<name>[_a-z][_a-z0-9]*)(?:(?P<op>:?[-?])(?P<arg>.*))?", re.IGNORECASE)


class ComposeInterpolationError(ValueError):
    pass


def interpolate(template: str, env: Mapping[str, str]) -> str:
    """One compose value after compose-go's substitution (no nested references)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.fullmatch(match["braced"] or "")
        if match["invalid"] is not None or braced is None:
            raise ComposeInterpolationError(f"invalid template at {match.start()}")
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        value = env.get(name)
        if op in (":-", "-"):
            unset = value is None or (op == ":-" and value == "")
            return arg if unset else str(value)
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise ComposeInterpolationError(f"required variable {name} is missing: {arg}")
            return value
        return value or ""

    return _TEMPLATE.sub(replace, template)


@dataclass(frozen=True)
class ContainerSpec:
    command: list[str]  # what docker-entrypoint.sh execs
    environment: dict[str, str]  # what the container's processes get from compose


def cvm_env_and_compose(environment: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """The env and compose a deploy Command hands the driver (plain inputs)."""
    names = [name for name in environment[protocol.ENV_KEYS].split(",") if name]
    return (
        {name: environment[protocol.env_value_var(name)] for name in names},
        environment[protocol.COMPOSE],
    )


def mux_container(compose_text: str, cvm_env: Mapping[str, str]) -> ContainerSpec:
    """The mux container's command and environment after dstack and compose."""
    delivered = delivered_env(cvm_env)
    service = yaml.safe_load(compose_text)["services"][MUX_SERVICE]
    return ContainerSpec(
        command=[interpolate(str(item), delivered) for item in service["command"]],
        environment={
            str(name): interpolate(str(value), delivered)
            for name, value in service["environment"].items()
        },
    )


@dataclass
class MuxBoot:
    process: subprocess.Popen[str]
    report: dict[str, Any]  # the stand-in's first line
    stopped: list[dict[str, Any]] = field(default_factory=list)  # lines printed on SIGTERM
    stderr: str = ""  # the wrapper's and the stand-in's, once stopped

    @property
    def kid(self) -> str:
        return str(self.report["kid"])

    def get(self, path: str) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.report["port"], timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 200, response.status
            return json.loads(response.read())
        finally:
            connection.close()

    def jwks(self) -> dict[str, Any]:
        return dict(self.get("/.well-known/jwks.json"))


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:  # scripts/test needs Node 20+ for the phala CLI, so CI has it
        raise AssertionError("`node` is not on PATH; the mux stand-in needs it")
    return node


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if ready:
            return process.stdout.readline()
    raise AssertionError("the mux stand-in printed nothing in time")


@contextlib.contextmanager
def booted_mux(spec: ContainerSpec, workdir: Path, port: int = 0) -> Iterator[MuxBoot]:
    """Start the container's command with its environment in `workdir` (standing in for
    the image's WORKDIR), the image's CMD replaced by the stand-in, listening on `port`
    (0: a free one); stop it with SIGTERM sent to the process that was started, as
    `docker stop` signals the container's main process."""
    assert tuple(spec.command[-len(MUX_IMAGE_CMD) :]) == MUX_IMAGE_CMD, spec.command
    argv = [*spec.command[: -len(MUX_IMAGE_CMD)], node_binary(), str(STANDIN)]
    env = {
        **spec.environment,
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "MUX_STANDIN_PORT": str(port),
    }
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = _read_line(process, time.monotonic() + BOOT_TIMEOUT)
        if not line:
            stderr = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the mux stand-in exited: {stderr[-2000:]}")
        boot = MuxBoot(process, json.loads(line))
        yield boot
        process.send_signal(signal.SIGTERM)
        out, boot.stderr = process.communicate(timeout=STOP_TIMEOUT)
        boot.stopped = [json.loads(item) for item in out.splitlines() if item]
        assert process.returncode == 0, process.returncode
    finally:
        if process.poll() is None:
            stop_group(process)


def boot_once(spec: ContainerSpec, workdir: Path) -> MuxBoot:
    """Boot, read the JWKS, stop: one start of the mux container."""
    with booted_mux(spec, workdir) as boot:
        boot.report["jwks"] = boot.jwks()
    return boot


GATEWAY_CLIENT = Path(__file__).with_name("gateway_jwks_client.mjs")


@dataclass
class GatewayJwksClient:
    """One gateway process: its JWKS cache lives as long as it does."""

    process: subprocess.Popen[str]

    def verify_inbound(self, boot: MuxBoot, openclaw_id: str) -> dict[str, Any]:
        """Ask the mux for an inbound JWT for `openclaw_id`, and the gateway to check it."""
        token = boot.get(f"/test/inbound-jwt?sub={openclaw_id}")["token"]
        request = {
            "baseUrl": f"http://127.0.0.1:{boot.report['port']}",
            "token": token,
            "openclawId": openclaw_id,
        }
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = _read_line(self.process, time.monotonic() + BOOT_TIMEOUT)
        assert line, "the gateway JWKS client exited"
        return dict(json.loads(line))


@contextlib.contextmanager
def gateway_jwks_client() -> Iterator[GatewayJwksClient]:
    process = subprocess.Popen(
        [node_binary(), str(GATEWAY_CLIENT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        yield GatewayJwksClient(process)
    finally:
        stop_group(process)
