"""A real image registry on loopback and real pushes into it, for `ops pin-image` tests.

The registry is Debian's `docker-registry` (docker/distribution 2.8, the reference
implementation of the Registry HTTP API v2) with filesystem storage in a temp folder,
listening on 127.0.0.1 only, optionally with token auth (`auth.token`, the scheme
Docker Hub uses: 401 + `WWW-Authenticate: Bearer realm,service,scope`, then a JWT
from the realm) served by `AnonymousTokenServer`, which hands any client a pull
token, as Docker Hub's auth service does for public images.

Images are built by hand as OCI image layouts (blobs, index.json, oci-layout) and
pushed with Debian's `skopeo copy`, a real registry client; `skopeo inspect` is the
independent judge of the digest.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import secrets
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.process_groups import stop_group
from tests.support.ssh_gateway import (
    LOOPBACK,
    free_port,
    start_in_own_group,
    wait_listening,
)

REGISTRY = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
TOKEN_SERVICE = "ops-test-registry"
TOKEN_ISSUER = "ops-test-token-issuer"


def _canonical(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


class OciLayout:
    """An OCI image layout folder built blob by blob."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self._refs: list[dict[str, Any]] = []

    def blob(self, data: bytes, media_type: str) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def image(self, architecture: str, content: bytes) -> dict[str, Any]:
        """A one-layer image manifest for linux/<architecture>; returns its descriptor."""
        tar_bytes = io.BytesIO()
        with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
            info = tarfile.TarInfo("hello.txt")
            info.size, info.mtime = len(content), 0
            archive.addfile(info, io.BytesIO(content))
        layer_tar = tar_bytes.getvalue()
        layer = self.blob(gzip.compress(layer_tar, mtime=0), OCI_LAYER)
        config = self.blob(
            _canonical(
                {
                    "architecture": architecture,
                    "os": "linux",
                    "config": {},
                    "rootfs": {
                        "type": "layers",
                        "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"],
                    },
                }
            ),
            OCI_CONFIG,
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [layer],
        }
        descriptor = self.blob(_canonical(manifest), OCI_MANIFEST)
        return descriptor | {"platform": {"architecture": architecture, "os": "linux"}}

    def index(self, manifests: list[dict[str, Any]]) -> dict[str, Any]:
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return self.blob(_canonical(document), OCI_INDEX)

    def tag(self, descriptor: dict[str, Any], tag: str) -> None:
        entry = {key: descriptor[key] for key in ("mediaType", "digest", "size")}
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self._refs.append(entry)
        (self.root / "index.json").write_text(
            json.dumps({"schemaVersion": 2, "manifests": self._refs})
        )


def skopeo(*args: str, policy: Path) -> str:
    completed = subprocess.run(
        ["skopeo", "--policy", str(policy), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"skopeo {args[0]} failed: {completed.stderr.strip()}")
    return completed.stdout


def write_policy(directory: Path) -> Path:
    policy = directory / "policy.json"
    policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
    return policy


# --- token auth ---------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenKeys:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls) -> TokenKeys:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def token(self, scope: str) -> str:
        """An ES256 JWT the registry accepts (x5c header chaining to its rootcertbundle),
        granting what `scope` asks: pull for pin-image, push for skopeo filling it."""
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [
                base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()
            ],
        }
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": "",
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 60,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": [{"type": kind, "name": name, "actions": actions.split(",")}] if kind else [],
        }
        signing_input = f"{_b64url(_canonical(header))}.{_b64url(_canonical(claims))}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{_b64url(signature)}"


class AnonymousTokenServer:
    """Docker Hub's auth service for public images: anyone gets a token, no credentials.

    Unlike Docker Hub it also grants push, so skopeo can fill the registry."""

    def __init__(self, keys: TokenKeys) -> None:
        self.keys = keys
        self.requests: list[dict[str, list[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                server.requests.append(query)
                body = json.dumps(
                    {"token": keys.token(query.get("scope", [""])[0]), "expires_in": 300}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/token"

    def __enter__(self) -> AnonymousTokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# --- the registry -------------------------------------------------------------------


@dataclass(frozen=True)
class RunningRegistry:
    host: str  # "127.0.0.1:<port>"
    token_keys: TokenKeys | None


@contextmanager
def running_registry(
    directory: Path, *, token_realm: str | None = None, token_keys: TokenKeys | None = None
) -> Iterator[RunningRegistry]:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    lines = [
        "version: 0.1",
        "log:",
        "  level: error",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {directory / 'storage'}",
        "http:",
        f"  addr: {LOOPBACK}:{port}",
    ]
    if token_realm is not None and token_keys is not None:
        bundle = directory / "token-root.pem"
        bundle.write_bytes(token_keys.certificate.public_bytes(serialization.Encoding.PEM))
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token_realm}",
            f"    service: {TOKEN_SERVICE}",
            f"    issuer: {TOKEN_ISSUER}",
            f"    rootcertbundle: {bundle}",
        ]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = directory / "registry.log"
    process = start_in_own_group([REGISTRY, "serve", str(config)], log)
    try:
        wait_listening(port, process, log)
        yield RunningRegistry(f"{LOOPBACK}:{port}", token_keys)
    finally:
        stop_group(process)
