"""The language host stand-in, behaviour by behaviour against pulumi v3.274.0's toolchain
(sdk/python/toolchain) and the host's main.go: each test pins one row of
standins/FIDELITY.md.

The virtualenv steps run against a recording interpreter named by PULUMI_PYTHON_CMD (the
variable the real toolchain honours): it writes down each command, its directory and
VIRTUAL_ENV, and acts like `python -m venv` / `pip install` would on the file system.
What a real first `pulumi preview` on a fresh clone does with the real Python and pip
is run under the engine in tests/engine/test_fresh_clone.py."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc, language_pb2, language_pb2_grpc

from tests.standins.plugin_process import plugin_process, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]

# A python3 stand-in: records argv, cwd and VIRTUAL_ENV, and does what venv/pip would do
# to the file system. `FAIL_PIP_REQUIREMENTS` makes `pip install -r` fail.
RECORDING_PYTHON = textwrap.dedent(
    """\
    #!/bin/sh
    if [ "$1" = "-c" ]; then
      printf '%s|%s|%s\\n' "-c" "$PWD" "$VIRTUAL_ENV" >> "$RECORD"; echo "[]"; exit 0
    fi
    printf '%s|%s|%s\\n' "$*" "$PWD" "$VIRTUAL_ENV" >> "$RECORD"
    if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
      mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && exit 0
    fi
    if [ "$2 $4" = "pip -r" ] && [ -n "$FAIL_PIP_REQUIREMENTS" ]; then
      echo "ERROR: No matching distribution found for nothing-here" >&2; exit 1
    fi
    exit 0
    """
)


@dataclass
class EngineLog(engine_pb2_grpc.EngineServicer):
    """The engine's Log endpoint, recording what the host sends."""

    messages: list[engine_pb2.LogRequest] = field(default_factory=list)

    def Log(self, request: Any, context: Any) -> Any:
        self.messages.append(request)
        return empty_pb2.Empty()

    def text(self) -> list[str]:
        return [m.message for m in self.messages if m.severity == engine_pb2.INFO]


@contextlib.contextmanager
def engine_log() -> Iterator[tuple[EngineLog, str]]:
    sink = EngineLog()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    engine_pb2_grpc.add_EngineServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield sink, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


@dataclass
class Host:
    stub: language_pb2_grpc.LanguageRuntimeStub
    log: EngineLog
    record: Path

    def steps(self) -> list[tuple[str, str, str]]:
        if not self.record.exists():
            return []
        return [tuple(line.split("|")) for line in self.record.read_text().splitlines()]  # type: ignore[misc]


def program_info(root: Path, virtualenv: str | None = ".venv") -> language_pb2.ProgramInfo:
    options = struct_pb2.Struct()
    if virtualenv is not None:
        options.update({"toolchain": "pip", "virtualenv": virtualenv})
    return language_pb2.ProgramInfo(
        root_directory=str(root), program_directory=str(root), entry_point=".", options=options
    )


@contextlib.contextmanager
def language_host(tmp_path: Path, executor: str = "", **env: str) -> Iterator[Host]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "recording-python"
    python.write_text(RECORDING_PYTHON)
    python.chmod(0o755)
    launcher = tmp_path / "pulumi-language-python"
    launcher.write_text("the host's own path: the executor is looked up beside it\n")
    (tmp_path / "pulumi-language-python-exec").write_text(executor or "raise SystemExit(0)\n")
    record = tmp_path / "record.txt"
    with engine_log() as (sink, address):
        environment = {"PULUMI_PYTHON_CMD": str(python), "RECORD": str(record), **env}
        with plugin_process("language_host.py", str(launcher), address, env=environment) as (
            _,
            channel,
        ):
            yield Host(language_pb2_grpc.LanguageRuntimeStub(channel), sink, record)


def required_packages(host: Host, root: Path) -> Any:
    request = language_pb2.GetRequiredPackagesRequest(info=program_info(root))
    return host.stub.GetRequiredPackages(request, timeout=60)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "requirements.txt").write_text("pulumi==3.272.0\n")
    return root


@pytest.mark.parametrize("empty_folder", [False, True])
def test_a_missing_or_empty_virtualenv_is_created_and_requirements_installed(
    tmp_path: Path, project: Path, empty_folder: bool
) -> None:
    if empty_folder:
        (project / ".venv").mkdir()
    with language_host(tmp_path) as host:
        required_packages(host, project)
        venv = project / ".venv"
        assert host.steps()[:3] == [
            (f"-m venv {venv}", str(Path.cwd()), os.environ.get("VIRTUAL_ENV", "")),
            ("-m pip install --upgrade pip setuptools wheel", str(project), str(venv)),
            ("-m pip install -r requirements.txt", str(project), str(venv)),
        ]
        assert host.log.text() == [
            "Creating virtual environment...\n",
            "Finished creating virtual environment\n",
            "Updating pip, setuptools, and wheel in virtual environment...\n",
            "Finished updating\n",
            "Installing dependencies in virtual environment...\n",
            "Finished installing dependencies\n",
        ]
        assert all(m.ephemeral for m in host.log.messages)


def test_an_existing_virtualenv_is_left_alone(tmp_path: Path, project: Path) -> None:
    with language_host(tmp_path) as host:
        required_packages(host, project)
        host.record.unlink()
        required_packages(host, project)  # the engine asks again on every run
        # Only the listing of installed plugins runs, with the virtualenv's python.
        assert host.steps() == [("-c", str(Path.cwd()), str(project / ".venv"))]


