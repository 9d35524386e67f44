"""`ops pin-image <repo>:<tag>`: the digest a pull of that tag gets, as `<repo>@sha256:<hex>`.

Replaces the seed's build-pin-image.sh step of reading `docker inspect` RepoDigests
and pasting the result into the compose file. This asks the registry directly,
through the Docker Registry HTTP API v2 (the OCI distribution API):

* `GET /v2/<name>/manifests/<tag>` with an Accept header for the OCI image index,
  the Docker manifest list, the OCI manifest and the Docker v2 manifest: the four
  kinds a current pull accepts. For a multi-arch image the answer is the index (or
  list) itself, and its digest is the one `docker pull` records and the one every
  platform's pull starts from, so that is the digest pinned.
* The digest is the sha256 of the exact bytes returned. `Docker-Content-Digest`,
  when sent, must agree with it; a disagreement is an error, not a choice.
* On 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...` it gets an
  anonymous pull token from the realm and retries: Docker Hub's flow for public
  images. No credentials are read or sent; private images are out of scope.
* `docker.io`, `index.docker.io` and bare names go to `registry-1.docker.io`, and a
  one-part name gets `library/` (`nginx` is `library/nginx`), as docker does. The
  printed reference keeps the name as the operator wrote it.
* Transport: https, always, for registries and token realms. A reference may start
  with `http://` only for a loopback registry (127.0.0.1, ::1, localhost), e.g. one
  the operator runs locally or the tests run; plain http to anything else is
  refused, because a digest read over plain http could be forged on the way.

`--set openclawImage|muxImage` then runs `pulumi config set <key> <pinned>`
(with `--stack S` if given) in the project directory.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import re
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPMessage
from typing import IO, Any, Final, TextIO

from ops import ConfigError, OperationError
from ops.stack_outputs import PROJECT_ROOT

DOCKER_HUB_NAMES: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DOCKER_HUB_API_HOST: Final = "registry-1.docker.io"
MANIFEST_MEDIA_TYPES: Final = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
SETTABLE_KEYS: Final = ("openclawImage", "muxImage")
HTTP_TIMEOUT_SEC: Final = 30
PULUMI_TIMEOUT_SEC: Final = 120
MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024  # the distribution spec's manifest limit

# The distribution spec's grammar: path components and tags.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9-]+)*(?::\d+)?$")
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class PinImageError(OperationError):
    """The registry could not tell us the digest; one line, no secret."""


@dataclass(frozen=True)
class ImageReference:
    written_name: str  # the repository as the operator wrote it (without scheme or tag)
    registry: str  # host[:port] the API is at
    repository: str  # the name in /v2/<repository>/...
    tag: str
    scheme: str  # "https", or "http" for a loopback registry named with http://

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.registry}"

    def pinned(self, digest: str) -> str:
        return f"{self.written_name}@{digest}"


def is_loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_reference(text: str) -> ImageReference:
    """`[http(s)://][registry/]name:tag`; one-line ConfigError naming what is wrong."""
    scheme = "https"
    rest = text.strip()
    for prefix in ("https://", "http://"):
        if rest.startswith(prefix):
            scheme, rest = prefix[:-3], rest[len(prefix) :]
    if "@" in rest:
        raise ConfigError(f"image {text!r} is already pinned by digest; give <repo>:<tag>")
    name, separator, tag = rest.rpartition(":")
    if not separator or "/" in tag:
        raise ConfigError(f"image {text!r} has no tag; give <repo>:<tag>, e.g. nginx:1.27")
    if not _TAG.fullmatch(tag):
        raise ConfigError(f"image {text!r}: {tag!r} is not a valid tag")
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, parts[1:]
        if not _HOST.fullmatch(registry):
            raise ConfigError(f"image {text!r}: {registry!r} is not a registry host")
    else:
        registry, path = "docker.io", parts
    if not path or not all(_COMPONENT.fullmatch(part) for part in path):
        raise ConfigError(
            f"image {text!r}: the repository must be lowercase letters, digits and . _ - "
            "separated by /"
        )
    repository = "/".join(path)
    if registry in DOCKER_HUB_NAMES:
        registry = DOCKER_HUB_API_HOST
        if len(path) == 1:
            repository = f"library/{repository}"
    if scheme == "http" and not is_loopback_host(registry):
        raise ConfigError(
            f"image {text!r}: refusing plain http to {registry}: a digest read over http "
            "can be altered on the way; only a loopback registry may use http://"
        )
    return ImageReference(name, registry, repository, tag, scheme)


def _require_safe_url(url: str, what: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    if parsed.scheme == "https" or (parsed.scheme == "http" and is_loopback_host(host)):
        return
    raise PinImageError(f"refusing {what} {url!r}: only https (or http to loopback) is allowed")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to https (or loopback http): no downgrade on the way."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        _require_safe_url(newurl, "a redirect to")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass
class _Answer:
    status: int
    headers: Message
    body: bytes


class RegistryClient:
    def __init__(self, timeout: float = HTTP_TIMEOUT_SEC) -> None:
        self.timeout = timeout
        # No proxy handler from the environment is dropped: an operator's proxy
        # applies as usual; tests clear the proxy variables.
        self._opener = urllib.request.build_opener(_SafeRedirects())

    def get(self, url: str, headers: Mapping[str, str], where: str) -> _Answer:
        request = urllib.request.Request(url, headers=dict(headers), method="GET")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = response.read(MAX_MANIFEST_BYTES + 1)
                return _Answer(response.status, response.headers, body)
        except urllib.error.HTTPError as error:
            body = error.read(64 * 1024) if error.fp is not None else b""
            return _Answer(error.code, error.headers, body)
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, socket.timeout | TimeoutError):
                raise PinImageError(f"{where} did not answer within {self.timeout:g} s") from None
            text = getattr(reason, "strerror", None) or str(reason)
            raise PinImageError(f"cannot reach {where}: {text}") from None
        except (TimeoutError, OSError) as error:
            raise PinImageError(f"cannot reach {where}: {error.strerror or error}") from None


def _registry_error_code(body: bytes) -> str | None:
    try:
        document = json.loads(body or b"{}")
        return str(document["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _anonymous_token(
    client: RegistryClient, challenge: str, reference: ImageReference
) -> str | None:
    scheme, _, params_text = challenge.partition(" ")
    if scheme.lower() != "bearer":
        return None
    params = dict(_CHALLENGE_PARAM.findall(params_text))
    realm = params.get("realm")
    if not realm:
        return None
    _require_safe_url(realm, "the token realm")
    query = {"scope": params.get("scope") or f"repository:{reference.repository}:pull"}
    if params.get("service"):
        query["service"] = params["service"]
    separator = "&" if "?" in realm else "?"
    url = f"{realm}{separator}{urllib.parse.urlencode(query)}"
    realm_host = urllib.parse.urlsplit(realm).netloc
    answer = client.get(url, {"Accept": "application/json"}, f"the token service {realm_host}")
    if answer.status != 200:
        raise PinImageError(
            f"the token service {realm_host} refused an anonymous pull token "
            f"for {reference.repository} (HTTP {answer.status})"
        )
    try:
        document = json.loads(answer.body)
        token = document.get("token") or document.get("access_token")
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str) or not token:
        raise PinImageError(f"the token service {realm_host} answered without a token")
    return token


def resolve_digest(reference: ImageReference, client: RegistryClient | None = None) -> str:
    """`sha256:<hex>` of the manifest (or index) a pull of the tag gets."""
    client = client or RegistryClient()
    name = f"{reference.repository}:{reference.tag}"
    url = f"{reference.base_url}/v2/{reference.repository}/manifests/{reference.tag}"
    where = f"registry {reference.registry}"
    headers = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES), "User-Agent": "openclaw-phala-ops"}
    answer = client.get(url, headers, where)
    if answer.status == 401:
        token = _anonymous_token(client, answer.headers.get("WWW-Authenticate", ""), reference)
        if token is None:
            raise PinImageError(
                f"{where} wants credentials for {reference.repository}; pin-image reads "
                "public images anonymously only"
            )
        headers = headers | {"Authorization": f"Bearer {token}"}
        answer = client.get(url, headers, where)
    if answer.status in (401, 403):
        # Docker Hub answers an unknown repository like a private one.
        raise PinImageError(
            f"{where} denied {reference.repository}: it does not exist or is not public"
        )
    if answer.status == 404:
        if _registry_error_code(answer.body) != "NAME_UNKNOWN":
            # The reference registry says MANIFEST_UNKNOWN for an unknown repository
            # too; its tag list tells the two apart.
            tags_url = f"{reference.base_url}/v2/{reference.repository}/tags/list"
            tags = client.get(tags_url, headers, where)
            if not (tags.status == 404 and _registry_error_code(tags.body) == "NAME_UNKNOWN"):
                raise PinImageError(
                    f"{where} has no tag {reference.tag!r} in {reference.repository}"
                )
        raise PinImageError(f"{where} has no repository {reference.repository}")
    if answer.status != 200:
        code = _registry_error_code(answer.body)
        raise PinImageError(
            f"{where} answered HTTP {answer.status}{f' ({code})' if code else ''} for {name}"
        )
    if len(answer.body) > MAX_MANIFEST_BYTES:
        raise PinImageError(f"{where} sent a manifest for {name} larger than 4 MiB")
    media_type = (answer.headers.get("Content-Type") or "").split(";")[0].strip()
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise PinImageError(
            f"{where} sent a {media_type or 'untyped'} manifest for {name}; expected an "
            "OCI or Docker v2 manifest or index"
        )
    digest = "sha256:" + hashlib.sha256(answer.body).hexdigest()
    announced = (answer.headers.get("Docker-Content-Digest") or "").strip()
    if announced and announced != digest:
        raise PinImageError(
            f"{where} says {name} is {announced}, but the manifest it sent hashes to {digest}"
        )
    return digest


def pulumi_config_set_command(key: str, value: str, stack: str | None) -> list[str]:
    command = ["pulumi", "config", "set", key, value, "--non-interactive"]
    if stack:
        command += ["--stack", stack]
    return command


def set_config(key: str, value: str, stack: str | None) -> None:
    command = pulumi_config_set_command(key, value, stack)
    try:
        completed = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT_SEC,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError("--set: the Pulumi CLI ('pulumi') is not on PATH") from None
    except subprocess.TimeoutExpired:
        raise OperationError(
            f"--set: 'pulumi config set {key}' did not finish within {PULUMI_TIMEOUT_SEC} s"
        ) from None
    if completed.returncode != 0:
        lines = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
        reason = lines[-1][:300] if lines else "no error message"
        raise OperationError(
            f"--set: 'pulumi config set {key}' failed (exit {completed.returncode}): {reason}"
        )


def run_pin_image(arguments: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if arguments.stack and not arguments.set:
        raise ConfigError("--stack only applies with --set openclawImage|muxImage")
    reference = parse_reference(arguments.image)
    pinned = reference.pinned(resolve_digest(reference))
    print(pinned, file=stdout)
    if arguments.set:
        set_config(arguments.set, pinned, arguments.stack)
        stack_label = f"stack {arguments.stack!r}" if arguments.stack else "the selected stack"
        print(f"ops: set {arguments.set} in {stack_label}", file=stderr)
    return 0


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    pin = commands.add_parser(
        "pin-image",
        help="resolve <repo>:<tag> to the digest a pull gets; print <repo>@sha256:<hex>",
        description="Ask the image's registry (HTTP API v2, anonymous token for public "
        "images) which digest the tag points at: the index digest for a multi-arch image. "
        "Prints <repo>@sha256:<64 hex>; with --set, stores it with `pulumi config set`.",
    )
    pin.add_argument("image", metavar="REPO:TAG", help="e.g. h4x3rotab/openclaw-cvm:latest")
    pin.add_argument("--set", choices=SETTABLE_KEYS, help="also set this config key to the result")
    pin.add_argument("--stack", metavar="NAME", help="with --set: the stack (default: selected)")
    pin.set_defaults(handler=run_pin_image)
