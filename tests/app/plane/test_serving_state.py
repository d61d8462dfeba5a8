"""The serving state file: validation, atomic replacement, edits, the edit lock."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from app.plane import serving_state as ss
from app.plane.serving_state import ServingState, StateError


def test_no_file_is_the_empty_state(tmp_path: Path) -> None:
    assert ss.read_state(tmp_path) == ss.EMPTY
    assert ss.stamp(tmp_path) is None


def test_written_state_reads_back_and_changes_the_stamp(tmp_path: Path) -> None:
    written = ss.write_state(tmp_path, ServingState({"stable": 1, "canary": 2}, 0.25))
    assert written.updated_at is not None
    first = ss.stamp(tmp_path)
    assert ss.read_state(tmp_path) == written
    raw = json.loads((tmp_path / "serving.json").read_text())
    assert raw["labels"] == {"canary": 2, "stable": 1} and raw["traffic"] == {"canary": 0.25}
    ss.write_state(tmp_path, ss.with_label(written, "shadow", 3))
    assert ss.stamp(tmp_path) != first
    assert ss.read_state(tmp_path).labels == {"stable": 1, "canary": 2, "shadow": 3}
    # No temporary file is left behind by the atomic replace.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serving.json"]


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        "{",
        '{"labels": {"Stable": 1}}',
        '{"labels": {"stable": 0}}',
        '{"labels": {"stable": true}}',
        '{"labels": {"stable": "1"}}',
        '{"traffic": {"canary": 1.5}}',
        '{"traffic": {"canary": -0.1}}',
        '{"schema_version": 7}',
    ],
)
def test_invalid_files_are_refused_naming_the_file(tmp_path: Path, body: str) -> None:
    (tmp_path / "serving.json").write_text(body)
    with pytest.raises(StateError, match="serving.json"):
        ss.read_state(tmp_path)


@pytest.mark.parametrize("label", ["stable", "a", "v2-beta_1", "x" * 32])
def test_valid_labels(label: str) -> None:
    assert ss.with_label(ss.EMPTY, label, 1).labels == {label: 1}


@pytest.mark.parametrize("label", ["", "2nd", "Stable", "a b", "x" * 33, "é"])
def test_invalid_labels(label: str) -> None:
    with pytest.raises(StateError, match="invalid label"):
        ss.with_label(ss.EMPTY, label, 1)


def test_canary_share_needs_a_canary_label() -> None:
    with pytest.raises(StateError, match="canary"):
        ss.with_canary_share(ss.EMPTY, 0.1)
    assert ss.with_canary_share(ss.EMPTY, 0).canary_share == 0
    state = ss.with_canary_share(ss.with_label(ss.EMPTY, "canary", 2), 0.1)
    assert state.canary_share == 0.1
    with pytest.raises(StateError):
        ss.with_canary_share(state, 2)


def test_unlabel_canary_ends_its_share_and_unknown_label_is_refused() -> None:
    state = ServingState({"stable": 1, "canary": 2}, 0.3)
    assert ss.without_label(state, "canary") == ServingState({"stable": 1}, 0.0)
    with pytest.raises(StateError, match="labels: canary, stable"):
        ss.without_label(state, "shadow")


def test_rollback_sends_everything_to_stable_and_clears_the_shadow() -> None:
    state = ServingState({"stable": 1, "canary": 2, "shadow": 3, "beta": 2}, 0.5)
    assert ss.rolled_back(state) == ServingState({"stable": 1, "canary": 2, "beta": 2}, 0.0)
    with pytest.raises(StateError, match="stable"):
        ss.rolled_back(ServingState({"canary": 2}, 0.5))


def test_the_lock_serialises_read_modify_write(tmp_path: Path) -> None:
    ss.write_state(tmp_path, ServingState({"stable": 1}))

    def add(i: int) -> None:
        for j in range(10):
            with ss.locked(tmp_path):
                state = ss.read_state(tmp_path)
                ss.write_state(tmp_path, ss.with_label(state, f"l{i}-{j}", 1))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ss.read_state(tmp_path).labels) == 41