def test_without_requirements_txt_only_pip_itself_is_updated(tmp_path: Path, project: Path) -> None:
    (project / "requirements.txt").unlink()
    with language_host(tmp_path) as host:
        required_packages(host, project)
        pip_steps = [step[0] for step in host.steps() if "pip" in step[0]]
        assert pip_steps == ["-m pip install --upgrade pip setuptools wheel"]


def test_a_failed_pip_install_fails_with_the_command_and_pip_s_stderr(
    tmp_path: Path, project: Path
) -> None:
    with (
        language_host(tmp_path, FAIL_PIP_REQUIREMENTS="1") as host,
        pytest.raises(grpc.RpcError) as failure,
    ):
        required_packages(host, project)
    venv_python = project / ".venv" / "bin" / "python"
    assert failure.value.details() == (
        f"installing dependencies via '{venv_python} -m pip install -r requirements.txt': "
        "exit status 1: ERROR: No matching distribution found for nothing-here"
    )


def test_a_folder_that_is_not_a_virtualenv_is_left_alone_and_then_fails(
    tmp_path: Path, project: Path
) -> None:
    (project / ".venv").mkdir()
    (project / ".venv" / "something").write_text("not a venv\n")
    venv_python = project / ".venv" / "bin" / "python"
    with language_host(tmp_path) as host:
        # EnsureVenv leaves a non-empty folder alone; listing its packages then fails.
        with pytest.raises(grpc.RpcError) as listing:
            required_packages(host, project)
        assert host.steps() == []
        # Run checks the folder first (ValidateVenv) and says how to make one.
        with pytest.raises(grpc.RpcError) as run:
            host.stub.Run(language_pb2.RunRequest(info=program_info(project)), timeout=60)
    assert listing.value.details().startswith(f"calling `{venv_python} -m pip list --format json`")
    message = run.value.details()
    assert message.startswith(
        f'The \'virtualenv\' option in Pulumi.yaml is set to ".venv", but "{project / ".venv"}" '
        "doesn't appear to be a virtual environment"
    )
    assert f"3. {venv_python} -m pip install -r requirements.txt" in message


def _run(host: Host, root: Path, **fields: Any) -> Any:
    return host.stub.Run.future(
        language_pb2.RunRequest(info=program_info(root, virtualenv=None), **fields), timeout=120
    )


@pytest.mark.parametrize(
    ("code", "reply"),
    [
        (3, {"error": "program exited with non-zero exit code: 3", "bail": False}),
        (32, {"error": "", "bail": True}),
    ],
)
def test_a_failed_program_is_reported_in_the_real_host_s_words(
    tmp_path: Path, code: int, reply: dict[str, Any]
) -> None:
    executor = f"raise SystemExit({code})\n"
    with language_host(tmp_path, executor, PULUMI_PYTHON_CMD=sys.executable) as host:
        result = _run(host, tmp_path).result(timeout=120)
    assert {"error": result.error, "bail": result.bail} == reply


SIGINT_PROGRAM = textwrap.dedent(
    """\
    import os, pathlib, signal, sys, time
    marks = pathlib.Path(os.environ["MARKS"])
    def interrupted(*_):
        marks.write_text(marks.read_text() + "SIGINT\\n")
        sys.exit(7)
    signal.signal(signal.SIGINT, interrupted if os.environ.get("OBEY") else signal.SIG_IGN)
    marks.write_text("started\\n")
    time.sleep(300)
    """
)


@pytest.mark.parametrize(("obey", "reply"), [(True, 7), (False, -1)])
def test_cancel_sends_sigint_to_the_program_and_sigkill_if_it_does_not_stop(
    tmp_path: Path, obey: bool, reply: int
) -> None:
    marks = tmp_path / "marks.txt"
    env = {"PULUMI_PYTHON_CMD": sys.executable, "MARKS": str(marks), "OBEY": "1" if obey else ""}
    with language_host(tmp_path, SIGINT_PROGRAM, **env) as host:
        running = _run(host, tmp_path)
        wait_for(lambda: marks.exists() and "started" in marks.read_text(), "the program")
        host.stub.Cancel(empty_pb2.Empty(), timeout=30)
        result = running.result(timeout=120)
    assert result.error == f"program exited with non-zero exit code: {reply}"
    assert ("SIGINT" in marks.read_text()) is obey


def test_the_executor_must_lie_beside_the_host(tmp_path: Path) -> None:
    missing = subprocess.run(
        [sys.executable, str(REPO_ROOT / "standins" / "language_host.py"), str(tmp_path / "host")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert missing.returncode == 1 and "missing executor" in missing.stderr


def test_config_reaches_the_program_as_the_real_host_passes_it(tmp_path: Path) -> None:
    out = tmp_path / "seen.json"
    executor = (
        "import json, os, pathlib\n"
        f"pathlib.Path({str(out)!r}).write_text(json.dumps("
        "[os.environ['PULUMI_CONFIG'], os.environ['PULUMI_CONFIG_SECRET_KEYS']]))\n"
    )
    with language_host(tmp_path, executor, PULUMI_PYTHON_CMD=sys.executable) as host:
        _run(host, tmp_path, config={"p:k": "v"}, configSecretKeys=["p:k"]).result(timeout=120)
    assert [json.loads(part) for part in json.loads(out.read_text())] == [{"p:k": "v"}, ["p:k"]]
