"""How dstack hands a decrypted env value to the container (driver/dstack_env.py).

The escape vectors are dstack-util's own unit test (parse_env_file.rs
``test_escape_value``); the parser vectors follow systemd's env-file.c. The Node
check runs the same ``createPrivateKey`` call mux-server makes on start.
"""

from __future__ import annotations

import json
import random
import shutil
import string
import subprocess

import pytest

from components.derivation import mux_jwt_private_key_pem
from driver.dstack_env import (
    delivered_env,
    delivery_problem,
    dstack_env_line,
    systemd_environment_file,
)

PEM = mux_jwt_private_key_pem("a-mux-master-key-for-the-dstack-env-tests-0123456789")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("simple", "simple"),
        ("hello world", '"hello world"'),
        ('say "hello"', '"say \\"hello\\""'),
        ("line1\nline2", '"line1\\nline2"'),
        ("price=$100", '"price=\\$100"'),
        ("command=`date`", '"command=\\`date\\`"'),
    ],
)
def test_env_line_matches_dstacks_own_escape_vectors(value: str, written: str) -> None:
    assert dstack_env_line("KEY", value) == f"KEY={written}\n"


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('A="x\\ny"\n', "x\\ny"),  # backslash-n is not an escape for systemd
        ('A="a\\"b\\\\c\\$d\\`e"\n', 'a"b\\c$d`e'),
        ('A="two\nlines"\n', "two\nlines"),  # a real line feed inside quotes stays
        ("A='single \\n quoted'\n", "single \\n quoted"),
        ("A=unquoted  \n", "unquoted"),  # trailing blanks are chomped
        ("A=cut\rhere\n", "cut"),  # a carriage return ends an unquoted value
        ("A=\n", ""),
    ],
)
def test_systemd_parser_reads_values_like_env_file_c(line: str, value: str) -> None:
    assert systemd_environment_file(f"# comment\n{line}B=next\n") == {"A": value, "B": "next"}


def test_a_multiline_pem_reaches_the_container_with_literal_backslash_n() -> None:
    assert PEM.count("\n") >= 3
    delivered = delivered_env({"MUX_JWT_PRIVATE_KEY": PEM})["MUX_JWT_PRIVATE_KEY"]

    assert "\n" not in delivered
    assert delivered == PEM.replace("\n", "\\n")
    assert "line break" in (delivery_problem(PEM) or "")


def test_values_without_line_breaks_or_backslashes_arrive_intact() -> None:
    # Every printable ASCII character but the backslash, in random order and length.
    alphabet = string.printable.replace("\\", "").replace("\n", "").replace("\r", "")
    alphabet = alphabet.replace("\x0b", "").replace("\x0c", "")
    rng = random.Random(14)
    values = ["".join(rng.choices(alphabet, k=rng.randint(0, 80))) for _ in range(300)]
    env = {f"V{i}": value for i, value in enumerate(values)}

    assert delivered_env(env) == env
    assert all(delivery_problem(value) is None for value in values)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\rb", "carriage return"),
        ("C:\\\\share", "backslash"),
        ("ends in a backslash\\", "backslash"),
    ],
)
def test_other_values_dstack_would_alter_are_named(value: str, reason: str) -> None:
    assert delivered_env({"V": value})["V"] != value
    assert reason in (delivery_problem(value) or "")


# The mux's own start-up call: createPrivateKey(process.env.MUX_JWT_PRIVATE_KEY.trim()).
NODE_READS_KEY = """
const { createPrivateKey } = require("node:crypto");
const results = JSON.parse(require("node:fs").readFileSync(0, "utf8")).map((pem) => {
  try { createPrivateKey(pem.trim()); return "ok"; } catch (error) { return error.code || "error"; }
});
process.stdout.write(JSON.stringify(results));
"""


def test_the_mux_cannot_read_the_pem_dstack_delivers_nor_any_single_line_form() -> None:
    node = shutil.which("node")
    if node is None:  # scripts/test installs Node (npm ci), so this runs under CI
        pytest.fail("`node` is not on PATH; the mux's key check needs it")
    delivered = delivered_env({"MUX_JWT_PRIVATE_KEY": PEM})["MUX_JWT_PRIVATE_KEY"]
    # Forms a value without line feeds could take; none of them is a PEM to Node.
    single_line = [PEM.replace("\n", separator) for separator in ("", " ", "\t", "\r")]
    proc = subprocess.run(
        [node, "-e", NODE_READS_KEY],
        input=json.dumps([PEM, delivered, *single_line]),  # stdin: never a key in argv
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr[-2000:]
    original, after_dstack, *others = json.loads(proc.stdout)
    assert original == "ok"
    assert after_dstack != "ok"
    assert "ok" not in others
