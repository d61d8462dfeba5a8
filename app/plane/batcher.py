"""Dynamic batching: gather texts from concurrent requests into one model call per batch.

Requests enqueue from the event loop and await a future; the version's inference threads take
up to ``max_batch_size`` texts (waiting at most ``max_batch_wait`` after the oldest), run the
model, rank the batch at once, and resolve the futures with one ``call_soon_threadsafe``: the
loop never runs TensorFlow. Over ``max_queue_texts`` queued, ``submit`` raises QueueFull. A
``gate`` (app.plane.cheap_first) holds an expensive model's batches for cheap models' texts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from app.errors import InferenceFailed, ModelNotReady, QueueFull
from app.metrics import Metrics
from app.plane.batch_metrics import BatchMetrics
from app.plane.cheap_first import CheapFirst, Gate
from app.plane.drift import DriftWindow
from app.plane.loaded_model import LoadedModel
from app.plane.ranking import RankedPrediction, descending_order, rank
from app.plane.tracing import sampled_span_context, trace_batch

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext, Tracer

# (top_k, threshold, margin) a request wants its texts ranked with; None: probabilities only.
RankSpec = tuple[int, float, float]

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class BatchResult:
    """A request's slice of one or more model batches."""

    probabilities: np.ndarray  # float32 [n, n_labels]
    order: np.ndarray  # label indices per row, most probable first
    batch_size: int  # texts in the (largest) model call that served these texts
    predictions: list[RankedPrediction] | None = None  # when submitted with a RankSpec


@dataclass(slots=True, kw_only=True)
class _Item:
    texts: list[str]
    future: asyncio.Future[BatchResult]
    loop: asyncio.AbstractEventLoop
    enqueued: float
    ranking: RankSpec | None
    counted: bool = True  # False for a shadow's texts: not in the answered-prediction metrics
    trace: SpanContext | None = None  # the request's span, when tracing is on


_Outcome = tuple[asyncio.Future[BatchResult], BatchResult | BaseException]


def _resolve(pairs: list[_Outcome]) -> None:
    # Runs on the event loop; a future may have been cancelled by a client that went away.
    for fut, outcome in pairs:
        if fut.done():
            continue
        if isinstance(outcome, BaseException):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)


