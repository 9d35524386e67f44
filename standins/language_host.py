"""Stand-in for `pulumi-language-python`, the Python language host.

Its sources: the toolchain package of pulumi/pulumi sdk/v3 v3.274.0 (sdk/python/toolchain,
from the Go module cache: exact) and the host's main.go (sdk/python/cmd/pulumi-language-python,
whose module the proxy does not serve: read at pulumi/pulumi commit f7520826c1 of
2026-08-21, the newest snapshot reachable; "main.go" below). Each behaviour names its
source beside the code; standins/FIDELITY.md lists them with the test that pins each:
- GetRequiredPackages first ensures the virtualenv (toolchain pip.go EnsureVenv): a
  missing or empty `virtualenv` folder is created with `python3 -m venv`, then
  `pip install --upgrade pip setuptools wheel` and `pip install -r requirements.txt` run
  in it, each step announced in the engine's log; the engine asks on every preview, up
  and refresh, so a fresh clone's first `pulumi preview` builds `.venv`;
- Run checks the virtualenv (ValidateVenv), runs the real executor script
  `pulumi-language-python-exec` (beside the host, else "missing executor") with the
  virtualenv's python, VIRTUAL_ENV and PATH set and PYTHONHOME removed, and config in
  PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS;
- exit 32 is a bail, any other failure "program exited with non-zero exit code: N";
- Cancel sends SIGINT to the program and SIGKILL 5 s later if it is still running;
- required packages are read from the installed distributions' pulumi-plugin.json.

For benchmarks only: with OPENCLAW_STANDIN_TIMINGS set (standins/timings.py), `Run` also
records the program's wall time and CPU, and its CPU as it runs (a sample per exit poll),
so a reader can tell the program's start from its evaluation.

For tests only: with OPENCLAW_STANDIN_RECORD_CONFIG set to a folder, `Run` writes the
config it would hand the program to `<stack>.json` there (0600) and fails the run
without starting the program, so a test can see exactly what the engine passes on.

Not implemented: the poetry and uv toolchains, typecheckers, templates, code generation,
packing and debugger attachment; the engine does not call them for this project.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by the launcher the harness writes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from standins.bare_protocol import use_bare_protocol_packages

    use_bare_protocol_packages()

import grpc
from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    language_pb2,
    language_pb2_grpc,
    plugin_pb2,
)

from standins.plugin_rpc import serve
from standins.timings import children_cpu_seconds, pid_cpu_seconds, timing_log

HOST_VERSION = "3.274.0"
PLUGIN_NAME = "python"
# Tests only: a folder; write the config the program would receive to <stack>.json in
# it and do not run the program (tests/engine/test_stack_file_parity.py compares it with
# the offline plan's).
RECORD_CONFIG_VAR = "OPENCLAW_STANDIN_RECORD_CONFIG"
CONFIG_RECORDED = "config recorded; the program was not run"
EXECUTOR_SUFFIX = "-exec"
# main.go: pythonProcessExitedAfterShowingUserActionableMessage.
BAIL_EXIT_CODE = 32
# main.go Run: cmd.WaitDelay = 5 * time.Second after the SIGINT of cmd.Cancel.
CANCEL_WAIT_SECONDS = 5.0
# How often Run looks whether the program has ended. The real host's cmd.Wait returns at
# once; a coarser poll added up to its length to every preview and up.
EXIT_POLL_SECONDS = 0.02
# toolchain pip.go InstallDependencies: three attempts when pip's error looks transient.
PIP_ATTEMPTS = 3
TRANSIENT_PIP_ERRORS = ("because the GET request got Content-Type",)

# Lists every installed distribution's pulumi-plugin.json, run with the program's Python.
_LIST_PLUGINS = r"""
import json, importlib.metadata as md
found = []
for dist in md.distributions():
    for file in dist.files or []:
        if file.name == "pulumi-plugin.json":
            try:
                found.append(json.loads(file.read_text()))
            except (OSError, ValueError):
                pass
