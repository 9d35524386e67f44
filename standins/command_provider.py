"""Stand-in for `pulumi-resource-command` 1.2.1, limited to `command:local:Command`.

Behaviour by behaviour it follows the released provider: pulumi/pulumi-command tag
v1.2.1 (commit 7f3eb6f3), built on pulumi/pulumi-go-provider v1.3.0 and Go's os/exec.
Each behaviour names its source beside the code; standins/FIDELITY.md lists them with
the test that pins each. In short:
- nothing runs in a preview; Create runs `create`, Update runs `update` else `create`,
  Delete runs the `delete` stored in state with the stored inputs;
- the command runs as `<interpreter or /bin/sh -c> <command>` with this process's
  environment plus `environment` and the previous stdout/stderr;
- Diff compares old and new inputs as Pulumi property values, so a value that changes
  only between plain and secret is a change;
- Cancel cancels every running and later operation's context, and Go's
  exec.CommandContext then SIGKILLs the command's process (that process only, not its
  group or children), so the Create/Update/Delete fails;
- outputs echo the inputs (secret where the input was); stdout and stderr are plain
  unless the program asks for `additionalSecretOutputs` (the engine applies that).

Not implemented: `assetPaths`/`archivePaths`, `customTimeouts`, `command:local:run`,
and remote commands.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by the launcher the harness writes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from standins.bare_protocol import use_bare_protocol_packages

    use_bare_protocol_packages()

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    provider_pb2,
)

from standins.plugin_rpc import (
    UNKNOWN,
    StandinProvider,
    is_secret,
    reveal,
    serve_provider,
    to_dict,
    to_struct,
)

PROVIDER_VERSION = "1.2.1"
COMMAND_TYPE = "command:local:Command"
INPUT_NAMES = (
    "interpreter",
    "dir",
    "environment",
    "stdin",
    "logging",
    "addPreviousOutputInEnv",
    "assetPaths",
    "archivePaths",
    "triggers",
    "create",
    "delete",
    "update",
)
# provider/pkg/provider/common/inputs.go:10 (v1.2.1): `triggers` is tagged
# provider:"replaceOnChanges"; go-provider infer/resource.go:1141-1145 (v1.3.0) turns a
# change of exactly that key into a replace. A change inside it ("triggers[1]") is an
# update to the provider; the Python SDK's replace_on_changes=["triggers[*]"] makes the
# engine replace it.
FORCE_REPLACE = ("triggers",)
UNSUPPORTED_INPUTS = ("assetPaths", "archivePaths")
# The error Go's exec.Cmd.Start returns once the context is cancelled (os/exec/exec.go,
# Start: `return c.ctx.Err()`), i.e. context.Canceled.
CONTEXT_CANCELED = "context canceled"
# Go's names for the signals a command may die of (syscall/zerrors_linux_amd64.go
# signals table), as ProcessState.String() prints them: "signal: killed".
_GO_SIGNAL_NAMES = {
    signal.SIGHUP: "hangup",
    signal.SIGINT: "interrupt",
    signal.SIGQUIT: "quit",
    signal.SIGABRT: "aborted",
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGPIPE: "broken pipe",
    signal.SIGTERM: "terminated",
}


class CommandError(Exception):
    pass


def go_quote(text: str) -> str:
    """Go's %q of a string (strconv.Quote): the form run() puts the command in."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def exit_description(returncode: int) -> str:
    """os.ProcessState.String() for a non-success exit (os/exec_posix.go, String)."""
    if returncode >= 0:
        return f"exit status {returncode}"
    number = -returncode
    try:
        name = _GO_SIGNAL_NAMES.get(signal.Signals(number), f"signal {number}")
    except ValueError:
        name = f"signal {number}"
    return f"signal: {name}"


# Tests only: the shell that plays /bin/sh (see run_command).
SYSTEM_SHELL_VAR = "OPENCLAW_STANDIN_SYSTEM_SHELL"


