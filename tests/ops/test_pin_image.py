"""`ops pin-image` against a real registry (Debian's docker-registry) on loopback, filled
by a real client (skopeo) from OCI layouts built here; skopeo also judges the digest."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.pin_image import DOCKER_HUB_API_HOST, parse_reference
from tests.ops.ops_process import REPO, run_ops
from tests.support.oci_registry import (
    AnonymousTokenServer,
    OciLayout,
    RunningRegistry,
    TokenKeys,
    running_registry,
    skopeo,
    write_policy,
)
from tests.support.ssh_gateway import free_port


@dataclass(frozen=True)
class Registries:
    open: RunningRegistry
    token_auth: RunningRegistry
    tokens: AnonymousTokenServer
    policy: Path
    single_digest: str  # the one-platform manifest pushed as team/app:1.0
    index_digest: str  # the two-platform index pushed as team/app:multi
    amd64_digest: str


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    root = tmp_path_factory.mktemp("registry")
    policy = write_policy(root)
    layout = OciLayout(root / "layout")
    amd64 = layout.image("amd64", b"hello from amd64\n")
    arm64 = layout.image("arm64", b"hello from arm64\n")
    index = layout.index([amd64, arm64])
    layout.tag(amd64, "single")
    layout.tag(index, "multi")
    keys = TokenKeys.generate()
    with (
        AnonymousTokenServer(keys) as tokens,
        running_registry(root / "open") as open_registry,
        running_registry(
            root / "token", token_realm=tokens.realm, token_keys=keys
        ) as token_registry,
    ):
        for registry in (open_registry, token_registry):
            destination = f"docker://{registry.host}/team/app"
            skopeo(
                "copy",
                "--dest-tls-verify=false",
                f"oci:{layout.root}:single",
                f"{destination}:1.0",
                policy=policy,
            )
            skopeo(
                "copy",
                "--all",
                "--dest-tls-verify=false",
                f"oci:{layout.root}:multi",
                f"{destination}:multi",
                policy=policy,
            )
        yield Registries(
            open_registry,
            token_registry,
            tokens,
            policy,
            single_digest=amd64["digest"],
            index_digest=index["digest"],
            amd64_digest=amd64["digest"],
        )


def run_pin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_ops("pin-image", *args, env=env)


def skopeo_digests(registries: Registries, reference: str) -> tuple[str, str]:
    """(sha256 of `skopeo inspect --raw`, `skopeo inspect --format {{.Digest}}`)."""
    raw = skopeo("inspect", "--raw", "--tls-verify=false", reference, policy=registries.policy)
    reported = skopeo(
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        reference,
        policy=registries.policy,
    )
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest(), reported.strip()


def test_single_arch_tag_pins_to_the_manifest_digest_skopeo_reports(
    registries: Registries,
) -> None:
    host = registries.open.host
    result = run_pin(f"http://{host}/team/app:1.0")
    assert result.returncode == 0, result.stderr
    raw_digest, reported = skopeo_digests(registries, f"docker://{host}/team/app:1.0")
    assert raw_digest == reported == registries.single_digest
    assert result.stdout == f"{host}/team/app@{reported}\n"


def test_multi_arch_tag_pins_to_the_index_digest_not_a_platform_manifest(
    registries: Registries,
) -> None:
    host = registries.open.host
    result = run_pin(f"http://{host}/team/app:multi")
    assert result.returncode == 0, result.stderr
    raw_digest, reported = skopeo_digests(registries, f"docker://{host}/team/app:multi")
    assert raw_digest == reported == registries.index_digest
    assert result.stdout == f"{host}/team/app@{registries.index_digest}\n"
    assert registries.amd64_digest not in result.stdout


def test_bearer_token_flow_gets_an_anonymous_pull_token_and_pins(
    registries: Registries,
) -> None:
    host = registries.token_auth.host
    url = f"http://{host}/v2/team/app/manifests/multi"
    with pytest.raises(urllib.error.HTTPError) as refused:  # the registry does demand a token
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    seen_before = len(registries.tokens.requests)

    result = run_pin(f"http://{host}/team/app:multi")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{host}/team/app@{registries.index_digest}\n"
    asked = registries.tokens.requests[seen_before:]
    assert asked == [{"scope": ["repository:team/app:pull"], "service": ["ops-test-registry"]}]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def test_unknown_tag_is_one_line_and_exit_1(registries: Registries) -> None:
    host = registries.open.host
    result = run_pin(f"http://{host}/team/app:2.0")
    assert result.returncode == 1
    assert one_line_error(result) == f"error: registry {host} has no tag '2.0' in team/app"


def test_unknown_repository_is_one_line_and_exit_1(registries: Registries) -> None:
    host = registries.open.host
    result = run_pin(f"http://{host}/team/ghost:1.0")
    assert result.returncode == 1
    assert one_line_error(result) == f"error: registry {host} has no repository team/ghost"


def test_registry_down_is_one_line_and_exit_1() -> None:
    port = free_port()  # nothing listens there
    result = run_pin(f"http://127.0.0.1:{port}/team/app:1.0")
    assert result.returncode == 1
    assert one_line_error(result).startswith(f"error: cannot reach registry 127.0.0.1:{port}: ")


def test_plain_http_to_a_remote_registry_is_refused_before_any_request() -> None:
    result = run_pin("http://registry.example.com/team/app:1.0")
    assert result.returncode == 2
    assert one_line_error(result) == (
        "error: image 'http://registry.example.com/team/app:1.0': refusing plain http to "
        "registry.example.com: a digest read over http can be altered on the way; only a "
        "loopback registry may use http://"
    )


def test_a_reference_without_a_tag_is_a_config_error() -> None:
    result = run_pin("h4x3rotab/openclaw-cvm")
    assert result.returncode == 2
    assert "has no tag" in one_line_error(result)


def test_docker_hub_names_map_to_registry_1_and_library() -> None:
    bare = parse_reference("nginx:1.27")
    assert (bare.registry, bare.repository, bare.scheme) == (
        DOCKER_HUB_API_HOST,
        "library/nginx",
        "https",
    )
    assert bare.pinned("sha256:" + "0" * 64) == "nginx@sha256:" + "0" * 64
    hub = parse_reference("docker.io/h4x3rotab/openclaw-cvm:latest")
    assert (hub.registry, hub.repository, hub.written_name) == (
        DOCKER_HUB_API_HOST,
        "h4x3rotab/openclaw-cvm",
        "docker.io/h4x3rotab/openclaw-cvm",
    )
    other = parse_reference("ghcr.io/org/img:v1")
    assert (other.registry, other.repository, other.base_url) == (
        "ghcr.io",
        "org/img",
        "https://ghcr.io",
    )


def fake_pulumi(tmp_path: Path, exit_code: int = 0) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$PWD" "$@" > {tmp_path / "pulumi-call.txt"}\n'
        + ("echo \"error: no stack named 'nope' found\" >&2\n" if exit_code else "")
        + f"exit {exit_code}\n"
    )
    script.chmod(0o755)
    return dict(os.environ) | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_set_runs_pulumi_config_set_on_the_chosen_key_in_the_project(
    registries: Registries, tmp_path: Path
) -> None:
    host = registries.open.host
    result = run_pin(
        f"http://{host}/team/app:multi",
        "--set",
        "muxImage",
        "--stack",
        "prod",
        env=fake_pulumi(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    pinned = f"{host}/team/app@{registries.index_digest}"
    assert result.stdout == f"{pinned}\n"
    call = (tmp_path / "pulumi-call.txt").read_text().splitlines()
    assert call == [
        str(REPO),
        "config",
        "set",
        "muxImage",
        pinned,
        "--non-interactive",
        "--stack",
        "prod",
    ]


def test_set_when_pulumi_fails_is_one_line_and_exit_1(
    registries: Registries, tmp_path: Path
) -> None:
    result = run_pin(
        f"http://{registries.open.host}/team/app:1.0",
        "--set",
        "openclawImage",
        "--stack",
        "nope",
        env=fake_pulumi(tmp_path, exit_code=255),
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --set: 'pulumi config set openclawImage' failed (exit 255): "
        "error: no stack named 'nope' found"
    )


def test_set_rejects_a_key_that_is_not_an_image() -> None:
    result = run_pin("nginx:1.27", "--set", "muxName")
    assert result.returncode == 2
    assert "invalid choice: 'muxName'" in one_line_error(result)


def test_the_pinned_value_passes_the_programs_own_image_check(registries: Registries) -> None:
    # components/settings.py refuses any image that is not <repo>@sha256:<64 hex>.
    from components.config_values import PINNED_IMAGE as _PINNED_IMAGE

    result = run_pin(f"http://{registries.open.host}/team/app:1.0")
    assert result.returncode == 0, result.stderr
    assert _PINNED_IMAGE.fullmatch(result.stdout.removesuffix("\n"))


def test_a_docker_content_digest_that_disagrees_with_the_body_is_refused() -> None:
    # A registry (or something on the way) announcing another digest than the
    # bytes it sent: neither is trusted.
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    body = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'

    class LyingRegistry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Docker-Content-Digest", "sha256:" + "f" * 64)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), LyingRegistry)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = f"127.0.0.1:{server.server_address[1]}"
        result = run_pin(f"http://{host}/team/app:1.0")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert result.returncode == 1
    assert one_line_error(result) == (
        f"error: registry {host} says team/app:1.0 is sha256:{'f' * 64}, but the manifest "
        f"it sent hashes to sha256:{hashlib.sha256(body).hexdigest()}"
    )
