"""The mux's JWT key: which PEMs the program takes, its one-line form and its key id.

Judged by real Node: what the program accepts is exactly what mux-server's own
start-up call (`createPrivateKey(value.trim())`, runtime-jwt.ts) loads as an Ed25519
key, and the key id the program exports is the one Node computes as mux-server does.
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519

from components import mux_jwt_key
from components.derivation import mux_jwt_private_key_pem
from driver.dstack_env import delivered_env
from tests.support.mux_container import node_binary

PEM = mux_jwt_private_key_pem("a-mux-master-key-for-the-jwt-key-tests-0123456789")


def _pkcs8(key: object, encryption: serialization.KeySerializationEncryption | None = None) -> str:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    ).decode()


def _openssh(key: ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


ED25519 = ed25519.Ed25519PrivateKey.generate()
PUBLIC_PEM = (
    ED25519.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)

# label -> (value, accepted)
CANDIDATES: dict[str, tuple[str, bool]] = {
    "derived": (PEM, True),
    "generated Ed25519": (_pkcs8(ED25519), True),
    "CRLF line ends": (PEM.replace("\n", "\r\n"), True),
    "surrounding blanks": (f"\n  {PEM}  \n\n", True),
    "no final line break": (PEM.rstrip("\n"), True),
    "RSA": (_pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048)), False),
    "EC P-256": (_pkcs8(ec.generate_private_key(ec.SECP256R1())), False),
    "Ed448": (_pkcs8(ed448.Ed448PrivateKey.generate()), False),
    "X25519": (_pkcs8(x25519.X25519PrivateKey.generate()), False),
    "encrypted": (_pkcs8(ED25519, serialization.BestAvailableEncryption(b"passphrase")), False),
    "public key": (PUBLIC_PEM, False),
    "OpenSSH format": (_openssh(ED25519), False),
    "literal backslash-n": (PEM.replace("\n", "\\n"), False),
    "one line, no separators": (PEM.replace("\n", ""), False),
    "body cut short": (PEM.replace(PEM.splitlines()[1], PEM.splitlines()[1][:40]), False),
    "not a PEM": ("hello", False),
}

# What mux-server's start-up would make of each value: runtime-jwt.ts lines 34-40.
NODE_LOADS = """
const crypto = require("node:crypto");
const values = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const results = values.map((value) => {
  try {
    const key = crypto.createPrivateKey(value.trim());
    const spki = crypto.createPublicKey(key).export({ type: "spki", format: "der" });
    const kid = crypto.createHash("sha256").update(spki).digest("hex").slice(0, 16);
    return { type: key.asymmetricKeyType, kid };
  } catch (error) {
    return { error: error.code || "error" };
  }
});
process.stdout.write(JSON.stringify(results));
"""


def node_loads(values: list[str]) -> list[dict[str, str]]:
    proc = subprocess.run(
        [node_binary(), "-e", NODE_LOADS],
        input=json.dumps(values),  # stdin: never a key in argv
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results: list[dict[str, str]] = json.loads(proc.stdout)
    return results


def test_the_program_accepts_exactly_what_the_mux_loads_as_an_ed25519_key() -> None:
    labels = list(CANDIDATES)
    results = node_loads([CANDIDATES[label][0] for label in labels])
    for label, node in zip(labels, results, strict=True):
        value, accepted = CANDIDATES[label]
        assert (mux_jwt_key.problem(value) is None) is accepted, label
        assert (node.get("type") == "ed25519") is accepted, (label, node)


def test_the_canonical_form_loads_in_node_with_the_key_id_the_program_exports() -> None:
    accepted = [value for value, ok in CANDIDATES.values() if ok]
    canonical = [mux_jwt_key.canonical_pem(value) for value in accepted]
    for value, node in zip(accepted, node_loads(canonical), strict=True):
        assert node == {"type": "ed25519", "kid": mux_jwt_key.key_id(value)}


def test_canonical_form_is_the_same_key_as_unencrypted_pkcs8_and_stable() -> None:
    messy = CANDIDATES["surrounding blanks"][0]
    assert mux_jwt_key.canonical_pem(messy) == PEM
    assert mux_jwt_key.canonical_pem(PEM) == PEM
    assert mux_jwt_key.key_id(messy) == mux_jwt_key.key_id(PEM)
    assert len(mux_jwt_key.key_id(PEM)) == 16 and int(mux_jwt_key.key_id(PEM), 16) >= 0


def test_the_one_line_form_is_base64_of_the_pem_and_passes_dstack_unchanged() -> None:
    one_line = mux_jwt_key.env_value(CANDIDATES["CRLF line ends"][0])
    assert base64.b64decode(one_line, validate=True).decode() == PEM
    assert delivered_env({mux_jwt_key.ENV_NAME: one_line}) == {mux_jwt_key.ENV_NAME: one_line}


@pytest.mark.parametrize(
    ("label", "words"),
    [
        ("RSA", "is an RSA key"),
        ("Ed448", "is an Ed448 key"),
        ("X25519", "is an X25519 key"),
        ("encrypted", "is an encrypted PEM"),
        ("public key", "not a PEM private key"),
        ("literal backslash-n", "literal \\n instead of line breaks"),
        ("not a PEM", "must be a PEM private key"),
    ],
)
def test_each_refusal_says_what_is_wrong_and_never_quotes_the_key(label: str, words: str) -> None:
    value = CANDIDATES[label][0]
    message = mux_jwt_key.problem(value)
    assert message is not None and words in message
    body = [line for line in value.replace("\\n", "\n").splitlines() if "-----" not in line]
    assert all(line not in message for line in body if len(line) > 8)


def test_an_oversized_value_is_refused_before_it_is_parsed() -> None:
    message = mux_jwt_key.problem(PEM + " " * mux_jwt_key.MAX_PEM_CHARACTERS)
    assert message is not None and "longer than" in message
    with pytest.raises(mux_jwt_key.MuxJwtKeyError):
        mux_jwt_key.env_value("hello")
