"""Training under tf.distribute: string preprocessing in tf.data, the model body on the replicas.

Keras cannot fit a model whose input is a string tensor on more than one replica (an ``AddN``
over DT_STRING, tensorflow/tensorflow#80951). So under a strategy the functional model is cut
after its string-consuming layers (the vectorizers): tf.data maps the texts through them, the
replicas train the rest, and the full string-in model, which shares every weight with that
body, is what gets evaluated and exported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras


class UnsupportedStrategyModel(ValueError):
    """The architecture cannot be split into string preprocessing and a trainable body."""


def split_at_string_input(
    model: keras.Model, sample_texts: list[str], allow_sparse: bool = False
) -> tuple[list[Any], keras.Model]:
    """Return (string layers, body): ``body([layer(texts) for layer in string layers] +
    other inputs)``, where the other inputs are the model's inputs besides the one string input
    (none for the built-in architectures; the encoder's head has its features).

    ``allow_sparse``: a body fed sparse features is fine on one replica (the default strategy).
    """
    import keras  # here, so the CLI can import this module's error without TensorFlow
    import tensorflow as tf

    inputs = list(getattr(model, "inputs", None) or [])  # none on subclassed models (ensembles)
    strings = [x for x in inputs if x.dtype == "string"]
    if len(strings) != 1 or (len(inputs) != 1 and not allow_sparse):
        raise UnsupportedStrategyModel(
            f"{model.name} is not a single-input functional model (an ensemble or towers > 1)"
        )
    text = strings[0]
    string_layers = [
        layer
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
        and any(
            node.input_tensors and node.input_tensors[0] is text for node in layer._inbound_nodes
        )
    ]
    # The symbolic outputs do not say whether a vectorizer is sparse; a real call does.
    sample = vectorize(string_layers, tf.constant(sample_texts[:2]))
    if not allow_sparse and any(isinstance(f, tf.SparseTensor) for f in tf.nest.flatten(sample)):
        raise UnsupportedStrategyModel(f"{model.name} feeds sparse features to its body")
    features = [layer.output for layer in string_layers] + [x for x in inputs if x is not text]
    # The body keeps the model's training behaviour: a product of experts trains on the sum of
    # its members' own losses (MemberLosses), which a plain keras.Model would replace by one
    # loss on the product.
    from training.architectures.experts import MemberLosses

    body_class = MemberLosses if isinstance(model, MemberLosses) else keras.Model
    body = body_class(
        features[0] if len(features) == 1 else features, model.outputs, name=f"{model.name}_body"
    )
    return string_layers, body


def vectorize(string_layers: list[Any], texts: Any) -> Any:
    """Apply the string layers to a batch of texts (inside a tf.data map)."""
    outputs = [layer(texts) for layer in string_layers]
    return outputs[0] if len(outputs) == 1 else tuple(outputs)
