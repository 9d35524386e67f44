"""A hostile-config run: stack files and malformed `plan` / `ops` invocations, each judged.

    .venv/bin/python -m tools.hostile_run            # the table per case, then per class

Each case says what must happen: refused (exit 1 for the plan, 2 for ops) with a message
naming its key (or option, or file), or accepted (exit 0). A case fails if it meets a
catch-all ("unexpected ..."), a traceback, a wrong verdict, or a refusal that does not
name its key. tests/tools/test_hostile_run.py runs every case the same way. Stack files
go through the offline plan, which runs the program's own settings check; the program's
answers under the real engine are pinned by the engine tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMAGE = "h4x3rotab/openclaw-cvm@sha256:" + "a" * 64
MUX_IMAGE = "h4x3rotab/openclaw-mux@sha256:" + "b" * 64
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINhi0jlwRMlyDk84dxJhT4aEg5cS8yzB42YoIMM/tp/A t@ci"
SECRET = "{secure: v1:AAAA:BBBB}"  # noqa: S105 - a stand-in ciphertext, no secret
NS = "openclaw-phala"


def stack(*lines: str, tenants: str | None = None, secrets: str | None = None) -> str:
    """A valid stack file (one local tenant, its secret), with extra config lines."""
    tenant_block = tenants if tenants is not None else "    - {name: alice-agent, storage: local}"
    secret_block = secrets if secrets is not None else f"    alice-agent: {{masterKey: {SECRET}}}"
    return "\n".join(
        [
            "config:",
            f"  {NS}:openclawImage: {IMAGE}",
            f"  {NS}:phalaSshPublicKey: {SSH_KEY}",
            f"  {NS}:redpillApiKey: {SECRET}",
            f"  {NS}:tenants:",
            tenant_block,
            f"  {NS}:tenantSecrets:",
            secret_block,
            *[f"  {line}" for line in lines],
            "",
        ]
    )


def with_mux(*lines: str) -> str:
    return stack(
        f"{NS}:muxName: shared-mux",
        f"{NS}:muxImage: {MUX_IMAGE}",
        f"{NS}:muxChannels: [telegram]",
        f"{NS}:muxMasterKey: {SECRET}",
        f"{NS}:muxTelegramBotToken: {SECRET}",
        *lines,
    )


def _rsa_key(bits: int) -> str:
    """An OpenSSH ssh-rsa line with a modulus of `bits` bits (e = 65537)."""
    import base64

    def field(data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + data

    modulus = (1 << (bits - 1)) | 1
    blob = field(b"ssh-rsa") + field((65537).to_bytes(3, "big"))
    blob += field(b"\x00" + modulus.to_bytes(bits // 8, "big"))
    return f"ssh-rsa {base64.b64encode(blob).decode()} rsa@ci"


def nested(depth: int) -> str:
    return "[" * depth + "x" + "]" * depth


@dataclass(frozen=True)
class Case:
    kind: str  # the class of hostile input
    name: str
    names: str | None  # what the refusal must name; None: the case must be accepted
    stack_file: str | None = None  # planned with `plan show`
    plan_args: tuple[str, ...] | None = None  # or a plan invocation
    ops_args: tuple[str, ...] | None = None  # or an ops invocation
    setup: Callable[[Path], None] | None = None  # files an invocation reads
    refused_exit: int | None = None  # default: 1 for the plan, 2 for ops (usage errors)
    stand_in: bool = True  # plan with --stand-in-missing-secrets (the file holds few secrets)


def _write(name: str, text: str, mode: int = 0o600) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        path = folder / name
        path.write_text(text)
        path.chmod(mode)

    return setup


def _outputs(field: str, value: str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        from tests.ops.outputs_document import make_outputs

        document = make_outputs()
        document["tenants"]["alice"][field] = value
        (folder / "outputs.json").write_text(json.dumps(document))

    return setup


CASES: tuple[Case, ...] = (
    # --- namespaces: our keys anywhere but under our namespace
    Case("namespace", "openclaw:tenants", "openclaw:tenants", stack("openclaw:tenants: []")),
    Case("namespace", "phala:muxName", "phala:muxName", stack("phala:muxName: shared-mux")),
    Case("namespace", "empty-namespace", ":tenants", stack("':tenants': []")),
    Case("namespace", "empty-namespace-typo", ":phalaRegoin", stack("':phalaRegoin': x")),
    Case("namespace", "underscore", "openclaw_phala:muxName", stack("openclaw_phala:muxName: m")),
    Case("namespace", "case", "OpenClaw-Phala:muxName", stack("OpenClaw-Phala:muxName: m")),
    Case("namespace", "another-org", "mycorp:phalaRegion", stack("mycorp:phalaRegion: EU-1")),
    Case("namespace", "provider-reads-it", None, stack("cloudflare:tenants: x")),
    Case("namespace", "foreign-key-left-alone", None, stack("aws:region: us-east-1")),
    Case("namespace", "bare-key-is-ours", None, stack("phalaRegion: EU-1")),
    Case("namespace", "old-config-form", None, stack(f"{NS}:config:phalaRegion: EU-1")),
    Case("namespace", "unknown-key-ours", f"{NS}:muxNmae", stack(f"{NS}:muxNmae: m")),
    # --- structure stored as a secret
    Case(
        "structure",
        "mux-name",
        f"{NS}:muxName",
        with_mux().replace(f"{NS}:muxName: shared-mux", f"{NS}:muxName: {SECRET}"),
    ),
    Case(
        "structure",
        "tenant-name",
        f"{NS}:tenants[0].name",
        stack(tenants=f"    - {{name: {SECRET}, storage: local}}"),
    ),
    Case(
        "structure",
        "tenant-storage",
        f"{NS}:tenants[0].storage",
        stack(tenants=f"    - {{name: alice-agent, storage: {SECRET}}}"),
    ),
    Case(
        "structure",
        "tenant-cvm-id",
        f"{NS}:tenants[0].cvmId",
        stack(tenants=f"    - {{name: alice-agent, storage: local, cvmId: {SECRET}}}"),
    ),
    Case("structure", "region", f"{NS}:phalaRegion", stack(f"{NS}:phalaRegion: {SECRET}")),
    Case(
        "structure",
        "instance-type",
        f"{NS}:phalaInstanceType",
        stack(f"{NS}:phalaInstanceType: {SECRET}"),
    ),
    Case("structure", "mux-cvm-id", f"{NS}:muxCvmId", with_mux(f"{NS}:muxCvmId: {SECRET}")),
    Case(
        "structure",
        "ssh-key",
        f"{NS}:phalaSshPublicKey",
        stack().replace(f"{NS}:phalaSshPublicKey: {SSH_KEY}", f"{NS}:phalaSshPublicKey: {SECRET}"),
    ),
    Case("structure", "disk-size", "phalaDiskSizeGb", stack(f"{NS}:phalaDiskSizeGb: {SECRET}")),
    # --- mux settings without a mux
    Case(
        "mux-without-name",
        "channels",
        f"{NS}:muxChannels",
        stack(f"{NS}:muxChannels: [carrier-pigeon]"),
    ),
    Case(
        "mux-without-name",
        "instance-type",
        f"{NS}:muxInstanceType",
        stack(f"{NS}:muxInstanceType: 'not a type'"),
    ),
    Case("mux-without-name", "cvm-id", f"{NS}:muxCvmId", stack(f"{NS}:muxCvmId: nope")),
    Case(
        "mux-without-name",
        "bot-username",
        f"{NS}:muxTelegramBotUsername",
        stack(f"{NS}:muxTelegramBotUsername: my_bot"),
    ),
    Case("mux-without-name", "image", f"{NS}:muxImage", stack(f"{NS}:muxImage: {MUX_IMAGE}")),
    Case("mux-without-name", "secret", f"{NS}:muxMasterKey", stack(f"{NS}:muxMasterKey: {SECRET}")),
    Case("mux-without-name", "leftover-opt-in-warned", None, stack(f"{NS}:muxAllowDataLoss: true")),
    Case(
        "mux-without-name",
        "with-mux-stack",
        f"{NS}:muxChannels",
        stack(f"{NS}:muxStack: org/openclaw-phala/mux", f"{NS}:muxChannels: [telegram]"),
    ),
    # --- weak values, each with its limit
    Case(
        "weak-value",
        "region-100k",
        f"{NS}:phalaRegion",
        stack(f"{NS}:phalaRegion: {'A' * 100_000}"),
    ),
    Case(
        "weak-value",
        "os-image-100k",
        f"{NS}:phalaOsImage",
        stack(f"{NS}:phalaOsImage: {'d' * 100_000}"),
    ),
    Case(
        "weak-value",
        "ssh-key-x",
        f"{NS}:phalaSshPublicKey",
        stack().replace(SSH_KEY, "'ssh-ed25519 x'"),
    ),
    Case(
        "weak-value",
        "ssh-key-short-blob",
        f"{NS}:phalaSshPublicKey",
        stack().replace(
            SSH_KEY, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvcGVuY2xhdy1waGFsYS1leGFtcGxlLWtleS0x"
        ),
    ),
    Case(
        "weak-value",
        "ssh-key-wrong-type",
        f"{NS}:phalaSshPublicKey",
        stack().replace("ssh-ed25519 AAAA", "ssh-rsa AAAA"),
    ),
    Case(
        "weak-value",
        "ssh-key-two-lines",
        f"{NS}:phalaSshPublicKey",
        stack().replace(
            f"{NS}:phalaSshPublicKey: {SSH_KEY}", f'{NS}:phalaSshPublicKey: "{SSH_KEY}\\n{SSH_KEY}"'
        ),
    ),
    Case(
        "weak-value",
        "secure-empty",
        f"{NS}:redpillApiKey",
        stack().replace(f"{NS}:redpillApiKey: {SECRET}", f"{NS}:redpillApiKey: {{secure: ''}}"),
    ),
    Case(
        "weak-value",
        "secure-empty-leaf",
        f"{NS}:tenantSecrets.alice-agent.masterKey",
        stack(secrets="    alice-agent: {masterKey: {secure: ''}}"),
    ),
    Case(
        "weak-value", "disk-too-small", f"{NS}:phalaDiskSizeGb", stack(f"{NS}:phalaDiskSizeGb: 5")
    ),
    Case(
        "weak-value", "disk-too-big", f"{NS}:phalaDiskSizeGb", stack(f"{NS}:phalaDiskSizeGb: 4096")
    ),
    Case(
        "weak-value",
        "timeout",
        f"{NS}:phalaWaitTimeoutSeconds",
        stack(f"{NS}:phalaWaitTimeoutSeconds: 10"),
    ),
    Case(
        "weak-value",
        "wave-101",
        f"{NS}:tenants[0].rolloutWave",
        stack(tenants="    - {name: alice-agent, storage: local, rolloutWave: 101}"),
    ),
    Case(
        "weak-value",
        "prefix-trailing-slash",
        f"{NS}:tenants[0].s3Prefix",
        stack(
            f"{NS}:cloudflareAccountId: {'0' * 32}",
            tenants="    - {name: alice-agent, s3Prefix: data/}",
        ),
    ),
    Case(
        "weak-value",
        "prefix-300",
        f"{NS}:tenants[0].s3Prefix",
        stack(
            f"{NS}:cloudflareAccountId: {'0' * 32}",
            tenants=f"    - {{name: alice-agent, s3Prefix: {'p' * 300}}}",
        ),
    ),
    Case(
        "weak-value",
        "image-name-300",
        f"{NS}:openclawImage",
        stack().replace(IMAGE, "a/" * 150 + "b@sha256:" + "a" * 64),
    ),
    Case(
        "weak-value",
        "bucket-64",
        f"{NS}:tenants[0].bucket",
        stack(
            f"{NS}:cloudflareAccountId: {'0' * 32}",
            tenants=f"    - {{name: alice-agent, bucket: {'b' * 64}}}",
        ),
    ),
    Case(
        "weak-value",
        "tenant-name-4",
        f"{NS}:tenants[0].name",
        stack(
            tenants="    - {name: abcd, storage: local}",
            secrets="    abcd: {masterKey: " + SECRET + "}",
        ),
    ),
    Case("weak-value", "kms", f"{NS}:phalaKms", stack(f"{NS}:phalaKms: ethereum")),
    Case(
        "weak-value",
        "account-id",
        f"{NS}:cloudflareAccountId",
        stack(f"{NS}:cloudflareAccountId: xyz"),
    ),
    Case("weak-value", "mux-stack-traversal", f"{NS}:muxStack", stack(f"{NS}:muxStack: ../../x")),
    Case(
        "weak-value",
        "1001-tenants",
        f"{NS}:tenants",
        stack(
            tenants="\n".join(f"    - {{name: t-{i:04d}-agent}}" for i in range(1001)),
            secrets="    {}",
        ),
    ),
    # --- one pass: a tenant's own error hides nothing else
    Case(
        "one-pass",
        "bad-field-and-duplicate",
        f"{NS}:tenants[1].name",
        stack(
            tenants="    - {name: alice-agent, storage: local}\n"
            "    - {name: Alice-Agent, storage: tape}"
        ),
    ),
    Case(
        "one-pass",
        "bad-field-and-missing-secret",
        f"{NS}:tenantSecrets.bob-agent.masterKey",
        stack(
            tenants="    - {name: alice-agent, storage: local}\n"
            "    - {name: bob-agent, storage: tape}"
        ),
        stand_in=False,
    ),
    Case(
        "one-pass",
        "missing-secrets-hint",
        "--stand-in-missing-secrets",
        f"config:\n  {NS}:openclawImage: {IMAGE}\n  {NS}:phalaSshPublicKey: {SSH_KEY}\n"
        f"  {NS}:tenants: [{{name: alice-agent, storage: local}}]\n",
        stand_in=False,
    ),
    Case(
        "one-pass",
        "orphan-secret",
        f"{NS}:tenantSecrets.carol-agent",
        stack(
            secrets=f"    alice-agent: {{masterKey: {SECRET}}}\n"
            f"    carol-agent: {{masterKey: {SECRET}}}"
        ),
    ),
    Case(
        "one-pass",
        "plaintext-secret-leaf",
        f"{NS}:tenantSecrets.alice-agent.redpillApiKey",
        stack(secrets=f"    alice-agent: {{masterKey: {SECRET}, redpillApiKey: plain}}"),
    ),
    # --- a stack file that sets nothing
    Case("empty", "empty-file", "Pulumi.hostile.yaml", ""),
    Case("empty", "comments-only", "Pulumi.hostile.yaml", "# nothing\n"),
    Case("empty", "config-null", "Pulumi.hostile.yaml", "config: null\n"),
    Case("empty", "config-empty-map", "Pulumi.hostile.yaml", "config: {}\n"),
    Case(
        "empty",
        "only-defaults",
        "sets no openclaw-phala config",
        f"config:\n  {NS}:phalaKms: phala\n",
    ),
    # --- nesting, at every depth
    *[
        Case(
            "nesting",
            f"depth-{depth}",
            f"{NS}:tenantSecret",
            stack(f"{NS}:tenantSecret: {nested(depth)}"),
        )
        for depth in (50, 100, 101, 333, 500, 700, 900, 1000, 5000, 10001)
    ],
    *[
        Case("nesting", f"foreign-depth-{depth}", "aws:tags", stack(f"aws:tags: {nested(depth)}"))
        for depth in (101, 900, 5000)
    ],
    # --- integers as Pulumi reads them
    Case("integer", "plus-40", None, stack(f"{NS}:phalaDiskSizeGb: '+40'")),
    Case("integer", "quoted-040", None, stack(f"{NS}:phalaDiskSizeGb: '040'")),
    Case("integer", "octal-yaml-040", None, stack(f"{NS}:phalaDiskSizeGb: 040")),
    Case("integer", "hex-quoted", "phalaDiskSizeGb", stack(f"{NS}:phalaDiskSizeGb: '0x40'")),
    Case("integer", "space", "phalaDiskSizeGb", stack(f"{NS}:phalaDiskSizeGb: ' 40'")),
    Case("integer", "underscore-quoted", "phalaDiskSizeGb", stack(f"{NS}:phalaDiskSizeGb: '4_0'")),
    Case("integer", "float", "phalaDiskSizeGb", stack(f"{NS}:phalaDiskSizeGb: 40.5")),
    # --- tricky but valid
    Case("valid", "plain", None, stack()),
    Case("valid", "with-mux", None, with_mux()),
    Case("valid", "byte-order-mark", None, "\ufeff" + stack()),
    Case("valid", "region-yes", None, stack(f"{NS}:phalaRegion: yes")),
    Case(
        "valid",
        "dev-os-off-no-key",
        None,
        stack(f"{NS}:phalaDevOs: false").replace(f"  {NS}:phalaSshPublicKey: {SSH_KEY}\n", ""),
    ),
    Case(
        "valid",
        "uppercase-uuid-cvm-id",
        None,
        stack(
            tenants="    - {name: alice-agent, storage: local, "
            "cvmId: 0B9E6A52-3C1D-4F8E-9A7B-2D4C6E8F0A1B}"
        ),
    ),
    Case("valid", "opt-in-listed", None, stack(f"{NS}:allowTenantRemoval: [old-agent]")),
    Case("valid", "rsa-2048", None, stack().replace(SSH_KEY, _rsa_key(2048))),
    Case(
        "weak-value", "rsa-512", f"{NS}:phalaSshPublicKey", stack().replace(SSH_KEY, _rsa_key(512))
    ),
    # --- malformed plan invocations
    Case("plan-cli", "stack-traversal", "--stack", plan_args=("show", "--stack", "../../etc/x")),
    Case("plan-cli", "stack-four-parts", "--stack", plan_args=("show", "--stack", "a/b/c/d")),
    Case(
        "plan-cli",
        "stack-other-project",
        "--stack",
        plan_args=("show", "--stack", "org/other/prod"),
    ),
    Case("plan-cli", "stack-missing", "Pulumi.nope.yaml", plan_args=("show", "--stack", "nope")),
    Case(
        "plan-cli",
        "full-stack-name",
        None,
        plan_args=("show", "--stack", "organization/openclaw-phala/hostile"),
    ),
    Case(
        "plan-cli",
        "diff-unknown-ref",
        "no-such-ref",
        plan_args=("diff", "no-such-ref", "HEAD", "--stack", "hostile"),
    ),
    Case(
        "plan-cli",
        "diff-option-as-ref",
        "--output",
        plan_args=("diff", "--output=x", "HEAD"),
        refused_exit=2,
    ),
    Case("plan-cli", "unknown-option", "--bogus", plan_args=("show", "--bogus"), refused_exit=2),
    Case("plan-cli", "no-command", "command", plan_args=(), refused_exit=2),
    # --- malformed ops invocations
    Case("ops-cli", "outputs-dev-zero", "/dev/zero", ops_args=("status", "--outputs", "/dev/zero")),
    Case("ops-cli", "outputs-folder", "outputs", ops_args=("status", "--outputs", "{dir}")),
    Case(
        "ops-cli",
        "outputs-missing",
        "nope.json",
        ops_args=("status", "--outputs", "{dir}/nope.json"),
    ),
    Case(
        "ops-cli",
        "outputs-not-json",
        "is not valid JSON",
        ops_args=("status", "--outputs", "{dir}/bad.json"),
        setup=_write("bad.json", "{"),
    ),
    Case(
        "ops-cli",
        "cvm-id-help",
        "tenants.alice.cvmId",
        ops_args=("logs", "alice", "--outputs", "{dir}/outputs.json"),
        setup=_outputs("cvmId", "--help"),
    ),
    Case(
        "ops-cli",
        "ssh-host-shell",
        "tenants.alice.sshHost",
        ops_args=("ssh", "alice", "--outputs", "{dir}/outputs.json"),
        setup=_outputs("sshHost", "x;touch /tmp/pwned"),
    ),
    Case(
        "ops-cli",
        "ssh-host-option",
        "tenants.alice.sshHost",
        ops_args=("exec", "alice", "--outputs", "{dir}/outputs.json", "--", "true"),
        setup=_outputs("sshHost", "-oProxyCommand=sh"),
    ),
    Case(
        "ops-cli",
        "key-file-0640",
        "master key file",
        ops_args=(
            "backup",
            "pull",
            "alice",
            "{dir}/restore",
            "--master-key-file",
            "{dir}/key",
            "--outputs",
            "{dir}/outputs.json",
        ),
        setup=_write("key", "k" * 44, 0o640),
    ),
    Case(
        "ops-cli",
        "key-file-dev-zero",
        "master key file",
        ops_args=(
            "backup",
            "pull",
            "alice",
            "{dir}/restore",
            "--master-key-file",
            "/dev/zero",
            "--outputs",
            "{dir}/outputs.json",
        ),
    ),
    Case(
        "ops-cli",
        "ttl-huge",
        "--ttl-sec",
        ops_args=("pair", "alice", "telegram", "--ttl-sec", "99999999999999999999"),
    ),
    Case("ops-cli", "channel-unknown", "channel", ops_args=("pair", "alice", "pigeon")),
    Case("ops-cli", "tail-negative", "--tail", ops_args=("logs", "alice", "--tail", "-1")),
    Case(
        "ops-cli",
        "container-option",
        "--container",
        ops_args=("logs", "alice", "--container=--help", "--outputs", "{dir}/outputs.json"),
        setup=_outputs("name", "alice"),
    ),
    Case(
        "ops-cli",
        "timeout-nan",
        "--timeout",
        ops_args=("pair", "alice", "telegram", "--timeout", "nan"),
    ),
)


@dataclass(frozen=True)
class Verdict:
    case: Case
    status: int
    message: str  # stderr
    passed: bool
    why: str  # what failed, or "ok"


@contextlib.contextmanager
def _project() -> Iterator[Path]:
    """A project folder with Pulumi.yaml, the plan's REPO_ROOT pointed at it."""
    import plan.__main__ as plan_cli
    import plan.evaluate as plan_evaluate

    with tempfile.TemporaryDirectory(prefix="openclaw-hostile-") as scratch:
        folder = Path(scratch)
        shutil.copy2(REPO / "Pulumi.yaml", folder / "Pulumi.yaml")
        saved = plan_cli.REPO_ROOT, plan_evaluate.REPO_ROOT
        plan_cli.REPO_ROOT = plan_evaluate.REPO_ROOT = folder
        try:
            yield folder
        finally:
            plan_cli.REPO_ROOT, plan_evaluate.REPO_ROOT = saved


