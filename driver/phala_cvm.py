#!/usr/bin/env python3
"""Deploy driver: create, update or delete one CVM with the pinned `phala` CLI.

pulumi_command runs `python3 -I -S driver/phala_cvm.py <create|update|delete>` from the
project directory. Standard library only: this runs in the engine's environment,
not the program's venv.

Inputs arrive as environment variables (driver/protocol.py); the Phala API key
comes from the operator's environment or `phala login`, never from Pulumi state.
stdout carries exactly one JSON line with ids and status and nothing secret;
progress and errors go to stderr with every secret value scrubbed out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:  # run as a script: make `driver` importable
    sys.path.insert(0, str(PROJECT_DIR))

from driver import protocol  # noqa: E402
from driver.dstack_env import delivery_problem  # noqa: E402

DEFAULT_CLI = PROJECT_DIR / "node_modules" / ".bin" / "phala"
POLL_SECONDS_VAR = "OPENCLAW_PHALA_POLL_SECONDS"  # operator/test knob, not a Command input
# Operator/test knob, not a Command input: send health checks to this URL template
# ({app_id}, {base_domain}) instead, e.g. through a tunnel. Only where a check is on.
HEALTH_URL_OVERRIDE_VAR = "OPENCLAW_PHALA_HEALTH_URL_OVERRIDE"
CLI_TIMEOUT_SECONDS = 180
# `phala deploy --wait` gives up after 300 s by itself; allow it that plus a margin.
UPDATE_TIMEOUT_SECONDS = 420
CLI_START_SECONDS = 60  # the PATCH itself and Node start-up, on top of the wait
RUNNING = "running"
FAILED_STATUSES = frozenset({"error", "failed", "stopped", "terminated", "exited", "deleted"})
REDACTED = "[secret]"


class DriverError(Exception):
    """A failure the operator can act on; printed without a traceback."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM: unwind so every temporary file is removed."""


# --------------------------------------------------------------------------- secrets


