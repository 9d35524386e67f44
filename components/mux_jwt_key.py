"""The mux's JWT signing key: one stable Ed25519 key, in a form that survives dstack.

What mux-server does with it (h4x3rotab/openclaw, branch phala-2026.2.12, commit
714b97af, ``mux-server/src/runtime-jwt.ts``): at start it reads
``MUX_JWT_PRIVATE_KEY``, trims it and hands it to Node's ``createPrivateKey`` (lines
34-40); without it, it makes a fresh Ed25519 key. It signs runtime JWTs with EdDSA and
serves the public key at ``/.well-known/jwks.json`` under the key id ``kid``: the first
16 hex digits of the SHA-256 of the public key's SPKI DER (lines 29-32, 53-63).

A gateway verifies the mux's inbound JWTs against that JWKS through jose's
``createRemoteJWKSet`` with a 5-minute cooldown (``src/gateway/mux-jwt.ts`` lines 22-57),
so a new key id after a mux restart is refused until the cooldown lets the gateway fetch
the JWKS again. A stable key keeps the key id, and the cached JWKS stays valid.

dstack cannot deliver a multi-line value (driver/dstack_env.py), so the CVM env carries
the PEM base64-encoded on one line (``MUX_JWT_PRIVATE_KEY_B64``), and compose/mux.yml
starts the image's command through ``/bin/sh``, which decodes it into
``MUX_JWT_PRIVATE_KEY`` first.

Pure functions, no Pulumi import. No exception or message here holds a key.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from driver.dstack_env import delivery_problem

# The CVM env var (one line, base64 of the PEM); compose/mux.yml's wrapper decodes it
# into MUX_JWT_PRIVATE_KEY, the variable mux-server reads.
ENV_NAME: Final = "MUX_JWT_PRIVATE_KEY_B64"
KEY_ID_HEX_DIGITS: Final = 16  # runtime-jwt.ts deriveKid: .slice(0, 16)
# Any PEM of a key is far shorter; a bound keeps a pasted file from being parsed at length.
MAX_PEM_CHARACTERS: Final = 4096

_PEM_BEGIN: Final = "-----BEGIN "
_PEM_END: Final = "-----END "


class MuxJwtKeyError(ValueError):
    """Why a value cannot be the mux's JWT key; the message never holds the value."""


def _load(pem: str) -> Ed25519PrivateKey:
    if not isinstance(pem, str):
        raise MuxJwtKeyError("must be a string")
    if len(pem) > MAX_PEM_CHARACTERS:
        raise MuxJwtKeyError(f"is longer than {MAX_PEM_CHARACTERS} characters; no key PEM is")
    text = pem.strip()  # runtime-jwt.ts trims before createPrivateKey
    if "\\n" in text and "\n" not in text:
        raise MuxJwtKeyError(
            "holds literal \\n instead of line breaks; set it from the file: "
            "pulumi config set --secret muxJwtPrivateKey < key.pem"
        )
    lines = text.splitlines()
    # Node reads a PEM only with its BEGIN and END lines on lines of their own (a test
    # pins this against Node); cryptography alone would take a PEM run into one line.
    if len(lines) < 3 or not lines[0].startswith(_PEM_BEGIN) or not lines[-1].startswith(_PEM_END):
        raise MuxJwtKeyError(
            "must be a PEM private key: -----BEGIN PRIVATE KEY-----, the base64 body and "
            "-----END PRIVATE KEY----- on lines of their own; make one with: "
            "openssl genpkey -algorithm ed25519"
        )
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except TypeError:
        # cryptography says this for an encrypted PEM given no password.
        raise MuxJwtKeyError(
            "is an encrypted PEM; the mux loads its key without a passphrase"
        ) from None
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise MuxJwtKeyError("is not a PEM private key that can be read") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise MuxJwtKeyError(
            f"is {_kind(key)} key; the mux signs its runtime JWTs with EdDSA (alg EdDSA, as "
            "runtime-jwt.ts mints them) and needs an Ed25519 key"
        )
    return key


def _kind(key: object) -> str:
    kinds = (
        (rsa.RSAPrivateKey, "an RSA"),
        (ec.EllipticCurvePrivateKey, "an EC"),
        (ed448.Ed448PrivateKey, "an Ed448"),
        (x25519.X25519PrivateKey, "an X25519"),
        (x448.X448PrivateKey, "an X448"),
        (dsa.DSAPrivateKey, "a DSA"),
    )
    return next((name for kind, name in kinds if isinstance(key, kind)), "another kind of")


def _pkcs8_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def canonical_pem(pem: str) -> str:
    """The same key as unencrypted PKCS#8 PEM, the one form the mux is given.

    Re-encoding an explicit key (whatever its line endings and surrounding blanks) gives
    the mux the form the tests run through Node; the key, and so the key id, stay the
    same."""
    return _pkcs8_pem(_load(pem))


def problem(pem: str) -> str | None:
    """Why ``pem`` cannot be the mux's JWT key, or None when it can."""
    try:
        _load(pem)
    except MuxJwtKeyError as error:
        return str(error)
    return None


def key_id(pem: str) -> str:
    """The ``kid`` mux-server serves in its JWKS for this key (runtime-jwt.ts deriveKid)."""
    spki = (
        _load(pem)
        .public_key()
        .public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    return hashlib.sha256(spki).hexdigest()[:KEY_ID_HEX_DIGITS]


def env_value(pem: str) -> str:
    """``MUX_JWT_PRIVATE_KEY_B64``: the canonical PEM, standard base64 on one line.

    Base64 has no character dstack quotes or escapes, so the value reaches the container
    unchanged; that is checked here too, so a key that could not arrive fails the
    preview and never reaches a running mux."""
    encoded = base64.b64encode(canonical_pem(pem).encode("ascii")).decode("ascii")
    reason = delivery_problem(encoded)
    if reason is not None:  # unreachable for base64; kept as the rule, not an assumption
        raise MuxJwtKeyError(f"cannot reach the mux intact through dstack: {reason}")
    return encoded
