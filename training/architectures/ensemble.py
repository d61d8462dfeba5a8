"""ensemble: members trained side by side, served as one model averaging their probabilities."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from training.architectures.experts import SummedMemberLosses
from training.params import ModelParams

Builder = Callable[[Sequence[str], int, ModelParams], keras.Model]

# Members differ in what they see (n-gram counts vs word order), so their errors differ.
DEFAULT_MEMBERS = ("ngram", "textcnn")


class AveragingEnsemble(SummedMemberLosses, keras.Model):
    """``call`` averages the members' probabilities; training minimises the SUM of the members'
    own losses, so each member learns as if alone (members share no weights) from the same
    batches, instead of co-adapting to fix each other's errors through the average.
    """

    def __init__(self, members: Sequence[keras.Model], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.members = list(members)
        self._member_outputs: list[Any] = []

    def call(self, text: Any, training: bool = False) -> Any:
        outputs = [member(text, training=training) for member in self.members]
        # Read by compute_loss within the same traced train/test step; set around Keras'
        # attribute tracking, which would try to track the list of tensors.
        object.__setattr__(self, "_member_outputs", outputs)
        return ops.mean(ops.stack(outputs, axis=0), axis=0)

    def member_outputs(self, y_pred: Any) -> list[Any]:
        return self._member_outputs or [y_pred]


def build_ensemble(
    train_texts: Sequence[str],
    n_labels: int,
    p: ModelParams,
    builders: dict[str, Builder],
    members: Sequence[str] = DEFAULT_MEMBERS,
) -> keras.Model:
    """An AveragingEnsemble of ``members`` (names in ``builders``), built and ready to compile."""
    unknown = [m for m in members if m not in builders]
    if unknown or len(members) < 2:
        raise ValueError(f"ensemble members must be 2+ of {sorted(builders)}, got {list(members)}")
    model = AveragingEnsemble(
        [builders[m](train_texts, n_labels, p) for m in members], name="textcls_ensemble"
    )
    model(ops.convert_to_tensor(list(train_texts[:2])))  # build the variables
    return model


def build_default_ensemble(
    train_texts: Sequence[str], n_labels: int, p: ModelParams
) -> keras.Model:
    """The ``--arch ensemble`` of DEFAULT_MEMBERS, built from the registry."""
    from training import architectures

    builders = {name: architectures.get(name).load() for name in DEFAULT_MEMBERS}
    return build_ensemble(train_texts, n_labels, p, builders)
