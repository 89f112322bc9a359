"""API errors: every error answer is ``{"error": {"code", "message"}}`` with its status."""

from __future__ import annotations

from oracle.errors import UserError

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         408: "timeout", 413: "too_large", 415: "unsupported_media_type", 422: "bad_request",
         429: "rate_limited", 500: "internal", 503: "busy"}


class ApiError(UserError):
    """An answer other than success, raised by a handler (or the gateway's checks) and turned
    into the JSON error body by the app's exception handler."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}
