"""Choose where inference runs (TEXTCLS_DEVICE) and configure TensorFlow for serving."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.errors import DeviceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Device:
    """Where a model runs: ``kind`` is what /readyz and /models show, ``tf_name`` for tf.device."""

    kind: Literal["cpu", "gpu"]
    tf_name: str


CPU = Device("cpu", "/CPU:0")
GPU = Device("gpu", "/GPU:0")


def choose_device(requested: str, gpus: Sequence[Any]) -> Device:
    """Pick the device for ``requested`` (auto|cpu|gpu) given the physical GPUs present."""
    if requested == "cpu":
        return CPU
    if requested == "gpu" and not gpus:
        raise DeviceError(
            "TEXTCLS_DEVICE=gpu but TensorFlow sees no GPU (check the driver, CUDA and "
            "CUDA_VISIBLE_DEVICES); use TEXTCLS_DEVICE=auto or cpu to run on the CPU"
        )
    if requested not in ("auto", "gpu"):
        raise DeviceError(f"TEXTCLS_DEVICE must be auto, cpu or gpu (got {requested!r})")
    return GPU if gpus else CPU


def configure_device(
    requested: str,
    list_gpus: Callable[[], Sequence[Any]] | None = None,
    set_memory_growth: Callable[[Any, bool], None] | None = None,
) -> Device:
    """Choose the device and, with a GPU, turn memory growth on so TF does not take it all.

    ``list_gpus`` and ``set_memory_growth`` default to TensorFlow's; tests pass their own
    because no GPU exists on the test machine.
    """
    import tensorflow as tf

    gpus = list(list_gpus() if list_gpus else tf.config.list_physical_devices("GPU"))
    device = choose_device(requested, gpus)
    grow = set_memory_growth or tf.config.experimental.set_memory_growth
    if device is GPU:
        for gpu in gpus:
            try:
                grow(gpu, True)
            except RuntimeError as exc:
                # Raised once the GPU is initialised (a second app in one process); the
                # setting from the first one still holds.
                log.debug("memory growth already fixed for %s: %s", gpu, exc)
    return device


def configure_threads(intra_op: int, inter_op: int) -> None:
    """Set TF's thread pools once per process (0 = one per core for intra, 2 for inter)."""
    import tensorflow as tf

    cores = os.cpu_count() or 1
    intra = intra_op or cores
    inter = inter_op or min(2, cores)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as exc:
        # TF refuses once its runtime has started (a second app in the same process).
        log.debug("TF thread pools already fixed: %s", exc)
