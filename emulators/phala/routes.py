"""Which request does what: the emulated API's routes, authentication, rate limit and
injected faults, in front of the state in `models.py`.

Paths are relative to the API prefix (`/api/v1`). Authentication is the `X-API-Key` header
(the CLI sends no other), checked before anything else; the request log never keeps it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from emulators.phala import errors, responses
from emulators.phala.backend import PhalaBackend
from emulators.phala.errors import ApiError
from emulators.phala.logs import composition_view
from emulators.phala.models import STATUS_RUNNING, image_for

Reply = tuple[int, Any, dict[str, str]]


def route(
    backend: PhalaBackend,
    *,
    api_key: str,
    method: str,
    path: str,
    query: dict[str, list[str]],
    api_version: str,
    given_key: str | None,
    body: Any,
    identity: tuple[str, str],
    log_base_url: str,
    wait: Callable[[float], None],
) -> Reply:
    """Answer one request: (status, JSON-able body or None, extra headers)."""
    delay = backend.faults.take_delay(method, path)
    if delay > 0:
        wait(delay)
    if not given_key:
        raise ApiError(HTTPStatus.UNAUTHORIZED, "Not authenticated: missing X-API-Key header")
    if not hmac.compare_digest(given_key.encode(), api_key.encode()):
        raise ApiError(HTTPStatus.UNAUTHORIZED, "Invalid API key")
    retry_after = backend.rate_limiter.take(backend.behaviour.rate_limit)
    if retry_after is not None:
        raise errors.too_many_requests(retry_after)
    fault = backend.faults.take_error(method, path)
    if fault is not None:
        raise fault

    segments = [unquote(part) for part in path.strip("/").split("/") if part]
    behaviour = backend.behaviour
    match method, segments:
        case "GET", ["auth", "me"]:
            return HTTPStatus.OK, responses.auth_me_view(api_version, *identity), {}
        case "POST", ["cvms", "provision"]:
            pending = backend.provision(require_object(body))
            image = image_for(pending.request)
            view = responses.provision_view(pending, backend.gateway_base_domain, image)
            return HTTPStatus.OK, view, {}
        case "POST", ["cvms"]:
            return HTTPStatus.OK, responses.commit_view(backend.commit(require_object(body))), {}
        case "GET", ["cvms", identifier]:
            with backend.lock:
                cvm = backend.require(identifier)
                return HTTPStatus.OK, responses.cvm_view(cvm, api_version, behaviour), {}
        case "GET", ["cvms", identifier, "composition"]:
            with backend.lock:
                cvm = backend.require(identifier)
                view = composition_view(
                    app_id=cvm.app_id,
                    docker_compose_file=cvm.docker_compose_file,
                    running=cvm.status == STATUS_RUNNING,
                    public_logs=cvm.public_logs,
                    log_base_url=log_base_url,
                    created=int(datetime.fromisoformat(cvm.created_at).timestamp()),
                )
                return HTTPStatus.OK, view, {}
        case "GET", ["cvms", identifier, "compose_file"]:
            with backend.lock:
                return HTTPStatus.OK, dict(backend.require(identifier).app_compose), {}
        case "PATCH", ["cvms", identifier]:
            with backend.lock:
                cvm, allowed_changed = backend.update(identifier, require_object(body))
                return HTTPStatus.ACCEPTED, responses.update_view(cvm, allowed_changed), {}
        case "DELETE", ["cvms", identifier]:
            backend.delete(identifier)
            return HTTPStatus.NO_CONTENT, None, {}
        case "GET", ["apps"]:
            return HTTPStatus.OK, list_apps(backend, query, api_version), {}
        case "POST", ["status", "batch"]:
            return HTTPStatus.OK, status_batch(backend, require_object(body)), {}
    raise ApiError(HTTPStatus.NOT_FOUND, "Not Found")


def list_apps(
    backend: PhalaBackend, query: dict[str, list[str]], api_version: str
) -> dict[str, Any]:
    try:
        page = max(1, int((query.get("page") or ["1"])[0]))
        page_size = max(1, min(100, int((query.get("page_size") or ["50"])[0])))
    except ValueError:
        raise errors.validation_error(
            ["query", "page"], "Input should be a valid integer"
        ) from None
    search = (query.get("search") or [""])[0].lower()
    wanted_statuses = set(query.get("status") or [])
    selected = []
    with backend.lock:
        for cvm in sorted(backend.visible(), key=lambda c: c.numeric_id, reverse=True):
            haystack = " ".join((cvm.name, cvm.app_id, cvm.vm_uuid, cvm.instance_id)).lower()
            if search and search not in haystack:
                continue
            if wanted_statuses and cvm.status not in wanted_statuses:
                continue
            selected.append(cvm)
        total = len(selected)
        window = selected[(page - 1) * page_size : page * page_size]
        apps = [responses.app_view(cvm, api_version) for cvm in window]
    return {
        "dstack_apps": apps,
        "page": page,
        "page_size": page_size,
        "total": total,
        "total_pages": max(1, -(-total // page_size)),
    }


def status_batch(backend: PhalaBackend, body: dict[str, Any]) -> dict[str, Any]:
    uuids = body.get("vm_uuids")
    if not isinstance(uuids, list):
        raise errors.validation_error(["body", "vm_uuids"], "Field required")
    result: dict[str, Any] = {}
    with backend.lock:
        shown = {id(cvm) for cvm in backend.visible()}
        for requested in uuids:
            cvm = backend.find(str(requested))
            if cvm is not None and id(cvm) in shown:
                result[str(requested)] = responses.status_view(cvm)
    return result


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.validation_error(["body"], "Input should be a valid JSON object")
    return body