class Batcher:
    """The batch queue and inference thread of one loaded model version."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        max_batch_size: int,
        max_batch_wait_s: float,
        max_queue_texts: int,
        metrics: Metrics | None = None,
        threads: int = 1,
        gate: Gate | None = None,
        drift: DriftWindow | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.model = model
        self.drift = drift
        self.tracer = tracer
        self.max_batch_size = max_batch_size
        self.max_batch_wait_s = max_batch_wait_s
        self.max_queue_texts = max_queue_texts
        self.gate = gate or CheapFirst().cheap()  # alone: counts its texts, never waits
        self._cond = threading.Condition()
        self._pending: deque[_Item] = deque()
        self._pending_texts = 0
        self._closed = False
        self._m = BatchMetrics(metrics, model) if metrics is not None else None
        # Several threads: a batch fills and starts while the previous one still runs.
        self._threads = [
            threading.Thread(
                target=self._run, name=f"infer-{model.name}-v{model.version}-{i}", daemon=True
            )
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def is_alive(self) -> bool:
        """Whether any inference thread still runs."""
        return any(t.is_alive() for t in self._threads)

    @property
    def depth(self) -> int:
        """Texts waiting for a batch."""
        return self._pending_texts

    def submit(
        self, texts: list[str], ranking: RankSpec | None = None, counted: bool = True
    ) -> asyncio.Future[BatchResult]:
        """Enqueue ``texts`` now and return a future of their probabilities, in their order,
        and, given ``ranking`` (top_k, threshold, margin), their ranked predictions, counted in the
        prediction metrics.

        Enqueuing without an ``await`` matters: a model swap, which also runs on the loop,
        cannot slip between choosing this version and queueing on it.
        """
        loop = asyncio.get_running_loop()
        n = self.max_batch_size
        chunks = [texts[i : i + n] for i in range(0, len(texts), n)]
        now = time.monotonic()
        span = sampled_span_context() if self.tracer is not None else None
        items = [
            _Item(
                texts=c,
                future=loop.create_future(),
                loop=loop,
                enqueued=now,
                ranking=ranking,
                counted=counted,
                trace=span,
            )
            for c in chunks
        ]
        with self._cond:
            if self._closed:
                raise ModelNotReady(
                    f"model {self.model.name!r} version {self.model.version} is shutting down"
                )
            if self._pending_texts + len(texts) > self.max_queue_texts:
                raise QueueFull(
                    f"model {self.model.name!r} has {self._pending_texts} texts queued "
                    f"(limit {self.max_queue_texts}); retry shortly"
                )
            was_idle = not self._pending
            self.gate.accepted(len(texts))
            self._pending.extend(items)
            self._pending_texts += len(texts)
            # Wake the thread only when it may act: it was idle, or a batch is now full.
            if was_idle or self._pending_texts >= self.max_batch_size:
                self._cond.notify()
        # The queue-depth gauge is set by the inference threads after each batch.
        if len(items) == 1:
            return items[0].future
        return asyncio.ensure_future(_join([it.future for it in items]))

    def close(self, timeout: float | None = None) -> None:
        """Stop taking texts, finish those already queued, then end the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _take_batch(self, limit: int) -> list[_Item] | None:
        with self._cond:
            while True:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return None  # closed and drained
                deadline = self._pending[0].enqueued + self.max_batch_wait_s
                while self._pending_texts < limit and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._pending:
                        break
                    self._cond.wait(remaining)
                if self._pending:
                    break  # else another thread took them while this one waited
            return self._pop(limit)

    def _pop(self, limit: int, size: int = 0) -> list[_Item]:
        """Queued items up to ``limit`` texts with ``size`` already taken; hold the lock."""
        batch: list[_Item] = []
        while self._pending and size + len(self._pending[0].texts) <= limit:
            batch.append(item := self._pending.popleft())
            size += len(item.texts)
        self._pending_texts -= sum(len(i.texts) for i in batch)
        return batch

    def _run(self) -> None:
        full = self.max_batch_size
        while (batch := self._take_batch(self.gate.first_take(full))) is not None:
            if (limit := self.gate.turn(full)) > (taken := sum(len(i.texts) for i in batch)):
                with self._cond:
                    batch += self._pop(limit, taken)
            try:
                self._run_batch(batch)
            finally:  # the texts' answers (or errors) are out: cheap models' count goes down
                self.gate.answered(sum(len(item.texts) for item in batch))

    def _run_batch(self, batch: list[_Item]) -> None:
        texts = [t for item in batch for t in item.texts]
        started = time.monotonic()
        try:
            probs = self.model.predict(texts)
            order = descending_order(probs)
            ranked = self._rank(batch, probs, order)
        except Exception as exc:  # any model fault: logged in full, and a 500 to each waiter
            log.exception("inference failed for %s v%s", self.model.name, self.model.version)
            error = InferenceFailed(f"inference failed: {type(exc).__name__}")
            self._deliver([(item, error) for item in batch])
            return
        elapsed = time.monotonic() - started
        if self._m is not None:
            self._m.batch(
                texts=len(texts),
                seconds=elapsed,
                waits=[started - item.enqueued for item in batch],
                depth=self._pending_texts,
            )
        outcomes: list[tuple[_Item, BatchResult | BaseException]] = []
        start = 0
        for item, predictions in zip(batch, ranked, strict=True):
            end = start + len(item.texts)
            result = BatchResult(
                probabilities=probs[start:end],
                order=order[start:end],
                batch_size=len(texts),
                predictions=predictions,
            )
            outcomes.append((item, result))
            start = end
        self._deliver(outcomes)
        if self.tracer is not None:
            trace_batch(self.tracer, self.model, batch, started=started, elapsed=elapsed)

    def _rank(
        self, batch: list[_Item], probs: np.ndarray, order: np.ndarray
    ) -> list[list[RankedPrediction] | None]:
        """Each item's ranked predictions (None where not asked), one ``rank`` per RankSpec."""
        out: list[list[RankedPrediction] | None] = [None] * len(batch)
        groups: dict[tuple[RankSpec, bool], list[tuple[int, int, int]]] = {}
        start = 0
        for i, item in enumerate(batch):
            end = start + len(item.texts)
            if item.ranking is not None:
                groups.setdefault((item.ranking, item.counted), []).append((i, start, end))
            start = end
        for ((top_k, threshold, margin), counted), members in groups.items():
            if len(members) == len(batch):
                rows_p, rows_o = probs, order  # the usual case: the whole batch alike
            else:
                rows = np.concatenate([np.arange(s, e) for _, s, e in members])
                rows_p, rows_o = probs[rows], order[rows]
            ranked = rank(
                rows_p,
                rows_o,
                self.model.labels,
                top_k=top_k,
                threshold=threshold,
                margin=margin,
            )
            at = 0
            for i, s, e in members:
                out[i] = ranked[at : at + e - s]
                at += e - s
            if self._m is not None and counted:
                self._m.answered(ranked)
            if self.drift is not None and counted:
                self.drift.observe([t for i, _, _ in members for t in batch[i].texts], ranked)
        return out

    def _deliver(self, outcomes: list[tuple[_Item, BatchResult | BaseException]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for item, outcome in outcomes:
            by_loop.setdefault(item.loop, []).append((item.future, outcome))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, pairs)
            except RuntimeError:
                log.warning("event loop closed before %d results could be delivered", len(pairs))


async def _join(futures: list[asyncio.Future[BatchResult]]) -> BatchResult:
    parts = await asyncio.gather(*futures)
    predictions = None
    if all(p.predictions is not None for p in parts):
        predictions = [x for p in parts for x in p.predictions]  # type: ignore[union-attr]
    return BatchResult(
        probabilities=np.concatenate([p.probabilities for p in parts]),
        order=np.concatenate([p.order for p in parts]),
        batch_size=max(p.batch_size for p in parts),
        predictions=predictions,
    )
