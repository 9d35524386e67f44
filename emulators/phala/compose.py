"""The app-compose a CVM runs, its hash, and the ports its compose publishes.

The API wraps the docker-compose text the client sends into a dstack app-compose
(`allowed_envs`, `docker_compose_file`, feature flags, `name`, ...), and `compose_hash` is a
SHA-256 over a JSON serialisation of it. Which serialisation the backend uses is not
published (dstack `vmm/src/app.rs` hashes the raw app-compose.json bytes; the SDK exports a
compact-JSON `getComposeHash` and uses an indented variant internally). The emulator uses
the indented one; clients must treat the hash as opaque, which the driver does.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any


def build_app_compose(
    *,
    name: str,
    docker_compose_file: str,
    allowed_envs: Sequence[str],
    public_logs: bool,
    public_sysinfo: bool,
    pre_launch_script: str | None,
    storage_fs: str | None,
) -> dict[str, Any]:
    """The dstack app-compose the API would build around a docker-compose text."""
    app_compose: dict[str, Any] = {
        "allowed_envs": list(allowed_envs),
        "docker_compose_file": docker_compose_file,
        "features": ["kms", "tproxy-net"],
        "gateway_enabled": True,
        "kms_enabled": True,
        "local_key_provider_enabled": False,
        "manifest_version": 2,
        "name": name,
        "no_instance_id": False,
        "public_logs": public_logs,
        "public_sysinfo": public_sysinfo,
        "public_tcbinfo": True,
        "runner": "docker-compose",
        "secure_time": False,
    }
    if pre_launch_script:
        app_compose["pre_launch_script"] = pre_launch_script
    if storage_fs:
        app_compose["storage_fs"] = storage_fs
    return app_compose


def canonical_compose_json(app_compose: Mapping[str, Any]) -> str:
    """Keys sorted at every depth, indented by 4, then every `": ` rewritten to `":` (inside
    string values too: the SDK's quirk, kept on purpose)."""
    cleaned = dict(app_compose)
    if not cleaned.get("pre_launch_script"):
        cleaned.pop("pre_launch_script", None)
    text = json.dumps(_sort_keys_deep(cleaned), indent=4, ensure_ascii=False)
    return text.replace('": ', '":')


def compose_hash_of(app_compose: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_compose_json(app_compose).encode("utf-8")).hexdigest()


def _sort_keys_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sort_keys_deep(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sort_keys_deep(item) for item in value]
    return value


def published_ports(docker_compose: str) -> list[int]:
    """Host ports published in a compose file, best effort (no YAML parser needed).

    Only fills `endpoints`/`public_urls` (`https://<app_id>-<port>.<domain>`: the gateway
    routes `<app_id>-<port>` to the port the CVM publishes, the host side). Understands the
    short syntax (`"8080:80"`, `127.0.0.1:8080:80`, `80/tcp`) and `published:`.
    """
    ports: list[int] = []
    in_ports_block = False
    block_indent = 0
    for line in docker_compose.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("ports:"):
            in_ports_block, block_indent = True, indent
            continue
        if not in_ports_block or not stripped:
            continue
        if indent <= block_indent and not stripped.startswith("-"):
            in_ports_block = False
            continue
        published = re.match(r"""^-?\s*published:\s*["']?(\d+)""", stripped)
        short = re.match(r"""^-\s*["']?([\d.:]+?)(?:/\w+)?["']?\s*$""", stripped)
        port: int | None = None
        if published:
            port = int(published.group(1))
        elif short:
            parts = short.group(1).split(":")
            # ip:host:container -> host; host:container -> host; container -> container
            host_part = parts[1] if len(parts) == 3 else parts[0]
            port = int(host_part) if host_part.isdigit() else None
        if port is not None and port not in ports:
            ports.append(port)
    return ports
