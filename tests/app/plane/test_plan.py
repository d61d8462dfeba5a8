"""Per-model batching: each version has its own queue and threads, sized by its measured cost,
so a slow model's batch never holds a fast model's texts; bad overrides are start-up errors."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.config import ConfigError, ModelBatching, load_settings
from app.plane.batcher import Batcher
from app.plane.cheap_first import CheapFirst, Gate
from app.plane.device import CPU
from app.plane.loaded_model import LoadedModel
from app.plane.plan import EXPENSIVE_MAX_HOLD_MS, choose_plan


class HeldModel(LoadedModel):
    """The real tiny model, whose model calls wait until ``release_calls`` is set: a model
    slower than any timeout a test could pick."""

    def __init__(self, path: Path, name: str = "slow") -> None:
        super().__init__(name, 1, path, device=CPU)
        self.in_call = threading.Event()
        self.release_calls = threading.Event()

    def predict(self, texts: list[str]) -> np.ndarray:
        if self.ready:  # warm-up at load runs straight through
            self.in_call.set()
            self.release_calls.wait()
        return super().predict(texts)


@pytest.fixture(scope="module")
def fast(tiny_model_repo: Path) -> Iterator[LoadedModel]:
    m = LoadedModel("fast", 1, tiny_model_repo / "example" / "1", device=CPU)
    m.load()
    yield m
    m.release()


def test_a_busy_slow_model_does_not_hold_a_fast_models_texts(
    fast: LoadedModel, tiny_model_repo: Path
) -> None:
    """While the slow model's thread is inside a model call that cannot finish, every request
    to the fast model beside it is answered; the slow request is answered once released."""
    slow = HeldModel(tiny_model_repo / "example" / "1")
    slow.load()
    plan = choose_plan("slow", 50.0, load_settings(model_dir=tiny_model_repo))

    async def run() -> tuple[bool, bool, int]:
        slow_b = Batcher(
            slow,
            max_batch_size=plan.max_batch_size,
            max_batch_wait_s=0.001,
            max_queue_texts=100,
            threads=plan.inference_threads,
        )
        fast_b = Batcher(fast, max_batch_size=8, max_batch_wait_s=0.001, max_queue_texts=100)
        try:
            held = slow_b.submit(["stuck behind nothing"])
            queued = slow_b.submit(["queued behind the held batch"])
            assert await asyncio.to_thread(slow.in_call.wait, 30)
            answers = await asyncio.wait_for(
                asyncio.gather(*(fast_b.submit([f"lost card {i}"]) for i in range(20))), 60
            )
            slow_waiting = not held.done() and not queued.done() and slow.in_call.is_set()
            slow.release_calls.set()
            await asyncio.wait_for(asyncio.gather(held, queued), 60)
            return slow_waiting, all(a.probabilities.shape[0] == 1 for a in answers), len(answers)
        finally:
            slow.release_calls.set()
            await asyncio.to_thread(slow_b.close)
            await asyncio.to_thread(fast_b.close)

    try:
        slow_waiting, answered, n = asyncio.run(run())
    finally:
        slow.release()
    assert slow_waiting and answered and n == 20


def _gated(model: LoadedModel, gate: Gate, size: int = 8) -> Batcher:
    return Batcher(
        model, max_batch_size=size, max_batch_wait_s=0.001, max_queue_texts=100, gate=gate
    )


def test_an_expensive_batch_waits_while_a_cheap_model_holds_texts(tiny_model_repo: Path) -> None:
    """Cheap first: while a cheap model's batch is in its model call, an expensive model's
    queued batch does not start; it starts once the cheap texts are answered, filled up to
    its full size (past the forced size, 1 here)."""
    path = tiny_model_repo / "example" / "1"
    cheap, dear = HeldModel(path, "cheap"), HeldModel(path, "dear")
    cheap.load()
    dear.load()
    dear.release_calls.set()  # the expensive model itself is not held, only gated
    shared = CheapFirst()

    async def run() -> tuple[bool, int, bool, list[int]]:
        cheap_b, dear_b = _gated(cheap, shared.cheap()), _gated(dear, shared.expensive(600, 1))
        try:
            held = cheap_b.submit(["a cheap text"])
            assert await asyncio.to_thread(cheap.in_call.wait, 30)
            waiting = asyncio.gather(*(dear_b.submit([f"expensive {i}"]) for i in range(3)))
            while shared.held == 0:  # its thread has taken the batch and waits for its turn
                await asyncio.sleep(0.01)
            gated = not dear.in_call.is_set() and not waiting.done()
            in_hand = shared.cheap_texts
            cheap.release_calls.set()
            _, answers = await asyncio.wait_for(asyncio.gather(held, waiting), 60)
            return gated, in_hand, dear.in_call.is_set(), [a.batch_size for a in answers]
        finally:
            cheap.release_calls.set()
            await asyncio.to_thread(cheap_b.close)
            await asyncio.to_thread(dear_b.close)

    try:
        gated, in_hand, ran, sizes = asyncio.run(run())
    finally:
        cheap.release()
        dear.release()
    assert gated and in_hand == 1 and ran
    assert sizes == [3, 3, 3]  # one model call: the quiet turn filled the batch up
    assert shared.cheap_texts == 0 and shared.forced == 0


def test_an_expensive_batch_is_never_held_past_max_hold(tiny_model_repo: Path) -> None:
    """A cheap model that never lets go does not starve the expensive one: at max_hold its
    batch starts anyway, counted as forced, with the forced size (2 texts) only."""
    path = tiny_model_repo / "example" / "1"
    cheap = HeldModel(path, "cheap")
    cheap.load()
    shared = CheapFirst()

    async def run() -> tuple[int, list[int]]:
        cheap_b = _gated(cheap, shared.cheap())
        dear_b = _gated(cheap, shared.expensive(0.0, 2))  # any model: only the gate matters
        try:
            held = cheap_b.submit(["a cheap text"])
            assert await asyncio.to_thread(cheap.in_call.wait, 30)
            cheap.in_call.clear()
            answers = asyncio.gather(*(dear_b.submit([f"expensive {i}"]) for i in range(3)))
            assert await asyncio.to_thread(cheap.in_call.wait, 30)  # its model call began
            cheap.release_calls.set()
            _, done = await asyncio.wait_for(asyncio.gather(held, answers), 60)
            return shared.forced, [a.batch_size for a in done]
        finally:
            cheap.release_calls.set()
            await asyncio.to_thread(cheap_b.close)
            await asyncio.to_thread(dear_b.close)

    try:
        forced, sizes = asyncio.run(run())
    finally:
        cheap.release()
    assert forced >= 1 and sizes[:2] == [2, 2]


def test_the_plan_follows_the_measured_cost(tmp_path: Path) -> None:
    s = load_settings(model_dir=tmp_path, max_batch_size=32, inference_threads=2)
    cheap = choose_plan("ngram", 0.1, s)
    assert (cheap.expensive, cheap.max_batch_size, cheap.inference_threads) == (False, 32, 2)
    dear = choose_plan("e5", 5.0, s)  # a forced batch holds 100 ms of work: 20 texts
    assert (dear.expensive, dear.forced_batch_size, dear.inference_threads) == (True, 20, 1)
    assert dear.max_batch_size == 32 and dear.max_hold_ms == EXPENSIVE_MAX_HOLD_MS
    assert choose_plan("e5", 500.0, s).forced_batch_size == 8  # never under 8 texts
    assert choose_plan("e5", 2.0, s).forced_batch_size == 32  # never over max_batch_size


def test_an_expensive_model_runs_a_batch_per_intra_op_pool_the_cores_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    threads = {
        intra: choose_plan("e5", 5.0, load_settings(model_dir=tmp_path, tf_intra_op_threads=intra))
        for intra in (0, 1, 2, 3, 8)
    }
    assert {k: p.inference_threads for k, p in threads.items()} == {0: 1, 1: 4, 2: 2, 3: 1, 8: 1}


def test_overrides_replace_only_the_fields_they_name(tmp_path: Path) -> None:
    s = load_settings(
        model_dir=tmp_path,
        model_batching={
            "e5": ModelBatching(max_batch_size=64, max_hold_ms=50),
            "tiny": ModelBatching(expensive=True),
        },
        expensive_ms_per_text=5.0,
    )
    plan = choose_plan("e5", 10.0, s)
    assert (plan.max_batch_size, plan.max_hold_ms, plan.inference_threads) == (64, 50, 1)
    assert plan.overridden == ("max_batch_size", "max_hold_ms")
    assert plan.as_dict()["overridden"] == ["max_batch_size", "max_hold_ms"]
    assert choose_plan("e5", 4.0, s).expensive is False  # under the threshold set
    assert choose_plan("tiny", 0.01, s).inference_threads == 1  # expensive by the setting


@pytest.mark.parametrize(
    "value,problem",
    [
        ('{"e5": {"max_batch_size": 0}}', "TEXTCLS_MODEL_BATCHING.E5.MAX_BATCH_SIZE"),
        ('{"e5": {"inference_threads": 17}}', "less than or equal to 16"),
        ('{"e5": {"max_hold_ms": -1}}', "greater than or equal to 0"),
        ('{"e5": {"expensive": "maybe"}}', "valid boolean"),
        ('{"e5": {"batch": 8}}', "Extra inputs are not permitted"),
        ('{"e5": 8}', "valid dictionary"),
        ("{e5", "TEXTCLS_MODEL_BATCHING"),
    ],
)
def test_bad_model_batching_is_a_clear_error(
    value: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEXTCLS_MODEL_BATCHING", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert problem in str(info.value)


def test_a_threshold_of_zero_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTCLS_EXPENSIVE_MS_PER_TEXT", "0")
    with pytest.raises(ConfigError, match="TEXTCLS_EXPENSIVE_MS_PER_TEXT: Input should be greater"):
        load_settings()
