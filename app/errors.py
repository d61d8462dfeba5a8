"""The service's domain errors: what went wrong, never how HTTP says it (app.edge.errors maps them).

Each leaf names one situation; the middle classes (``NotFound``, ``Unavailable``, ...) are the
kinds a transport cares about, so a new error only has to pick its kind.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a request can be answered with; ``detail`` is safe to show a client.

    ``retry_after_s`` says when trying again may succeed (None: not soon, or not at all).
    """

    def __init__(self, detail: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after_s = retry_after_s


# -- the kinds --------------------------------------------------------------------------


class InvalidInput(ServiceError):
    """The request is well-formed but breaks a rule (empty text, too many texts, bad label...)."""


class NotFound(ServiceError):
    """Something the request names does not exist."""


class Unavailable(ServiceError):
    """The service cannot answer this now; the same request may succeed later."""


class MalformedBody(ServiceError):
    """The body cannot be read as what its content type says (not UTF-8, nested too deep)."""


class Conflict(ServiceError):
    """The request does not fit the current state (a version that cannot load, say)."""


class Forbidden(ServiceError):
    """A known caller that may not do this."""


class PayloadTooLarge(ServiceError):
    """The request body is over ``TEXTCLS_MAX_BODY_BYTES``."""


class Unauthorized(ServiceError):
    """No API key, or one that matches no client."""


class RateLimited(ServiceError):
    """The client has used up its token bucket."""

    def __init__(self, client: str, retry_after_s: int) -> None:
        super().__init__(
            f"rate limit exceeded for client {client!r}; retry in {retry_after_s} s",
            retry_after_s=retry_after_s,
        )


class InferenceFailed(ServiceError):
    """The model raised while predicting a batch: a fault of the server, not of the request."""


# -- the situations ---------------------------------------------------------------------


class ModelNotFound(NotFound):
    """No model of that name is in the repository."""


class VersionNotFound(NotFound):
    """The model exists but the requested version is not being served."""


class PredictionNotFound(NotFound):
    """No logged prediction has this request id and index."""


class VersionUnloadable(Conflict):
    """An admin edit names a version that does not load here; nothing was changed."""


class StateConflict(Conflict):
    """An admin edit that does not fit the serving state (a canary share with no canary)."""


class AdminForbidden(Forbidden):
    """The admin routes are off (no admin key set), or a client's key was presented."""


class ModelNotReady(Unavailable):
    """The model is known but has no warmed-up version to answer with (yet)."""


class QueueFull(Unavailable):
    """The batcher's bounded queue is full; the client should retry shortly."""

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)


class PredictionNotLogged(Conflict):
    """The prediction was answered but not logged (sampled out), so it cannot be corrected."""


class PredictionLogOff(Unavailable):
    """Feedback needs the prediction log, and ``TEXTCLS_LOG_PREDICTIONS`` is false."""


class LogStoreUnavailable(Unavailable):
    """The prediction log database does not answer right now."""

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)


class ModelStoreUnavailable(Unavailable):
    """An edit of the serving state could not be written to the object store (unreachable, or
    other writers kept changing it); nothing was changed."""

    def __init__(self, detail: str, retry_after_s: int = 5) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)


class DeviceError(Exception):
    """The requested inference device cannot be used; a start-up error, not a request's."""
