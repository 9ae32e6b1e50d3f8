"""Errors a user can cause, with the status and the one error shape the API answers with:
``{"detail": "...", "code": "...", "fields": {...}}``."""

from typing import Any


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self, detail: str, *, code: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.fields = fields or {}

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, "fields": self.fields}


class NotAuthenticated(ServiceError):
    status = 401
    code = "not_authenticated"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class InvalidInput(ServiceError):
    status = 422
    code = "invalid"


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after