def _run_plan(args: list[str]) -> tuple[int, str]:
    import plan.__main__ as plan_cli

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            status = plan_cli.main(args)
        except SystemExit as exit_:  # argparse's own usage errors
            status = int(exit_.code or 0)
    return status, err.getvalue()


def _run_ops(args: list[str]) -> tuple[int, str]:
    from ops.__main__ import main as ops_main

    err, out = io.StringIO(), io.StringIO()
    environment = {"PHALA_CLOUD_API_KEY": "hostile-run-key", "OPENCLAW_MASTER_KEY": ""}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        status = ops_main(args, stdout=out, stderr=err)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return status, err.getvalue()


def judge(case: Case) -> Verdict:
    with _project() as folder:
        if case.setup is not None:
            case.setup(folder)
        if case.ops_args is not None:
            status, message = _run_ops([arg.replace("{dir}", str(folder)) for arg in case.ops_args])
            refused_status = 2
        else:
            text = case.stack_file if case.stack_file is not None else stack()
            (folder / "Pulumi.hostile.yaml").write_text(text)
            default = ("show", "--stack", "hostile")
            args = list(case.plan_args if case.plan_args is not None else default)
            if case.stand_in and args[:1] == ["show"] and "--bogus" not in args:
                args.append("--stand-in-missing-secrets")
            status, message = _run_plan(args)
            refused_status = 1
    if case.refused_exit is not None:
        refused_status = case.refused_exit
    if "unexpected" in message or "Traceback" in message:
        return Verdict(case, status, message, False, "catch-all or traceback")
    if case.names is None:
        ok = status == 0
        return Verdict(case, status, message, ok, "ok" if ok else "wrongly refused")
    if status == 0:
        return Verdict(case, status, message, False, "wrongly accepted")
    if status != refused_status:
        return Verdict(case, status, message, False, f"exit {status}, not {refused_status}")
    if case.names not in message:
        return Verdict(case, status, message, False, f"message does not name {case.names!r}")
    return Verdict(case, status, message, True, "ok")