print(json.dumps(found))
"""


class ToolchainError(Exception):
    pass


def runtime_options(info: language_pb2.ProgramInfo | None) -> dict[str, Any]:
    if info is None or not info.HasField("options"):
        return {}
    return json_format.MessageToDict(info.options)


def virtualenv_path(root: str, options: dict[str, Any]) -> Path | None:
    """pip.go resolveVirtualEnvironmentPath: the option, relative to the project root."""
    virtualenv = options.get("virtualenv")
    if not virtualenv:
        return None
    return Path(virtualenv) if Path(virtualenv).is_absolute() else Path(root) / virtualenv


def is_virtualenv(folder: Path) -> bool:
    """pip.go IsVirtualEnv: a `bin/python` that is not a folder."""
    python = folder / "bin" / "python"
    return python.exists() and not python.is_dir()


def activated(environ: dict[str, str], venv: Path) -> dict[str, str]:
    """toolchain.go ActivateVirtualEnv: bin first on PATH, no PYTHONHOME, VIRTUAL_ENV set."""
    env = {k: v for k, v in environ.items() if k.upper() not in ("PYTHONHOME", "VIRTUAL_ENV")}
    bin_dir = str(venv / "bin")
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}" if env.get("PATH") else bin_dir
    env["VIRTUAL_ENV"] = str(venv)
    return env


def python_for(root: str, options: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The interpreter to run and its environment (pip.go Command)."""
    venv = virtualenv_path(root, options)
    if venv is None:
        return base_python(), dict(os.environ)
    return str(venv / "bin" / "python"), activated(dict(os.environ), venv)


def base_python() -> str:
    """pip.go CommandPath: PULUMI_PYTHON_CMD, else python3, else python, on PATH."""
    wanted = (
        [os.environ["PULUMI_PYTHON_CMD"]]
        if os.environ.get("PULUMI_PYTHON_CMD")
        else [
            "python3",
            "python",
        ]
    )
    for name in wanted:
        found = shutil.which(name)
        if found:
            return found
    quoted = "[" + " ".join(f'"{name}"' for name in wanted) + "]"
    raise ToolchainError(
        f"failed to locate any of {quoted} on your PATH. Have you installed Python 3.6 or greater?"
    )


def virtualenv_error(option: str, folder: Path) -> str:
    """pip.go NewVirtualEnvError, the message Run fails with for a broken virtualenv."""
    message = (
        "doesn't exist" if not folder.exists() else "doesn't appear to be a virtual environment"
    )
    python = folder / "bin" / "python"
    commands = (
        f"    1. python3 -m venv {folder}\n"
        f"    2. {python} -m pip install --upgrade pip setuptools wheel\n"
        f"    3. {python} -m pip install -r requirements.txt\n"
    )
    return (
        f"The 'virtualenv' option in Pulumi.yaml is set to {json.dumps(option)}, but "
        f"{json.dumps(str(folder))} {message}; run the following commands to create the "
        f"virtual environment and install dependencies into it:\n\n{commands}\n\n"
        "For more information see: "
        "https://www.pulumi.com/docs/intro/languages/python/#virtual-environments"
    )


class EngineWriter:
    """main.go createEngineWriters: ephemeral engine log messages on one random stream."""

    def __init__(self, engine_address: str) -> None:
        self._stub = (
            engine_pb2_grpc.EngineStub(grpc.insecure_channel(engine_address))
            if engine_address
            else None
        )
        self._stream = random.randrange(2**31)  # noqa: S311 - a stream id, not a secret

    def write(self, text: str, severity: int = engine_pb2.INFO) -> None:
        if self._stub is None:
            return
        with contextlib.suppress(grpc.RpcError):
            self._stub.Log(
                engine_pb2.LogRequest(
                    severity=severity, message=text, ephemeral=True, streamId=self._stream
                )
            )


