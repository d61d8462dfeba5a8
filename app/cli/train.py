"""``textcls train``, ``evaluate`` and ``predict``: the trainer's commands."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.errors import fail
from app.cli.options import values_of, with_settings
from app.cli.remote import local_model, publish_trained
from app.plane.store.objects import is_remote
from training.artifact import ArtifactError
from training.config import TrainConfig
from training.data import FORMATS, DataError
from training.distributed import UnsupportedStrategyModel
from training.settings import SettingError, from_values, validate

ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        help="A model folder (models/NAME: its newest version) or a version (models/NAME/3); "
        "or the same in an object store (s3://bucket/models/NAME[/3], gs://...).",
    ),
]
FormatOption = Annotated[
    str | None, typer.Option("--format", help=f"One of {', '.join(FORMATS)} (default: extension).")
]
TextColumn = Annotated[str, typer.Option(help="Column (or JSON key) holding the text.")]
LabelColumn = Annotated[str, typer.Option(help="Column (or JSON key) holding the label.")]


def train_with(settings: type[TrainConfig]) -> Callable[..., None]:
    """``textcls train`` for the settings class ``settings``: one option per setting."""

    def train_command(**values: Any) -> None:
        """Train a model and publish it as models/NAME/VERSION; prints its path last.

        With --model-dir s3://... or gs://..., it trains in a temporary folder and then
        publishes the version to the store, its completion marker last; prints its URL last.
        """
        url = str(values.get("model_dir") or "")
        with tempfile.TemporaryDirectory(prefix="textcls-train-") as tmp:
            if is_remote(url):
                values = {**values, "model_dir": tmp}
            path = _train(settings, values)
            typer.echo(publish_trained(url, path) if is_remote(url) else str(path))

    return with_settings(settings, train_command)


def _train(settings: type[TrainConfig], values: dict[str, Any]) -> Path:
    """One training run with the command's values; the version folder it published."""
    from training.train import train

    try:
        cfg = from_values(settings, values_of(settings, values))
        validate(cfg)
    except SettingError as exc:
        raise fail(str(exc)) from None
    try:
        return train(cfg, log=lambda message: typer.echo(message))
    except (DataError, ArtifactError) as exc:
        raise fail(str(exc)) from None
    except UnsupportedStrategyModel as exc:
        raise fail(
            f"--strategy {cfg.strategy} needs a functional --arch with dense features "
            f"(cnn with --towers 1, textcnn, transformer): {exc}"
        ) from None


def _default_out(model: object, data: Path) -> Path:
    from training.scoring import SavedClassifier

    assert isinstance(model, SavedClassifier)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = model.metadata
    return Path("evaluations") / f"{meta.name}-v{meta.version}-{data.stem}-{stamp}"


def evaluate_command(
    *,
    model: ModelOption,
    data: Annotated[Path, typer.Option(help="Labelled file to score the model on.")],
    fmt: FormatOption = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Report folder (default: ./evaluations/NAME-vVERSION-DATASTEM-TIMESTAMP/)."
        ),
    ] = None,
) -> None:
    """Score a saved model on a labelled file; write metrics.json, plots and report.md."""
    from training.data import load_dataset
    from training.report import ReportSet, write_report
    from training.scoring import SavedClassifier, resolve_version_dir, score_dataset

    with local_model(model) as folder:  # a store's copy lives until the report is written
        try:
            classifier = SavedClassifier(resolve_version_dir(folder))
            ds = load_dataset(
                data,
                fmt=fmt,
                text_column=text_column,
                label_column=label_column,
                min_examples_per_label=1,
            )
            metrics, y, probs = score_dataset(classifier, ds)
        except (DataError, ArtifactError) as exc:
            raise fail(str(exc)) from None
        target = out or _default_out(classifier, data)
        meta = classifier.metadata
        title = f"Model {meta.name} v{meta.version} on {data.name}"
        write_report(target, title, metrics, ReportSet(meta.labels, y, probs))
        m, fb = metrics["test"], metrics["fallback"]
        typer.echo(
            f"{len(ds)} rows: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}; "
            f"at threshold {fb['threshold']:.3f} {fb['test_fallback_rate']:.1%} fall back"
        )
    typer.echo(str(target))


def predict_command(
    model: ModelOption,
    texts: Annotated[list[str], typer.Argument(help="Text(s) to classify.")],
    top_k: Annotated[int, typer.Option(min=1, help="Labels shown per text.")] = 3,
) -> None:
    """Print the top labels and confidences for each text."""
    from training.scoring import SavedClassifier, resolve_version_dir

    with local_model(model) as folder:
        try:
            classifier = SavedClassifier(resolve_version_dir(folder))
        except ArtifactError as exc:
            raise fail(str(exc)) from None
        threshold = classifier.metadata.fallback.threshold
        for text in texts:
            ranking = classifier.rank(text, top_k)
            fallback = " (fallback)" if ranking[0][1] < threshold else ""
            typer.echo(f"{text}{fallback}")
            for label, confidence in ranking:
                typer.echo(f"  {confidence:.4f}  {label}")


def register(cli: typer.Typer, settings: type[TrainConfig] = TrainConfig) -> None:
    """Add ``train`` (its options from ``settings``), ``evaluate`` and ``predict``."""
    cli.command("train")(train_with(settings))
    cli.command("evaluate")(evaluate_command)
    cli.command("predict")(predict_command)
