"""``textcls retrain``: feedback from the prediction log -> a gated candidate version.

Joins the prediction log (corrections) and the trainer (training.retrain), like the rest of
the CLI; the service never imports this. The candidate is trained in a staging folder inside
the model folder (ignored by the repository: not a number) and published only when the gate
passes, labelled ``candidate``; it then serves nothing until labelled ``shadow`` or
``canary``. When nothing is labelled ``stable`` yet, the serving version is labelled
``stable`` first: otherwise the new, newest version would go live on its own.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.errors import ExitCode, fail
from app.cli.logs import DatabaseUrl, Since, engine_for, parse_since
from app.config import ConfigError, Settings, load_settings
from app.plane import serving_state as ss

if TYPE_CHECKING:
    from training.retrain import Correction, RetrainJob


def serving_version(model_path: Path, state: ss.ServingState, pinned: int | None) -> int:
    """The version answering unlabelled traffic: ``stable``, else the pin, else the newest."""
    from training.artifact import versions

    if ss.STABLE in state.labels:
        return state.labels[ss.STABLE]
    if pinned is not None:
        return pinned
    found = versions(model_path)
    if not found:
        raise ss.UnknownModel(f"{model_path} has no versions")
    return found[-1]


def publish_candidate(candidate_dir: Path, model_path: Path) -> int:
    """Move a staged version into the model folder as its next version; return the number."""
    from training import artifact

    for _ in range(100):
        version = artifact.next_version(model_path)
        meta = artifact.read_metadata(candidate_dir)
        meta.version = version
        artifact.write_metadata(candidate_dir, meta)
        try:
            artifact.publish(candidate_dir, model_path, version)
            return version
        except (artifact.ArtifactError, OSError):
            if not (model_path / str(version)).exists():
                raise  # not a race for the number: a real failure
    raise artifact.ArtifactError(f"{model_path}: could not claim a version number")


TestData = Annotated[
    Path | None,
    typer.Option(help="Fixed held-out file (default: the serving version's own test rows)."),
]
ModelDir = Annotated[
    Path | None, typer.Option("--model-dir", help="Model repository (default as serve).")
]
AccuracyTolerance = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Accuracy the candidate may lose.")
]
F1Tolerance = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Macro-F1 the candidate may lose.")
]
FallbackTolerance = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Fallback rate the candidate may add.")
]
ReportDir = Annotated[
    Path | None, typer.Option(help="Report folder (default: ./retrain-reports/NAME-ID).")
]


def _corrections(database_url: str | None, name: str, since: str | None) -> list[Correction]:
    """The log's corrections of ``name``'s predictions as training examples (saying how many
    cannot be used: those whose texts the log kept only as hashes or not at all)."""
    from app.predlog.reports import model_corrections
    from training.retrain import Correction

    with engine_for(database_url) as engine:
        found = model_corrections(engine, name, parse_since(since))
    if found.without_text:
        typer.echo(
            f"note: {found.without_text} corrections cannot be used: the log kept their texts "
            "only as hashes or not at all (TEXTCLS_LOG_TEXT=hash or none)",
            err=True,
        )
    return [Correction(e.text or "", e.label, e.predicted_label) for e in found.examples]


def _publish(model_path: Path, stable: int, *, candidate_dir: Path, report_dir: Path) -> int:
    """Publish the candidate with its report, labelled ``candidate``, under the state lock;
    label ``stable`` first if nothing is, so the new version does not go live on its own."""
    with ss.locked(model_path):
        current = ss.read_state(model_path)
        if ss.STABLE not in current.labels:
            ss.write_state(model_path, ss.with_label(current, ss.STABLE, stable))
        version = publish_candidate(candidate_dir, model_path)
        shutil.copytree(report_dir, model_path / str(version) / "report" / "retrain")
        ss.write_state(model_path, ss.with_label(ss.read_state(model_path), ss.CANDIDATE, version))
    return version


def _serving(model_dir: Path | None, name: str) -> tuple[Settings, Path, int]:
    """The service settings, the model's folder and its serving version."""
    try:
        settings = load_settings(**({"model_dir": model_dir} if model_dir else {}))
        model_path = ss.model_path_of(settings.model_dir, name)
        state = ss.read_state(model_path)
        stable = serving_version(model_path, state, settings.pinned_versions.get(name))
    except (ConfigError, ss.StateError) as exc:
        raise fail(str(exc)) from None
    return settings, model_path, stable


def _judge(job: RetrainJob, report_dir: Path) -> Path:
    """Train and judge the candidate; write and print the comparison; exit 3 if refused."""
    from training.gate import render_markdown
    from training.gate import write_report as write_comparison
    from training.retrain import RetrainError, retrain

    try:
        outcome = retrain(job, log=typer.echo)
    except RetrainError as exc:
        raise fail(str(exc)) from None
    write_comparison(report_dir, outcome.report)
    typer.echo(render_markdown(outcome.report))
    typer.echo(f"report: {report_dir}")
    if not outcome.passed or outcome.candidate_dir is None:
        typer.echo("refused: " + "; ".join(outcome.reasons), err=True)
        raise typer.Exit(ExitCode.REFUSED)
    return outcome.candidate_dir


def retrain_command(
    *,
    name: Annotated[str, typer.Option("--name", help="The model to improve.")],
    data: Annotated[Path, typer.Option("--data", help="The original training file.")],
    since: Since = None,
    test_data: TestData = None,
    model_dir: ModelDir = None,
    database_url: DatabaseUrl = None,
    accuracy_tolerance: AccuracyTolerance = 0.01,
    f1_tolerance: F1Tolerance = 0.02,
    fallback_tolerance: FallbackTolerance = 0.05,
    out: ReportDir = None,
) -> None:
    """Retrain NAME with the feedback corrections; publish it as `candidate` if not worse.

    The candidate trains with the serving version's recorded settings. Exit 3 when the gate
    refuses the candidate (nothing is published or labelled).
    """
    from training.gate import Tolerance
    from training.retrain import RetrainJob

    settings, model_path, stable = _serving(model_dir, name)
    corrections = _corrections(database_url or settings.database_url, name, since)
    typer.echo(f"{len(corrections)} corrected texts of {name!r}; serving version {stable}")
    run_id = uuid.uuid4().hex[:8]
    staging = model_path / f".tmp-retrain-{run_id}"
    report_dir = out or Path("retrain-reports") / f"{name}-{run_id}"
    tolerance = Tolerance(
        accuracy=accuracy_tolerance, macro_f1=f1_tolerance, fallback_rate=fallback_tolerance
    )
    job = RetrainJob(
        stable_dir=model_path / str(stable),
        original=data,
        corrections=corrections,
        staging=staging,
        test_data=test_data,
        tolerance=tolerance,
    )
    try:
        candidate_dir = _judge(job, report_dir)
        version = _publish(model_path, stable, candidate_dir=candidate_dir, report_dir=report_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    typer.echo(
        f"published version {version}, labelled candidate; next: textcls models label "
        f"{name} shadow {version} (or canary {version})"
    )


def register(cli: typer.Typer) -> None:
    cli.command("retrain")(retrain_command)
