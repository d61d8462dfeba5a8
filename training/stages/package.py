"""Stage package: metadata.json, the report and the calibrated model, published atomically as
the next version (training.export)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training import artifact
from training.config import TrainConfig
from training.settings import recorded_params
from training.stages.calibrate import Calibrated
from training.stages.evaluate import Evaluation
from training.stages.held_out import Trained
from training.stages.prepare import Prepared
from training.stages.reference import reference_of
from training.stages.refit import wants_refit


def params_of(cfg: TrainConfig, prep: Prepared, trained: Trained) -> dict[str, Any]:
    """metadata.json's ``params``: every recorded setting, and what the run decided."""
    return {
        **recorded_params(cfg),
        "validation": prep.validation,
        "refit": wants_refit(cfg) and cfg.val_data is None and prep.validation == "split",
        "arch_requested": prep.arch_requested,
        "arch_reason": prep.arch_reason,
        "replicas": trained.fitted.replicas,
        "sources": prep.splits.sources,
        "oos_data": str(cfg.oos_data) if cfg.oos_data else None,
    }


def metadata_of(
    cfg: TrainConfig, prep: Prepared, trained: Trained, cal: Calibrated, evaluation: Evaluation
) -> artifact.Metadata:
    """The version's metadata (its number is set when export claims one)."""
    import tensorflow as tf

    from training import architectures

    metrics = evaluation.metrics
    headline: dict[str, Any] = {
        s: {k: metrics[s][k] for k in ("rows", "accuracy", "macro_f1")}
        for s in ("cv", "val", "test")
        if s in metrics
    }
    meta = artifact.Metadata(
        name=prep.name,
        version=1,  # set by export_version when it claims the number
        labels=prep.splits.labels,
        created_at=artifact.utc_now_iso(),
        tensorflow_version=tf.__version__,
        arch=cfg.arch,
        tokenizer=architectures.get(cfg.arch).tokenizer_description(),
        data=artifact.DataInfo(
            file=str(prep.loaded[0].path),
            sha256=prep.loaded[0].sha256,
            rows={s: len(t) for s, t in prep.splits.texts.items()},
        ),
        params=params_of(cfg, prep, trained),
        metrics={**headline, "training": metrics["training"], "evaluation": metrics["evaluation"]},
        fallback=cal.fallback,
        op_libraries=list(architectures.get(cfg.arch).op_libraries),
    )
    meta.metrics.update({k: metrics[k] for k in ("calibration", "oos") if k in metrics})
    meta.reference = reference_of(prep, trained.held, cal)
    return meta


def package(
    cfg: TrainConfig, prep: Prepared, trained: Trained, cal: Calibrated, evaluation: Evaluation
) -> Path:
    """Publish the calibrated model with its metadata and report; return the version folder."""
    from training.calibration import QualityInputs, append_quality_report, with_temperature
    from training.export import export_version
    from training.report import ReportSet, write_report

    held, splits, metrics = trained.held, prep.splits, evaluation.metrics
    report_split = "test" if "test" in cal.probs else held.split
    report_metrics = dict(metrics)
    report_metrics.setdefault("test", metrics[report_split])
    report_y = splits.y["test"] if report_split == "test" else held.y
    source = "cross-validation" if report_split == "cv" else Path(splits.sources[report_split]).name

    def report(out: Path) -> None:
        title = f"Model {prep.name} ({cfg.arch}) on {source}"
        probs = cal.probs[report_split]
        write_report(out, title, report_metrics, ReportSet(splits.labels, report_y, probs))
        if cal.calibration.get("method") == "temperature":
            inputs = QualityInputs(
                report_split,
                before=cal.uncalibrated[report_split],
                after=probs,
                y=report_y,
                fitted_on="out-of-fold predictions" if held.split == "cv" else held.split,
            )
            append_quality_report(out, inputs, cal.calibration, metrics.get("oos"))

    meta = metadata_of(cfg, prep, trained, cal, evaluation)
    model = with_temperature(trained.fitted.model, cal.temperature)
    return export_version(model, cfg.model_dir, prep.name, meta, report)
