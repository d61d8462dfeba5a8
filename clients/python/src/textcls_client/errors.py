"""The client's exceptions: one class per HTTP status the service answers, and transport faults."""

from __future__ import annotations

from typing import Any


class TextclsError(Exception):
    """Base of every error this package raises."""


class TransportError(TextclsError):
    """No HTTP answer: the connection failed or timed out (after any retries)."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.request_id = request_id


class APIError(TextclsError):
    """The service answered with an error status; ``detail`` is its message."""

    status_code: int = 0

    def __init__(
        self,
        status_code: int,
        detail: Any,
        request_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.request_id = request_id
        self.retry_after_s = retry_after_s


class BadRequest(APIError):
    """400: e.g. an invalid X-Request-ID, or a body that is not UTF-8 JSON."""


class Unauthorized(APIError):
    """401: no API key, or one that matches no client."""


class Forbidden(APIError):
    """403: the key is valid but may not do this."""


class NotFound(APIError):
    """404: unknown model or version, or (feedback) no such logged prediction."""


class PayloadTooLarge(APIError):
    """413: the body is over the service's TEXTCLS_MAX_BODY_BYTES."""


class InvalidInput(APIError):
    """422: the request breaks a rule (blank or too long text, too many texts, bad field)."""


class RateLimited(APIError):
    """429: over this client's rate limit; ``retry_after_s`` says when to come back."""


class ServerError(APIError):
    """500 and other 5xx answers without a class of their own."""


class ServiceUnavailable(ServerError):
    """503: no model ready yet, the batch queue is full, or the prediction log is off."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    422: InvalidInput,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_class(status_code: int) -> type[APIError]:
    """The exception class for an error status."""
    cls = _BY_STATUS.get(status_code)
    if cls is not None:
        return cls
    return ServerError if status_code >= 500 else APIError
