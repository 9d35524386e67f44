"""Where a rehearsal's base comes from: by default the stack file and the program at git's
HEAD (the stack as it runs today), another ref, a stack file, or nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandbox.engine import REPO_ROOT
from sandbox.lifecycle import SandboxError
from sandbox.rehearse import choose_base, export_tree
from sandbox.stack_files import StackFileError


def test_by_default_the_base_is_the_stack_file_and_program_at_head() -> None:
    base = choose_base(
        "prod", REPO_ROOT / "Pulumi.prod.yaml", ref=None, base_file=None, from_empty=False
    )
    assert (base.kind, base.ref) == ("ref", "HEAD")
    assert base.document is not None
    assert "openclaw-phala:tenants" in base.document["config"]
    assert "at git HEAD" in base.label


def test_a_stack_git_does_not_hold_starts_from_nothing_unless_a_ref_was_named() -> None:
    change = REPO_ROOT / "Pulumi.nowhere.yaml"
    base = choose_base("nowhere", change, ref=None, base_file=None, from_empty=False)
    assert base.kind == "empty" and "HEAD has no Pulumi.nowhere.yaml" in base.label
    with pytest.raises(
        StackFileError, match=re.escape("git ref 'HEAD' has no Pulumi.nowhere.yaml")
    ):
        choose_base("nowhere", change, ref="HEAD", base_file=None, from_empty=False)
    assert choose_base("prod", change, ref=None, base_file=None, from_empty=True).kind == "empty"


def test_a_base_file_is_read_as_a_stack_file(tmp_path: Path) -> None:
    given = tmp_path / "Pulumi.prod.yaml"
    given.write_text("config:\n  openclaw-phala:muxName: mux\n")
    base = choose_base("org/prod", given, ref=None, base_file=given, from_empty=False)
    assert base.kind == "file" and base.document == {"config": {"openclaw-phala:muxName": "mux"}}


def test_a_refs_tree_is_exported_with_this_checkouts_installs(tmp_path: Path) -> None:
    tree = export_tree("HEAD", tmp_path / "tree")
    assert (tree / "Pulumi.yaml").is_file() and (tree / "__main__.py").is_file()
    assert (tree / "driver" / "phala_cvm.py").is_file()
    for installed in (".venv", "node_modules"):
        if (REPO_ROOT / installed).exists():
            assert (tree / installed).resolve() == (REPO_ROOT / installed).resolve()
    with pytest.raises(SandboxError, match="cannot read git ref"):
        export_tree("no-such-ref-anywhere", tmp_path / "other")
