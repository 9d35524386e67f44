"""Stand-in for `pulumi-resource-command` 1.2.1, limited to `command:local:Command`.

Faithful to the released provider's local Command (its `Create`, `Update`, `Delete` and
`run` in provider/pkg/provider/local):
- nothing runs during a preview; a created or updated Command's `stdout` and `stderr`
  are unknown there;
- create runs `create`; any input change runs `update` (or `create` when no `update`
  is set); a change to `triggers` replaces; unchanged inputs run nothing;
- delete runs the `delete` stored in state, with the stored environment;
- the child gets this process's environment (which the engine passes on) plus
  `environment`, the previous stdout/stderr as PULUMI_COMMAND_STDOUT/STDERR unless
  `addPreviousOutputInEnv` is false, `stdin`, `dir` or else this process's working
  directory, and `interpreter` or `/bin/sh -c`;
- stdout and stderr are kept without their trailing newline; unless `logging` is
  `none` they are streamed to the engine's log as they arrive;
- a non-zero exit fails with "exit status N: running "<command>":" and the combined
  output, as the real one does;
- every input is echoed as an output, secret where the input was; stdout and stderr
  depend on every input, so they are secret when any input is;
- refresh (Read) returns the state unchanged: the provider cannot see the world.

Not implemented: `assetPaths`/`archivePaths`, `command:local:run`, and remote commands.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by the launcher the harness writes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    contains_unknown,
    is_secret,
    reveal,
    secret,
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
REPLACE_ON_CHANGES = ("triggers",)
UNSUPPORTED_INPUTS = ("assetPaths", "archivePaths")


class CommandError(Exception):
    pass


class EngineLog:
    """Sends a Command's output lines to the engine log, as the provider's LogOutput does."""

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
) -> tuple[str, str]:
    plain = reveal(inputs)
    interpreter = plain.get("interpreter") or ["/bin/sh", "-c"]
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (plain.get("environment") or {}).items()})
    if plain.get("addPreviousOutputInEnv", True) is not False:
        for name, key in (("PULUMI_COMMAND_STDOUT", "stdout"), ("PULUMI_COMMAND_STDERR", "stderr")):
            value = reveal(previous.get(key))
            if isinstance(value, str) and value:
                env[name] = value
    logging = plain.get("logging") or "stdoutAndStderr"
    stdin = plain.get("stdin") or ""
    process = subprocess.Popen(
        [*interpreter, command],
        cwd=plain.get("dir") or Path.cwd(),
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
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
    for thread in pumps:
        thread.start()
    if stdin and process.stdin is not None:
        process.stdin.write(stdin)
        process.stdin.close()
    code = process.wait()
    for thread in pumps:
        thread.join()
    if code != 0:
        quoted = '"' + command.replace("\\", "\\\\").replace('"', '\\"') + '"'
        raise CommandError(f"exit status {code}: running {quoted}:\n{''.join(combined)}")
    return (
        "".join(captured["stdout"]).removesuffix("\n"),
        "".join(captured["stderr"]).removesuffix("\n"),
    )


def with_outputs(inputs: dict[str, Any], stdout: Any, stderr: Any) -> dict[str, Any]:
    """The state: every input echoed, plus stdout/stderr, secret when any input is."""
    any_secret = any(is_secret(value) for value in inputs.values())
    state = dict(inputs)
    for key, value in (("stdout", stdout), ("stderr", stderr)):
        state[key] = secret(value) if any_secret and value != UNKNOWN else value
    return state


def changed_inputs(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    names = sorted(set(olds) | set(news))
    return [
        name
        for name in names
        if name in INPUT_NAMES
        and (contains_unknown(news.get(name)) or reveal(olds.get(name)) != reveal(news.get(name)))
    ]


class CommandProvider(StandinProvider):
    name = "command"
    version = PROVIDER_VERSION

    def __init__(self, engine_address: str) -> None:
        self.log = EngineLog(engine_address)

    def _require_command(self, request: Any, context: Any) -> None:
        if request.type != COMMAND_TYPE:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{request.type} is not implemented")

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
        olds = to_dict(request.old_inputs) if request.HasField("old_inputs") else {}
        if not olds:
            olds = {k: v for k, v in to_dict(request.olds).items() if k in INPUT_NAMES}
        changed = changed_inputs(olds, to_dict(request.news))
        if not changed:
            return provider_pb2.DiffResponse(
                changes=provider_pb2.DiffResponse.DIFF_NONE, hasDetailedDiff=True
            )
        replaces = [name for name in changed if name in REPLACE_ON_CHANGES]
        detailed = {
            name: provider_pb2.PropertyDiff(
                kind=provider_pb2.PropertyDiff.UPDATE_REPLACE
                if name in replaces
                else provider_pb2.PropertyDiff.UPDATE,
                inputDiff=True,
            )
            for name in changed
        }
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME,
            diffs=changed,
            replaces=replaces,
            detailedDiff=detailed,
            hasDetailedDiff=True,
        )

    def Create(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        inputs = to_dict(request.properties)
        resource_id = f"{request.name or 'command'}-{secrets.token_hex(4)}"
        if request.preview:
            state = with_outputs(inputs, UNKNOWN, UNKNOWN)
        else:
            create = reveal(inputs.get("create"))
            stdout, stderr = "", ""
            if create:
                try:
                    stdout, stderr = run_command(create, inputs, {}, self.log, request.urn)
                except CommandError as error:
                    context.abort(grpc.StatusCode.UNKNOWN, str(error))
            state = with_outputs(inputs, stdout, stderr)
        return provider_pb2.CreateResponse(id=resource_id, properties=to_struct(state))

    def Read(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        return provider_pb2.ReadResponse(
            id=request.id, properties=request.properties, inputs=request.inputs
        )

    def Update(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        olds = to_dict(request.olds)
        news = to_dict(request.news)
        if request.preview:
            state = with_outputs(news, UNKNOWN, UNKNOWN)
            return provider_pb2.UpdateResponse(properties=to_struct(state))
        command = reveal(news.get("update")) or reveal(news.get("create"))
        stdout, stderr = reveal(olds.get("stdout", "")), reveal(olds.get("stderr", ""))
        if command:
            try:
                stdout, stderr = run_command(command, news, olds, self.log, request.urn)
            except CommandError as error:
                context.abort(grpc.StatusCode.UNKNOWN, str(error))
        return provider_pb2.UpdateResponse(properties=to_struct(with_outputs(news, stdout, stderr)))

    def Delete(self, request: Any, context: Any) -> Any:
        self._require_command(request, context)
        state = to_dict(request.properties)
        delete = reveal(state.get("delete"))
        if delete:
            try:
                run_command(delete, state, state, self.log, request.urn)
            except CommandError as error:
                context.abort(grpc.StatusCode.UNKNOWN, str(error))
        return empty_pb2.Empty()


def main(argv: list[str]) -> int:
    positional = [arg for arg in argv if not arg.startswith("-")]
    provider = CommandProvider(positional[-1] if positional else "")
    serve_provider(provider)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
