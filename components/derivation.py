"""Secrets derived from a tenant's MASTER_KEY and from the mux master key.

Tenant values reproduce what the OpenClaw CVM image computes at boot, so the
program can know them without ever talking to the CVM: the image's
``derive_key`` is ``crypto.hkdfSync('sha256', MASTER_KEY, '', label, 32)``
printed as padded standard base64. The IKM is the key *string's* UTF-8 bytes,
as given: it is never base64-decoded and never trimmed.

Mux values are our own design (the original takes them as independent
secrets); each has a versioned label so that a future scheme can coexist.

Pure functions, no Pulumi import. Every returned ``str`` except ``openclaw_id``
and ``device_public_key_b64url`` is a secret: callers must wrap it in
``pulumi.Output.secret``. No exception raised here mentions a key or a derived
value.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, fields
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

# Labels used by the CVM image / OpenClaw runtime. Changing any of them breaks
# every deployed tenant, so they are pinned by test vectors. They are public
# HKDF info strings, not secrets (hence the S105 suppressions).
GATEWAY_TOKEN_LABEL = "gateway-auth-token"  # noqa: S105
RCLONE_CRYPT_PASSWORD_LABEL = "rclone-crypt-password"  # noqa: S105
RCLONE_CRYPT_SALT_LABEL = "rclone-crypt-salt"
DEVICE_IDENTITY_LABEL = "openclaw-device-identity-v1"

# Our own labels for secrets derived from the mux master key.
MUX_REGISTER_KEY_LABEL = "openclaw-phala/mux-register-key/v1"
MUX_ADMIN_TOKEN_LABEL = "openclaw-phala/mux-admin-token/v1"  # noqa: S105
MUX_JWT_KEY_LABEL = "openclaw-phala/mux-jwt-ed25519/v1"

_KEY_LENGTH = 32
_GATEWAY_TOKEN_LENGTH = 32
# The image runs `tr -d '/+='` on the base64 string before `head -c 32`.
_GATEWAY_TOKEN_DROP = str.maketrans("", "", "/+=")


def _ikm(master_key: str, what: str) -> bytes:
    """UTF-8 bytes of ``master_key``, rejecting what the image could never see."""
    if not isinstance(master_key, str):
        raise TypeError(f"{what} must be a str, not {type(master_key).__name__}")
    if not master_key:
        # The image skips derivation entirely when MASTER_KEY is empty.
        raise ValueError(f"{what} is empty")
    if "\x00" in master_key:
        # Env values and argv cannot carry NUL, so no CVM could derive from it.
        raise ValueError(f"{what} contains a NUL character")
    try:
        return master_key.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates: Node would substitute U+FFFD, Python cannot encode.
        # Raised outside the handler so the original error (whose .object is
        # the whole key) is not chained onto ours.
        pass
    raise ValueError(f"{what} is not valid Unicode text (lone surrogate)")


def _hkdf_many(master_key: str, labels: tuple[str, ...], what: str) -> list[bytes]:
    """32-byte HKDF-SHA256 outputs for several labels, extracting the PRK once.

    Identical to one full HKDF per label: extract does not depend on the info.
    """
    prk = HKDF.extract(hashes.SHA256(), None, _ikm(master_key, what))
    return [
        HKDFExpand(hashes.SHA256(), _KEY_LENGTH, label.encode("utf-8")).derive(prk)
        for label in labels
    ]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64url_nopad(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _token_from_b64(b64: str) -> str:
    # Matches the shell pipeline exactly, including its (astronomically rare)
    # short result if more than 11 of the 43 data characters are '/' or '+'.
    return b64.translate(_GATEWAY_TOKEN_DROP)[:_GATEWAY_TOKEN_LENGTH]


def _public_raw(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes_raw()


def _redacting_repr(obj: Any) -> str:
    # Only fields marked public are shown, so a secret field added later is
    # redacted without anyone having to remember to say so.
    parts = [
        f"{f.name}={getattr(obj, f.name)!r}" if f.metadata.get("public") else f"{f.name}=<redacted>"
        for f in fields(obj)
    ]
    return f"{type(obj).__name__}({', '.join(parts)})"


_PUBLIC: dict[str, bool] = {"public": True}


# --- primitives --------------------------------------------------------------


def hkdf_sha256(master_key: str, label: str, length: int = _KEY_LENGTH) -> bytes:
    """HKDF-SHA256 with empty salt over the UTF-8 bytes of ``master_key``."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=None,  # RFC 5869 "no salt"; same as Node's '' salt
        info=label.encode("utf-8"),
    ).derive(_ikm(master_key, "master key"))


def derive_base64(master_key: str, label: str) -> str:
    """What the image's ``derive_key <label>`` prints: padded standard base64."""
    return _b64(hkdf_sha256(master_key, label))


# --- tenant values (must match the CVM image) --------------------------------


def gateway_token(master_key: str) -> str:
    """GATEWAY_AUTH_TOKEN: base64 with '/', '+', '=' removed, first 32 chars."""
    return _token_from_b64(derive_base64(master_key, GATEWAY_TOKEN_LABEL))


