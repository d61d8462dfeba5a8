"""Why a model said what it said: occlusion, one batched model call per explained text.

A token's weight is the drop in the explained label's probability when that token alone is
removed from the text: ``p(label | text) - p(label | text without the token)``. Positive
weights pushed the model towards the label, negative ones away from it. The text and all its
one-token-shorter variants go through the model version's batcher in a single submission, so
the cost is one model call of ``tokens + 1`` rows (the batcher may split it across batches
of ``max_batch_size``), whatever the architecture: the method needs nothing but the served
signature, and it measures the model that answers /classify, not a surrogate of it.
bench/explain_faithfulness.py compares it with other model-agnostic methods.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from app.config import Settings
from app.errors import InvalidInput
from app.metrics import Metrics
from app.plane.ranking import RankedPrediction, descending_order, rank
from app.plane.repository import ModelRepository
from app.plane.tokens import model_token_spans, without_span


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenWeight:
    """One token of the original text, by character offsets, and its contribution."""

    text: str
    start: int
    end: int
    weight: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """The prediction for one text and each token's contribution to ``label``."""

    model: str
    version: int
    prediction: RankedPrediction
    label: str  # the explained label: the predicted one unless another was asked for
    probability: float  # p(label | text)
    tokens: list[TokenWeight]
    tokens_total: int  # tokens in the text; only the first ``token_limit`` are weighed
    token_limit: int

    @property
    def truncated(self) -> bool:
        return self.tokens_total > self.token_limit


class Explainer:
    """Explains one checked text with the named (or default) model version."""

    def __init__(
        self, settings: Settings, repository: ModelRepository, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.metrics = metrics

    async def explain(
        self,
        text: str,
        *,
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        top_k: int | None = None,
        threshold: float | None = None,
    ) -> Explanation:
        """Occlusion weights of ``text``'s tokens for ``label`` (default: the predicted one).

        Raises InvalidInput for a label the model does not have, and whatever resolving the
        model raises (ModelNotFound, VersionNotFound, ModelNotReady, QueueFull).
        """
        tracer = self.repository.versions.tracer
        with tracer.start_as_current_span("explain") if tracer is not None else nullcontext():
            return await self._weigh(
                text, model=model, version=version, label=label, top_k=top_k, threshold=threshold
            )

    async def _weigh(
        self,
        text: str,
        *,
        model: str | None,
        version: int | None,
        label: str | None,
        top_k: int | None,
        threshold: float | None,
    ) -> Explanation:
        serving = self.repository.resolve(model, version)
        loaded = serving.model
        labels = loaded.labels
        if label is not None and label not in labels:
            raise InvalidInput(
                f"label {label!r} is not one of model {loaded.name!r} version "
                f"{loaded.version}'s labels"
            )
        spans = model_token_spans(text, loaded.metadata)
        limit = self.settings.explain_max_tokens
        weighed = spans[:limit]
        variants = [without_span(text, start, end) for start, end in weighed]
        rule = loaded.fallback_rule(threshold, None, self.settings.fallback_margin)
        # No RankSpec: explanations are not predictions, so they are not counted as such.
        result = await serving.batcher.submit([text, *variants])
        probs = result.probabilities
        prediction = rank(
            probs[:1],
            descending_order(probs[:1]),
            labels,
            top_k=top_k or self.settings.default_top_k,
            threshold=rule[0],
            margin=rule[1],
        )[0]
        explained = prediction.label if label is None else label
        column = labels.index(explained)
        base = float(probs[0, column])
        drops = (base - probs[1:, column].astype(np.float64)).tolist()
        tokens = [
            TokenWeight(text=text[start:end], start=start, end=end, weight=weight)
            for (start, end), weight in zip(weighed, drops, strict=True)
        ]
        if self.metrics is not None:
            self.metrics.explanations.labels(loaded.name).inc()
            self.metrics.explain_tokens.labels(loaded.name).observe(len(weighed))
        return Explanation(
            model=loaded.name,
            version=loaded.version,
            prediction=prediction,
            label=explained,
            probability=base,
            tokens=tokens,
            tokens_total=len(spans),
            token_limit=limit,
        )
