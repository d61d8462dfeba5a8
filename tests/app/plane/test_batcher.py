"""The batcher on a real tiny model: batches fill, big requests split, order holds, close drains."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.errors import InferenceFailed, ModelNotReady
from app.metrics import Metrics
from app.plane.batcher import Batcher
from app.plane.device import CPU
from app.plane.loaded_model import LoadedModel


@pytest.fixture(scope="module")
def model(tiny_model_repo: Path) -> Iterator[LoadedModel]:
    m = LoadedModel("example", 1, tiny_model_repo / "example" / "1", device=CPU)
    m.load()
    yield m
    m.release()


def _texts(n: int) -> list[str]:
    return [f"text number {i} about a refund" if i % 2 else f"lost card {i}" for i in range(n)]


def test_concurrent_requests_share_batches_and_keep_their_rows(model: LoadedModel) -> None:
    metrics = Metrics()

    async def run() -> list:
        batcher = Batcher(
            model, max_batch_size=16, max_batch_wait_s=0.05, max_queue_texts=1000, metrics=metrics
        )
        try:
            requests = [_texts(1 + i % 3) for i in range(20)]
            results = await asyncio.gather(*(batcher.submit(t) for t in requests))
            return list(zip(requests, results, strict=True))
        finally:
            await asyncio.to_thread(batcher.close)

    pairs = asyncio.run(run())
    labels = {"model": "example"}
    calls = metrics.registry.get_sample_value("textcls_inference_batch_size_count", labels)
    texts = metrics.registry.get_sample_value("textcls_inference_batch_size_sum", labels)
    over = metrics.registry.get_sample_value(
        "textcls_inference_batch_size_bucket", {**labels, "le": "16.0"}
    )
    assert texts == sum(len(t) for t, _ in pairs)
    assert calls is not None and calls < 20  # batched...
    assert over == calls  # ...and never over max_batch_size
    for texts_, result in pairs:
        np.testing.assert_allclose(result.probabilities, model.predict(texts_), atol=1e-5)
        assert (result.order[:, 0] == result.probabilities.argmax(axis=1)).all()


def test_request_larger_than_a_batch_is_split_and_rejoined_in_order(model: LoadedModel) -> None:
    texts = _texts(50)

    async def run():
        batcher = Batcher(model, max_batch_size=8, max_batch_wait_s=0.001, max_queue_texts=100)
        try:
            return await batcher.submit(texts)
        finally:
            await asyncio.to_thread(batcher.close)

    result = asyncio.run(run())
    assert result.probabilities.shape == (50, len(model.labels))
    np.testing.assert_allclose(result.probabilities, model.predict(texts), atol=1e-5)
    assert result.batch_size == 8


def test_close_finishes_queued_texts_then_refuses_new_ones(model: LoadedModel) -> None:
    async def run():
        batcher = Batcher(model, max_batch_size=64, max_batch_wait_s=0.5, max_queue_texts=100)
        pending = batcher.submit(_texts(3))  # waits for its batch to fill (0.5 s)
        await asyncio.to_thread(batcher.close)  # close does not drop it
        result = await pending
        with pytest.raises(ModelNotReady):
            batcher.submit(["late"])
        return result

    assert asyncio.run(run()).probabilities.shape[0] == 3


def test_a_failing_model_call_fails_its_requests_not_the_thread(
    tiny_model_repo: Path,
) -> None:
    broken = LoadedModel("example", 1, tiny_model_repo / "example" / "1", device=CPU)
    broken.load()

    async def run() -> bool:
        batcher = Batcher(broken, max_batch_size=4, max_batch_wait_s=0.001, max_queue_texts=100)
        try:
            broken._fn = None  # the loaded function is gone: predict raises TypeError
            with pytest.raises(InferenceFailed, match="TypeError"):
                await batcher.submit(["a"])
            with pytest.raises(InferenceFailed):  # the thread lived on to answer again
                await batcher.submit(["b"])
            return batcher.is_alive()
        finally:
            await asyncio.to_thread(batcher.close)

    assert asyncio.run(run()) is True
    broken.release()


def test_mixed_rankings_in_one_batch_each_get_their_own(model: LoadedModel) -> None:
    """Requests with different top_k/threshold/margin (or none) share model calls; each is ranked as
    asked, and the prediction metrics count each ranked text once."""
    from app.plane.ranking import descending_order, rank

    metrics = Metrics()
    specs = [(1, 0.0, 0.1), (3, 0.99, 0.0), None, (1000, 0.5, 0.3)]

    async def run() -> list:
        batcher = Batcher(
            model,
            max_batch_size=64,
            max_batch_wait_s=0.05,
            max_queue_texts=1000,
            metrics=metrics,
        )
        try:
            requests = [(_texts(1 + i % 4), specs[i % 4]) for i in range(24)]
            results = await asyncio.gather(*(batcher.submit(t, s) for t, s in requests))
            # A request over the batch size is ranked across its parts too.
            big = await batcher.submit(_texts(150), (2, 0.3, 0.1))
            return [*zip(requests, results, strict=True), ((_texts(150), (2, 0.3, 0.1)), big)]
        finally:
            await asyncio.to_thread(batcher.close)

    answered = asyncio.run(run())
    calls = metrics.registry.get_sample_value(
        "textcls_inference_batch_size_count", {"model": "example"}
    )
    assert calls is not None and calls < 24
    for (texts, spec), result in answered:
        if spec is None:
            assert result.predictions is None
            continue
        probs = model.predict(texts)
        top_k, threshold, margin = spec
        want = rank(
            probs,
            descending_order(probs),
            model.labels,
            top_k=top_k,
            threshold=threshold,
            margin=margin,
        )
        assert [p.label for p in result.predictions] == [p.label for p in want]
        assert [p.fallback for p in result.predictions] == [p.fallback for p in want]
        assert [len(p.ranking) for p in result.predictions] == [len(p.ranking) for p in want]
    ranked_texts = sum(len(t) for (t, s), _ in answered if s is not None)
    counted = sum(
        s.value
        for family in metrics.registry.collect()
        if family.name == "textcls_predictions"
        for s in family.samples
        if s.name == "textcls_predictions_total"
    )
    assert counted == ranked_texts