def rclone_crypt_password(master_key: str) -> str:
    """Plaintext the image hands to ``rclone obscure`` for the crypt ``password``."""
    return derive_base64(master_key, RCLONE_CRYPT_PASSWORD_LABEL)


def rclone_crypt_salt(master_key: str) -> str:
    """Plaintext the image hands to ``rclone obscure`` for ``password2``."""
    return derive_base64(master_key, RCLONE_CRYPT_SALT_LABEL)


def device_private_key(master_key: str) -> Ed25519PrivateKey:
    """OpenClaw device identity key; the seed is the raw HKDF output."""
    return Ed25519PrivateKey.from_private_bytes(hkdf_sha256(master_key, DEVICE_IDENTITY_LABEL))


def device_public_key_raw(master_key: str) -> bytes:
    """Raw 32-byte Ed25519 public key of the device identity."""
    return _public_raw(device_private_key(master_key))


def openclaw_id(master_key: str) -> str:
    """deviceId / mux openclawId: lowercase hex SHA-256 of the raw public key."""
    return hashlib.sha256(device_public_key_raw(master_key)).hexdigest()


def device_public_key_b64url(master_key: str) -> str:
    """Device public key as shown in ``paired.json``: base64url, no padding."""
    return _b64url_nopad(device_public_key_raw(master_key))


@dataclass(frozen=True, repr=False)
class TenantKeys:
    """Everything derived from one tenant MASTER_KEY; repr hides the secrets."""

    gateway_token: str
    rclone_crypt_password: str
    rclone_crypt_salt: str
    openclaw_id: str = field(metadata=_PUBLIC)
    device_public_key_b64url: str = field(metadata=_PUBLIC)

    def __repr__(self) -> str:
        return _redacting_repr(self)


def derive_tenant_keys(master_key: str) -> TenantKeys:
    """All tenant values in one pass (one HKDF extract, one expand per label)."""
    token, password, salt, seed = _hkdf_many(
        master_key,
        (
            GATEWAY_TOKEN_LABEL,
            RCLONE_CRYPT_PASSWORD_LABEL,
            RCLONE_CRYPT_SALT_LABEL,
            DEVICE_IDENTITY_LABEL,
        ),
        "master key",
    )
    public_raw = _public_raw(Ed25519PrivateKey.from_private_bytes(seed))
    return TenantKeys(
        gateway_token=_token_from_b64(_b64(token)),
        rclone_crypt_password=_b64(password),
        rclone_crypt_salt=_b64(salt),
        openclaw_id=hashlib.sha256(public_raw).hexdigest(),
        device_public_key_b64url=_b64url_nopad(public_raw),
    )


# --- mux values (our own scheme) ----------------------------------------------


def _mux_secret(mux_master_key: str, label: str) -> str:
    (raw,) = _hkdf_many(mux_master_key, (label,), "mux master key")
    return _b64url_nopad(raw)


def _pkcs8_pem(seed: bytes) -> str:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def mux_register_key(mux_master_key: str) -> str:
    """MUX_REGISTER_KEY (also each tenant's ``registerKey``): 43-char base64url."""
    return _mux_secret(mux_master_key, MUX_REGISTER_KEY_LABEL)


def mux_admin_token(mux_master_key: str) -> str:
    """MUX_ADMIN_TOKEN: 43-char base64url under its own label."""
    return _mux_secret(mux_master_key, MUX_ADMIN_TOKEN_LABEL)


def mux_jwt_private_key_pem(mux_master_key: str) -> str:
    """MUX_JWT_PRIVATE_KEY: Ed25519 PKCS#8 PEM (multi-line) from the HKDF seed.

    A stable key keeps the mux's JWKS key id across restarts, so gateways keep
    accepting its inbound JWTs. The PEM reaches the mux base64-encoded on one line
    (components/mux_jwt_key.py): dstack cannot deliver its line breaks.
    """
    (seed,) = _hkdf_many(mux_master_key, (MUX_JWT_KEY_LABEL,), "mux master key")
    return _pkcs8_pem(seed)


@dataclass(frozen=True, repr=False)
class MuxKeys:
    """Secrets derived from the mux master key; repr hides all of them."""

    register_key: str
    admin_token: str
    jwt_private_key_pem: str

    def __repr__(self) -> str:
        return _redacting_repr(self)


def derive_mux_keys(mux_master_key: str) -> MuxKeys:
    """All mux secrets in one pass."""
    register, admin, jwt_seed = _hkdf_many(
        mux_master_key,
        (MUX_REGISTER_KEY_LABEL, MUX_ADMIN_TOKEN_LABEL, MUX_JWT_KEY_LABEL),
        "mux master key",
    )
    return MuxKeys(
        register_key=_b64url_nopad(register),
        admin_token=_b64url_nopad(admin),
        jwt_private_key_pem=_pkcs8_pem(jwt_seed),
    )
