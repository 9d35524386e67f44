"""The mux's JWT key under the real engine: what the emulator received, booted.

The compose and env the Phala API emulator received for the mux (decrypted as the CVM
would) are run through dstack's delivery, compose's substitution, the real `/bin/sh`
wrapper and the Node stand-in (tests/support/mux_container.py). A mux image update
redeploys the mux and must leave the key id its JWKS serves unchanged; an explicit key
set the documented way (`pulumi config set --secret muxJwtPrivateKey < key.pem`) is the
one served.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from components import mux_jwt_key
from components.derivation import mux_jwt_private_key_pem
from emulators.phala import PhalaCloudEmulator
from tests.support.engine_harness import PulumiWorkspace
from tests.support.engine_stacks import STACK, engine_operations, local_stack_config
from tests.support.mux_container import MuxBoot, boot_once, mux_container
from tests.support.stack_configs import MUX_IMAGE

TENANTS = ("jwt-agent-0",)
MUX = "jwt-mux"
MUX_IMAGE_V2 = "h4x3rotab/openclaw-mux@sha256:" + "e" * 64
EXPLICIT_PEM = mux_jwt_private_key_pem("an-operator-file-jwt-key-root-0123456789abcdef")


def boot_what_the_mux_received(emulator: PhalaCloudEmulator, workdir: Path) -> MuxBoot:
    cvm = emulator.cvm_by_name(MUX)
    return boot_once(mux_container(cvm.docker_compose_file, emulator.decrypted_env(cvm)), workdir)


def exported_key_id(workspace: PulumiWorkspace) -> str:
    outputs = workspace.run("stack", "output", "--json", "--stack", STACK).expect_success().json
    return str(outputs["mux"]["jwtKeyId"])


def test_a_mux_image_update_keeps_the_key_id_the_mux_serves(
    workspace: PulumiWorkspace, emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    config, secret_keys = local_stack_config(TENANTS, mux=MUX)
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()
    before = boot_what_the_mux_received(emulator, tmp_path)
    assert before.report["keyFrom"] == "MUX_JWT_PRIVATE_KEY"
    assert exported_key_id(workspace) == before.kid

    workspace.write_plain_config(STACK, {"muxImage": MUX_IMAGE_V2})
    preview = workspace.run("preview", "--json", "--stack", STACK).expect_success()
    assert engine_operations(preview.json)[f"{MUX}-deploy"] == "update"
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()

    cvm = emulator.cvm_by_name(MUX)
    image = yaml.safe_load(cvm.docker_compose_file)["services"]["mux-server"]["image"]
    assert image == MUX_IMAGE_V2 != MUX_IMAGE
    after = boot_what_the_mux_received(emulator, tmp_path)
    assert after.kid == before.kid
    assert after.report["jwks"] == before.report["jwks"]
    assert exported_key_id(workspace) == before.kid
    workspace.run("preview", "--expect-no-changes", "--stack", STACK).expect_success()


def test_an_explicit_key_set_from_its_file_is_the_one_the_mux_serves(
    workspace: PulumiWorkspace, emulator: PhalaCloudEmulator, tmp_path: Path
) -> None:
    config, secret_keys = local_stack_config(TENANTS, mux=MUX)
    workspace.init_stack(STACK)
    workspace.configure(STACK, config, secret_keys)
    # `pulumi config set --secret muxJwtPrivateKey < key.pem`: the file on stdin.
    workspace.set_secret(STACK, "muxJwtPrivateKey", EXPLICIT_PEM)
    workspace.run("up", "--yes", "--skip-preview", "--stack", STACK).expect_success()

    boot = boot_what_the_mux_received(emulator, tmp_path)
    assert boot.kid == mux_jwt_key.key_id(EXPLICIT_PEM) == exported_key_id(workspace)
