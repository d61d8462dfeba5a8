"""Measure the service's resident memory across repeated hot reloads of one model version.

Each round publishes a copy of the version under a new number, lets the model repository
load, warm up and swap it in exactly as in production (old version drained and released),
answers a few batches, and records RSS. Usage:

    python -m bench.reload_memory --model-dir models --name example --reloads 20
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import tempfile
from pathlib import Path

from app.config import Settings
from app.metrics import Metrics
from app.plane.device import CPU
from app.plane.repository import ModelRepository
from training.artifact import METADATA_FILE, versions


def rss_bytes() -> int:
    """This process's resident set size, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _publish_copy(model_path: Path, source: int, target: int) -> None:
    tmp = model_path / f".tmp-bench-{target}"
    shutil.copytree(model_path / str(source), tmp)
    meta = json.loads((tmp / METADATA_FILE).read_text())
    meta["version"] = target
    (tmp / METADATA_FILE).write_text(json.dumps(meta))
    tmp.rename(model_path / str(target))


async def _measure(model_dir: Path, name: str, reloads: int) -> list[int]:
    settings = Settings(_env_file=None, model_dir=model_dir, poll_interval_s=0)  # type: ignore[call-arg]
    repo = ModelRepository(settings, CPU, Metrics())
    model_path = model_dir / name
    texts = [f"sample text number {i}" for i in range(32)]
    samples = []
    try:
        await repo.refresh()
        for round_ in range(reloads + 1):
            if round_:
                current = versions(model_path)[-1]
                _publish_copy(model_path, current, current + 1)
                await repo.refresh()
                shutil.rmtree(model_path / str(current))  # as an operator would prune
            serving = repo.resolve(name, None)
            for _ in range(5):
                await serving.batcher.submit(texts)
            gc.collect()
            samples.append(rss_bytes())
    finally:
        await repo.stop()
    return samples


def measure(source_model_dir: Path, name: str, reloads: int = 20) -> list[int]:
    """RSS after the first load and after each of ``reloads`` reloads, in bytes."""
    with tempfile.TemporaryDirectory(prefix="textcls-reload-") as tmp:
        model_dir = Path(tmp)
        newest = versions(source_model_dir / name)[-1]
        shutil.copytree(source_model_dir / name / str(newest), model_dir / name / "1")
        meta_path = model_dir / name / "1" / METADATA_FILE
        meta = json.loads(meta_path.read_text())
        meta["version"] = 1
        meta_path.write_text(json.dumps(meta))
        return asyncio.run(_measure(model_dir, name, reloads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--name", default="example")
    parser.add_argument("--reloads", type=int, default=20)
    args = parser.parse_args()
    samples = measure(args.model_dir, args.name, args.reloads)
    mib = [s / 2**20 for s in samples]
    for i, m in enumerate(mib):
        print(f"{'load' if i == 0 else f'reload {i:2d}'}: RSS {m:8.1f} MiB")
    # The first reload allocates what every later one reuses; growth is measured from there.
    steady = mib[1:] if len(mib) > 2 else mib
    growth = steady[-1] - steady[0]
    per_reload = growth / max(len(steady) - 1, 1)
    print(
        f"{args.reloads} reloads: RSS {mib[0]:.1f} -> {mib[-1]:.1f} MiB; after the first "
        f"reload {steady[0]:.1f} -> {steady[-1]:.1f} MiB ({growth:+.1f} MiB, "
        f"{per_reload:+.2f} MiB per reload)"
    )


if __name__ == "__main__":
    main()
