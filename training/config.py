"""TrainConfig: every setting of one training run, each declared once (training.settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.data import FORMATS
from training.params import ModelParams
from training.settings import SettingError, group, setting

Strategy = Literal["default", "mirrored", "multiworker"]
Validation = Literal["auto", "split", "kfold"]
Monitor = Literal["val_loss", "val_accuracy"]
AUTO_ARCH = "auto"


def arch_choices() -> list[str]:
    from training import architectures

    return [AUTO_ARCH, *architectures.names()]


@dataclass(kw_only=True)
class TrainConfig:
    """Everything one training run needs; ``textcls train`` has one option per setting."""

    # Where the data is and where the model goes: not training parameters (not recorded).
    data: Path | None = setting(
        None, recorded=False, help="Labelled CSV, TSV or JSONL file (default: the bundled example)."
    )
    fmt: str | None = setting(
        None,
        recorded=False,
        flag="--format",
        help=f"One of {', '.join(FORMATS)} (default: extension).",
    )
    text_column: str = setting("text", help="Column (or JSON key) holding the text.")
    label_column: str = setting("label", help="Column (or JSON key) holding the label.")
    val_data: Path | None = setting(
        None, recorded=False, help="Validation file (default: split off --data)."
    )
    test_data: Path | None = setting(
        None, recorded=False, help="Test file (default: split off --data)."
    )
    oos_data: Path | None = setting(
        None,
        recorded=False,
        help="Out-of-scope texts (a text column, no label) to score the fallback on.",
    )
    name: str | None = setting(
        None, recorded=False, help="Model name (default: from the data file's name)."
    )
    model_dir: Path = setting(
        Path("./models"), recorded=False, envvar="TEXTCLS_MODEL_DIR", help="Model repository root."
    )
    # The model.
    arch: str = setting(
        AUTO_ARCH,
        recorded=False,  # metadata.json records the one built (arch) and this (arch_requested)
        choices=arch_choices,
        help="Architecture: auto (encoder on small data when its extra is installed, else "
        "ngram), ngram, cnn, textcnn, transformer, ensemble or encoder (pretrained "
        "multilingual sentence encoder; needs the [encoder] extra). A flag the chosen one "
        "does not read is reported.",
    )
    params: ModelParams = group(ModelParams)
    # How it is fitted.
    epochs: int = setting(30, min=1, help="Most epochs.")
    patience: int = setting(4, min=0, help="Epochs without --monitor improving before stopping.")
    monitor: Monitor = setting(
        "val_accuracy", help="What early stopping watches: val_loss or val_accuracy."
    )
    reduce_lr_patience: int = setting(
        2, min=0, help="Epochs without val-loss improvement before the LR drops (0: off)."
    )
    reduce_lr_factor: float = setting(
        0.3, min=0.01, max=1.0, help="What the learning rate is multiplied by when it drops."
    )
    batch_size: int = setting(32, min=1, help="Rows per optimizer step.")
    # Off: on imbalanced data balanced weights cost accuracy and macro-F1
    # (docs/results/accuracy.md).
    class_weights: bool = setting(False, help="Weigh classes inversely to their frequency.")
    # Held-out predictions and the fallback threshold.
    val_fraction: float = setting(0.1, min=0.0, max=0.5, help="Rows split off for validation.")
    test_fraction: float = setting(0.1, min=0.0, max=0.5, help="Rows split off for the test.")
    target_precision: float = setting(
        0.95, min=0.0, max=1.0, help="Precision the fallback threshold aims for."
    )
    max_fallback_rate: float = setting(
        0.4,
        min=0.0,
        max=1.0,
        help="Most held-out messages the threshold may hand to a person; a target "
        "precision needing more is reported and capped here.",
    )
    validation: Validation = setting(
        "auto",
        help="How held-out predictions are made: split (val/test rows never trained on), "
        "kfold (out-of-fold, then a refit on every row) or auto (kfold for files up to "
        "4000 rows without --val-data).",
    )
    refit: bool | None = setting(
        None,
        help="split: after the val rows chose the epochs, train again on train + val "
        "rows (not with --val-data). Default: on for encoder, off for the others.",
    )
    folds: int | None = setting(
        None, min=2, help="Folds for --validation kfold. Default: 3 for encoder, 5 for the others."
    )
    # The run.
    seed: int = setting(0, help="Seed for the split, initialisation and shuffling.")
    deterministic: bool = setting(
        False, recorded=False, help="Also enable TensorFlow op determinism (slower)."
    )
    strategy: Strategy = setting(
        "default",
        reused=False,  # a retrain runs on one machine (multiworker needs its TF_CONFIG)
        help="tf.distribute strategy: default, mirrored or multiworker.",
    )
    verbose: bool = setting(
        True, recorded=False, flag="--verbose/--quiet", help="Per-epoch lines (--quiet: none)."
    )

    def check(self) -> None:
        """Rules between settings (training.settings.validate runs it after each setting's)."""
        if self.validation == "kfold" and (self.val_data or self.strategy != "default"):
            raise SettingError(
                "--validation kfold takes no --val-data and runs with --strategy default"
            )
        if self.arch == "encoder":
            from training.encoder.e5_weights import require_encoders
            from training.encoder.weights import EncoderUnavailable

            try:
                require_encoders(self.params.encoders)
            except EncoderUnavailable as exc:
                raise SettingError(str(exc)) from None