def _run_logged(
    args: Sequence[str], cwd: Path, env: dict[str, str], log: EngineWriter
) -> tuple[int, str]:
    """Run a pip step with its stdout to the info stream and stderr to the error stream
    (pip.go InstallDependencies, showOutput); returns the exit code and stderr."""
    process = subprocess.Popen(
        list(args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    errors: list[str] = []

    def pump(stream: Any, severity: int, keep: list[str] | None) -> None:
        for line in stream:
            if keep is not None:
                keep.append(line)
            log.write(line, severity)

    threads = [
        threading.Thread(target=pump, args=(process.stdout, engine_pb2.INFO, None)),
        threading.Thread(target=pump, args=(process.stderr, engine_pb2.ERROR, errors)),
    ]
    for thread in threads:
        thread.start()
    code = process.wait()
    for thread in threads:
        thread.join()
    return code, "".join(errors)


def install_dependencies(cwd: Path, venv: Path, log: EngineWriter) -> None:
    """pip.go InstallDependencies (v3.274.0, lines 468-585) with showOutput."""
    log.write("Creating virtual environment...\n")
    venv_step = subprocess.run(
        [base_python(), "-m", "venv", str(venv)], capture_output=True, text=True, check=False
    )
    if venv_step.returncode != 0:
        output = venv_step.stdout + venv_step.stderr
        if output:
            log.write(f"{output}\n", engine_pb2.ERROR)
        raise ToolchainError(
            f"creating virtual environment at '{venv}': exit status {venv_step.returncode}"
        )
    log.write("Finished creating virtual environment\n")

    def pip_install(what: str, *args: str) -> None:
        command = [str(venv / "bin" / "python"), "-m", "pip", "install", *args]
        env = activated(dict(os.environ), venv)
        for attempt in range(PIP_ATTEMPTS):
            code, stderr = _run_logged(command, cwd, env, log)
            if code == 0:
                return
            transient = any(pattern in stderr for pattern in TRANSIENT_PIP_ERRORS)
            if attempt < PIP_ATTEMPTS - 1 and transient:
                log.write(f"Retrying ({attempt + 1}/{PIP_ATTEMPTS})...\n", engine_pb2.ERROR)
                continue
            detail = f": {stderr.strip()}" if stderr.strip() else ""
            raise ToolchainError(f"{what} via '{' '.join(command)}': exit status {code}{detail}")

    log.write("Updating pip, setuptools, and wheel in virtual environment...\n")
    pip_install("updating pip, setuptools, and wheel", "--upgrade", "pip", "setuptools", "wheel")
    log.write("Finished updating\n")
    if not (cwd / "requirements.txt").exists():
        return
    log.write("Installing dependencies in virtual environment...\n")
    pip_install("installing dependencies", "-r", "requirements.txt")
    log.write("Finished installing dependencies\n")


def ensure_venv(info: language_pb2.ProgramInfo, log: EngineWriter) -> None:
    """pip.go EnsureVenv (v3.274.0, lines 272-310)."""
    venv = virtualenv_path(info.root_directory, runtime_options(info))
    if venv is None or is_virtualenv(venv):
        return
    if venv.exists() and not venv.is_dir():
        raise ToolchainError(
            f"the 'virtualenv' option in Pulumi.yaml is set to {json.dumps(str(venv))} "
            "but it is not a directory"
        )
    if venv.exists() and any(venv.iterdir()):
        return  # not empty: left alone, and Run reports it (ValidateVenv)
    install_dependencies(Path(info.program_directory or info.root_directory), venv, log)


def record_config(path: Path, env: dict[str, str]) -> Any:
    """Save PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS as the program would get them.

    The file is created 0600: under a test it may hold decrypted secrets."""
    recorded = {
        "config": json.loads(env["PULUMI_CONFIG"]),
        "secretKeys": json.loads(env["PULUMI_CONFIG_SECRET_KEYS"]),
    }
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(recorded, file)
    return language_pb2.RunResponse(error=CONFIG_RECORDED)


def run_failure(returncode: int) -> Any:
    """main.go Run (the exec.ExitError branch): 32 bails; a signal reads as -1."""
    if returncode == BAIL_EXIT_CODE:
        return language_pb2.RunResponse(bail=True)
    code = returncode if returncode >= 0 else -1  # syscall.WaitStatus.ExitStatus()
    return language_pb2.RunResponse(error=f"program exited with non-zero exit code: {code}")


class PythonLanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, executor: Path, engine_address: str) -> None:
        self.executor = executor
        self.engine_address = engine_address
        # main.go newLanguageHost: cancelCtx, done once the Cancel RPC arrives.
        self.cancelled = threading.Event()

    def Handshake(self, request: Any, context: Any) -> Any:
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=HOST_VERSION)

    def _installed_plugins(self, info: language_pb2.ProgramInfo) -> list[dict[str, Any]]:
        """main.go listPulumiPackageInfos: asks the program's python (pip.go ListPackages
        runs `python -m pip list`; this reads the same distributions' metadata)."""
        python, env = python_for(info.root_directory, runtime_options(info))
        try:
            listing = subprocess.run(
                [python, "-c", _LIST_PLUGINS], env=env, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError) as error:
            raise ToolchainError(f"calling `{python} -m pip list --format json`: {error}") from None
        return [p for p in json.loads(listing.stdout) if p.get("resource") and p.get("name")]

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        # main.go GetRequiredPackages: EnsureVenv first, output to the engine's log.
        try:
            ensure_venv(request.info, EngineWriter(self.engine_address))
            plugins = self._installed_plugins(request.info)
        except ToolchainError as error:
            context.abort(grpc.StatusCode.UNKNOWN, str(error))
        packages = [
            plugin_pb2.PackageDependency(
                kind="resource",
                name=plugin["name"],
                version=plugin.get("version", ""),
                server=plugin.get("server", ""),
            )
            for plugin in plugins
        ]
        return language_pb2.GetRequiredPackagesResponse(packages=packages)

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        # main.go: "method GetRequiredPlugins not implemented"; the engine asks for packages.
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "method GetRequiredPlugins not implemented")

    def About(self, request: Any, context: Any) -> Any:
        python, _ = python_for(request.info.root_directory, runtime_options(request.info))
        return language_pb2.AboutResponse(executable=python, version=sys.version.split()[0])

    def GetProgramDependencies(self, request: Any, context: Any) -> Any:
        return language_pb2.GetProgramDependenciesResponse()

    def Run(self, request: Any, context: Any) -> Any:
        info = request.info
        root = info.root_directory or request.pwd
        program_dir = info.program_directory or request.pwd or root
        entry = info.entry_point or request.program or "."
        options = runtime_options(info)
        venv = virtualenv_path(root, options)
        # main.go Run -> tc.ValidateVenv (pip.go:265-270): a missing venv fails the run.
        if venv is not None and not is_virtualenv(venv):
            context.abort(grpc.StatusCode.UNKNOWN, virtualenv_error(options["virtualenv"], venv))
        python, env = python_for(root, options)
        args = [python, str(self.executor)]
        for flag, value in (
            ("monitor", request.monitor_address),
            ("engine", self.engine_address),
            ("project", request.project),
            ("root_directory", root),
            ("stack", request.stack),
            ("pwd", program_dir),
            ("dry_run", "true" if request.dryRun else "false"),
            ("parallel", str(request.parallel)),
            ("organization", request.organization),
        ):
            if value:
                args += [f"--{flag}", value]
        args.append(entry)
        args.extend(request.args)
        env["PYTHONUNBUFFERED"] = "true"
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        record = os.environ.get(RECORD_CONFIG_VAR)
        if record:
            stack = request.stack.rsplit("/", 1)[-1]
            return record_config(Path(record) / f"{stack}.json", env)
        if self.cancelled.is_set():
            # exec.Cmd.Start on a done context.
            return language_pb2.RunResponse(
                error="problem executing program (could not run language executor): "
                "context canceled"
            )
        timings = timing_log(PLUGIN_NAME)
        started, clock, children_cpu = time.time(), time.perf_counter(), children_cpu_seconds()
        try:
            process = subprocess.Popen(args, env=env, cwd=program_dir)
        except OSError as error:
            return language_pb2.RunResponse(
                error=f"problem executing program (could not run language executor): {error}"
            )
        cpu_samples: list[tuple[float, float]] = []

        def sample_cpu() -> None:
            cpu = pid_cpu_seconds(process.pid)
            if cpu is not None:
                cpu_samples.append((round(time.time(), 4), cpu))

        code = wait_cancellable(
            process, self.cancelled, context.is_active, sample_cpu if timings else None
        )
        if timings is not None:
            timings.write(
                {
                    "method": "program",
                    "start": started,
                    "seconds": time.perf_counter() - clock,
                    "program_cpu": children_cpu_seconds() - children_cpu,
                    "program_cpu_samples": cpu_samples,
                }
            )
        if code == 0:
            return language_pb2.RunResponse()
        return run_failure(code)

    def Cancel(self, request: Any, context: Any) -> Any:
        self.cancelled.set()  # main.go Cancel: host.cancelFunc()
        return empty_pb2.Empty()