class CancelScope:
    """go-provider's cancel middleware (middleware/cancel/cancel.go:40-95, v1.3.0): every
    operation runs under a context; Cancel cancels all of them and, because the pool is
    closed (cancel/internal/evict/pool.go:91-94, 127-142), every later one at once.

    A cancelled context reaches the command through exec.CommandContext
    (local/run.go:59, v1.2.1), whose default Cancel is `cmd.Process.Kill()`
    (os/exec/exec.go, CommandContext): SIGKILL to that one process. run.go sets no
    SysProcAttr (no process group) and no WaitDelay, so children the command started
    are not signalled, and Wait still waits for every holder of its stdout/stderr
    pipes to close them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._running: set[subprocess.Popen[str]] = set()

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled

    @contextlib.contextmanager
    def running(self, process: subprocess.Popen[str]) -> Iterator[None]:
        with self._lock:
            self._running.add(process)
            if self._cancelled:  # cancelled between the check and the start
                process.kill()
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(process)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            for process in self._running:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()


class EngineLog:
    """Sends a Command's output lines to the engine log, as util.LogOutput does."""

    def __init__(self, engine_address: str) -> None:
        self._stub = (
            engine_pb2_grpc.EngineStub(grpc.insecure_channel(engine_address))
            if engine_address
            else None
        )

    def info(self, urn: str, message: str) -> None:
        if self._stub is None:
            return
        # A log line the engine cannot take is not a failed command.
        with contextlib.suppress(grpc.RpcError):
            self._stub.Log(
                engine_pb2.LogRequest(severity=engine_pb2.INFO, message=message, urn=urn)
            )


