"""``textcls train``, ``evaluate`` and ``predict``: the trainer's commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from app.cli.errors import fail
from training.artifact import ArtifactError
from training.data import FORMATS, DataError
from training.distributed import UnsupportedStrategyModel
from training.params import ModelParams
from training.pipeline import TrainConfig

_DEFAULTS = ModelParams()
_CFG = TrainConfig()

ModelOption = Annotated[
    Path,
    typer.Option(
        "--model",
        help="A model folder (models/NAME: its newest version) or a version (models/NAME/3).",
    ),
]
FormatOption = Annotated[
    str | None, typer.Option("--format", help=f"One of {', '.join(FORMATS)} (default: extension).")
]
TextColumn = Annotated[str, typer.Option(help="Column (or JSON key) holding the text.")]
LabelColumn = Annotated[str, typer.Option(help="Column (or JSON key) holding the label.")]


def _parse_kernel_sizes(value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(f"expected comma-separated positive integers, got {value!r}")
    return sizes


def train_command(
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled CSV, TSV or JSONL file (default: the bundled example)."),
    ] = None,
    fmt: FormatOption = None,
    text_column: TextColumn = "text",
    label_column: LabelColumn = "label",
    val_data: Annotated[
        Path | None, typer.Option(help="Validation file (default: split off --data).")
    ] = None,
    test_data: Annotated[
        Path | None, typer.Option(help="Test file (default: split off --data).")
    ] = None,
    oos_data: Annotated[
        Path | None,
        typer.Option(help="Out-of-scope texts (a text column, no label) to score the fallback on."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Model name (default: from the data file's name).")
    ] = None,
    model_dir: Annotated[
        Path, typer.Option(envvar="TEXTCLS_MODEL_DIR", help="Model repository root.")
    ] = Path("./models"),
    arch: Annotated[
        str,
        typer.Option(
            help="Architecture: auto (encoder on small data when its extra is installed, else "
            "ngram), ngram, cnn, textcnn, transformer, ensemble or encoder (pretrained "
            "multilingual sentence encoder; needs the [encoder] extra). A flag the chosen one "
            "does not read is reported."
        ),
    ] = _CFG.arch,
    strategy: Annotated[
        str, typer.Option(help="tf.distribute strategy: default, mirrored or multiworker.")
    ] = "default",
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs.")] = _CFG.epochs,
    patience: Annotated[
        int, typer.Option(min=0, help="Epochs without --monitor improving before stopping.")
    ] = _CFG.patience,
    batch_size: Annotated[int, typer.Option(min=1)] = _CFG.batch_size,
    learning_rate: Annotated[float, typer.Option(min=0.0)] = _DEFAULTS.learning_rate,
    max_tokens: Annotated[int, typer.Option(min=2, help="Vocabulary size.")] = _DEFAULTS.max_tokens,
    sequence_length: Annotated[
        int, typer.Option(min=1, help="Tokens kept per text.")
    ] = _DEFAULTS.sequence_length,
    ngrams: Annotated[
        int, typer.Option(min=1, help="Word n-grams in the vocabulary (1: words only).")
    ] = _DEFAULTS.ngrams,
    embedding_dim: Annotated[int, typer.Option(min=1)] = _DEFAULTS.embedding_dim,
    filters: Annotated[int, typer.Option(min=1, help="Conv1D filters per kernel size.")] = (
        _DEFAULTS.filters
    ),
    kernel_sizes: Annotated[
        str, typer.Option(help="Comma-separated Conv1D kernel sizes, one branch each.")
    ] = ",".join(map(str, _DEFAULTS.kernel_sizes)),
    dense_units: Annotated[int, typer.Option(min=1)] = _DEFAULTS.dense_units,
    dropout: Annotated[float, typer.Option(min=0.0, max=0.95)] = _DEFAULTS.dropout,
    embedding_dropout: Annotated[
        float, typer.Option(min=0.0, max=0.95, help="Spatial dropout on the embeddings.")
    ] = _DEFAULTS.embedding_dropout,
    towers: Annotated[
        int, typer.Option(min=1, help="cnn: independently trained copies, averaged (an ensemble).")
    ] = _DEFAULTS.towers,
    fine_tune: Annotated[
        bool,
        typer.Option(
            help="encoder: train its DAN layers (after the frozen token CNN) with the head."
        ),
    ] = _DEFAULTS.fine_tune,
    label_smoothing: Annotated[
        float, typer.Option(min=0.0, max=0.5, help="Label smoothing in the loss.")
    ] = _DEFAULTS.label_smoothing,
    monitor: Annotated[
        str, typer.Option(help="What early stopping watches: val_loss or val_accuracy.")
    ] = _CFG.monitor,
    reduce_lr_patience: Annotated[
        int,
        typer.Option(
            min=0, help="Epochs without val-loss improvement before the LR drops (0: off)."
        ),
    ] = _CFG.reduce_lr_patience,
    val_fraction: Annotated[float, typer.Option(min=0.0, max=0.5)] = _CFG.val_fraction,
    test_fraction: Annotated[float, typer.Option(min=0.0, max=0.5)] = _CFG.test_fraction,
    class_weights: Annotated[
        bool, typer.Option(help="Weigh classes inversely to their frequency.")
    ] = _CFG.class_weights,
    target_precision: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Precision the fallback threshold aims for.")
    ] = _CFG.target_precision,
    max_fallback_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Most held-out messages the threshold may hand to a person; a target "
            "precision needing more is reported and capped here.",
        ),
    ] = _CFG.max_fallback_rate,
    validation: Annotated[
        str,
        typer.Option(
            help="How held-out predictions are made: split (val/test rows never trained on), "
            "kfold (out-of-fold, then a refit on every row) or auto (kfold for files up to "
            "4000 rows without --val-data)."
        ),
    ] = _CFG.validation,
    refit: Annotated[
        bool | None,
        typer.Option(
            help="split: after the val rows chose the epochs, train again on train + val "
            "rows (not with --val-data). Default: on for encoder, off for the others."
        ),
    ] = _CFG.refit,
    folds: Annotated[int, typer.Option(min=2, help="Folds for --validation kfold.")] = _CFG.folds,
    seed: Annotated[
        int, typer.Option(help="Seed for the split, initialisation and shuffling.")
    ] = 0,
    deterministic: Annotated[
        bool, typer.Option(help="Also enable TensorFlow op determinism (slower).")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No per-epoch lines.")] = False,
) -> None:
    """Train a model and publish it as models/NAME/VERSION; prints its path last."""
    from training import architectures
    from training.pipeline import train

    if monitor not in ("val_loss", "val_accuracy"):
        raise fail(f"unknown --monitor {monitor!r}; use val_loss or val_accuracy")
    if arch not in (*architectures.names(), architectures.AUTO):
        raise fail(f"unknown --arch {arch!r}; known: auto, {', '.join(architectures.names())}")
    if arch == "encoder":
        from training.encoder.weights import EncoderUnavailable, require_extra

        try:
            require_extra()
        except EncoderUnavailable as exc:
            raise fail(str(exc)) from None
    if validation not in ("auto", "split", "kfold"):
        raise fail(f"unknown --validation {validation!r}; use auto, split or kfold")
    if validation == "kfold" and (val_data or strategy != "default"):
        raise fail("--validation kfold takes no --val-data and runs with --strategy default")
    if strategy not in ("default", "mirrored", "multiworker"):
        raise fail(f"unknown --strategy {strategy!r}; use default, mirrored or multiworker")
    cfg = TrainConfig(
        data=data,
        model_dir=model_dir,
        name=name,
        fmt=fmt,
        text_column=text_column,
        label_column=label_column,
        val_data=val_data,
        test_data=test_data,
        oos_data=oos_data,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        arch=arch,
        params=ModelParams(
            max_tokens=max_tokens,
            sequence_length=sequence_length,
            ngrams=ngrams,
            embedding_dim=embedding_dim,
            filters=filters,
            kernel_sizes=_parse_kernel_sizes(kernel_sizes),
            dense_units=dense_units,
            dropout=dropout,
            embedding_dropout=embedding_dropout,
            label_smoothing=label_smoothing,
            fine_tune=fine_tune,
            towers=towers,
            learning_rate=learning_rate,
        ),
        epochs=epochs,
        patience=patience,
        monitor=monitor,  # type: ignore[arg-type]
        reduce_lr_patience=reduce_lr_patience,
        batch_size=batch_size,
        class_weights=class_weights,
        target_precision=target_precision,
        max_fallback_rate=max_fallback_rate,
        validation=validation,  # type: ignore[arg-type]
        refit=refit,
        folds=folds,
        seed=seed,
        deterministic=deterministic,
        strategy=strategy,  # type: ignore[arg-type]
        verbose=not quiet,
    )
    try:
        path = train(cfg, log=lambda message: typer.echo(message))
    except (DataError, ArtifactError) as exc:
        raise fail(str(exc)) from None
    except UnsupportedStrategyModel as exc:
        raise fail(
            f"--strategy {strategy} needs a functional --arch with dense features "
            f"(cnn with --towers 1, textcnn, transformer): {exc}"
        ) from None
    typer.echo(str(path))


def _default_out(model: object, data: Path) -> Path:
    from training.scoring import SavedClassifier

    assert isinstance(model, SavedClassifier)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = model.metadata
    return Path("evaluations") / f"{meta.name}-v{meta.version}-{data.stem}-{stamp}"


def evaluate_command(
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
    from training.report import write_report
    from training.scoring import SavedClassifier, resolve_version_dir, score_dataset

    try:
        classifier = SavedClassifier(resolve_version_dir(model))
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
    write_report(
        target, f"Model {meta.name} v{meta.version} on {data.name}", metrics, meta.labels, y, probs
    )
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

    try:
        classifier = SavedClassifier(resolve_version_dir(model))
    except ArtifactError as exc:
        raise fail(str(exc)) from None
    threshold = classifier.metadata.fallback.threshold
    for text in texts:
        ranking = classifier.rank(text, top_k)
        fallback = " (fallback)" if ranking[0][1] < threshold else ""
        typer.echo(f"{text}{fallback}")
        for label, confidence in ranking:
            typer.echo(f"  {confidence:.4f}  {label}")


def register(cli: typer.Typer) -> None:
    """Add ``train``, ``evaluate`` and ``predict`` to the root CLI."""
    cli.command("train")(train_command)
    cli.command("evaluate")(evaluate_command)
    cli.command("predict")(predict_command)
