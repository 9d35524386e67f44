"""Stand-in for `pulumi-language-python`, the Python language host.

Faithful to what the engine needs from the real host for `preview`, `up`, `refresh` and
`destroy`:
- the executor `pulumi-language-python-exec` must lie beside the host (else it exits with
  "missing executor"); it is the real script from the sdk/v3 module, run with the
  project's Python, so the program itself runs exactly as it would under the real host;
- the interpreter comes from the `virtualenv` runtime option (relative to the project
  root), with the virtualenv activated (`VIRTUAL_ENV`, `PATH`), else `python3`;
- config reaches the program as `PULUMI_CONFIG` and `PULUMI_CONFIG_SECRET_KEYS` (JSON);
- exit code 32 means the program already reported its error (a bail), any other
  non-zero code is "Program exited with non-zero exit code: N";
- required packages are read from the `pulumi-plugin.json` files of the installed
  distributions, as the real host does through pip.

For tests only: with OPENCLAW_STANDIN_RECORD_CONFIG set to a folder, `Run` writes the
config it would hand the program to `<stack>.json` there (0600) and fails the run
without starting the program, so a test can see exactly what the engine passes on.

Not implemented: dependency installation, templates, code generation, packing and
debugger attachment; the engine does not call them for the commands above.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script by the launcher the harness writes
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from google.protobuf import empty_pb2, json_format
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

from standins.plugin_rpc import serve

HOST_VERSION = "3.274.0"
# Tests only: a folder; write the config the program would receive to <stack>.json in
# it and do not run the program (tests/engine/test_stack_file_parity.py compares it with
# the offline plan's).
RECORD_CONFIG_VAR = "OPENCLAW_STANDIN_RECORD_CONFIG"
CONFIG_RECORDED = "config recorded; the program was not run"
EXECUTOR_SUFFIX = "-exec"
BAIL_EXIT_CODE = 32

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


def runtime_options(info: language_pb2.ProgramInfo | None) -> dict[str, Any]:
    if info is None or not info.HasField("options"):
        return {}
    return json_format.MessageToDict(info.options)


def python_for(root: str, options: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The interpreter to run and the environment changes that activate its virtualenv."""
    virtualenv = options.get("virtualenv")
    if not virtualenv:
        return os.environ.get("PULUMI_PYTHON_CMD", "python3"), {}
    venv = Path(virtualenv) if Path(virtualenv).is_absolute() else Path(root) / virtualenv
    bin_dir = venv / "bin"
    return str(bin_dir / "python"), {
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }


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


class PythonLanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, executor: Path, engine_address: str) -> None:
        self.executor = executor
        self.engine_address = engine_address

    def Handshake(self, request: Any, context: Any) -> Any:
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=HOST_VERSION)

    def _installed_plugins(self, info: language_pb2.ProgramInfo) -> list[dict[str, Any]]:
        python, activation = python_for(info.root_directory, runtime_options(info))
        listing = subprocess.run(
            [python, "-c", _LIST_PLUGINS],
            env={**os.environ, **activation},
            capture_output=True,
            text=True,
            check=True,
        )
        return [p for p in json.loads(listing.stdout) if p.get("resource") and p.get("name")]

    def _dependencies(self, info: language_pb2.ProgramInfo, message: type) -> list[Any]:
        return [
            message(
                kind="resource",
                name=plugin["name"],
                version=plugin.get("version", ""),
                server=plugin.get("server", ""),
            )
            for plugin in self._installed_plugins(info)
        ]

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        packages = self._dependencies(request.info, plugin_pb2.PackageDependency)
        return language_pb2.GetRequiredPackagesResponse(packages=packages)

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        plugins = self._dependencies(request.info, plugin_pb2.PluginDependency)
        return language_pb2.GetRequiredPluginsResponse(plugins=plugins)

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
        python, activation = python_for(root, runtime_options(info))
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
        env = {**os.environ, **activation, "PYTHONUNBUFFERED": "true"}
        env.pop("PYTHONHOME", None)
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        record = os.environ.get(RECORD_CONFIG_VAR)
        if record:
            stack = request.stack.rsplit("/", 1)[-1]
            return record_config(Path(record) / f"{stack}.json", env)
        try:
            code = subprocess.run(args, env=env, cwd=program_dir, check=False).returncode
        except OSError as error:
            return language_pb2.RunResponse(
                error=f"Problem executing program (could not run language executor): {error}"
            )
        if code == 0:
            return language_pb2.RunResponse()
        if code == BAIL_EXIT_CODE:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {code}")

    def Cancel(self, request: Any, context: Any) -> Any:
        return empty_pb2.Empty()


def main(argv: list[str]) -> int:
    host_path = Path(argv[0])
    executor = host_path.with_name(host_path.name + EXECUTOR_SUFFIX)
    if not executor.is_file():
        print(f"missing executor: {executor} not found beside the language host", file=sys.stderr)
        return 1
    positional = [arg for arg in argv[1:] if not arg.startswith("-")]
    engine_address = positional[-1] if positional else ""
    host = PythonLanguageHost(executor, engine_address)
    serve(lambda server: language_pb2_grpc.add_LanguageRuntimeServicer_to_server(host, server))
    return 0


if __name__ == "__main__":
    # The launcher passes its own path first, so the executor is looked up beside it.
    sys.exit(main(sys.argv[1:]))
