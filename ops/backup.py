"""A tenant's S3 state, pulled to a local folder and restored from one.

`pull` is the disaster-recovery drill: download and decrypt one tenant's state.
Only the MASTER_KEY and the stack outputs are needed: the crypt password and
salt are derived from the key exactly as the CVM derives them at boot, so a
successful pull proves the key and the bucket are enough to rebuild the tenant.

`restore` encrypts a pulled folder back into the tenant's *current* bucket, the
way its CVM writes: how a tenant's state follows it to a new bucket or
jurisdiction (components/data_guards.py refuses the move until asked, and names
these two steps).

Nothing is written to the destination unless the whole pull succeeded: files
land in a private staging folder next to it and are renamed into place at the
end. A wrong master key is caught before downloading anything: with the wrong
key rclone cannot decrypt a single object name, and by default it would just
skip them all and report success with an empty folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

from ops import ConfigError, OperationError, read_utf8_file
from ops.rclone import (
    BASE_REMOTE,
    CRYPT_REMOTE,
    CryptPasswords,
    Rclone,
    S3Credentials,
    S3Location,
    crypt_remote_environment,
    locate_rclone,
    private_rclone_home,
)
from ops.stack_outputs import TenantOutputs, TenantSecrets

MASTER_KEY_ENV: Final = "OPENCLAW_MASTER_KEY"
# Listing a large bucket can take a while; a copy gets no overall limit.
LISTING_TIMEOUT_SEC: Final = 600
# What rclone's crypt backend prints when a name does not decrypt (wrong key)
# and when a data block fails its Poly1305 check.
_UNDECRYPTABLE_NAME_MARKERS: Final = ("undecryptable file name", "undecryptable dir name")
_CONTENT_AUTHENTICATION_MARKER: Final = "failed to authenticate decrypted block"


class BackupError(OperationError):
    """The pull failed; nothing was written to the destination."""


@dataclass(frozen=True)
class PullResult:
    tenant: str
    source: str
    destination: Path
    file_count: int
    total_bytes: int


Progress = Callable[[str], None]
# A MASTER_KEY is at most 4096 characters (components/config_keys.py MAX_SECRET_LENGTH),
# 4 bytes each in UTF-8 at worst, plus a line break.
MAX_MASTER_KEY_FILE_BYTES = 4 * 4096 + 2


def read_master_key(master_key_file: Path | None, environ: Mapping[str, str]) -> str:
    """The tenant MASTER_KEY from --master-key-file, else $OPENCLAW_MASTER_KEY.

    Never from argv, where every local user could read it. From a file, one
    trailing line break is dropped (editors and `echo` add it; the CVM's env
    value has none); anything else is used exactly as given, as the CVM does.
    """
    if master_key_file is not None:
        # Size, then mode, then content: nothing of a key file others can read is read.
        text = read_utf8_file(
            master_key_file, "master key file", max_bytes=MAX_MASTER_KEY_FILE_BYTES, private=True
        )
        key = text.removesuffix("\n").removesuffix("\r")
        source = f"master key file {str(master_key_file)!r}"
    else:
        key = environ.get(MASTER_KEY_ENV, "")
        source = f"${MASTER_KEY_ENV}"
        if not key:
            raise ConfigError(
                f"no master key: set {MASTER_KEY_ENV} or pass --master-key-file FILE "
                "(never on the command line)"
            )
    if not key:
        raise ConfigError(f"{source} is empty")
    return key


def derive_crypt_passwords(master_key: str) -> CryptPasswords:
    """The crypt password and salt the CVM derives from MASTER_KEY."""
    # Imported here so `ops pair` works even where the program's components
    # cannot be imported (e.g. a partial checkout on an operator laptop).
    from components.derivation import rclone_crypt_password, rclone_crypt_salt

    try:
        return CryptPasswords(
            password=rclone_crypt_password(master_key), salt=rclone_crypt_salt(master_key)
        )
    except (TypeError, ValueError) as error:
        # derivation's messages never include the key or a derived value.
        raise ConfigError(f"unusable master key: {error}") from None


def s3_location_of(tenant: TenantOutputs, action: str = "pull") -> S3Location:
    if tenant.storage_mode != "s3" or tenant.bucket is None or tenant.s3_endpoint is None:
        raise ConfigError(
            f"tenant {tenant.name!r} uses local storage: its state lives only on the CVM's "
            f"Docker volume, so there is no S3 backup to {action}"
        )
    return S3Location(
        endpoint=tenant.s3_endpoint,
        bucket=tenant.bucket,
        prefix=tenant.s3_prefix,
        provider=tenant.s3_provider,
        region=tenant.s3_region,
    )


def _check_destination(destination: Path) -> None:
    if destination.exists() or destination.is_symlink():
        if not destination.is_dir() or destination.is_symlink():
            raise ConfigError(f"destination {str(destination)!r} exists and is not a folder")
        if any(destination.iterdir()):
            raise ConfigError(
                f"destination {str(destination)!r} is not empty; pull into a new folder"
            )
    if not destination.parent.is_dir():
        raise ConfigError(f"the parent folder of {str(destination)!r} does not exist")


def _probe(rclone: Rclone, remote: str, what: str) -> None:
    """One listing request without retries, so a wrong endpoint, bucket or
    credential fails in a second instead of after rclone's full retry backoff."""
    completed = rclone.run(
        "lsjson",
        "--max-depth",
        "1",
        "--low-level-retries",
        "1",
        operands=[remote],
        timeout_sec=60,
    )
    if completed.returncode != 0:
        _raise_for_rclone_failure(rclone, completed, f"listing {what} failed")


