"""Checks of single config values: names, images, ids, keys, each with its limit.

Pure functions; each returns why a value is refused (a sentence fragment that names the
limit) or None. components/config_parser.py and components/tenant_config.py turn the
reasons into ConfigProblems naming the key. Every limit here is in the README's
configuration reference (tests/test_readme.py checks that).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Final

from components.config_keys import (
    MAX_IMAGE_NAME_LENGTH,
    MAX_INSTANCE_TYPE_LENGTH,
    MAX_OS_IMAGE_LENGTH,
    MAX_REGION_LENGTH,
    MAX_SSH_PUBLIC_KEY_LENGTH,
    MIN_RSA_KEY_BITS,
)

CVM_NAME: Final = re.compile(r"^[a-zA-Z](?!.*--)([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
R2_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
PINNED_IMAGE: Final = re.compile(
    r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?"  # registry host or first path part
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"  # further path parts
    r"@sha256:[0-9a-f]{64}$"
)
ACCOUNT_ID: Final = re.compile(r"^[0-9a-f]{32}$")
S3_PREFIX: Final = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
INSTANCE_TYPE: Final = re.compile(r"^[a-z0-9]+(?:\.[a-z0-9-]+)+$")
SLUG: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
CVM_ID: Final = re.compile(
    r"^(?:[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
    r"|(?:app_)?[0-9a-f]{40})$"
)
# Each part starts with a letter or digit: never `.` or `..` (a path, not a stack).
STACK_NAME: Final = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(?:/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,2}$"
)
TELEGRAM_USERNAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
# Pulumi reads an integer with Go's strconv.Atoi (sdk/go/common/workspace/project.go,
# ValidateConfigValue): an optional sign and decimal digits, within int64; so does the
# program, and `+40` is 40.
GO_ATOI: Final = re.compile(r"^[+-]?[0-9]+$")
INT64_RANGE: Final = range(-(2**63), 2**63)


def too_long(value: str, limit: int) -> str | None:
    return f"is {len(value)} characters long; at most {limit}" if len(value) > limit else None


def non_ascii_reason(text: str, what: str) -> str | None:
    """Names the first character outside ASCII, which Phala's name rules do not allow."""
    match = re.search(r"[^\x00-\x7f]", text)
    if match is None:
        return None
    character = match.group()
    kind = "letter" if character.isalpha() else "character"
    name = unicodedata.name(character, "").lower() or f"U+{ord(character):04X}"
    return (
        f"'{character}' ({name}) at position {match.start() + 1} is a non-ASCII {kind}; "
        f"{what} may use only ASCII letters a-z and A-Z"
    )


def go_integer(text: str) -> int | None:
    """The integer Pulumi's typed config reads from this text, or None."""
    if not GO_ATOI.fullmatch(text):
        return None
    number = int(text)
    return number if number in INT64_RANGE else None


def check_cvm_name(name: str) -> str | None:
    """Return why the phala CLI would reject this CVM name, or None if it is valid."""
    if not 5 <= len(name) <= 63:
        return f"must be 5 to 63 characters (has {len(name)})"
    non_ascii = non_ascii_reason(name, "a CVM name")
    if non_ascii is not None:
        return non_ascii
    if not name[0].isalpha():
        return f"must start with a letter (starts with '{name[0]}')"
    if not CVM_NAME.fullmatch(name):
        return "may contain only letters, digits and single hyphens, and must not end with a hyphen"
    return None


def check_r2_bucket_name(bucket: str) -> str | None:
    """Return why R2 would reject this bucket name, or None if it is valid."""
    if not 3 <= len(bucket) <= 63:
        return f"must be 3 to 63 characters (has {len(bucket)})"
    if not R2_BUCKET.fullmatch(bucket):
        return (
            "may contain only lowercase letters, digits and hyphens, "
            "and must start and end with a letter or digit"
        )
    return None


def check_pinned_image(image: str) -> str | None:
    name = image.split("@", 1)[0]
    too_long_name = too_long(name, MAX_IMAGE_NAME_LENGTH)
    if too_long_name is not None:
        return f"has a repository name that {too_long_name} (the registry limit)"
    if not PINNED_IMAGE.fullmatch(image):
        return (
            "must be pinned by digest as <repo>@sha256:<64 lowercase hex> (no tag), "
            "so every deploy runs exactly the reviewed image"
        )
    return None