def first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith("plan: stack ") or ":" in line]
    text = (meaningful or lines or ["(no message)"])[-1 if len(lines) > 1 else 0]
    return text if len(text) <= 110 else text[:107] + "..."


def main() -> int:
    verdicts = [judge(case) for case in CASES]
    print("| class | case | expected | exit | verdict | message (last line) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for v in verdicts:
        expected = "accepted" if v.case.names is None else f"refused naming `{v.case.names[:40]}`"
        shown = first_line(v.message).replace("|", "\\|")
        print(f"| {v.case.kind} | {v.case.name} | {expected} | {v.status} | {v.why} | {shown} |")
    print()
    print("| class | cases | refused naming the key | accepted as expected | failed |")
    print("| --- | --- | --- | --- | --- |")
    for kind in dict.fromkeys(case.kind for case in CASES):
        mine = [v for v in verdicts if v.case.kind == kind]
        refused = sum(v.passed and v.case.names is not None for v in mine)
        accepted = sum(v.passed and v.case.names is None for v in mine)
        failed = sum(not v.passed for v in mine)
        print(f"| {kind} | {len(mine)} | {refused} | {accepted} | {failed} |")
    failures = [v for v in verdicts if not v.passed]
    catch_alls = sum(v.why == "catch-all or traceback" for v in failures)
    wrongly = sum(v.why == "wrongly accepted" for v in failures)
    unnamed = sum(v.why.startswith("message does not name") for v in failures)
    print(
        f"\n{len(verdicts)} cases: {len(verdicts) - len(failures)} as expected, "
        f"{catch_alls} catch-alls, {wrongly} wrongly accepted, {unnamed} not naming their key, "
        f"{len(failures) - catch_alls - wrongly - unnamed} other failures"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