def _list_files(rclone: Rclone, remote: str, what: str) -> dict[str, int]:
    """{path: size} of every file under ``remote`` (with rclone's usual retries)."""
    completed = rclone.run(
        "lsjson",
        "--recursive",
        "--files-only",
        "--no-mimetype",
        "--no-modtime",
        operands=[remote],
        timeout_sec=LISTING_TIMEOUT_SEC,
    )
    if completed.returncode != 0:
        _raise_for_rclone_failure(rclone, completed, f"listing {what} failed")
    try:
        entries = json.loads(completed.stdout)
        return {entry["Path"]: int(entry["Size"]) for entry in entries}
    except (ValueError, KeyError, TypeError):
        raise BackupError(f"listing {what}: rclone printed unreadable JSON") from None


def _raise_for_rclone_failure(
    rclone: Rclone, completed: subprocess.CompletedProcess[str], context: str
) -> NoReturn:
    stderr = completed.stderr
    if any(marker in stderr for marker in _UNDECRYPTABLE_NAME_MARKERS):
        raise BackupError(
            f"{context}: the objects cannot be decrypted with keys derived from this "
            "master key; it is not the MASTER_KEY this tenant's CVM runs with"
        )
    if _CONTENT_AUTHENTICATION_MARKER in stderr:
        # Names and contents share one key, so once names decrypt, a content
        # failure means the object itself was damaged or altered.
        raise BackupError(
            f"{context}: an object failed crypt authentication (corrupted or tampered "
            f"in the bucket): {rclone.last_error_line(completed)}"
        )
    raise BackupError(
        f"{context} (rclone exit {completed.returncode}): {rclone.last_error_line(completed)}"
    )


def _local_files(root: Path) -> dict[str, int]:
    files: dict[str, int] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            files[path.relative_to(root).as_posix()] = path.lstat().st_size
    return files


def _s3_credentials_of(tenant: TenantOutputs, secrets: TenantSecrets) -> S3Credentials:
    if secrets.s3_access_key_id is None or secrets.s3_secret_access_key is None:
        raise ConfigError(f"stack outputs hold no S3 credentials for tenant {tenant.name!r}")
    return S3Credentials(secrets.s3_access_key_id, secrets.s3_secret_access_key)


@contextlib.contextmanager
def _crypt_rclone(
    binary: Path, location: S3Location, credentials: S3Credentials, master_key: str
) -> Iterator[Rclone]:
    """rclone with the tenant's crypt remote over its bucket, in a private home that goes
    at the end; every secret it was given is scrubbed from what it prints."""
    passwords = derive_crypt_passwords(master_key)
    with private_rclone_home() as home:
        yield Rclone(
            binary,
            crypt_remote_environment(location, credentials, passwords),
            home,
            secrets=(master_key, passwords.password, passwords.salt),
        )


