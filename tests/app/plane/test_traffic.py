"""The traffic decision: explicit versions and labels, canary share, sticky sessions, shadow."""

from __future__ import annotations

import math

import pytest

from app.plane.serving_state import ServingState
from app.plane.traffic import Route, UnknownLabel, choose, session_bucket

STATE = ServingState({"stable": 3, "canary": 4, "shadow": 5, "beta": 4}, 0.1)


def test_no_labels_is_the_default_version() -> None:
    assert choose(ServingState(), "m", 7) == Route(7, "default", None)


def test_explicit_version_and_labels() -> None:
    assert choose(STATE, "m", 9, requested=2) == Route(2, "explicit", 5)
    assert choose(STATE, "m", 9, requested="beta") == Route(4, "beta", 5)
    assert choose(STATE, "m", 9, requested="stable") == Route(3, "stable", 5)
    # Asking for the shadow version itself: it answers, so nothing shadows it.
    assert choose(STATE, "m", 9, requested="shadow") == Route(5, "shadow", None)
    # 'stable' with no stable label is the default version.
    assert choose(ServingState(), "m", 9, requested="stable") == Route(9, "stable", None)
    with pytest.raises(UnknownLabel, match="labels: beta, canary, shadow, stable"):
        choose(STATE, "m", 9, requested="gamma")


def test_canary_share_per_request_uses_the_draw() -> None:
    assert choose(STATE, "m", 9, draw=lambda: 0.05).version == 4
    assert choose(STATE, "m", 9, draw=lambda: 0.1).version == 3
    zero = ServingState({"stable": 3, "canary": 4}, 0.0)
    assert choose(zero, "m", 9, draw=lambda: 0.0).version == 3
    # Without a stable label the rest goes to the default (newest) version.
    assert choose(ServingState({"canary": 4}, 0.5), "m", 9, draw=lambda: 0.9).version == 9


def test_sessions_are_sticky_and_split_by_the_share() -> None:
    sessions = [f"conversation-{i}" for i in range(4000)]
    first = [choose(STATE, "m", 9, session=s).version for s in sessions]
    again = [choose(STATE, "m", 9, session=s, draw=lambda: 0.0).version for s in sessions]
    assert first == again  # the draw is ignored with a session: stickiness
    share = first.count(4) / len(first)
    sd = math.sqrt(0.1 * 0.9 / len(first))
    assert abs(share - 0.1) < 4 * sd
    # Raising the share only moves sessions onto the canary.
    wider = ServingState(STATE.labels, 0.3)
    moved = [choose(wider, "m", 9, session=s).version for s in sessions]
    assert all(m == 4 for f, m in zip(first, moved, strict=True) if f == 4)
    # The bucket depends on the model too, so two models split conversations independently.
    assert session_bucket("a", "s1") != session_bucket("b", "s1")
    assert 0 <= session_bucket("m", "") < 1
