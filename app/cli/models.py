"""``textcls models``: read and edit a model's labels and traffic, and the repository's default
model, with no server running.

The default model goes to ``models/serving.json`` (training.artifact), read by every replica
within ``TEXTCLS_POLL_INTERVAL_S`` like the labels.

Edits go to ``models/<name>/serving.json`` (app.plane.serving_state), the file every replica reads
within ``TEXTCLS_POLL_INTERVAL_S``. The CLI checks that a version exists and that its metadata
reads; it does not load TensorFlow, so a version whose SavedModel is broken is only found by
the servers, which then keep serving what they served (the admin routes load before writing
and answer 409 instead).

With ``--model-dir s3://...`` (or ``gs://``, or TEXTCLS_MODEL_DIR set to one), the same
commands read and edit the store's ``serving.json`` files by conditional writes, the way the
replicas' admin routes do, so an edit here and one through any replica never lose one
another; a version counts there once its completion marker is there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from app.cli.errors import ExitCode, fail
from app.cli.remote import STORE_ERRORS, ModelDir, open_or_fail, store_failure
from app.config import ConfigError, load_settings
from app.plane import serving_state as ss
from app.plane.store import published as pub
from app.plane.store.objects import ObjectStore, is_remote
from training.artifact import ArtifactError, read_default_model, write_default_model

models_app = typer.Typer(
    help="The default model; version labels (stable, canary, shadow, ...), canary share and "
    "rollback.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="Model name (a folder of the model repository).")]
# A local model folder, or the object store holding the models.
Where = Path | ObjectStore


def _where(model_dir: str | None) -> Where:
    if model_dir is None:
        try:
            settings = load_settings()
        except ConfigError as exc:
            raise fail(str(exc)) from None
        model_dir = settings.model_store or str(settings.model_dir)
    return open_or_fail(model_dir) if is_remote(model_dir) else Path(model_dir)


def _recorded_default(where: Where) -> str | None:
    try:
        return read_default_model(where) if isinstance(where, Path) else pub.read_default(where)
    except ArtifactError as exc:
        raise fail(str(exc)) from None
    except STORE_ERRORS as exc:
        raise store_failure(exc) from None


def _show(name: str, state: ss.ServingState, as_json: bool, *, default: str | None = None) -> None:
    if as_json:
        body = {"name": name, "default": default == name, **state.to_json()}
        typer.echo(json.dumps(body, indent=2))
        return
    mark = " (the default model: answers requests that name none)" if default == name else ""
    typer.echo(f"model   {name}{mark}")
    if state.labels:
        for label, version in sorted(state.labels.items()):
            typer.echo(f"  {label:<12} -> version {version}")
    else:
        typer.echo("  no labels: the newest version answers")
    t = state.traffic()
    typer.echo(f"traffic canary {t['canary']:.1%} -> version {t['canary_version'] or '-'}")
    if t["shadow_version"]:
        typer.echo(f"shadow  version {t['shadow_version']} (every request, never answered)")
    if state.updated_at:
        typer.echo(f"updated {state.updated_at}")


def edit(
    where: Where, name: str, change: Callable[[ss.ServingState], ss.ServingState]
) -> ss.ServingState:
    """Apply ``change`` to the model's state and write it: under the state lock in a folder,
    by a conditional write in an object store (the replicas' admin routes write the same)."""
    if not isinstance(where, Path):
        pub.published_versions(where, name)  # UnknownModel unless it has a version
        return pub.edit_state(where, name, change)
    path = ss.model_path_of(where, name)
    with ss.locked(path):
        return ss.write_state(path, change(ss.read_state(path)))


def _edit(
    where: Where,
    name: str,
    change: Callable[[ss.ServingState], ss.ServingState],
    *,
    as_json: bool,
) -> None:
    try:
        state = edit(where, name, change)
    except ss.StateError as exc:
        raise fail(str(exc)) from None
    except STORE_ERRORS as exc:
        raise store_failure(exc) from None
    except OSError as exc:
        raise fail(f"cannot write the serving state: {exc}", ExitCode.FAILED) from None
    _show(name, state, as_json)


AsJson = Annotated[bool, typer.Option("--json", help="Print the state as JSON.")]


@models_app.command("label")
def label_command(
    name: Name,
    label: Annotated[str, typer.Argument(help="stable, canary, shadow, candidate or your own.")],
    version: Annotated[int, typer.Argument(help="The version the label points to.")],
    *,
    model_dir: ModelDir = None,
    as_json: AsJson = False,
) -> None:
    """Point LABEL at VERSION (e.g. `stable 3`, `shadow 4`, `canary 4`)."""
    where = _where(model_dir)

    def change(state: ss.ServingState) -> ss.ServingState:
        if isinstance(where, Path):
            ss.check_version_on_disk(where, name, version)
            ss.check_metadata(where, name, version)
        else:
            pub.check_published(where, name, version)
        return ss.with_label(state, label, version)

    _edit(where, name, change, as_json=as_json)


@models_app.command("unlabel")
def unlabel_command(
    name: Name,
    label: Annotated[str, typer.Argument(help="The label to remove.")],
    *,
    model_dir: ModelDir = None,
    as_json: AsJson = False,
) -> None:
    """Remove LABEL (removing `canary` also sets its share to 0)."""
    _edit(_where(model_dir), name, lambda state: ss.without_label(state, label), as_json=as_json)


@models_app.command("traffic")
def traffic_command(
    name: Name,
    *,
    canary: Annotated[
        float, typer.Option("--canary", help="Share (0 to 1) of traffic for the canary version.")
    ],
    model_dir: ModelDir = None,
    as_json: AsJson = False,
) -> None:
    """Send a share of the traffic that names no version to the `canary` version."""
    _edit(_where(model_dir), name, lambda s: ss.with_canary_share(s, canary), as_json=as_json)


@models_app.command("rollback")
def rollback_command(name: Name, model_dir: ModelDir = None, as_json: AsJson = False) -> None:
    """At once: all traffic to `stable`, canary share 0, `shadow` cleared."""
    _edit(_where(model_dir), name, ss.rolled_back, as_json=as_json)


@models_app.command("show")
def show_command(name: Name, model_dir: ModelDir = None, as_json: AsJson = False) -> None:
    """Print the model's labels and traffic."""
    where = _where(model_dir)
    try:
        if isinstance(where, Path):
            state = ss.read_state(ss.model_path_of(where, name))
        else:
            pub.published_versions(where, name)  # UnknownModel unless it has a version
            state = pub.read_state(where, name)
    except ss.StateError as exc:
        raise fail(str(exc)) from None
    except STORE_ERRORS as exc:
        raise store_failure(exc) from None
    _show(name, state, as_json, default=_recorded_default(where))


@models_app.command("default")
def default_command(
    name: Annotated[
        str | None, typer.Argument(help="The model to make the default; omit to print it.")
    ] = None,
    *,
    model_dir: ModelDir = None,
    as_json: AsJson = False,
) -> None:
    """Print or choose the model answering requests that name none (every replica, restarts).

    TEXTCLS_DEFAULT_MODEL, when a server sets it, overrides what is recorded here.
    """
    where = _where(model_dir)
    if name is not None:
        try:
            if isinstance(where, Path):
                write_default_model(where, name)
            else:
                pub.write_default(where, name)
        except ArtifactError as exc:
            raise fail(str(exc)) from None
        except STORE_ERRORS as exc:
            raise store_failure(exc) from None
        except OSError as exc:
            raise fail(f"cannot write the default model: {exc}", ExitCode.FAILED) from None
    default = _recorded_default(where)
    if as_json:
        typer.echo(json.dumps({"default_model": default}))
    elif default is None:
        shown = where if isinstance(where, Path) else where.url
        typer.echo(f"no default model recorded in {shown}: with one model, it is the default")
    else:
        typer.echo(f"default model {default}")


@models_app.command("push")
def push_command(
    version_dir: Annotated[Path, typer.Argument(help="A published version: models/NAME/VERSION.")],
    to: Annotated[str, typer.Option(help="The object store: s3://bucket/prefix or gs://...")],
) -> None:
    """Upload a version to an object-store repository, file by file, its completion marker
    last: replicas serving the store take it once the marker is there."""
    from app.plane.store.marker import MarkerError, publish_folder, read_marker
    from app.plane.store.objects import StoreError, open_store
    from training.artifact import read_metadata

    try:
        meta = read_metadata(version_dir)
        store = open_store(to)
        prefix = f"{meta.name}/{meta.version}"
        try:
            read_marker(store, prefix)
            raise fail(f"{to}/{prefix} is already published")
        except MarkerError:
            pass  # not there yet (or unfinished): upload it
        publish_folder(store, version_dir, prefix)
    except (ArtifactError, StoreError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{to.rstrip('/')}/{prefix}")


def register(cli: typer.Typer) -> None:
    """Add the ``models`` command group to the root CLI."""
    cli.add_typer(models_app, name="models")
