"""An operator's stack file as `pulumi config set --secret` leaves it: the committed example
(Pulumi.prod.yaml) with every secret set, encrypted under the operator's passphrase."""

from __future__ import annotations

import shutil
from pathlib import Path

from emulators.phala import PhalaCloudEmulator
from sandbox import demo
from sandbox.engine import REPO_ROOT, PulumiWorkspace


def operator_stack_file(engine_dir: Path, scratch: Path, passphrase: str) -> Path:
    """Pulumi.prod.yaml with fresh secrets, encrypted with `passphrase` (its own salt)."""
    with PhalaCloudEmulator() as unused:  # the workspace wants an API; nothing calls it
        workspace = PulumiWorkspace(
            engine_dir,
            scratch / "operator",
            unused,
            passphrase_env={"PULUMI_CONFIG_PASSPHRASE": passphrase},
        )
        try:
            shutil.copy2(REPO_ROOT / "Pulumi.prod.yaml", workspace.stack_file("prod"))
            workspace.init_stack("prod")
            for path, value in demo.fresh_secrets(demo.example_config()).items():
                workspace.set_secret("prod", path, value)
        finally:
            workspace.close()
    made = scratch / "Pulumi.prod.yaml"
    shutil.copy2(workspace.stack_file("prod"), made)
    return made
