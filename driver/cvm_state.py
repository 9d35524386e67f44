"""Reading a CVM as the API describes it: pure functions, no I/O.

The 2026-01-21 detail carries `status`, `in_progress` and `progress` (a non-null progress
means an operation runs), `compose_hash`, `gateway.base_domain`, and `compose_file` as an
object or as its JSON text (the Python SDK types it `str | dict`). A deleted CVM is either
gone (404) or still answers with status "deleted" and `deleted_at` set; while its delete
runs it says "deleting". FIDELITY.md in emulators/phala gives the sources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from driver import protocol
from driver.errors import DriverError

RUNNING = "running"
DELETING = "deleting"
DELETED = "deleted"
# Statuses a settled CVM (no operation in progress) cannot leave by itself. "stopped"
# counts only when settled: an update passes through it on its way to running.
FAILED_WHEN_SETTLED = frozenset({"error", "failed", "stopped", "terminated", "exited"})
MAX_COMPOSE_DOCUMENT_CHARS = 1_000_000


def status_of(cvm: Mapping[str, Any]) -> str:
    return str(cvm.get("status") or "unknown")


def in_progress(cvm: Mapping[str, Any]) -> bool:
    progress = cvm.get("progress")
    return cvm.get("in_progress") is True or (isinstance(progress, dict) and bool(progress))


def is_deleted(cvm: Mapping[str, Any]) -> bool:
    return status_of(cvm) == DELETED or bool(cvm.get("deleted_at"))


def is_dying(cvm: Mapping[str, Any]) -> bool:
    """Being deleted or already deleted: never adopted, never updated."""
    return status_of(cvm) == DELETING or is_deleted(cvm)


def settled_failure(cvm: Mapping[str, Any]) -> str | None:
    """The failure status of a CVM no operation will move on, else None."""
    status = status_of(cvm)
    if in_progress(cvm) or status not in FAILED_WHEN_SETTLED:
        return None
    return status


def compose_document(cvm: Mapping[str, Any]) -> dict[str, Any] | None:
    """The app-compose the CVM runs, from either form of `compose_file`."""
    compose_file = cvm.get("compose_file")
    if isinstance(compose_file, str) and len(compose_file) <= MAX_COMPOSE_DOCUMENT_CHARS:
        try:
            compose_file = json.loads(compose_file)
        except ValueError:
            return None
    return compose_file if isinstance(compose_file, dict) else None


def compose_text(cvm: Mapping[str, Any]) -> str:
    """The docker-compose text the CVM runs ("" when the API does not say)."""
    document = compose_document(cvm)
    if document is not None:
        return str(document.get("docker_compose_file") or "")
    return str(cvm.get("docker_compose_file") or "")


def runs_service(cvm: Mapping[str, Any], service: str) -> bool:
    return bool(re.search(rf"^  {re.escape(service)}:\s*$", compose_text(cvm), re.MULTILINE))


def serves(cvm: Mapping[str, Any], compose: str, env_names: Collection[str]) -> bool | None:
    """Whether the CVM runs this compose with (at least) these env names allowed; None when
    the API gives no app-compose to compare. At least: nothing says the service adds no
    names of its own, and waiting on an exact list it never shows would never end."""
    document = compose_document(cvm)
    if document is None:
        return None
    allowed = document.get("allowed_envs")
    names_allowed = not isinstance(allowed, list) or set(env_names) <= set(map(str, allowed))
    return document.get("docker_compose_file") == compose and names_allowed


def bare_app_id(app_id: str) -> str:
    return app_id.removeprefix("app_")


def base_domain(cvm: Mapping[str, Any]) -> str:
    gateway = cvm.get("gateway")
    if isinstance(gateway, dict) and gateway.get("base_domain"):
        return str(gateway["base_domain"])
    return str(cvm.get("gateway_domain") or "")


def cvm_id_of(cvm: Mapping[str, Any]) -> str:
    """The id to address this CVM by (its UUID, else its app id)."""
    if cvm.get("vm_uuid"):
        return str(cvm["vm_uuid"])
    if cvm.get("app_id"):
        return "app_" + bare_app_id(str(cvm["app_id"]))
    return str(cvm.get("id") or "")


def output_record(cvm: Mapping[str, Any]) -> dict[str, str]:
    """The driver's one stdout line (protocol.OUTPUT_FIELDS); nothing in it is secret."""
    record = {
        "cvmId": str(cvm.get("vm_uuid") or cvm.get("id") or ""),
        "appId": bare_app_id(str(cvm.get("app_id") or "")),
        "name": str(cvm.get("name") or ""),
        "status": status_of(cvm) if cvm.get("status") else "",
        "gatewayBaseDomain": base_domain(cvm),
        "composeHash": str(cvm.get("compose_hash") or ""),
    }
    assert tuple(record) == protocol.OUTPUT_FIELDS
    missing = [name for name in ("cvmId", "appId", "gatewayBaseDomain") if not record[name]]
    if missing:
        raise DriverError(f"phala returned a CVM without {', '.join(missing)}")
    return record
