"""The env encryption a CVM's app key opens: what `phala deploy` sends as `encrypted_env`.

Faithful to npm `@phala/dstack-sdk` `encryptEnvVars` (bundled in the pinned CLI) and dstack
`dstack-util/src/crypto.rs`: hex(ephemeral X25519 public key[32] ‖ IV[12] ‖ AES-256-GCM
ciphertext with its 16-byte tag), the raw X25519 shared secret used as the AES key (no
KDF), and the plaintext JSON `{"env": [{"key", "value"}, ...]}`. The real API cannot read
the env (only the TEE can); the emulator decrypts it so a test can check what a CVM would
receive, and refuses what it cannot decrypt so a broken client fails loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class EnvDecryptionError(ValueError):
    """The `encrypted_env` hex did not decrypt with the app's key."""


@dataclass
class AppEnvKeypair:
    """Per-app X25519 key the CLI encrypts env vars to (kept as raw bytes so it deep-copies)."""

    private_bytes: bytes

    @classmethod
    def generate(cls) -> AppEnvKeypair:
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    @property
    def public_hex(self) -> str:
        public = X25519PrivateKey.from_private_bytes(self.private_bytes).public_key()
        return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def decrypt_env(self, encrypted_env_hex: str) -> list[tuple[str, str]]:
        """The ordered (key, value) pairs exactly as sent, duplicates included."""
        try:
            blob = bytes.fromhex(encrypted_env_hex.removeprefix("0x"))
        except ValueError as error:
            raise EnvDecryptionError("encrypted_env is not valid hex") from error
        if len(blob) < 32 + 12 + 16:
            raise EnvDecryptionError("encrypted_env is too short")
        ephemeral_public, iv, ciphertext = blob[:32], blob[32:44], blob[44:]
        private = X25519PrivateKey.from_private_bytes(self.private_bytes)
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        except ValueError as error:  # e.g. a low-order (all-zero) ephemeral key
            raise EnvDecryptionError(f"encrypted_env has an unusable key: {error}") from error
        try:
            plaintext = AESGCM(shared).decrypt(iv, ciphertext, None)
        except InvalidTag as error:
            raise EnvDecryptionError("encrypted_env failed authentication") from error
        try:
            document = json.loads(plaintext.decode("utf-8"))
            return [(str(item["key"]), str(item["value"])) for item in document["env"]]
        except (ValueError, KeyError, TypeError) as error:
            raise EnvDecryptionError(f"encrypted_env is not an env document: {error}") from error
