"""Which version answers a request, and which shadows it: pure functions of the serving state.

A request that names a version (a number, or a label such as ``stable``) gets that version.
Otherwise the canary share decides between ``canary`` and the primary version (``stable``,
or the newest version when nothing is labelled ``stable``). With a ``session`` the draw is a
deterministic hash of model and session, so one conversation stays on one version while the
split is unchanged; and since a session goes to the canary when its hash is under the share,
raising the share only ever moves sessions onto the canary, never back and forth. Without a
session each request draws anew.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from app.plane.serving_state import CANARY, SHADOW, STABLE, ServingState

_SCALE = float(1 << 64)


class UnknownLabel(LookupError):
    """The request names a label the model does not have."""


@dataclass(frozen=True, slots=True)
class Route:
    """The version that answers, how it was chosen, and the version that shadows it (if any)."""

    version: int
    via: str  # "explicit", a label name, "stable", "canary" or "default"
    shadow: int | None = None


def session_bucket(model: str, session: str) -> float:
    """A number in [0, 1) fixed for (model, session): blake2b, so every replica agrees."""
    digest = hashlib.blake2b(f"{model}\x00{session}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def primary_version(state: ServingState, default: int) -> int:
    """The version answering unlabelled traffic outside the canary share."""
    return state.labels.get(STABLE, default)


def choose(
    state: ServingState,
    model: str,
    default: int,
    *,
    requested: int | str | None = None,
    session: str | None = None,
    draw: Callable[[], float] = random.random,
) -> Route:
    """The route of one request.

    ``default``: the version the repository serves when nothing is labelled ``stable``.
    ``requested``: the request's ``version`` (an int, or a label). UnknownLabel when it
    names a label that is not set.
    """
    if isinstance(requested, int):
        version, via = requested, "explicit"
    elif requested is not None:
        found = state.labels.get(requested)
        if found is None:
            if requested == STABLE:
                found = default  # with no stable label, the stable version is the default
            else:
                known = ", ".join(sorted(state.labels)) or "none"
                raise UnknownLabel(
                    f"model {model!r} has no version labelled {requested!r}; labels: {known}"
                )
        version, via = found, requested
    else:
        version = primary_version(state, default)
        via = STABLE if STABLE in state.labels else "default"
        canary = state.labels.get(CANARY)
        share = state.canary_share
        if canary is not None and share > 0 and canary != version:
            u = session_bucket(model, session) if session is not None else draw()
            if u < share:
                version, via = canary, CANARY
    shadow = state.labels.get(SHADOW)
    if shadow == version:
        shadow = None
    return Route(version, via, shadow)
