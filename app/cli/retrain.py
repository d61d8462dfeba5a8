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
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

import typer

from app.cli.errors import ExitCode, fail
from app.cli.logs import DatabaseUrl, Since, engine_for, parse_since
from app.cli.remote import STORE_ERRORS, ModelDir, open_or_fail, store_failure
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


class Repository(Protocol):
    """Where the serving version is read from and the candidate is published to."""

    stable: int
    stable_dir: Path

    def staging(self, run_id: str) -> Path: ...

    def publish(self, candidate_dir: Path, report_dir: Path) -> int: ...


class LocalRepository:
    """A model folder: the candidate is staged inside it (ignored by the repository: not a
    number) and published under the state lock."""

    def __init__(self, settings: Settings, name: str) -> None:
        try:
            self.model_path = ss.model_path_of(settings.model_dir, name)
            state = ss.read_state(self.model_path)
            pinned = settings.pinned_versions.get(name)
            self.stable = serving_version(self.model_path, state, pinned)
        except ss.StateError as exc:
            raise fail(str(exc)) from None
        self.stable_dir = self.model_path / str(self.stable)

    def staging(self, run_id: str) -> Path:
        return self.model_path / f".tmp-retrain-{run_id}"

    def publish(self, candidate_dir: Path, report_dir: Path) -> int:
        """Publish the candidate with its report, labelled ``candidate``, under the state
        lock; label ``stable`` first if nothing is, so it does not go live on its own."""
        model_path = self.model_path
        with ss.locked(model_path):
            current = ss.read_state(model_path)
            if ss.STABLE not in current.labels:
                ss.write_state(model_path, ss.with_label(current, ss.STABLE, self.stable))
            version = publish_candidate(candidate_dir, model_path)
            shutil.copytree(report_dir, model_path / str(version) / "report" / "retrain")
            labelled = ss.with_label(ss.read_state(model_path), ss.CANDIDATE, version)
            ss.write_state(model_path, labelled)
        return version


class StoreRepository:
    """An object store: the serving version is copied (verified) to ``tmp``, the candidate
    staged there and published as the next version (marker last); the labels change by
    conditional writes, as the replicas' admin routes change them."""

    def __init__(self, settings: Settings, name: str, tmp: Path) -> None:
        from app.plane.store import published as pub

        assert settings.model_store is not None
        self.store, self.name, self.tmp = open_or_fail(settings.model_store), name, tmp
        try:
            versions = pub.published_versions(self.store, name)
            state = pub.read_state(self.store, name)
            pinned = settings.pinned_versions.get(name)
            self.stable = state.labels.get(ss.STABLE, pinned or versions[-1])
            self.stable_dir = pub.fetch_version(self.store, name, self.stable, into=tmp / "stable")
        except (*STORE_ERRORS, ss.StateError) as exc:
            raise store_failure(exc) from None

    def staging(self, run_id: str) -> Path:
        return self.tmp / f".tmp-retrain-{run_id}"

    def publish(self, candidate_dir: Path, report_dir: Path) -> int:
        from app.plane.store import published as pub

        stable = self.stable
        shutil.copytree(report_dir, candidate_dir / "report" / "retrain")
        try:
            pub.edit_state(self.store, self.name, lambda s: _stable_kept(s, stable))
            _, version = pub.publish_next(self.store, candidate_dir)
            pub.edit_state(self.store, self.name, lambda s: ss.with_label(s, ss.CANDIDATE, version))
        except (*STORE_ERRORS, ss.StateError) as exc:
            raise store_failure(exc) from None
        return version


def _stable_kept(state: ss.ServingState, stable: int) -> ss.ServingState:
    """``stable`` labelled unless a version is already."""
    return state if ss.STABLE in state.labels else ss.with_label(state, ss.STABLE, stable)


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

    try:
        settings = load_settings(**({"model_dir": model_dir} if model_dir else {}))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="textcls-retrain-") as tmp:
        where: Repository = (
            LocalRepository(settings, name)
            if settings.model_store is None
            else StoreRepository(settings, name, Path(tmp))
        )
        corrections = _corrections(database_url or settings.database_url, name, since)
        typer.echo(
            f"{len(corrections)} corrected texts of {name!r}; serving version {where.stable}"
        )
        run_id = uuid.uuid4().hex[:8]
        report_dir = out or Path("retrain-reports") / f"{name}-{run_id}"
        tolerance = Tolerance(
            accuracy=accuracy_tolerance, macro_f1=f1_tolerance, fallback_rate=fallback_tolerance
        )
        job = RetrainJob(
            stable_dir=where.stable_dir,
            original=data,
            corrections=corrections,
            staging=where.staging(run_id),
            test_data=test_data,
            tolerance=tolerance,
        )
        try:
            version = where.publish(_judge(job, report_dir), report_dir)
        finally:
            shutil.rmtree(job.staging, ignore_errors=True)
    typer.echo(
        f"published version {version}, labelled candidate; next: textcls models label "
        f"{name} shadow {version} (or canary {version})"
    )


def register(cli: typer.Typer) -> None:
    cli.command("retrain")(retrain_command)