def run_command(
    command: str,
    inputs: dict[str, Any],
    previous: dict[str, Any],
    log: EngineLog,
    urn: str,
    scope: CancelScope,
) -> tuple[str, str]:
    """local/run.go `run` (v1.2.1, lines 39-146)."""
    plain = reveal(inputs)
    if scope.cancelled:
        # exec.Cmd.Start refuses a done context; run.go:112-113 wraps the error.
        raise CommandError(f"{CONTEXT_CANCELED}: running {go_quote(command)}:\n")
    # run.go:41-51: the interpreter, else /bin/sh -c, then the command. Which process a
    # Cancel then kills depends on that shell: one that execs a lone simple command (bash)
    # is replaced by it, so the command itself is killed; Debian's dash 0.5.12 forks it,
    # so only the shell is, and the command runs on. SYSTEM_SHELL_VAR stands another
    # shell in for /bin/sh, so tests can run both kinds of machine.
    interpreter = plain.get("interpreter") or [os.environ.get(SYSTEM_SHELL_VAR, "/bin/sh"), "-c"]
    # run.go:81-95: os.Environ(), then `environment`, then the previous outputs.
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (plain.get("environment") or {}).items()})
    if plain.get("addPreviousOutputInEnv", True) is not False:
        for name, key in (("PULUMI_COMMAND_STDOUT", "stdout"), ("PULUMI_COMMAND_STDERR", "stderr")):
            value = reveal(previous.get(key))
            if isinstance(value, str) and value:
                env[name] = value
    # local/logging.go:27-31: nil logging logs both streams.
    logging = plain.get("logging") or "stdoutAndStderr"
    stdin = plain.get("stdin") or ""
    process = subprocess.Popen(
        [*interpreter, command],
        cwd=plain.get("dir") or Path.cwd(),  # run.go:73-80
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,  # run.go:97-99
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    combined: list[str] = []
    combined_lock = threading.Lock()
    captured: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def pump(stream: Any, name: str, logged: bool) -> None:
        for line in stream:
            captured[name].append(line)
            with combined_lock:
                combined.append(line)
            if logged:
                log.info(urn, line.rstrip("\n"))

    pumps = [
        threading.Thread(
            target=pump,
            args=(process.stdout, "stdout", logging in ("stdout", "stdoutAndStderr")),
        ),
        threading.Thread(
            target=pump,
            args=(process.stderr, "stderr", logging in ("stderr", "stdoutAndStderr")),
        ),
    ]
    with scope.running(process):
        for thread in pumps:
            thread.start()
        if stdin and process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write(stdin)
                process.stdin.close()
        code = process.wait()
        # Cmd.Wait with no WaitDelay waits until the copying goroutines see EOF, that
        # is until every process holding the pipes has closed them.
        for thread in pumps:
            thread.join()
    if code != 0:
        # run.go:112-113: fmt.Errorf("%w: running %q:\n%s", err, command, stdout+stderr)
        raise CommandError(
            f"{exit_description(code)}: running {go_quote(command)}:\n{''.join(combined)}"
        )
    # run.go:142-143
    return (
        "".join(captured["stdout"]).removesuffix("\n"),
        "".join(captured["stderr"]).removesuffix("\n"),
    )


def with_outputs(inputs: dict[str, Any], stdout: Any, stderr: Any) -> dict[str, Any]:
    """The state: the inputs echoed as they came (secret where the input was: go-provider
    infer/resource.go ensureDefaultSecrets, 754-807, and markSecret, 592-629), plus
    stdout and stderr, which share no input's name and so are never made secret here."""
    return {**inputs, "stdout": stdout, "stderr": stderr}


# ----- diff: Pulumi's property-value comparison ----------------------------------------
#
# go-provider infer/resource.go:1155-1253 (v1.3.0) diffs the old and new inputs with
# resource.PropertyMap.Diff from the pulumi Go SDK (sdk/go/common/resource/properties_diff.go,
# v3.224.0 as pulumi-command's go.mod pins it): objects and arrays are compared member by
# member, anything else with DeepEquals, under which a secret equals only a secret with an
# equal element (lines 401-409): plain "x" and secret "x" differ. A key that is missing
# and one that holds null are the same (PropertyMap.diff, 207-240).

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _has_value(value: Any) -> bool:
    return value is not None


def _is_object(value: Any) -> bool:
    return isinstance(value, dict) and not is_secret(value)


def deep_equals(old: Any, new: Any) -> bool:
    if is_secret(old) or is_secret(new):
        return is_secret(old) and is_secret(new) and deep_equals(old["value"], new["value"])
    if _is_object(old) and _is_object(new):
        keys = set(old) | set(new)
        return all(deep_equals(old.get(key), new.get(key)) for key in keys)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(
            deep_equals(a, b) for a, b in zip(old, new, strict=True)
        )
    if old == UNKNOWN or new == UNKNOWN:
        return False  # a computed value never equals a known one
    if isinstance(old, dict | list) or isinstance(new, dict | list):
        return False
    return bool(old == new)


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{parent}.{key}" if parent else key
    quoted = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{parent}["{quoted}"]'


def detailed_diff(old: Any, new: Any, path: str = "") -> dict[str, str]:
    """Changed property path -> add/delete/update, as plugin.NewDetailedDiffFromObjectDiff
    reports them (objects and arrays descended into, everything else a leaf)."""
    if _is_object(old) and _is_object(new):
        found: dict[str, str] = {}
        for key in sorted(set(old) | set(new)):
            before, after = old.get(key), new.get(key)
            if deep_equals(before, after):
                continue
            child = _path(path, key)
            if not _has_value(before):
                found[child] = "add"
            elif not _has_value(after):
                found[child] = "delete"
            else:
                found |= detailed_diff(before, after, child)
        return found
    if isinstance(old, list) and isinstance(new, list):
        found = {}
        for index in range(max(len(old), len(new))):
            if index >= len(old):
                found[_path(path, index)] = "add"
            elif index >= len(new):
                found[_path(path, index)] = "delete"
            elif not deep_equals(old[index], new[index]):
                found |= detailed_diff(old[index], new[index], _path(path, index))
        return found
    return {} if deep_equals(old, new) else {path: "update"}


_KINDS = {
    ("add", False): provider_pb2.PropertyDiff.ADD,
    ("add", True): provider_pb2.PropertyDiff.ADD_REPLACE,
    ("delete", False): provider_pb2.PropertyDiff.DELETE,
    ("delete", True): provider_pb2.PropertyDiff.DELETE_REPLACE,
    ("update", False): provider_pb2.PropertyDiff.UPDATE,
    ("update", True): provider_pb2.PropertyDiff.UPDATE_REPLACE,
}


def diff_inputs(olds: dict[str, Any], news: dict[str, Any]) -> Any:
    olds = {k: v for k, v in olds.items() if k in INPUT_NAMES}
    # infer/resource.go:1167-1173: `version` and "__" keys are not inputs.
    news = {k: v for k, v in news.items() if k in INPUT_NAMES}
    changes = detailed_diff(olds, news)
    if not changes:
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_NONE, hasDetailedDiff=True
        )
    detailed = {
        path: provider_pb2.PropertyDiff(kind=_KINDS[kind, path in FORCE_REPLACE], inputDiff=True)
        for path, kind in changes.items()
    }
    top_level = sorted({re.split(r"[.\[]", path, maxsplit=1)[0] for path in changes})
    return provider_pb2.DiffResponse(
        changes=provider_pb2.DiffResponse.DIFF_SOME,
        diffs=top_level,
        replaces=[path for path in changes if path in FORCE_REPLACE],
        detailedDiff=detailed,
        hasDetailedDiff=True,
    )


