"""A product of experts: members' logits -> one distribution, each member trained as if alone.

The output is the normalised geometric mean of the members' softmax distributions
(``softmax(mean_i log_softmax(z_i))``): a member that is sure a label is wrong vetoes it, which
an arithmetic mean does not. Training minimises the SUM of the members' own losses (as
training.architectures.ensemble does for whole models), so each member is fitted to the labels
on its own features, not to whatever the others leave unexplained: one softmax over all the
features side by side lets the feature block that fits the training rows fastest (the n-grams
on 30 rows a label) take over.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import keras
from keras import layers, ops


class ProductOfExperts(layers.Layer):
    """A list of member logits [batch, n_labels] -> float32 probabilities [batch, n_labels]."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.member_log_probabilities: list[Any] = []

    def call(self, logits: list[Any]) -> Any:
        logs = [ops.log_softmax(ops.cast(z, "float32"), axis=-1) for z in logits]
        # The members' outputs of the latest call: read by MemberLosses.compute_loss within the
        # same traced step, and after an eager call by Trainee.predict_members. Set around
        # Keras' attribute tracking, which would try to track the lists of tensors.
        object.__setattr__(self, "member_log_probabilities", logs)
        return ops.softmax(ops.mean(ops.stack(logs, axis=0), axis=0), axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    @property
    def member_probabilities(self) -> list[Any]:
        """The members' probabilities of the latest call."""
        return [ops.exp(x) for x in self.member_log_probabilities]

    @property
    def member_logits(self) -> list[Any]:
        """The members' symbolic logits in the model's graph, in member order."""
        return list(self._inbound_nodes[0].input_tensors)


class LinearMember(layers.Dense):
    """A member's linear layer on frozen features (an encoder's embedding): no gradient step
    trains it where the fit stage sets its weights, before the steps, to an L2-regularised
    logistic regression fitted on the training rows' features (training.stages.linear_members):
    the regularised optimum that early-stopped steps of a shared optimizer only approach."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(units, **{**kwargs, "trainable": False})


class SummedMemberLosses:
    """A mixin for a ``keras.Model`` (listed before it among the bases) whose loss is the sum of
    its members' own losses: ``member_outputs`` gives the members' probabilities of the step
    being traced (``[y_pred]`` when it has none).

    Not itself a keras.Model: building a subclass functionally makes Keras rebase that
    subclass's keras.Model ancestors onto Functional, which would turn every other subclass of
    a shared keras.Model base (the averaging ensemble) functional too.
    """

    def member_outputs(self, y_pred: Any) -> list[Any]:
        return [y_pred]

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        losses = [
            super(SummedMemberLosses, self).compute_loss(  # type: ignore[misc]
                x=x, y=y, y_pred=out, sample_weight=sample_weight, training=training
            )
            for out in self.member_outputs(y_pred)
        ]
        return ops.sum(ops.stack(losses))


class MemberLosses(SummedMemberLosses, keras.Model):
    """A functional model (built like ``keras.Model(inputs, outputs)``) whose members are its
    ProductOfExperts layer's."""

    def member_outputs(self, y_pred: Any) -> list[Any]:
        experts = find_experts(self)
        return (experts.member_probabilities if experts else None) or [y_pred]


def find_experts(model: Any) -> ProductOfExperts | None:
    """``model``'s ProductOfExperts layer, if it has one."""
    layers_ = getattr(model, "layers", ())
    return next((layer for layer in layers_ if isinstance(layer, ProductOfExperts)), None)


def member_weights(model: Any) -> list[list[Any]]:
    """Each member's own trainable variables, in the ProductOfExperts' member order: those on
    the path to its logits and to no other member's."""
    experts = find_experts(model)
    if experts is None:
        return []
    owned = [_upstream_variables(z) for z in experts.member_logits]
    counts = Counter(key for vs in owned for key in vs)
    return [[v for key, v in vs.items() if counts[key] == 1] for vs in owned]


def _upstream_variables(tensor: Any) -> dict[int, Any]:
    """The trainable variables of every layer on the path to ``tensor``, by id."""
    found: dict[int, Any] = {}
    todo, seen = [tensor], set()
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        operation, node_index, _ = t._keras_history  # a layer, or an op (a slice)
        found.update((id(v), v) for v in getattr(operation, "trainable_weights", ()))
        todo.extend(operation._inbound_nodes[node_index].input_tensors)
    return found
