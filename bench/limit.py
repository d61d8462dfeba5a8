"""The limit: texts/s of the SavedModel signature called in-process, no HTTP, no batcher."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import procstat
from bench.texts import text_batches
from training.artifact import (
    INPUT_KEY,
    OUTPUT_KEY,
    SIGNATURE_KEY,
    import_op_libraries,
    read_metadata,
)


@dataclass(frozen=True)
class LimitResult:
    """One batch size: calls made, texts/s, per-call latency and the process's CPU use."""

    batch_size: int
    calls: int
    texts: int
    wall_s: float
    cpu_s: float
    call_p50_ms: float
    call_p99_ms: float
    machine_busy_cpu_s: float = 0.0  # every process on the machine meanwhile

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.wall_s if self.wall_s else 0.0

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "texts_per_s": self.texts_per_s, "calls_per_s": self.calls_per_s}


class SignatureRunner:
    """The model's ``serving_default`` signature, loaded once, called the way textcls calls it."""

    def __init__(self, version_dir: Path) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        import_op_libraries(read_metadata(version_dir))
        self._module: Any = tf.saved_model.load(str(version_dir))
        self._fn: Any = self._module.signatures[SIGNATURE_KEY]

    def predict(self, texts: list[str]) -> Any:
        # Python list -> string tensor -> probabilities as numpy: what any server pays per batch.
        out = self._fn(**{INPUT_KEY: self._tf.constant(texts, dtype=self._tf.string)})
        return out[OUTPUT_KEY].numpy()

    def measure(self, texts: list[str], batch_size: int, seconds: float) -> LimitResult:
        """Call back to back for ``seconds`` (at least 3 calls) after one untimed warm-up call."""
        batches = text_batches(texts, batch_size)
        self.predict(batches[0])
        latencies: list[float] = []
        machine0 = procstat.MachineCpu.read()
        cpu0, start = time.process_time(), time.perf_counter()
        i = 0
        while True:
            t0 = time.perf_counter()
            self.predict(batches[i % len(batches)])
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            i += 1
            if t1 - start >= seconds and i >= 3:
                break
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        machine_busy = procstat.MachineCpu.read().busy_s - machine0.busy_s
        latencies.sort()
        return LimitResult(
            batch_size=batch_size,
            calls=i,
            texts=i * batch_size,
            wall_s=wall,
            cpu_s=cpu,
            call_p50_ms=statistics.median(latencies) * 1000,
            call_p99_ms=latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
            machine_busy_cpu_s=machine_busy,
        )
