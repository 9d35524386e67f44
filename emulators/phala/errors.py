"""How the emulated Phala Cloud API answers an error.

The API is FastAPI (docs.phala.com openapi.json): a validation error answers 422 with
FastAPI's list `{"detail": [{"loc", "msg", "type"}]}`; a business error carries a
structured object (`error_code` "ERR-<module>-<number>", `message`, `details`,
`suggestions`, `links`); some errors carry a plain string `detail` (a busy CVM's 409 has no
error code, which is how the Python and Go SDKs tell "operation in progress" apart).
Where the structured object sits is unsettled: the Python and Go SDKs read it at the top
level of the body only, the JS SDK and the CLI accept it at the top level or under
`detail`; `StructuredPlacement` chooses (FIDELITY.md).
Codes and messages: docs.phala.com "Error codes" (phala-docs 3633664,
phala-cloud/references/error-codes.mdx L27-95).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

ERR_DUPLICATE_CVM_NAME = "ERR-01-004"  # DuplicateCvmNameError, HTTP 409
ERR_INVALID_COMPOSE = "ERR-01-003"  # InvalidComposeFileError
ERR_INVALID_REQUEST = "ERR-02-008"  # InvalidRequestError
ERR_CVM_NOT_FOUND = "ERR-03-001"  # CvmNotFoundError, HTTP 404
ERR_SEVERAL_CVMS_NAMED = "ERR-03-002"  # MultipleCvmsWithSameNameError

BUSY_MESSAGE = "Another operation in progress"  # openapi.json, 409 of PATCH /cvms/{id}


class StructuredPlacement(enum.Enum):
    TOP_LEVEL = "top-level"  # {"error_code", "message", ...}: what the Python and Go SDKs read
    UNDER_DETAIL = "under-detail"  # {"detail": {"error_code", ...}}: the CLI reads this too


class ApiError(Exception):
    """An error answer: `status`, and `detail` as the body's `detail` (a string or a list),
    or a `StructuredError` placed as the behaviour says."""

    def __init__(
        self,
        status: int,
        detail: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(str(detail))
        self.status = int(status)
        self.detail = detail
        self.headers = dict(headers or {})

    def body(self, placement: StructuredPlacement) -> dict[str, Any]:
        if isinstance(self.detail, StructuredError):
            if placement is StructuredPlacement.TOP_LEVEL:
                return self.detail.as_body()
            return {"detail": self.detail.as_body()}
        return {"detail": self.detail}


@dataclass(frozen=True)
class StructuredError:
    error_code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)
    links: list[dict[str, str]] = field(default_factory=list)

    def as_body(self) -> dict[str, Any]:
        return {
            "error_code": self.error_code,
            "message": self.message,
            "details": list(self.details),
            "suggestions": list(self.suggestions),
            "links": list(self.links),
        }

    def __str__(self) -> str:
        return f"{self.error_code}: {self.message}"


def structured(
    status: int,
    code: str,
    message: str,
    *,
    suggestions: tuple[str, ...] = (),
    details: tuple[dict[str, Any], ...] = (),
    headers: dict[str, str] | None = None,
) -> ApiError:
    return ApiError(
        status, StructuredError(code, message, list(details), list(suggestions)), headers
    )


def validation_error(location: list[str], message: str) -> ApiError:
    """FastAPI's 422 body; the CLI prints "Validation failed: <msg>"."""
    return ApiError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        [{"loc": location, "msg": message, "type": "value_error"}],
    )


class CvmNotFoundError(ApiError, LookupError):
    """404 for a client; a plain LookupError for tests calling the inspection helpers."""

    def __init__(self, identifier: str) -> None:
        super().__init__(
            HTTPStatus.NOT_FOUND,
            StructuredError(ERR_CVM_NOT_FOUND, f"The requested CVM was not found: {identifier}"),
        )


def operation_in_progress() -> ApiError:
    """409 while another operation runs on the CVM: a plain detail, no error code."""
    return ApiError(HTTPStatus.CONFLICT, BUSY_MESSAGE)


def too_many_requests(retry_after_seconds: int) -> ApiError:
    return ApiError(
        HTTPStatus.TOO_MANY_REQUESTS,
        "Too Many Requests",
        {"Retry-After": str(retry_after_seconds)},
    )