def wait_cancellable(
    process: subprocess.Popen[Any],
    cancelled: threading.Event,
    active: Callable[[], bool],
    on_poll: Callable[[], None] | None = None,
) -> int:
    """Wait for the program; once the host is cancelled or the request has ended, send
    SIGINT (main.go Run: cmd.Cancel) and SIGKILL after CANCEL_WAIT_SECONDS (WaitDelay).
    `on_poll` runs at each look (benchmarks sample the program's CPU there)."""
    while process.poll() is None:
        if on_poll is not None:
            on_poll()
        if cancelled.wait(timeout=EXIT_POLL_SECONDS) or not active():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                return process.wait(timeout=CANCEL_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                return process.wait()
    return process.returncode


def main(argv: list[str]) -> int:
    host_path = Path(argv[0])
    executor = host_path.with_name(host_path.name + EXECUTOR_SUFFIX)
    if not executor.is_file():
        print(f"missing executor: {executor} not found beside the language host", file=sys.stderr)
        return 1
    positional = [arg for arg in argv[1:] if not arg.startswith("-")]
    engine_address = positional[-1] if positional else ""
    host = PythonLanguageHost(executor, engine_address)
    serve(
        "python",
        lambda server: language_pb2_grpc.add_LanguageRuntimeServicer_to_server(host, server),
    )
    return 0


if __name__ == "__main__":
    # The launcher passes its own path first, so the executor is looked up beside it.
    sys.exit(main(sys.argv[1:]))
