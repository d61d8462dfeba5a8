"""The service's exception hierarchy; each error carries its HTTP status, mapped in one place."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service turns into an HTTP answer ``{"detail": ...}``."""

    status_code = 500

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class InvalidInput(ServiceError):
    """The request is well-formed JSON but breaks a rule (empty text, too many texts...)."""

    status_code = 422


class ModelNotFound(ServiceError):
    """No model of that name is in the repository."""

    status_code = 404


class VersionNotFound(ServiceError):
    """The model exists but the requested version is not being served."""

    status_code = 404


class ModelNotReady(ServiceError):
    """The model is known but has no warmed-up version to answer with (yet)."""

    status_code = 503


class QueueFull(ServiceError):
    """The batcher's bounded queue is full; the client should retry shortly."""

    status_code = 503

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


class PayloadTooLarge(ServiceError):
    """The request body is over ``TEXTCLS_MAX_BODY_BYTES``."""

    status_code = 413


class InferenceFailed(ServiceError):
    """The model raised while predicting a batch; a server-side fault, reported as 500."""

    status_code = 500


class DeviceError(Exception):
    """The requested inference device cannot be used; a start-up error, not an HTTP one."""
