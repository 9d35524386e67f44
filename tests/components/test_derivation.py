"""Pins components.derivation to the CVM image's key derivation and to Node's crypto."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from components import derivation as d

NODE_SCRIPT = Path(__file__).resolve().parents[1] / "support" / "derive_with_node.js"

# Reference vectors (facts doc, section 1.5). The master key is used as text.
REF_MASTER_KEY = "dGVzdC1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmctISE="
REF_RAW_HEX = {
    d.RCLONE_CRYPT_PASSWORD_LABEL: (
        "893a5e261d257cdb162123f4b1584f83324f5cf4b6719ab60f2d2261389250e6"
    ),
    d.RCLONE_CRYPT_SALT_LABEL: "1f132311e4e6edb7799745a24323b82692123a0062026643bf6eadd0896b0178",
    d.GATEWAY_TOKEN_LABEL: "1cd8b543dec3c7c9cbccc64b2e91451e2be79d17d51933b942d197d4ad9998d0",
    d.DEVICE_IDENTITY_LABEL: "e1c09afb605e5f8f4559bc1ba7716fdaf3e6e51995af8f6b67e657f1acf05ca3",
}
REF_B64 = {
    d.RCLONE_CRYPT_PASSWORD_LABEL: "iTpeJh0lfNsWISP0sVhPgzJPXPS2cZq2Dy0iYTiSUOY=",
    d.RCLONE_CRYPT_SALT_LABEL: "HxMjEeTm7bd5l0WiQyO4JpISOgBiAmZDv26t0IlrAXg=",
    d.GATEWAY_TOKEN_LABEL: "HNi1Q97Dx8nLzMZLLpFFHivnnRfVGTO5QtGX1K2ZmNA=",
    d.DEVICE_IDENTITY_LABEL: "4cCa+2BeX49FWbwbp3Fv2vPm5RmVr49rZ+ZX8azwXKM=",
}
REF_GATEWAY_TOKEN = "HNi1Q97Dx8nLzMZLLpFFHivnnRfVGTO5"
REF_DEVICE_PUBLIC_HEX = "ded9e5f2ade37e28b541f7d9221b69ac041a1724ae94c00b7b3b9b2de531345b"
REF_DEVICE_PUBLIC_B64URL = "3tnl8q3jfii1QffZIhtprAQaFySulMALezubLeUxNFs"
REF_DEVICE_SPKI_B64 = "MCowBQYDK2VwAyEA3tnl8q3jfii1QffZIhtprAQaFySulMALezubLeUxNFs="
REF_DEVICE_ID = "4625d30b813b47d377443c0b8862053ea67ef055a612ace30de1b418f9dab85c"

# What a base64-decoding implementation would produce instead (the bug to catch).
WRONG_DECODED_GATEWAY_TOKEN = "KlUgbr52IS0r1w7novoyrHGPb0eVeabF"
WRONG_DECODED_RCLONE_PASSWORD = "wN33l270VhUuv5OBiwtM936MGH2jPkPVWxp2+coKuY0="

# Our own mux scheme, computed with Node's crypto (tests/support/derive_with_node.js).
# A change here rotates every mux secret in every stack: it must be deliberate.
MUX_TEST_MASTER_KEY = "openclaw-phala-mux-test-master-key"
MUX_REF_REGISTER_KEY = "8wshyaUsLOXT0BUZGRt3i-0HkEYoGE4aXoVk6HZqVzM"
MUX_REF_ADMIN_TOKEN = "xToUYnjvYyerahM4Z0WrLY3QjUKY1Jq4UH201xhOehA"
MUX_REF_JWT_PUBLIC_B64URL = "rS-9CBsBohChgBeHq9Q9swNTEt8OsmAQ2j_FGO6FLg4"
MUX_REF_JWT_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEINOodVgt+IACayHZx6RwN/Ebt/ruNg+msknXSbLZDaCZ\n"
    "-----END PRIVATE KEY-----\n"
)

B64URL_43 = re.compile(r"[A-Za-z0-9_-]{43}")
GATEWAY_TOKEN_RE = re.compile(r"[A-Za-z0-9]{32}")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- random master keys --------------------------------------------------------

# Code point ranges to draw from; none contains NUL or a surrogate, which the
# module rejects on purpose (see the error tests).
_RANGES = (
    (0x01, 0x1F),  # controls, incl. tab and newline
    (0x20, 0x7E),  # printable ASCII
    (0xA0, 0x2FF),  # Latin-1 / extended Latin
    (0x300, 0x36F),  # combining diacritics
    (0x370, 0x52F),  # Greek, Cyrillic
    (0x4E00, 0x9FFF),  # CJK
    (0xFE00, 0xFFFF),  # variation selectors, BOM, U+FFFD, noncharacters
    (0x1F300, 0x1FAFF),  # emoji
    (0x10000, 0x10FFFF),  # anything astral
)


def _random_text(rng: random.Random, length: int) -> str:
    out = []
    for _ in range(length):
        lo, hi = rng.choice(_RANGES)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def _random_master_keys() -> list[str]:
    rng = random.Random(20260215)
    keys = [REF_MASTER_KEY, MUX_TEST_MASTER_KEY, "x", "=", "+/=", " ", "\t\n"]
    # The documented way: base64 of 32 random bytes (44 chars with '=', '+', '/').
    keys += [base64.b64encode(rng.randbytes(32)).decode() for _ in range(60)]
    keys += [base64.b64encode(rng.randbytes(rng.randint(1, 96))).decode() for _ in range(20)]
    # Heavy in the characters the token step strips, and in base64 padding.
    keys += ["".join(rng.choice("=+/aZ9") for _ in range(rng.randint(1, 64))) for _ in range(20)]
    keys += [
        "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(1, 120))) for _ in range(40)
    ]
    keys += [_random_text(rng, rng.randint(1, 80)) for _ in range(60)]
    keys += [
        "h\u00e9llo w\u00f6rld \u00e6\u00f8\u00e5",
        "\u043a\u043b\u044e\u0447-\u5bc6\u94a5-\u0645\u0641\u062a\u0627\u062d",
        "\U0001f510\U0001f511\U0001f9d1\u200d\U0001f4bb",  # emoji, ZWJ sequence
        "\U0001f44d\U0001f3fd\U0001f1f3\U0001f1f1",  # skin tone, flag
        "e\u0301\u0323\u0308 a\u030a Z\u0335\u0336\u0337",  # stacked combining marks
        unicodedata.normalize("NFC", "Cafe\u0301"),
        unicodedata.normalize("NFD", "Caf\u00e9"),
        "\ufeffbom-prefixed",
        "  padded with spaces  ",
        "trailing newline\n",
        "\u00a0nbsp\u2003em-space\u3000",
    ]
    # Very long keys (HMAC hashes keys longer than a block; the IKM is a message).
    keys += [
        "A" * 65,
        "=" * 1000,
        base64.b64encode(rng.randbytes(7500)).decode(),
        _random_text(rng, 5000),
        _random_text(rng, 70_000),
    ]
    return keys


MASTER_KEYS = _random_master_keys()


def test_random_key_set_covers_the_awkward_cases() -> None:
    assert len(MASTER_KEYS) >= 200
    assert len(set(MASTER_KEYS)) == len(MASTER_KEYS)
    assert any(not k.isascii() for k in MASTER_KEYS)
    assert any(any(ord(c) > 0xFFFF for c in k) for k in MASTER_KEYS)  # astral / emoji
    assert any(any(unicodedata.combining(c) for c in k) for k in MASTER_KEYS)
    assert any(len(k) > 50_000 for k in MASTER_KEYS)
    assert all(any(c in k for k in MASTER_KEYS) for c in "=+/")
    assert any(k != k.strip() for k in MASTER_KEYS)


# --- reference vectors -------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(REF_RAW_HEX))
def test_hkdf_raw_output_matches_reference_vector(label: str) -> None:
    assert d.hkdf_sha256(REF_MASTER_KEY, label).hex() == REF_RAW_HEX[label]


@pytest.mark.parametrize("label", sorted(REF_B64))
def test_derive_base64_prints_what_image_derive_key_prints(label: str) -> None:
    value = d.derive_base64(REF_MASTER_KEY, label)
    assert value == REF_B64[label]
    assert len(value) == 44
    assert value.endswith("=")


def test_gateway_token_matches_reference_vector() -> None:
    assert d.gateway_token(REF_MASTER_KEY) == REF_GATEWAY_TOKEN


def test_rclone_password_and_salt_are_full_padded_base64_strings() -> None:
    # These, not the raw bytes, are what goes into `rclone obscure`.
    assert d.rclone_crypt_password(REF_MASTER_KEY) == REF_B64[d.RCLONE_CRYPT_PASSWORD_LABEL]
    assert d.rclone_crypt_salt(REF_MASTER_KEY) == REF_B64[d.RCLONE_CRYPT_SALT_LABEL]


def test_device_key_seed_is_raw_hkdf_output() -> None:
    key = d.device_private_key(REF_MASTER_KEY)
    assert key.private_bytes_raw().hex() == REF_RAW_HEX[d.DEVICE_IDENTITY_LABEL]


def test_device_public_key_matches_reference_vector() -> None:
    assert d.device_public_key_raw(REF_MASTER_KEY).hex() == REF_DEVICE_PUBLIC_HEX
    assert d.device_public_key_b64url(REF_MASTER_KEY) == REF_DEVICE_PUBLIC_B64URL


def test_device_public_key_spki_matches_reference_pem_body() -> None:
    spki = (
        d.device_private_key(REF_MASTER_KEY)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert base64.b64encode(spki).decode() == REF_DEVICE_SPKI_B64


def test_openclaw_id_is_sha256_hex_of_raw_public_key() -> None:
    assert d.openclaw_id(REF_MASTER_KEY) == REF_DEVICE_ID
    assert hashlib.sha256(bytes.fromhex(REF_DEVICE_PUBLIC_HEX)).hexdigest() == REF_DEVICE_ID


def test_derive_tenant_keys_matches_every_reference_vector() -> None:
    keys = d.derive_tenant_keys(REF_MASTER_KEY)
    assert keys == d.TenantKeys(
        gateway_token=REF_GATEWAY_TOKEN,
        rclone_crypt_password=REF_B64[d.RCLONE_CRYPT_PASSWORD_LABEL],
        rclone_crypt_salt=REF_B64[d.RCLONE_CRYPT_SALT_LABEL],
        openclaw_id=REF_DEVICE_ID,
        device_public_key_b64url=REF_DEVICE_PUBLIC_B64URL,
    )


def test_empty_salt_is_rfc5869_no_salt() -> None:
    # Node's '' salt, Python's None and 32 zero bytes are the same HKDF.
    zero_salt = HKDF(hashes.SHA256(), 32, b"\x00" * 32, d.GATEWAY_TOKEN_LABEL.encode())
    assert zero_salt.derive(REF_MASTER_KEY.encode()).hex() == REF_RAW_HEX[d.GATEWAY_TOKEN_LABEL]


# --- the master key is text, as given ------------------------------------------


def test_master_key_is_not_base64_decoded() -> None:
    decoded = base64.b64decode(REF_MASTER_KEY).decode("ascii")
    assert decoded == "test-master-key-32-bytes-long-!!"
    # Feeding the decoded key gives the documented wrong values ...
    assert d.gateway_token(decoded) == WRONG_DECODED_GATEWAY_TOKEN
    assert d.rclone_crypt_password(decoded) == WRONG_DECODED_RCLONE_PASSWORD
    # ... and the real derivation from the string does not.
    keys = d.derive_tenant_keys(REF_MASTER_KEY)
    assert keys.gateway_token != WRONG_DECODED_GATEWAY_TOKEN
    assert keys.rclone_crypt_password != WRONG_DECODED_RCLONE_PASSWORD


def test_master_key_is_not_trimmed() -> None:
    padded = f" {REF_MASTER_KEY}\n"
    assert d.gateway_token(padded) != REF_GATEWAY_TOKEN
    assert d.openclaw_id(padded) != REF_DEVICE_ID
    expected = HKDF(hashes.SHA256(), 32, None, d.GATEWAY_TOKEN_LABEL.encode()).derive(
        padded.encode("utf-8")
    )
    assert d.hkdf_sha256(padded, d.GATEWAY_TOKEN_LABEL) == expected


def test_master_key_is_not_unicode_normalized() -> None:
    nfc = unicodedata.normalize("NFC", "caf\u00e9-key")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    assert d.derive_tenant_keys(nfc) != d.derive_tenant_keys(nfd)


def test_hkdf_length_parameter_extends_the_same_stream() -> None:
    long = d.hkdf_sha256(REF_MASTER_KEY, d.GATEWAY_TOKEN_LABEL, length=64)
    assert len(long) == 64
    assert long[:32].hex() == REF_RAW_HEX[d.GATEWAY_TOKEN_LABEL]


# --- cross-check with Node's crypto.hkdfSync -----------------------------------


@pytest.fixture(scope="module")
def node_results() -> list[dict[str, str]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("`node` is not on PATH; the Node cross-check needs it")
    proc = subprocess.run(
        [node, str(NODE_SCRIPT)],
        input=json.dumps(MASTER_KEYS),  # STDIN, never argv
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    assert len(results) == len(MASTER_KEYS)
    return results


def _mismatches(field_name: str, ours: list[str], node_results: list[dict[str, str]]) -> list[int]:
    return [
        i for i, (a, r) in enumerate(zip(ours, node_results, strict=True)) if a != r[field_name]
    ]


def test_tenant_keys_match_node_hkdfsync_for_random_master_keys(
    node_results: list[dict[str, str]],
) -> None:
    derived = [d.derive_tenant_keys(k) for k in MASTER_KEYS]
    for ours, theirs in (
        ("gateway_token", "gatewayToken"),
        ("rclone_crypt_password", "rcloneCryptPassword"),
        ("rclone_crypt_salt", "rcloneCryptSalt"),
        ("openclaw_id", "openclawId"),
        ("device_public_key_b64url", "devicePublicKeyB64url"),
    ):
        values = [getattr(k, ours) for k in derived]
        # Indices only: a failing key would otherwise flood the output.
        assert _mismatches(theirs, values, node_results) == [], ours


def test_single_value_functions_match_node_for_random_master_keys(
    node_results: list[dict[str, str]],
) -> None:
    # The per-value functions use a full HKDF per call; derive_tenant_keys
    # shares the extract step. Both must agree with Node.
    checks = {
        "gatewayToken": d.gateway_token,
        "rcloneCryptPassword": d.rclone_crypt_password,
        "rcloneCryptSalt": d.rclone_crypt_salt,
        "openclawId": d.openclaw_id,
        "devicePublicKeyB64url": d.device_public_key_b64url,
    }
    for name, fn in checks.items():
        assert _mismatches(name, [fn(k) for k in MASTER_KEYS], node_results) == [], name


def test_mux_keys_match_node_for_random_master_keys(node_results: list[dict[str, str]]) -> None:
    derived = [d.derive_mux_keys(k) for k in MASTER_KEYS]
    assert _mismatches("muxRegisterKey", [m.register_key for m in derived], node_results) == []
    assert _mismatches("muxAdminToken", [m.admin_token for m in derived], node_results) == []
    # Node's own PKCS#8 PEM export must be byte-identical to ours.
    pems = [m.jwt_private_key_pem for m in derived]
    assert _mismatches("muxJwtPrivateKeyPem", pems, node_results) == []
    singles = [d.mux_register_key(k) for k in MASTER_KEYS]
    assert _mismatches("muxRegisterKey", singles, node_results) == []


def test_mux_jwt_public_key_matches_node(node_results: list[dict[str, str]]) -> None:
    for i, (key, result) in enumerate(zip(MASTER_KEYS, node_results, strict=True)):
        loaded = serialization.load_pem_private_key(d.mux_jwt_private_key_pem(key).encode(), None)
        assert isinstance(loaded, Ed25519PrivateKey)
        public = loaded.public_key().public_bytes_raw()
        assert public == _b64url_decode(result["muxJwtPublicKeyB64url"]), i


# --- mux scheme -------------------------------------------------------------------


def test_mux_keys_match_pinned_vectors() -> None:
    keys = d.derive_mux_keys(MUX_TEST_MASTER_KEY)
    assert keys == d.MuxKeys(
        register_key=MUX_REF_REGISTER_KEY,
        admin_token=MUX_REF_ADMIN_TOKEN,
        jwt_private_key_pem=MUX_REF_JWT_PEM,
    )
    assert d.mux_register_key(MUX_TEST_MASTER_KEY) == MUX_REF_REGISTER_KEY
    assert d.mux_admin_token(MUX_TEST_MASTER_KEY) == MUX_REF_ADMIN_TOKEN
    assert d.mux_jwt_private_key_pem(MUX_TEST_MASTER_KEY) == MUX_REF_JWT_PEM


def test_mux_labels_are_versioned_and_distinct_from_image_labels() -> None:
    mux = {d.MUX_REGISTER_KEY_LABEL, d.MUX_ADMIN_TOKEN_LABEL, d.MUX_JWT_KEY_LABEL}
    image = {
        d.GATEWAY_TOKEN_LABEL,
        d.RCLONE_CRYPT_PASSWORD_LABEL,
        d.RCLONE_CRYPT_SALT_LABEL,
        d.DEVICE_IDENTITY_LABEL,
    }
    assert len(mux) == 3
    assert not mux & image
    assert all(label.startswith("openclaw-phala/") and label.endswith("/v1") for label in mux)


@pytest.mark.parametrize("key", MASTER_KEYS[:60])
def test_mux_register_key_and_admin_token_are_43_char_base64url(key: str) -> None:
    keys = d.derive_mux_keys(key)
    assert B64URL_43.fullmatch(keys.register_key)
    assert B64URL_43.fullmatch(keys.admin_token)
    assert _b64url_decode(keys.register_key) == d.hkdf_sha256(key, d.MUX_REGISTER_KEY_LABEL)


def test_mux_jwt_pem_loads_and_its_public_key_matches_the_seed() -> None:
    pem = d.mux_jwt_private_key_pem(MUX_TEST_MASTER_KEY)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert pem.endswith("-----END PRIVATE KEY-----\n")
    loaded = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    seed = d.hkdf_sha256(MUX_TEST_MASTER_KEY, d.MUX_JWT_KEY_LABEL)
    assert loaded.private_bytes_raw() == seed
    expected_public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert loaded.public_key().public_bytes_raw() == expected_public
    assert expected_public == _b64url_decode(MUX_REF_JWT_PUBLIC_B64URL)


# --- properties -------------------------------------------------------------------


def test_gateway_token_is_always_32_alphanumeric_chars() -> None:
    for i, key in enumerate(MASTER_KEYS):
        assert GATEWAY_TOKEN_RE.fullmatch(d.derive_tenant_keys(key).gateway_token), i


def test_different_labels_give_different_values() -> None:
    labels = [
        d.GATEWAY_TOKEN_LABEL,
        d.RCLONE_CRYPT_PASSWORD_LABEL,
        d.RCLONE_CRYPT_SALT_LABEL,
        d.DEVICE_IDENTITY_LABEL,
        d.MUX_REGISTER_KEY_LABEL,
        d.MUX_ADMIN_TOKEN_LABEL,
        d.MUX_JWT_KEY_LABEL,
    ]
    for key in MASTER_KEYS[:50]:
        outputs = {d.hkdf_sha256(key, label) for label in labels}
        assert len(outputs) == len(labels)


def test_different_master_keys_give_different_values() -> None:
    derived = [d.derive_tenant_keys(k) for k in MASTER_KEYS]
    assert len({k.gateway_token for k in derived}) == len(MASTER_KEYS)
    assert len({k.openclaw_id for k in derived}) == len(MASTER_KEYS)
    assert len({d.derive_mux_keys(k).register_key for k in MASTER_KEYS[:50]}) == 50


def test_openclaw_id_and_public_key_are_consistent() -> None:
    for key in MASTER_KEYS[:50]:
        keys = d.derive_tenant_keys(key)
        raw = _b64url_decode(keys.device_public_key_b64url)
        assert raw == d.device_public_key_raw(key)
        assert len(raw) == 32
        assert "=" not in keys.device_public_key_b64url
        assert keys.openclaw_id == hashlib.sha256(raw).hexdigest()
        assert re.fullmatch(r"[0-9a-f]{64}", keys.openclaw_id)


def test_tenant_keys_repr_redacts_secrets_and_shows_public_values() -> None:
    keys = d.derive_tenant_keys(REF_MASTER_KEY)
    secrets = (keys.gateway_token, keys.rclone_crypt_password, keys.rclone_crypt_salt)
    for text in (repr(keys), str(keys), f"{keys}", repr([keys]), repr({"k": keys})):
        for secret in (*secrets, REF_MASTER_KEY):
            assert secret not in text
        assert "<redacted>" in text
        assert keys.openclaw_id in text
        assert keys.device_public_key_b64url in text


def test_mux_keys_repr_redacts_every_field() -> None:
    keys = d.derive_mux_keys(MUX_TEST_MASTER_KEY)
    pem_body = keys.jwt_private_key_pem.splitlines()[1]
    for text in (repr(keys), str(keys), f"{keys}", repr([keys])):
        for secret in (keys.register_key, keys.admin_token, pem_body, MUX_TEST_MASTER_KEY):
            assert secret not in text
        assert text.count("<redacted>") == 3


# --- input errors never echo the key ----------------------------------------------


@pytest.mark.parametrize(
    ("bad_key", "error"),
    [
        ("", ValueError),
        ("secret-before\x00secret-after", ValueError),
        ("secret-before\ud800secret-after", ValueError),  # lone surrogate
        (b"secret-bytes-key", TypeError),
        (None, TypeError),
    ],
    ids=["empty", "nul", "lone-surrogate", "bytes", "none"],
)
@pytest.mark.parametrize(
    "fn",
    [d.derive_tenant_keys, d.derive_mux_keys, d.gateway_token, d.mux_jwt_private_key_pem],
    ids=lambda fn: fn.__name__,
)
def test_unusable_master_key_is_rejected_without_echoing_it(
    fn: object, bad_key: object, error: type[Exception]
) -> None:
    with pytest.raises(error) as info:
        fn(bad_key)  # type: ignore[operator]
    exc = info.value
    assert "secret" not in str(exc)
    assert "secret" not in repr(exc.args)
    # No chained exception may carry the key either (UnicodeEncodeError.object would).
    assert exc.__cause__ is None
    assert exc.__context__ is None
