"""How the emulated Phala Cloud API answers an error.

The real API is FastAPI: a business error answers `{"detail": {...}}` with a structured
object (`error_code` "ERR-<module>-<number>", `message`, `details`, `suggestions`,
`links`), a validation error answers 422 with FastAPI's list
`{"detail": [{"loc", "msg", "type"}]}`, and some errors carry a plain string `detail`.
Sources: the error parsing bundled in the pinned CLI (npm phala@1.1.18,
node_modules/phala/dist/index.js: the `detail` schema accepting a string, a list of
`{msg, type, loc}` or an object, and the structured-error class reading `error_code`,
`details`, `suggestions`, `links`); docs.phala.com "error codes" (see FIDELITY.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

# Codes this emulator answers with. Where FIDELITY.md marks a code as a guess, the
# driver must not depend on it: it reads the status and re-reads the CVM instead.
ERR_DUPLICATE_NAME = "ERR-01-004"
ERR_CVM_NOT_FOUND = "ERR-02-001"
ERR_SEVERAL_CVMS_NAMED = "ERR-03-002"
ERR_INSTANCE_TYPE = "ERR-01-006"
ERR_KMS = "ERR-01-007"
ERR_COMPOSE_TOO_LARGE = "ERR-01-008"
ERR_ENV_UNREADABLE = "ERR-01-009"
ERR_PROVISION_UNKNOWN = "ERR-01-010"
ERR_RATE_LIMITED = "ERR-00-429"


class ApiError(Exception):
    """An error answer: `status` with the JSON body `{"detail": detail}`."""

    def __init__(self, status: int, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(str(detail))
        self.status = int(status)
        self.detail = detail
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}


@dataclass(frozen=True)
class StructuredError:
    """The object form of `detail`."""

    error_code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)

    def as_detail(self) -> dict[str, Any]:
        return {
            "error_code": self.error_code,
            "message": self.message,
            "details": list(self.details),
            "suggestions": list(self.suggestions),
            "links": list(self.links),
        }


def structured(
    status: int,
    code: str,
    message: str,
    *,
    suggestions: tuple[str, ...] = (),
    details: tuple[dict[str, Any], ...] = (),
    headers: dict[str, str] | None = None,
) -> ApiError:
    error = StructuredError(code, message, list(details), list(suggestions))
    return ApiError(status, error.as_detail(), headers)


def validation_error(location: list[str], message: str) -> ApiError:
    """FastAPI's 422 body; the CLI prints "Validation failed: <msg>"."""
    return ApiError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        [{"loc": location, "msg": message, "type": "value_error"}],
    )


def not_found(identifier: str) -> ApiError:
    return structured(HTTPStatus.NOT_FOUND, ERR_CVM_NOT_FOUND, f"CVM not found: {identifier}")


class CvmNotFoundError(ApiError, LookupError):
    """404 for a client; a plain LookupError for tests calling the inspection helpers."""

    def __init__(self, identifier: str) -> None:
        error = not_found(identifier)
        super().__init__(error.status, error.detail)


def operation_in_progress(name: str, operation: str) -> ApiError:
    """409 while another operation runs on the CVM.

    A plain string detail, without an error code: that is the form the Python SDK
    (PyPI phala-cloud) classifies as "operation in progress" (see FIDELITY.md)."""
    return ApiError(
        HTTPStatus.CONFLICT,
        f"Another operation ({operation}) is in progress on CVM {name}; retry when it ends",
    )
