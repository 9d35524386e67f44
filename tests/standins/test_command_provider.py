"""The command stand-in, behaviour by behaviour against pulumi-command v1.2.1 (on
pulumi-go-provider v1.3.0): each test pins one row of standins/FIDELITY.md."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2

from standins.command_provider import go_quote
from tests.standins.plugin_process import (
    UNKNOWN,
    as_dict,
    is_alive,
    provider,
    secret,
    struct,
    wait_for,
)

TYPE = "command:local:Command"
URN = "urn:pulumi:dev::p::command:local:Command::c"
PropertyDiff = provider_pb2.PropertyDiff


@pytest.fixture
def command() -> Iterator[Any]:
    with provider("command_provider.py") as stub:
        yield stub


def create(stub: Any, inputs: dict[str, Any], *, preview: bool = False) -> dict[str, Any]:
    request = provider_pb2.CreateRequest(
        urn=URN, type=TYPE, name="c", properties=struct(inputs), preview=preview
    )
    return as_dict(stub.Create(request, timeout=60).properties)


def update(stub: Any, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
    request = provider_pb2.UpdateRequest(
        urn=URN, type=TYPE, name="c", id="c1", olds=struct(olds), news=struct(news)
    )
    return as_dict(stub.Update(request, timeout=60).properties)


def diff(stub: Any, olds: dict[str, Any], news: dict[str, Any]) -> Any:
    request = provider_pb2.DiffRequest(
        urn=URN,
        type=TYPE,
        name="c",
        id="c1",
        olds=struct(olds),
        old_inputs=struct(olds),
        news=struct(news),
    )
    return stub.Diff(request, timeout=30)


def test_a_preview_runs_nothing_and_leaves_stdout_unknown(command: Any, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    state = create(command, {"create": f"touch {marker}"}, preview=True)
    assert state["stdout"] == UNKNOWN and state["stderr"] == UNKNOWN
    assert not marker.exists()


def test_create_runs_create_through_sh_and_keeps_output_without_its_last_newline(
    command: Any,
) -> None:
    state = create(command, {"create": "echo out; echo err >&2", "environment": {"A": "1"}})
    assert state["stdout"] == "out" and state["stderr"] == "err"
    assert state["environment"] == {"A": "1"}


def test_the_command_sees_this_process_env_plus_environment(command: Any) -> None:
    state = create(
        command, {"create": 'printf "%s %s" "$HOME" "$EXTRA"', "environment": {"EXTRA": "x"}}
    )
    assert state["stdout"] == f"{os.environ['HOME']} x"


def test_update_runs_update_with_the_previous_stdout_in_the_env(command: Any) -> None:
    olds = {"create": "echo first", "update": "echo unused", "stdout": "first", "stderr": ""}
    news = {"create": "echo first", "update": 'echo "again after $PULUMI_COMMAND_STDOUT"'}
    assert update(command, olds, news)["stdout"] == "again after first"


def test_update_without_update_runs_create(command: Any) -> None:
    olds = {"create": "echo one", "stdout": "one", "stderr": ""}
    assert update(command, olds, {"create": "echo two"})["stdout"] == "two"


def test_delete_runs_the_stored_delete_with_the_stored_environment(
    command: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "deleted"
    state = {
        "delete": f'printf "%s" "$WHO" > {marker}',
        "environment": {"WHO": "stored"},
        "stdout": "",
        "stderr": "",
    }
    command.Delete(
        provider_pb2.DeleteRequest(urn=URN, type=TYPE, id="c1", properties=struct(state)),
        timeout=30,
    )
    assert marker.read_text() == "stored"


def test_a_failing_command_fails_with_go_s_exit_status_the_quoted_command_and_output(
    command: Any,
) -> None:
    script = 'echo "partial"; exit 3'
    with pytest.raises(grpc.RpcError) as failure:
        create(command, {"create": script})
    assert failure.value.code() == grpc.StatusCode.UNKNOWN
    assert failure.value.details() == f"exit status 3: running {go_quote(script)}:\npartial\n"
    assert go_quote(script) == '"echo \\"partial\\"; exit 3"'


def test_a_value_changed_only_from_plain_to_secret_is_a_change(command: Any) -> None:
    olds = {"create": "x", "environment": {"KEY": "same"}}
    news = {"create": "x", "environment": {"KEY": secret("same")}}
    reply = diff(command, olds, news)
    assert reply.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert dict(reply.detailedDiff) == {
        "environment.KEY": PropertyDiff(kind=PropertyDiff.UPDATE, inputDiff=True)
    }
    back = diff(command, news, olds)
    assert back.changes == provider_pb2.DiffResponse.DIFF_SOME


def test_equal_secrets_and_a_missing_key_against_null_are_no_change(command: Any) -> None:
    olds = {"create": "x", "environment": {"KEY": secret("v")}, "dir": None}
    news = {"create": "x", "environment": {"KEY": secret("v")}}
    assert diff(command, olds, news).changes == provider_pb2.DiffResponse.DIFF_NONE


def test_a_changed_trigger_element_is_an_update_left_to_the_sdk_s_replace_on_changes(
    command: Any,
) -> None:
    reply = diff(command, {"triggers": ["a", "b"]}, {"triggers": ["a", "c"]})
    assert dict(reply.detailedDiff) == {
        "triggers[1]": PropertyDiff(kind=PropertyDiff.UPDATE, inputDiff=True)
    }
    assert list(reply.replaces) == []
    added = diff(command, {"create": "x"}, {"create": "x", "triggers": ["a"]})
    assert dict(added.detailedDiff) == {
        "triggers": PropertyDiff(kind=PropertyDiff.ADD_REPLACE, inputDiff=True)
    }
    assert list(added.replaces) == ["triggers"]


def test_inputs_are_echoed_secret_where_they_were_and_stdout_stays_plain(command: Any) -> None:
    state = create(command, {"create": "echo hi", "environment": {"KEY": secret("s")}})
    assert state["environment"] == {"KEY": secret("s")}
    assert state["stdout"] == "hi"


def _start_create(command: Any, script: str) -> Any:
    request = provider_pb2.CreateRequest(
        urn=URN, type=TYPE, name="c", properties=struct({"create": script})
    )
    return command.Create.future(request, timeout=120)


def test_cancel_sigkills_the_running_command_and_fails_its_create(
    command: Any, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    # `exec` makes the command itself the process the provider started.
    script = f"echo $$ > {pid_file}; exec sleep 300"
    running = _start_create(command, script)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", "the command")
    command.Cancel(empty_pb2.Empty(), timeout=30)
    with pytest.raises(grpc.RpcError) as failure:
        running.result(timeout=60)
    assert failure.value.details() == f"signal: killed: running {go_quote(script)}:\n"
    assert not is_alive(int(pid_file.read_text()))


def test_cancel_kills_only_the_started_process_not_what_it_started(
    command: Any, tmp_path: Path
) -> None:
    child_pid = tmp_path / "child.pid"
    script = f"sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {child_pid}; exec sleep 300"
    running = _start_create(command, script)
    wait_for(lambda: child_pid.exists() and child_pid.read_text().strip() != "", "the child")
    orphan = int(child_pid.read_text())
    try:
        command.Cancel(empty_pb2.Empty(), timeout=30)
        with pytest.raises(grpc.RpcError) as failure:
            running.result(timeout=60)
        assert failure.value.details().startswith("signal: killed: running ")
        assert is_alive(orphan), "os/exec's default Cancel signals the process, not its group"
    finally:
        os.kill(orphan, signal.SIGKILL)


def test_after_cancel_every_new_operation_fails_with_context_canceled(
    command: Any, tmp_path: Path
) -> None:
    command.Cancel(empty_pb2.Empty(), timeout=30)
    marker = tmp_path / "ran"
    script = f"touch {marker}"
    with pytest.raises(grpc.RpcError) as failure:
        create(command, {"create": script})
    assert failure.value.details() == f"context canceled: running {go_quote(script)}:\n"
    assert not marker.exists()


def test_refresh_returns_the_state_unchanged(command: Any) -> None:
    state = {"create": "echo hi", "stdout": "hi", "stderr": "", "environment": {"A": secret("s")}}
    reply = command.Read(
        provider_pb2.ReadRequest(urn=URN, type=TYPE, id="c1", properties=struct(state)),
        timeout=30,
    )
    assert reply.id == "c1" and as_dict(reply.properties) == state