class CommandProvider(StandinProvider):
    name = "command"
    version = PROVIDER_VERSION

    def __init__(self, engine_address: str) -> None:
        self.log = EngineLog(engine_address)
        self.scope = CancelScope()

    def _require_command(self, request: Any, context: Any) -> None:
        if request.type != COMMAND_TYPE:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{request.type} is not implemented")

    def _run(self, context: Any, command: str, inputs: Any, previous: Any, urn: str) -> Any:
        try:
            return run_command(command, inputs, previous, self.log, urn, self.scope)
        except CommandError as error:
            # go-provider answers a plain error with gRPC status Unknown and no state.
            context.abort(grpc.StatusCode.UNKNOWN, str(error))
            raise  # unreachable: abort raises

    def Cancel(self, request: Any, context: Any) -> Any:
        self.scope.cancel()
        return empty_pb2.Empty()

    def Check(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        news = to_dict(request.news)
        failures = [
            provider_pb2.CheckFailure(property=name, reason="not supported by this stand-in")
            for name in UNSUPPORTED_INPUTS
            if news.get(name)
        ]
        return provider_pb2.CheckResponse(inputs=request.news, failures=failures)

    def Diff(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        # infer/resource.go:1194-1213: the engine's old inputs when it sends them.
        olds = to_dict(request.old_inputs) if request.HasField("old_inputs") else {}
        if not olds:
            olds = to_dict(request.olds)
        return diff_inputs(olds, to_dict(request.news))

    def Create(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        inputs = to_dict(request.properties)
        # local/commandController.go:42: resource.NewUniqueHex(name, 8, 0).
        resource_id = f"{request.name or 'command'}{secrets.token_hex(4)}"
        if request.preview:  # commandController.go:47-50
            state = with_outputs(inputs, UNKNOWN, UNKNOWN)
        else:
            create = reveal(inputs.get("create"))
            stdout, stderr = "", ""
            if create:  # commandController.go:51-55
                stdout, stderr = self._run(context, create, inputs, {}, request.urn)
            state = with_outputs(inputs, stdout, stderr)
        return provider_pb2.CreateResponse(id=resource_id, properties=to_struct(state))

    def Read(self, request: Any, context: Any) -> Any:
        # No Read in commandController.go: go-provider's default returns the state as is.
        self._require_command(request, context)
        return provider_pb2.ReadResponse(
            id=request.id, properties=request.properties, inputs=request.inputs
        )

    def Update(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        olds = to_dict(request.olds)
        news = to_dict(request.news)
        if request.preview:  # commandController.go:75-78
            state = with_outputs(news, UNKNOWN, UNKNOWN)
            return provider_pb2.UpdateResponse(properties=to_struct(state))
        # commandController.go:79-89: `update`, else `create`, else nothing.
        command = reveal(news.get("update")) or reveal(news.get("create"))
        # The old outputs, decoded to plain strings (the engine re-applies the program's
        # additionalSecretOutputs to what comes back).
        stdout, stderr = reveal(olds.get("stdout", "")), reveal(olds.get("stderr", ""))
        if command:
            stdout, stderr = self._run(context, command, news, olds, request.urn)
        return provider_pb2.UpdateResponse(properties=to_struct(with_outputs(news, stdout, stderr)))

    def Delete(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        # commandController.go:93-99: the stored `delete`, with the stored inputs.
        state = to_dict(request.properties)
        delete = reveal(state.get("delete"))
        if delete:
            self._run(context, delete, state, state, request.urn)
        return empty_pb2.Empty()


def main(argv: list[str]) -> int:
    positional = [arg for arg in argv if not arg.startswith("-")]
    provider = CommandProvider(positional[-1] if positional else "")
    serve_provider(provider)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
