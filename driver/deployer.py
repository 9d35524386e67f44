"""The driver's three verbs: create (adopting what exists), update in place, delete.

Each change is made with the pinned CLI, then confirmed by reading the API: a create or
update is done when the CVM runs, no operation is in progress, and it serves the compose
sent; a delete is done when the CVM is gone. A CVM busy with another operation is waited
out (the API answers 409 while an operation runs), a CVM still being deleted is waited
out before its name is used again, and everything is bounded by phalaWaitTimeoutSeconds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver import cvm_state
from driver.api import PhalaApi
from driver.cli import PhalaCli, json_or_none, option
from driver.env_handoff import EnvPipe, write_private
from driver.errors import DriverError
from driver.health import health_url, wait_healthy
from driver.spec import CvmSpec, previous_record
from driver.waiting import Deadline, Expected, Gone, Waiter

OTHER_ROLE_SERVICE = {"mux": "openclaw", "openclaw": "mux-server"}


def log(scrub: Callable[[str], str], message: str) -> None:
    print(scrub(f"openclaw-phala: {message}"), file=sys.stderr, flush=True)


@dataclass
class Deployer:
    spec: CvmSpec
    cli: PhalaCli
    api: PhalaApi
    scrub: Callable[[str], str]
    poll_seconds: float = 3.0

    def __post_init__(self) -> None:
        self.waiter = Waiter(
            api=self.api,
            name=self.spec.name,
            timeout_seconds=self.spec.wait_timeout_seconds,
            poll_seconds=self.poll_seconds,
            log=self.log,
        )

    def log(self, message: str) -> None:
        log(self.scrub, message)

    # --- safety

    def check_role(self, cvm: Mapping[str, Any]) -> None:
        """Refuse to touch a CVM that is not the one this resource manages."""
        actual = cvm.get("name")
        if actual != self.spec.name:
            raise DriverError(
                f"refusing to deploy the {self.spec.role} compose to CVM "
                f"{cvm_state.cvm_id_of(cvm)}: it is named {actual!r}, not {self.spec.name!r}"
            )
        other = OTHER_ROLE_SERVICE[self.spec.role]
        if cvm_state.runs_service(cvm, other):
            raise DriverError(
                f"refusing to deploy the {self.spec.role} compose to CVM {actual!r}: "
                f"it runs the {other} service"
            )

    # --- finding the CVM

    def adoptable(self, deadline: Deadline) -> dict[str, Any] | None:
        """The existing CVM this resource should take over: the configured id, else the
        one live CVM with this name. A CVM of this name that is being deleted is waited
        out first, so its name is free and it is never adopted. Adopting is how a retried
        create converges and how a fleet deployed by hand comes under Pulumi."""
        if self.spec.existing_cvm_id is not None:
            configured = self.api.get_cvm(self.spec.existing_cvm_id)
            if configured is None or cvm_state.is_dying(configured):
                state = "does not exist" if configured is None else "is being deleted"
                raise DriverError(
                    f"the configured cvmId {self.spec.existing_cvm_id} {state}; "
                    "remove it from the config to create a new CVM"
                )
            return configured
        matches = self.api.cvms_named(self.spec.name)
        live = [cvm for cvm in matches if not cvm_state.is_dying(cvm)]
        for dying in (cvm for cvm in matches if cvm_state.is_dying(cvm)):
            self.waiter.until_gone(cvm_state.cvm_id_of(dying), deadline)
        if len(live) > 1:
            ids = ", ".join(sorted(str(m.get("app_id")) for m in live))
            raise DriverError(
                f"{len(live)} CVMs are named {self.spec.name!r} (apps {ids}); "
                "set cvmId in the config to say which one this stack manages"
            )
        if not live:
            return None
        cvm_id = cvm_state.cvm_id_of(live[0])
        self.log(f"adopting existing CVM {self.spec.name} ({cvm_id})")
        return self.api.get_cvm(cvm_id)

    # --- changing it

    def expected(self, env: Mapping[str, str]) -> Expected:
        return Expected(self.spec.compose, tuple(env))

    def create_new(self, workdir: Path) -> tuple[str, Expected]:
        spec = self.spec
        compose = write_private(workdir / "docker-compose.yml", spec.compose)
        env = dict(spec.env)
        args = ["deploy", option("name", spec.name), option("compose", str(compose))]
        args += [option("instance-type", spec.instance_type)]
        args += [option("disk-size", f"{spec.disk_size_gb}G"), option("kms", spec.kms)]
        if spec.region:
            args.append(option("region", spec.region))
        if spec.os_image:
            args.append(option("image", spec.os_image))
        if spec.dev_os:
            if not spec.ssh_public_key:
                raise DriverError("the dev OS needs an SSH public key (phalaSshPublicKey)")
            key_file = write_private(workdir / "ssh_key.pub", spec.ssh_public_key + "\n")
            args += ["--dev-os", option("ssh-pubkey", str(key_file))]
            env_names = (*env, "DSTACK_AUTHORIZED_KEYS")  # the CLI adds the key to the env
        else:
            args += ["--no-dev-os"]
            env_names = tuple(env)
        self.log(f"creating CVM {spec.name} ({spec.instance_type})")
        try:
            with EnvPipe(env) as pipe:
                created = self.cli.json(
                    [*args, option("env", pipe.path)], f"creating CVM {spec.name}", env_pipe=pipe
                )
        except DriverError as error:
            # Phala may have committed the CVM even though the CLI failed (when its 30 s
            # request timeout fires it says only "Unknown API error"): the state is
            # uncertain, and a re-run is the safe way out.
            raise DriverError(
                f"{error}; the CVM may exist anyway: a re-run adopts it instead of "
                "creating a second one"
            ) from None
        cvm_id = created.get("vm_uuid")
        if not cvm_id:
            raise DriverError(f"creating CVM {spec.name} returned no CVM id")
        return str(cvm_id), Expected(spec.compose, env_names)

    def update_existing(self, workdir: Path, cvm_id: str, deadline: Deadline) -> Expected:
        """PATCH the compose and env through the CLI, once the CVM is free; a CVM that
        another operation makes busy (409) is waited out and the change sent again."""
        compose = write_private(workdir / "docker-compose.yml", self.spec.compose)
        env = self.spec.env_for_update()
        while True:
            if self.waiter.until_free(cvm_id, deadline) is None:
                raise Gone(f"CVM {self.spec.name} ({cvm_id}) went away before its update")
            self.log(f"updating CVM {self.spec.name} ({cvm_id}) in place")
            with EnvPipe(env) as pipe:
                args = ["deploy", option("cvm-id", cvm_id), option("compose", str(compose))]
                result = self.cli.run([*args, option("env", pipe.path), "--json"], env_pipe=pipe)
            document = json_or_none(result.stdout) or json_or_none(result.stderr)
            if result.returncode == 0 and isinstance(document, dict) and document.get("success"):
                return self.expected(env)
            if self._busy(cvm_id) and not deadline.passed:
                self.log(f"CVM {self.spec.name} refused the update while busy; retrying")
                continue
            raise DriverError(
                f"updating CVM {self.spec.name} failed: {self.cli.error_text(result, document)}"
            )

    def _busy(self, cvm_id: str) -> bool:
        cvm = self.api.get_cvm(cvm_id)
        return cvm is not None and not cvm_state.is_dying(cvm) and cvm_state.in_progress(cvm)

    def converge(self, workdir: Path, existing: dict[str, Any] | None) -> dict[str, Any]:
        """Update `existing` (or an adoptable CVM) in place, or create the CVM; return it
        once it runs what was sent and answers its health check."""
        deadline = self.waiter.deadline()
        if existing is not None and cvm_state.is_dying(existing):
            self.log(f"CVM {cvm_state.cvm_id_of(existing)} is being deleted; creating anew")
            self.waiter.until_gone(cvm_state.cvm_id_of(existing), deadline)
            existing = None
        if existing is None:
            existing = self.adoptable(deadline)
        if existing is None:
            cvm_id, expected = self.create_new(workdir)
        else:
            self.check_role(existing)
            cvm_id = cvm_state.cvm_id_of(existing)
            expected = self.update_existing(workdir, cvm_id, deadline)
        cvm = self.waiter.until_settled(cvm_id, expected, deadline)
        self.verify_health(cvm)
        return cvm

    def verify_health(self, cvm: Mapping[str, Any]) -> None:
        check = self.spec.health
        if check is None:
            return
        url = health_url(check, cvm)
        self.log(f"waiting for {url} to answer")
        wait_healthy(
            self.spec.name, url, check.expect, self.spec.wait_timeout_seconds, self.poll_seconds
        )

    def delete(self, cvm_id: str) -> None:
        """Delete the CVM and return once it is gone; a busy CVM is waited out first."""
        deadline = self.waiter.deadline()
        while True:
            existing = self.waiter.until_free(cvm_id, deadline)
            if existing is None:
                break  # gone, or its deletion already runs
            self.check_role(existing)
            self.log(f"deleting CVM {self.spec.name} ({cvm_id})")
            result = self.cli.run(["cvms", "delete", option("cvm-id", cvm_id), "--force", "--json"])
            if result.returncode == 0:
                break
            current = self.api.get_cvm(cvm_id)
            if current is None or cvm_state.is_dying(current):
                break  # deleted all the same (by us, or by someone else meanwhile)
            if cvm_state.in_progress(current) and not deadline.passed:
                continue
            document = json_or_none(result.stdout) or json_or_none(result.stderr)
            raise DriverError(
                f"deleting CVM {cvm_id} failed: {self.cli.error_text(result, document)}"
            )
        self.waiter.until_gone(cvm_id, deadline)


# --------------------------------------------------------------------------- the verbs


def command_create(deployer: Deployer, workdir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    return cvm_state.output_record(deployer.converge(workdir, existing=None))


def command_update(deployer: Deployer, workdir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    previous = previous_record(environ)
    existing = None
    if previous is not None:
        cvm_id = str(previous["cvmId"])
        existing = deployer.api.get_cvm(cvm_id)
        if existing is None:
            deployer.log(f"CVM {cvm_id} no longer exists (deleted outside Pulumi)")
    return cvm_state.output_record(deployer.converge(workdir, existing=existing))


def command_delete(deployer: Deployer, workdir: Path, environ: Mapping[str, str]) -> None:
    previous = previous_record(environ)
    if previous is None:
        deployer.log("no CVM was recorded for this resource; nothing to delete")
        return
    cvm_id = str(previous["cvmId"])
    existing = deployer.api.get_cvm(cvm_id)
    if existing is None or cvm_state.is_deleted(existing):
        deployer.log(f"CVM {cvm_id} is already gone")
        return
    deployer.delete(cvm_id)  # checks the role of the CVM it deletes, once it is free
