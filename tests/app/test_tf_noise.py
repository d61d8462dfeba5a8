"""TensorFlow's start-up banners are dropped from the command's stderr; every other line stays."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BANNERS = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796154018.819079    5579 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors.",
    "I0000 00:00:1796154018.882830    5579 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "I0000 00:00:1796154019.323255    5579 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796154069.878616    5579 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]
KEPT = [
    "E0000 00:00:1796154069.878616    5579 some_kernel.cc:12] a real TensorFlow error",
    "W0000 00:00:1796154069.878616    5579 cuda_platform.cc:60] a warning about the GPU",
    "2026-12-01 19:49:11,743 WARNING app.auth: no API keys configured",
    "error: the data file has 3 problems",
]
KEPT_IN_ORDER = (KEPT * 2)[: len(BANNERS)]  # interleaved with the banners
# The lines written straight to fd 2, as TensorFlow's C++ code writes them, then an exit.
SCRIPT = """
import os, sys
from app.tf_noise import quiet_tensorflow
quiet_tensorflow()
print("level", os.environ["TF_CPP_MIN_LOG_LEVEL"], flush=True)
for line in sys.argv[1:]:
    os.write(2, (line + "\\n").encode())
sys.stderr.write("python stderr still works\\n")
"""


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    lines = [line for pair in zip(BANNERS, KEPT_IN_ORDER, strict=True) for line in pair]
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *lines],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "PYTHONPATH": str(REPO)},
        check=True,
    )


def test_banners_are_dropped_and_other_lines_kept_in_order() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = run(env)
    assert result.stdout == "level 1\n"
    assert result.stderr.splitlines() == [*KEPT_IN_ORDER, "python stderr still works"]


def test_log_level_0_shows_everything() -> None:
    result = run({**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    for line in BANNERS + KEPT:
        assert line in result.stderr
