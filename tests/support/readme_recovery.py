"""The README's recovery after an interrupted `pulumi up`, read from the README itself
and run command for command, so that a test of it fails when the README changes.

The section "**After an interrupted `pulumi up`**" holds a shell block (refresh, up,
preview) and then says what to do when the first command reports a lock: run the
`pulumi cancel …` it quotes and start again.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.support.engine_harness import PulumiWorkspace

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "**After an interrupted `pulumi up`**"


@dataclass(frozen=True)
class Recovery:
    commands: tuple[tuple[str, ...], ...]  # the shell block, in order, without `pulumi`
    locked_message: str  # what the first command says when a killed run left its lock
    cancel: tuple[str, ...]  # what the README says to run then


def readme_recovery() -> Recovery:
    section = README.read_text().split(SECTION, 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            assert argv[0] == "pulumi", line
            commands.append(tuple(argv[1:]))
    prose = section.split("```", 2)[2].strip().split("\n\n", 1)[0]
    locked = re.search(r"says `([^`]+)`", prose)
    cancel = re.search(r"`pulumi (cancel[^`]*)`", prose)
    assert locked and cancel, "the README no longer says what to do about a left lock"
    return Recovery(tuple(commands), locked.group(1), tuple(shlex.split(cancel.group(1))))


def recover_as_documented(workspace: PulumiWorkspace, stack: str) -> list[str]:
    """Run the README's recovery on `stack`; returns the commands that ran."""
    recovery = readme_recovery()
    ran: list[str] = []

    def run(args: tuple[str, ...]) -> str:
        ran.append(" ".join(args))
        result = workspace.run(*args, "--stack", stack)
        if result.returncode != 0 and len(ran) == 1 and recovery.locked_message in result.output:
            return "locked"
        result.expect_success()
        return "ok"

    first, *rest = recovery.commands
    if run(first) == "locked":
        run(recovery.cancel)
        run(first)  # and start again
    for command in rest:
        run(command)
    return ran
