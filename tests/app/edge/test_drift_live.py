"""Drift on a real server: held-out texts keep every signal under its level; traffic half
from another language crosses them within one window, on /models/{name} and /metrics."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import httpx

from app.main import create_app
from tests.app.conftest import make_settings
from tests.live_server import live_server
from training.data import EXAMPLE_TEST

ZH_TEST = EXAMPLE_TEST.with_name("support_chat_zh_test.csv")
WINDOW = 150


def _texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f)]


def _signals(base: str) -> dict[str, dict[str, object]]:
    drift = httpx.get(base + "/models/example").json()["drift"]
    assert drift["window"] == WINDOW
    assert drift["signals"] is not None, drift
    return drift["signals"]  # type: ignore[no-any-return]


def _gauges(base: str) -> dict[str, float]:
    body = httpx.get(base + "/metrics").text
    found = re.findall(
        r'^textcls_drift\{model="example",signal="(\w+)",version="1"\} (\S+)$', body, re.M
    )
    return {signal: float(value) for signal, value in found}


def test_in_distribution_stays_under_and_another_language_crosses(tiny_model_repo: Path) -> None:
    english, chinese = _texts(EXAMPLE_TEST), _texts(ZH_TEST)
    random.Random(0).shuffle(english)
    settings = make_settings(tiny_model_repo, drift_window=WINDOW, drift_min_texts=WINDOW)
    with live_server(create_app(settings)) as base:
        before = httpx.get(base + "/models/example").json()["drift"]
        assert before["signals"] is None and before["window_texts"] == 0
        for start in range(0, WINDOW, 25):
            r = httpx.post(base + "/classify", json={"texts": english[start : start + 25]})
            assert r.status_code == 200, r.text
        calm = _signals(base)
        assert not any(s["alerting"] for s in calm.values()), calm
        assert set(_gauges(base)) == {"labels", "confidence", "fallback_rate", "coverage"}

        mixed = [t for pair in zip(english[: WINDOW // 2], chinese, strict=False) for t in pair]
        for start in range(0, len(mixed), 25):
            r = httpx.post(base + "/classify", json={"texts": mixed[start : start + 25]})
            assert r.status_code == 200, r.text
        drifted = _signals(base)
        alerting = {name for name, s in drifted.items() if s["alerting"]}
        assert {"coverage", "labels"} <= alerting, drifted
        gauges = _gauges(base)
        for name, s in drifted.items():
            assert abs(gauges[name] - float(s["value"])) < 1e-3  # type: ignore[arg-type]
