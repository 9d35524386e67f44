"""Running the pinned `phala` CLI: every change to a CVM goes through it (it encrypts the
env and owns the request shapes)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver import protocol
from driver.env_handoff import EnvPipe
from driver.errors import DriverError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CLI = PROJECT_DIR / "node_modules" / ".bin" / "phala"
CLI_TIMEOUT_SECONDS = 180  # two API calls of at most 30 s each, retries, Node start-up
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def option(name: str, value: str) -> str:
    """``--name=value`` as one word: the CLI's parser reads a separate word that starts
    with '-' as the next option, and its ``--`` does not hand the words after it on as
    operands, so a value such as a CVM id or a path can only travel attached."""
    return f"--{name}={value}"


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


def json_or_none(text: str) -> Any:
    try:
        return extract_json(text)
    except ValueError:
        return None


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None  # not Linux: the CLI then only dies with its process group


_PRCTL = _load_prctl()  # looked up here, in the parent: the child only calls it


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it if the driver dies, however it dies.

    pulumi-command cancels a run by SIGKILLing the driver alone (Go's exec.CommandContext),
    which gives no chance to stop the CLI; this way no CLI outlives its driver."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def kill_group(process: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


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
        # empty HOME and cwd so nothing on the operator's machine changes a deploy, but
        # keep the operator's `phala login` credentials reachable.
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

    def run(
        self,
        args: Sequence[str],
        timeout: float = CLI_TIMEOUT_SECONDS,
        env_pipe: EnvPipe | None = None,
    ) -> CliResult:
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
            pass_fds=(env_pipe.fd,) if env_pipe is not None else (),
            # Async-signal-safe enough: one libc call, looked up before the fork.
            preexec_fn=_die_with_parent,
        )
        if env_pipe is not None:
            env_pipe.started()
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            raise DriverError(f"`phala {args[0]}` did not finish within {timeout:.0f}s") from None
        except BaseException:
            kill_group(process)
            raise
        return CliResult(process.returncode, stdout, stderr)

    def json(
        self,
        args: Sequence[str],
        what: str,
        timeout: float = CLI_TIMEOUT_SECONDS,
        env_pipe: EnvPipe | None = None,
    ) -> Any:
        result = self.run([*args, "--json"], timeout, env_pipe)
        document = json_or_none(result.stdout) or json_or_none(result.stderr)
        if result.returncode != 0 or not isinstance(document, dict) or not document.get("success"):
            raise DriverError(f"{what} failed: {self.error_text(result, document)}")
        return document

    def error_text(self, result: CliResult, document: Any) -> str:
        if isinstance(document, dict) and document.get("error"):
            message = str(document["error"])
        else:
            message = (result.stderr.strip() or result.stdout.strip() or "no output")[-2000:]
        return self.scrub(f"{message} (exit {result.returncode})")
