"""``textcls intents discover``: a model trained without some intents serves a mix in which
they make about a third; discovery finds each as a pure group holding most of its texts."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli.intents import register
from app.main import create_app
from app.predlog.engine import create_db_engine
from app.predlog.tables import IntentCluster
from tests.app.conftest import make_settings, wait_ready
from tests.model_factory import tiny_config
from training.data import EXAMPLE_TEST, EXAMPLE_TRAIN
from training.train import train

runner = CliRunner()
EN_HELD_OUT = ("lost_card", "promo_code", "refund_status")
ZH_HELD_OUT = ("银行卡挂失", "优惠券")
# Each held-out intent is a group at least this pure, holding at least this share of its
# texts (the bar).
PURITY, RECALL = 0.8, 0.6
ZH_TRAIN = EXAMPLE_TRAIN.with_name("support_chat_zh_train.csv")
ZH_TEST = EXAMPLE_TEST.with_name("support_chat_zh_test.csv")


def _cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _rows(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def _planted(
    root: Path, train_file: Path, test_file: Path, held: tuple[str, ...]
) -> dict[str, Any]:
    """Train without ``held``, serve a mix where they are about a third, log it."""
    train_rows, test_rows = _rows(train_file), _rows(test_file)
    keep = [r for r in train_rows if r[1] not in held]
    data = _write(root / "train.csv", keep)
    test = _write(root / "test.csv", [r for r in test_rows if r[1] not in held])
    models = root / "models"
    train(tiny_config(models, "support", data=data, test_data=test), log=lambda _m: None)
    new = [r for r in train_rows + test_rows if r[1] in held]
    known = [r for r in test_rows if r[1] not in held]
    mix = new + random.Random(0).sample(known, min(len(known), 2 * len(new)))
    random.Random(1).shuffle(mix)
    url = f"sqlite:///{root / 'log.db'}"
    settings = make_settings(
        models, log_predictions=True, database_url=url, log_spill_path=root / "spill.jsonl"
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        for start in range(0, len(mix), 50):
            chunk = mix[start : start + 50]
            r = client.post("/classify", json={"texts": [t for t, _ in chunk]})
            assert r.status_code == 200, r.text
    return {"models": models, "url": url, "mix": mix}


def _check_found(body: dict[str, Any], mix: list[tuple[str, str]], held: tuple[str, ...]) -> None:
    truth = dict(mix)
    total = Counter(lab for _, lab in mix)
    for label in held:
        found = [(sum(truth[t] == label for t in c["texts"]), c["size"]) for c in body["clusters"]]
        recall = max(
            (hits / total[label] for hits, size in found if hits / size >= PURITY), default=0
        )
        assert recall >= RECALL, (label, found)


@pytest.fixture(scope="module")
def english(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _planted(tmp_path_factory.mktemp("intents-en"), EXAMPLE_TRAIN, EXAMPLE_TEST, EN_HELD_OUT)


def test_discovery_finds_each_held_out_intent(english: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "clusters.json"
    args = ["intents", "discover", "support", "--database-url", english["url"], "--out", str(out)]
    result = runner.invoke(_cli(), [*args, "--model-dir", str(english["models"])])
    assert result.exit_code == 0, result.output
    body = json.loads(out.read_text())
    assert body["model"] == "support" and body["space"]
    sizes = [c["size"] for c in body["clusters"]]
    assert sizes == sorted(sizes, reverse=True) and min(sizes) >= 5
    for c in body["clusters"]:
        assert len(c["texts"]) == c["size"] and c["examples"] == list(dict.fromkeys(c["examples"]))
        assert set(c["examples"]) <= set(c["texts"]) and 0 < len(c["examples"]) <= 10
        assert c["terms"] and c["nearest_label"] is not None
    _check_found(body, english["mix"], EN_HELD_OUT)
    # Stored for the review page, one row per group, members naming logged predictions.
    with Session(create_db_engine(english["url"])) as session:
        stored = session.scalars(select(IntentCluster).order_by(IntentCluster.rank)).all()
    assert [s.id for s in stored] == [c["id"] for c in body["clusters"]]
    assert all(s.status == "open" and len(s.members) == s.size for s in stored)


def test_bad_options_exit_2(english: dict[str, Any]) -> None:
    for bad in (
        ["--since", "yesterday"],
        ["--space", "bert"],
        ["--since", "2026-02-01", "--until", "2026-01-01"],
    ):
        result = runner.invoke(
            _cli(), ["intents", "discover", "support", "--database-url", english["url"], *bad]
        )
        assert result.exit_code == 2, (bad, result.output)
        assert "error:" in result.output


def test_discovery_in_chinese_finds_each_held_out_intent(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The two held-out zh intents come out as two groups, each pure and holding most of its
    texts."""
    zh = _planted(tmp_path_factory.mktemp("intents-zh"), ZH_TRAIN, ZH_TEST, ZH_HELD_OUT)
    out = tmp_path / "clusters.json"
    args = ["intents", "discover", "support", "--database-url", zh["url"], "--out", str(out)]
    result = runner.invoke(_cli(), [*args, "--no-save", "--model-dir", str(zh["models"])])
    assert result.exit_code == 0, result.output
    _check_found(json.loads(out.read_text()), zh["mix"], ZH_HELD_OUT)