def check_instance_type(value: str) -> str | None:
    reason = too_long(value, MAX_INSTANCE_TYPE_LENGTH)
    if reason is not None:
        return f"{reason}; give a Phala instance type such as tdx.medium"
    if not INSTANCE_TYPE.fullmatch(value):
        return "must be a Phala instance type such as tdx.small or tdx.medium"
    return None


def check_region(value: str) -> str | None:
    reason = too_long(value, MAX_REGION_LENGTH)
    if reason is not None:
        return f"{reason}; give a region slug such as US-WEST-1"
    if not SLUG.fullmatch(value):
        return "must be a region slug such as US-WEST-1 (letters, digits, '.', '_', '-')"
    return None


def check_os_image(value: str) -> str | None:
    reason = too_long(value, MAX_OS_IMAGE_LENGTH)
    if reason is not None:
        return f"{reason}; give an OS image name such as dstack-dev-0.5.7"
    if not SLUG.fullmatch(value):
        return "must be an OS image name such as dstack-dev-0.5.7 (letters, digits, '.', '_', '-')"
    return None


def check_cvm_id(value: str) -> str | None:
    return None if CVM_ID.fullmatch(value) else "must be a CVM UUID or app_<40 hex>"


# --------------------------------------------------------------------------- SSH public keys

# Key type -> the fields of its public key blob after the type name (RFC 4253 6.6,
# RFC 5656 3.1, RFC 8709 4, OpenSSH PROTOCOL.u2f): "string" fields, "mpint" numbers.
_ED25519_KEY_BYTES: Final = 32
_ECDSA_POINT_BYTES: Final = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
SSH_KEY_TYPES: Final = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def _blob_fields(blob: bytes) -> list[bytes] | None:
    """The length-prefixed fields of an SSH wire-format blob, or None if it is cut short."""
    fields: list[bytes] = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            return None
        length = int.from_bytes(blob[offset : offset + 4], "big")
        offset += 4
        if offset + length > len(blob):
            return None
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def _key_body_reason(key_type: str, fields: list[bytes]) -> str | None:
    """Why the fields after the type name are not a usable key of `key_type`, or None."""
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        expected = 1 if key_type == "ssh-ed25519" else 2
        if len(fields) != expected or len(fields[0]) != _ED25519_KEY_BYTES:
            return f"an {key_type} key holds a {_ED25519_KEY_BYTES}-byte public key"
        return None
    if key_type == "ssh-rsa":
        if len(fields) != 2:
            return "an ssh-rsa key holds an exponent and a modulus"
        bits = int.from_bytes(fields[1], "big").bit_length()
        if bits < MIN_RSA_KEY_BITS:
            return f"its RSA modulus has {bits} bits; at least {MIN_RSA_KEY_BITS}"
        return None
    curve = key_type.removeprefix("sk-").split("@", 1)[0].rsplit("-", 1)[-1]
    expected = 2 if not key_type.startswith("sk-") else 3
    if (
        len(fields) != expected
        or fields[0] != curve.encode()
        or len(fields[1]) != _ECDSA_POINT_BYTES[curve]
    ):
        point = _ECDSA_POINT_BYTES[curve]
        return f"an {key_type} key holds the curve {curve} and a {point}-byte point"
    return None


def check_ssh_public_key(line: str) -> str | None:
    """Why this is not one OpenSSH public key line a CVM's sshd would accept, or None.

    The key data is decoded: a line that only looks right (`ssh-ed25519 x`) would make
    a CVM that nobody can enter."""
    reason = too_long(line, MAX_SSH_PUBLIC_KEY_LENGTH)
    if reason is not None:
        return f"{reason}; give one OpenSSH public key line"
    if "\n" in line or "\r" in line:
        return "must be one line: give one OpenSSH public key line"
    key_type, _, rest = line.partition(" ")
    if key_type not in SSH_KEY_TYPES:
        return (
            f"must be one OpenSSH public key line: <type> <base64 key> [comment], the type "
            f"one of {', '.join(SSH_KEY_TYPES)}"
        )
    data = rest.split(" ", 1)[0]
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return f"its key data after '{key_type} ' is not base64"
    fields = _blob_fields(blob) if blob else None
    if not fields:
        return f"its key data is cut short: not an OpenSSH {key_type} public key"
    if fields[0] != key_type.encode():
        return f"its key data is not an OpenSSH {key_type} public key (its type name differs)"
    body = _key_body_reason(key_type, fields[1:])
    if body is not None:
        return f"its key data is not a usable {key_type} public key: {body}"
    return None