def pull_tenant_state(
    tenant: TenantOutputs,
    secrets: TenantSecrets,
    master_key: str,
    destination: Path,
    *,
    rclone_binary: Path | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Download and decrypt ``tenant``'s state into the new folder ``destination``."""
    report = progress or (lambda _message: None)
    location = s3_location_of(tenant)
    credentials = _s3_credentials_of(tenant, secrets)
    destination = destination.absolute()
    _check_destination(destination)
    binary = rclone_binary or locate_rclone()
    source = location.describe()

    with _crypt_rclone(binary, location, credentials, master_key) as rclone:
        report(f"listing {source}")
        raw_remote = f"{BASE_REMOTE}:{location.bucket_path}"
        _probe(rclone, raw_remote, source)
        encrypted = _list_files(rclone, raw_remote, source)
        if not encrypted:
            raise BackupError(
                f"{source} holds no objects: nothing to restore (check the tenant's "
                "bucket and s3Prefix, and that its CVM has written state)"
            )
        # strict_names makes rclone fail on a name it cannot decrypt; the count
        # comparison also catches a skip that slipped past it.
        decrypted = _list_files(rclone, f"{CRYPT_REMOTE}:", f"decrypted {source}")
        if len(decrypted) != len(encrypted):
            raise BackupError(
                f"only {len(decrypted)} of {len(encrypted)} objects in {source} decrypt with "
                "keys derived from this master key; wrong MASTER_KEY, or foreign objects "
                "under the prefix"
            )

        report(f"downloading {len(decrypted)} files")
        staging = Path(
            tempfile.mkdtemp(prefix=f".{destination.name}.pull-", dir=destination.parent)
        )
        try:
            completed = rclone.run("copy", operands=[f"{CRYPT_REMOTE}:", str(staging)])
            if completed.returncode != 0:
                _raise_for_rclone_failure(rclone, completed, f"downloading {source} failed")
            restored = _local_files(staging)
            if restored != decrypted:
                missing = sorted(set(decrypted) - set(restored))
                raise BackupError(
                    f"the download does not match the bucket listing ({len(restored)} of "
                    f"{len(decrypted)} files"
                    + (f", e.g. {missing[0]!r} missing" if missing else ", sizes differ")
                    + ")"
                )
            # The staging folder is 0700 (mkdtemp) and stays so: it is the
            # tenant's plaintext state. rename(2) also takes over an empty
            # destination folder.
            try:
                staging.replace(destination)
            except OSError as error:
                # Someone wrote into the destination since we checked it.
                raise BackupError(
                    f"could not move the restored state into {str(destination)!r}: "
                    f"{error.strerror or error}; nothing was written there"
                ) from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    return PullResult(
        tenant=tenant.name,
        source=source,
        destination=destination,
        file_count=len(restored),
        total_bytes=sum(restored.values()),
    )


@dataclass(frozen=True)
class RestoreResult:
    tenant: str
    destination: str
    file_count: int
    total_bytes: int
    replaced_objects: int  # objects that were in the bucket before and were replaced


def _check_restore_source(source: Path) -> dict[str, int]:
    if source.is_symlink() or not source.is_dir():
        raise ConfigError(f"restore source {str(source)!r} is not a folder")
    files = _local_files(source)
    if not files:
        raise ConfigError(f"restore source {str(source)!r} is empty: nothing to restore")
    return files


def _check_key_is_the_running_one(tenant: TenantOutputs, master_key: str) -> None:
    """An empty bucket cannot tell a wrong key; the outputs' public fingerprint can."""
    from components.key_change import key_fingerprint

    if tenant.key_fingerprint is not None and key_fingerprint(master_key) != tenant.key_fingerprint:
        raise ConfigError(
            f"this master key is not the MASTER_KEY tenant {tenant.name!r} runs with (its "
            "keyFingerprint in the outputs differs): its CVM could not read what it encrypts"
        )


def restore_tenant_state(
    tenant: TenantOutputs,
    secrets: TenantSecrets,
    master_key: str,
    source: Path,
    *,
    overwrite: bool = False,
    rclone_binary: Path | None = None,
    progress: Progress | None = None,
) -> RestoreResult:
    """Encrypt the folder ``source`` (a pull) into ``tenant``'s current bucket and prefix.

    The bucket must hold nothing under the prefix, unless ``overwrite``: then what is
    there must decrypt with this key (it is this tenant's) and is replaced, so the
    bucket ends up holding exactly the folder. Every file is checked after the upload.
    """
    report = progress or (lambda _message: None)
    location = s3_location_of(tenant, action="restore into")
    credentials = _s3_credentials_of(tenant, secrets)
    source = source.absolute()
    local = _check_restore_source(source)
    _check_key_is_the_running_one(tenant, master_key)
    binary = rclone_binary or locate_rclone()
    destination = location.describe()

    with _crypt_rclone(binary, location, credentials, master_key) as rclone:
        report(f"listing {destination}")
        raw_remote = f"{BASE_REMOTE}:{location.bucket_path}"
        _probe(rclone, raw_remote, destination)
        present = _list_files(rclone, raw_remote, destination)
        if present and not overwrite:
            raise ConfigError(
                f"{destination} already holds {len(present)} objects (the CVM writes its "
                "state there once it runs); stop the tenant's CVM, then restore with "
                "--overwrite to replace them with this copy"
            )
        if present:
            decrypted = _list_files(rclone, f"{CRYPT_REMOTE}:", f"decrypted {destination}")
            if len(decrypted) != len(present):
                raise BackupError(
                    f"only {len(decrypted)} of {len(present)} objects in {destination} decrypt "
                    "with keys derived from this master key; refusing to overwrite them"
                )
        report(f"uploading {len(local)} files")
        completed = rclone.run("sync", operands=[str(source), f"{CRYPT_REMOTE}:"])
        if completed.returncode != 0:
            _raise_for_rclone_failure(rclone, completed, f"uploading to {destination} failed")
        stored = _list_files(rclone, f"{CRYPT_REMOTE}:", f"decrypted {destination}")
        if stored != local:
            raise BackupError(
                f"{destination} does not hold exactly the restored files afterwards "
                f"({len(stored)} stored, {len(local)} restored)"
            )
    return RestoreResult(
        tenant=tenant.name,
        destination=destination,
        file_count=len(local),
        total_bytes=sum(local.values()),
        replaced_objects=len(present),
    )