class Scrubber:
    """Replaces every known secret value in text about to be printed."""

    def __init__(self, secrets: Sequence[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            variants.add(secret)
            variants.add(json.dumps(secret, ensure_ascii=False)[1:-1])  # as it appears in JSON
            variants.add(json.dumps(secret)[1:-1])
            # Multi-line secrets (PEM keys) may be echoed a line at a time.
            variants.update(line for line in secret.splitlines() if len(line) >= 8)
        # Longest first, so a secret containing another is replaced whole.
        self._variants = sorted((v for v in variants if v), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for variant in self._variants:
            text = text.replace(variant, REDACTED)
        return text


# --------------------------------------------------------------------------- inputs


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

    The CLI's encrypted env keeps every character, but dstack re-quotes the values
    for systemd inside the CVM (driver/dstack_env.py), e.g. a PEM's line breaks
    arrive as literal backslash-n. Only for create/update: a delete must still work
    with whatever an older program deployed.
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


def option(name: str, value: str) -> str:
    """``--name=value`` as one word: the CLI's parser reads a separate word that starts
    with '-' as the next option, and its ``--`` does not hand the words after it on as
    operands, so a value such as a CVM id or a path can only travel attached."""
    return f"--{name}={value}"


# --------------------------------------------------------------------------- env file


class EnvFileError(DriverError):
    pass


def dotenv_line(key: str, value: str) -> str:
    """One line the phala CLI's dotenv parser reads back byte-exact.

    In that parser single quotes and backticks are fully literal (newlines
    included); double quotes turn the two characters backslash-n into a newline;
    unquoted values stop at '#' and are trimmed. So: the first literal quoting
    style the value does not contain, else double quotes when that is exact.
    The parser first turns every carriage return in the file into a newline, so a
    CR survives only as the backslash-r escape inside double quotes.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise EnvFileError(f"invalid env var name {key!r}")
    if "\r" not in value:
        for quote in ("'", "`"):
            if quote not in value:
                return f"{key}={quote}{value}{quote}"
    if '"' not in value and "\\n" not in value and "\\r" not in value:
        escaped_carriage_returns = value.replace("\r", "\\r")
        return f'{key}="{escaped_carriage_returns}"'
    raise EnvFileError(
        f"the value of {key} cannot be written exactly to the phala CLI's env file: it "
        "contains both ' and ` (or a carriage return), and also \" or a literal "
        "backslash-n or backslash-r"
    )


def render_env_file(env: Mapping[str, str]) -> str:
    return "".join(dotenv_line(key, value) + "\n" for key, value in env.items())


WORKDIR_PREFIX = "openclaw-phala-"
_WORKDIR_NAME = re.compile(re.escape(WORKDIR_PREFIX) + r"(\d+)-")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to judge
    return True


def sweep_orphaned_workdirs(temp_root: Path) -> list[Path]:
    """Remove the workdirs of drivers that were killed (SIGKILL leaves no chance to clean
    up, and their env files hold secrets). A workdir is orphaned when it is ours and the
    process named in it is gone; a reused pid only delays the sweep to a later run."""
    swept = []
    for path in temp_root.glob(f"{WORKDIR_PREFIX}*"):
        match = _WORKDIR_NAME.match(path.name)
        if match is None or not path.is_dir() or path.stat().st_uid != os.getuid():
            continue
        if int(match.group(1)) != os.getpid() and not _process_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            swept.append(path)
    return swept


@contextmanager
def private_workdir() -> Iterator[Path]:
    """A 0700 temp dir for the env file, compose and key files; removed on every exit.

    Its name carries this process's pid, so a later run can sweep it if this one is
    killed outright."""
    sweep_orphaned_workdirs(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
    try:
        path.chmod(0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


# --------------------------------------------------------------------------- the CLI


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def find_cli(environ: Mapping[str, str]) -> Path:
    override = environ.get(protocol.CLI_OVERRIDE)
    cli = Path(override) if override else DEFAULT_CLI
    if not cli.exists():
        raise DriverError(
            f"phala CLI not found at {cli}: run `npm ci` in the project directory "
            f"(it installs the pinned version), or set {protocol.CLI_OVERRIDE}"
        )
    return cli


def phala_config_dir(environ: Mapping[str, str]) -> Path:
    explicit = environ.get("PHALA_CLOUD_DIR")
    return (
        Path(explicit) if explicit else Path(environ.get("HOME", "~")).expanduser() / ".phala-cloud"
    )


def extract_json(text: str) -> Any:
    """The CLI prints a progress line before its JSON: decode from the first brace."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the CLI output")
    value, _ = json.JSONDecoder().raw_decode(text[start:])
    return value


class PhalaCli:
    def __init__(
        self, environ: Mapping[str, str], workdir: Path, scrub: Callable[[str], str]
    ) -> None:
        self.cli = find_cli(environ)
        self.workdir = workdir
        self.scrub = scrub
        self.calls: list[list[str]] = []
        home = workdir / "home"
        home.mkdir(mode=0o700)
        # The CLI reads SSH keys from ~/.ssh and phala.toml from its cwd; give it an
        # empty HOME and cwd so nothing on the operator's machine changes a deploy,
        # but keep the operator's `phala login` credentials reachable.
        self.env = {
            name: value
            for name, value in environ.items()
            if not name.startswith(protocol.PREFIX) and not name.startswith("PULUMI_COMMAND_")
        }
        self.env |= {
            "HOME": str(home),
            "PHALA_CLOUD_DIR": str(phala_config_dir(environ)),
            "PHALA_DISABLE_UPDATE_CHECK": "1",
            "NO_COLOR": "1",
        }

    def run(self, args: Sequence[str], timeout: float = CLI_TIMEOUT_SECONDS) -> CliResult:
        self.calls.append(list(args))
        process = subprocess.Popen(
            [str(self.cli), *args],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so an interrupt can stop the CLI and its children
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise DriverError(f"`phala {args[0]}` did not finish within {timeout:.0f}s") from None
        except BaseException:
            _kill_group(process)
            raise
        return CliResult(process.returncode, stdout, stderr)

    def json(self, args: Sequence[str], what: str, timeout: float = CLI_TIMEOUT_SECONDS) -> Any:
        result = self.run([*args, "--json"], timeout)
        document = _json_or_none(result.stdout) or _json_or_none(result.stderr)
        if result.returncode != 0 or not isinstance(document, dict) or not document.get("success"):
            raise DriverError(f"{what} failed: {self.error_text(result, document)}")
        return document

    def error_text(self, result: CliResult, document: Any) -> str:
        if isinstance(document, dict) and document.get("error"):
            message = str(document["error"])
        else:
            message = (result.stderr.strip() or result.stdout.strip() or "no output")[-2000:]
        return self.scrub(f"{message} (exit {result.returncode})")


class PhalaApiError(DriverError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


DEFAULT_API_PREFIX = "https://cloud-api.phala.com/api/v1"
READ_API_VERSION = "2026-01-21"  # the version `phala cvms get` uses; it has gateway.base_domain
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


def normalize_cvm_id(cvm_id: str) -> str:
    """The {id} the CLI sends in /cvms/{id}: UUIDs without dashes, 40-hex as app_<hex>."""
    if _UUID.fullmatch(cvm_id):
        return cvm_id.replace("-", "")
    if re.fullmatch(r"[0-9a-fA-F]{40}", cvm_id):
        return f"app_{cvm_id}"
    return cvm_id


def phala_credentials(environ: Mapping[str, str]) -> tuple[str | None, str]:
    """(API key, API prefix) resolved the way the phala CLI resolves them."""
    profile: dict[str, Any] = {}
    try:
        document = json.loads((phala_config_dir(environ) / "credentials.json").read_text())
        profile = document.get("profiles", {}).get(document.get("current_profile", ""), {})
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    key = environ.get(protocol.API_KEY) or profile.get("token") or None
    prefix = (environ.get("PHALA_CLOUD_API_PREFIX") or "").strip() or profile.get("api_prefix")
    return key, (prefix or DEFAULT_API_PREFIX).rstrip("/")


class PhalaApi:
    """Read-only calls to the endpoints `phala cvms list/get` use.

    Every change goes through the pinned CLI (it encrypts the env and owns the
    request shapes). Lookups and status polls are plain GETs: each CLI start costs
    about a second of Node start-up, which would dominate a deploy otherwise.
    """

    def __init__(self, api_key: str, prefix: str, timeout: float = 30.0) -> None:
        self._api_key = api_key
        self.prefix = prefix
        self.timeout = timeout
        self.calls = 0

    def _get(self, path: str) -> Any:
        attempts = 3  # like the CLI's HTTP client, retry a GET on 5xx and network errors
        for attempt in range(attempts):
            self.calls += 1
            request = urllib.request.Request(  # noqa: S310 - the prefix is http(s) by construction
                f"{self.prefix}{path}",
                headers={
                    "X-API-Key": self._api_key,
                    "X-Phala-Version": READ_API_VERSION,
                    "Accept": "application/json",
                    "User-Agent": "openclaw-phala-driver",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                detail = _error_detail(error)
                if error.code >= 500 and attempt + 1 < attempts:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                if error.code in (401, 403):
                    detail += "; check PHALA_CLOUD_API_KEY (or `phala login`) where pulumi runs"
                raise PhalaApiError(f"HTTP {error.code}: {detail}", error.code) from None
            except (urllib.error.URLError, OSError, ValueError) as error:
                if attempt + 1 < attempts:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise PhalaApiError(f"cannot reach {self.prefix}: {error}") from None
        raise AssertionError("unreachable")

    def get_cvm(self, cvm_id: str) -> dict[str, Any] | None:
        """The CVM (v2026 schema), or None when Phala says it does not exist."""
        try:
            document = self._get(f"/cvms/{urllib.parse.quote(normalize_cvm_id(cvm_id), safe='')}")
        except PhalaApiError as error:
            if error.status == 404:
                return None
            raise
        if not isinstance(document, dict) or not document.get("name"):
            raise PhalaApiError(f"unexpected answer for CVM {cvm_id}")
        return document

    def cvms_named(self, name: str) -> list[dict[str, Any]]:
        """Every current CVM whose name is exactly `name` (the API search is fuzzy)."""
        matches: list[dict[str, Any]] = []
        page = 1
        while True:
            query = urllib.parse.urlencode({"page": page, "page_size": 100, "search": name})
            listing = self._get(f"/apps?{query}")
            for app in listing.get("dstack_apps") or []:
                # An app whose CVM was deleted has no current CVM: nothing to adopt.
                cvm = app.get("current_cvm")
                if isinstance(cvm, dict) and cvm.get("name") == name:
                    matches.append({"app_id": app.get("app_id"), **cvm})
            if page >= int(listing.get("total_pages") or 1):
                return matches
            page += 1


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        document = json.loads(error.read() or b"{}")
    except ValueError:
        return error.reason or "error"
    detail = document.get("detail") if isinstance(document, dict) else None
    if isinstance(detail, dict):
        detail = detail.get("message")
    return str(detail or error.reason or "error")


def _json_or_none(text: str) -> Any:
    try:
        return extract_json(text)
    except ValueError:
        return None


def _kill_group(process: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --------------------------------------------------------------------------- operations


def _log(scrub: Callable[[str], str], message: str) -> None:
    print(scrub(f"openclaw-phala: {message}"), file=sys.stderr, flush=True)


@dataclass
class Deployer:
    spec: CvmSpec
    cli: PhalaCli
    api: PhalaApi
    scrub: Callable[[str], str]
    poll_seconds: float = 3.0

    # --- lookups

    def get(self, cvm_id: str) -> dict[str, Any]:
        cvm = self.api.get_cvm(cvm_id)
        if cvm is None:
            raise DriverError(f"CVM {cvm_id} does not exist")
        return cvm

    # --- safety

    def check_role(self, cvm: Mapping[str, Any]) -> None:
        """Refuse to touch a CVM that is not the one this resource manages."""
        actual = cvm.get("name")
        if actual != self.spec.name:
            raise DriverError(
                f"refusing to deploy the {self.spec.role} compose to CVM "
                f"{cvm.get('vm_uuid') or cvm.get('id')}: it is named {actual!r}, "
                f"not {self.spec.name!r}"
            )
        compose = _compose_text(cvm)
        other = "openclaw" if self.spec.role == "mux" else "mux-server"
        if compose and re.search(rf"^  {re.escape(other)}:\s*$", compose, re.MULTILINE):
            raise DriverError(
                f"refusing to deploy the {self.spec.role} compose to CVM {actual!r}: "
                f"it runs the {other} service"
            )

    # --- deploy

    def files(self, workdir: Path, update: bool) -> tuple[Path, Path]:
        compose = write_private(workdir / "docker-compose.yml", self.spec.compose)
        env = dict(self.spec.env)
        if update and self.spec.dev_os and self.spec.ssh_public_key:
            # On update the CLI ignores --ssh-pubkey and replaces the whole env, so the
            # key the CLI added at creation has to be carried here or SSH access is lost.
            env["DSTACK_AUTHORIZED_KEYS"] = self.spec.ssh_public_key
        env_file = write_private(workdir / "deploy.env", render_env_file(env))
        return compose, env_file

    def create_new(self, workdir: Path) -> str:
        spec = self.spec
        compose, env_file = self.files(workdir, update=False)
        args = ["deploy", option("name", spec.name), option("compose", str(compose))]
        args += [option("env", str(env_file)), option("instance-type", spec.instance_type)]
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
        else:
            args += ["--no-dev-os"]
        _log(self.scrub, f"creating CVM {spec.name} ({spec.instance_type})")
        try:
            created = self.cli.json(args, f"creating CVM {spec.name}")
        except DriverError as error:
            # Phala may have committed the CVM even though the CLI failed (when its 30 s
            # request timeout fires it says only "Unknown API error"): tell the operator
            # that the state is uncertain and that a re-run is the safe way out.
            raise DriverError(
                f"{error}; the CVM may exist anyway: a re-run adopts it instead of "
                "creating a second one"
            ) from None
        cvm_id = created.get("vm_uuid")
        if not cvm_id:
            raise DriverError(f"creating CVM {spec.name} returned no CVM id")
        return str(cvm_id)

    def update_existing(self, workdir: Path, cvm_id: str) -> None:
        compose, env_file = self.files(workdir, update=True)
        _log(self.scrub, f"updating CVM {self.spec.name} ({cvm_id}) in place")
        # `--wait` polls for at most 300 s by itself; never wait longer than configured.
        self.cli.json(
            [
                "deploy",
                option("cvm-id", cvm_id),
                option("compose", str(compose)),
                option("env", str(env_file)),
                "--wait",
            ],
            f"updating CVM {self.spec.name}",
            timeout=min(UPDATE_TIMEOUT_SECONDS, self.spec.wait_timeout_seconds + CLI_START_SECONDS),
        )

    def wait_running(self, cvm_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.spec.wait_timeout_seconds
        status = "unknown"
        while True:
            cvm = self.get(cvm_id)
            status = str(cvm.get("status") or "unknown")
            if status == RUNNING:
                return cvm
            if status in FAILED_STATUSES:
                raise DriverError(f"CVM {self.spec.name} ({cvm_id}) is {status}, not running")
            if time.monotonic() >= deadline:
                raise DriverError(
                    f"CVM {self.spec.name} ({cvm_id}) was still {status} after "
                    f"{self.spec.wait_timeout_seconds}s (phalaWaitTimeoutSeconds); "
                    "a re-run continues from where this stopped"
                )
            time.sleep(self.poll_seconds)

    def verify_health(self, cvm: Mapping[str, Any]) -> None:
        health = self.spec.health
        if health is None:
            return
        try:
            url = health.url_template.format(
                app_id=_bare_app_id(str(cvm.get("app_id", ""))),
                base_domain=_base_domain(cvm),
            )
        except (KeyError, IndexError, ValueError) as error:
            raise DriverError(
                f"{protocol.HEALTH_URL_TEMPLATE} may use only {{app_id}} and {{base_domain}}: "
                f"{error!r}"
            ) from None
        _log(self.scrub, f"waiting for {url} to answer")
        deadline = time.monotonic() + self.spec.wait_timeout_seconds
        last = "no answer yet"
        while True:
            healthy, last = probe(url, health.expect)
            if healthy:
                return
            if time.monotonic() >= deadline:
                raise DriverError(
                    f"CVM {self.spec.name} is running but {url} did not answer as expected "
                    f"within {self.spec.wait_timeout_seconds}s (last: {last})"
                )
            time.sleep(self.poll_seconds)

    def adoptable(self) -> dict[str, Any] | None:
        """The existing CVM this resource should take over: the configured id, else
        the one CVM with this name. Adopting is how a retried create converges and
        how a fleet deployed by hand comes under Pulumi without losing its data."""
        if self.spec.existing_cvm_id is not None:
            configured = self.api.get_cvm(self.spec.existing_cvm_id)
            if configured is None:
                raise DriverError(
                    f"the configured cvmId {self.spec.existing_cvm_id} does not exist; "
                    "remove it from the config to create a new CVM"
                )
            return configured
        matches = self.api.cvms_named(self.spec.name)
        if len(matches) > 1:
            ids = ", ".join(sorted(str(m.get("app_id")) for m in matches))
            raise DriverError(
                f"{len(matches)} CVMs are named {self.spec.name!r} (apps {ids}); "
                "set cvmId in the config to say which one this stack manages"
            )
        if not matches:
            return None
        cvm_id = str(matches[0].get("vm_uuid") or "app_" + _bare_app_id(str(matches[0]["app_id"])))
        _log(self.scrub, f"adopting existing CVM {self.spec.name} ({cvm_id})")
        return self.get(cvm_id)

    def converge(self, workdir: Path, existing: Mapping[str, Any] | None) -> dict[str, Any]:
        """Update `existing` (or an adoptable CVM) in place, or create the CVM."""
        if existing is None:
            existing = self.adoptable()
        if existing is None:
            cvm_id = self.create_new(workdir)
        else:
            self.check_role(existing)
            cvm_id = str(existing.get("vm_uuid") or existing.get("id"))
            self.update_existing(workdir, cvm_id)
        cvm = self.wait_running(cvm_id)
        self.verify_health(cvm)
        return cvm


def probe(url: str, expect: str) -> tuple[bool, str]:
    request = urllib.request.Request(url, headers={"User-Agent": "openclaw-phala-driver"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, body = response.status, response.read(65536)
    except urllib.error.HTTPError as error:
        status, body = error.code, b""
    except (urllib.error.URLError, OSError, ValueError) as error:
        return False, f"{type(error).__name__}: {error}"
    if expect == protocol.HEALTH_EXPECT_JSON_OK:
        try:
            ok = status == 200 and json.loads(body).get("ok") is True
        except (ValueError, AttributeError):
            ok = False
        return ok, f"HTTP {status}"
    return status < 500, f"HTTP {status}"


def _bare_app_id(app_id: str) -> str:
    return app_id.removeprefix("app_")


def _base_domain(cvm: Mapping[str, Any]) -> str:
    gateway = cvm.get("gateway")
    if isinstance(gateway, dict) and gateway.get("base_domain"):
        return str(gateway["base_domain"])
    return str(cvm.get("gateway_domain") or "")


def _compose_text(cvm: Mapping[str, Any]) -> str:
    compose_file = cvm.get("compose_file")
    if isinstance(compose_file, dict):
        return str(compose_file.get("docker_compose_file") or "")
    return str(cvm.get("docker_compose_file") or "")


def output_record(cvm: Mapping[str, Any]) -> dict[str, str]:
    record = {
        "cvmId": str(cvm.get("vm_uuid") or cvm.get("id") or ""),
        "appId": _bare_app_id(str(cvm.get("app_id") or "")),
        "name": str(cvm.get("name") or ""),
        "status": str(cvm.get("status") or ""),
        "gatewayBaseDomain": _base_domain(cvm),
        "composeHash": str(cvm.get("compose_hash") or ""),
    }
    missing = [name for name in ("cvmId", "appId", "gatewayBaseDomain") if not record[name]]
    if missing:
        raise DriverError(f"phala returned a CVM without {', '.join(missing)}")
    return record


# --------------------------------------------------------------------------- commands


def command_create(deployer: Deployer, workdir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    return output_record(deployer.converge(workdir, existing=None))


def command_update(deployer: Deployer, workdir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    previous = previous_record(environ)
    existing = None
    if previous is not None:
        cvm_id = str(previous["cvmId"])
        existing = deployer.api.get_cvm(cvm_id)
        if existing is None:
            _log(deployer.scrub, f"CVM {cvm_id} no longer exists (deleted outside Pulumi)")
    return output_record(deployer.converge(workdir, existing=existing))


def command_delete(deployer: Deployer, workdir: Path, environ: Mapping[str, str]) -> None:
    previous = previous_record(environ)
    if previous is None:
        _log(deployer.scrub, "no CVM was recorded for this resource; nothing to delete")
        return
    cvm_id = str(previous["cvmId"])
    existing = deployer.api.get_cvm(cvm_id)
    if existing is None:
        _log(deployer.scrub, f"CVM {cvm_id} is already gone")
        return
    deployer.check_role(existing)
    _log(deployer.scrub, f"deleting CVM {deployer.spec.name} ({cvm_id})")
    result = deployer.cli.run(["cvms", "delete", option("cvm-id", cvm_id), "--force", "--json"])
    # A CVM that vanished between the check and the delete is deleted all the same.
    if result.returncode != 0 and deployer.api.get_cvm(cvm_id) is not None:
        document = _json_or_none(result.stdout) or _json_or_none(result.stderr)
        raise DriverError(
            f"deleting CVM {cvm_id} failed: {deployer.cli.error_text(result, document)}"
        )


def _raise_interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    raise Interrupted(signal.Signals(signum).name)


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    if len(argv) != 2 or argv[1] not in ("create", "update", "delete"):
        print("usage: phala_cvm.py create|update|delete", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGINT, _raise_interrupted)
    scrub: Callable[[str], str] = Scrubber([environ.get(protocol.API_KEY, "")])
    try:
        spec = read_spec(environ)
        scrub = Scrubber([*spec.secret_values, environ.get(protocol.API_KEY, "")])
        if argv[1] != "delete":
            check_env_reaches_the_container(spec)
        api_key, api_prefix = phala_credentials(environ)
        if not api_key:
            raise DriverError(
                "no Phala Cloud API key: export PHALA_CLOUD_API_KEY=<key> in the shell that "
                "runs pulumi, or run `npx phala login` once"
            )
        scrub = Scrubber([*spec.secret_values, api_key])
        poll = float(environ.get(POLL_SECONDS_VAR, "3"))
        with private_workdir() as workdir:
            cli = PhalaCli(environ, workdir, scrub)
            deployer = Deployer(spec, cli, PhalaApi(api_key, api_prefix), scrub, poll)
            if argv[1] == "create":
                record = command_create(deployer, workdir, environ)
            elif argv[1] == "update":
                record = command_update(deployer, workdir, environ)
            else:
                command_delete(deployer, workdir, environ)
                record = None
        if record is not None:
            print(json.dumps(record, sort_keys=True), flush=True)
        return 0
    except DriverError as error:
        print(scrub(f"openclaw-phala: error: {error}"), file=sys.stderr, flush=True)
        return 1
    except Interrupted as interrupt:
        print(f"openclaw-phala: interrupted by {interrupt}", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ))
