"""Domain errors. Each carries its HTTP status; one handler in channels/api renders them."""

from __future__ import annotations

from typing import Any


class CRMError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class Unauthorized(CRMError):
    status_code = 401
    code = "unauthorized"


class PermissionDenied(CRMError):
    status_code = 403
    code = "forbidden"


class NotFound(CRMError):
    status_code = 404
    code = "not_found"


class Duplicate(CRMError):
    """The record already exists; `existing_id` names it so the caller can use it."""

    status_code = 409
    code = "duplicate"


class Conflict(CRMError):
    status_code = 409
    code = "conflict"


class ValidationFailed(CRMError):
    status_code = 422
    code = "validation_error"


class SchemaNotReady(CRMError):
    """The database's schema is missing or at another revision than the code's; the message says
    what to run (`crm setup`, `crm migrate`)."""

    status_code = 503
    code = "schema_not_ready"


class TooLarge(CRMError):
    """An upload over its size cap (refused as it streams in, before it is read whole)."""

    status_code = 413
    code = "too_large"
