"""Model repositories in an object store (``s3://``, ``gs://``) for the commands that take a
model folder: a model read from one is copied, verified, to a temporary folder; a version
trained or retrained for one is trained in a temporary folder and then published to it with
``published.publish_next`` (its files, then its completion marker last, as ``textcls models
push`` uploads them). A local folder goes through none of this."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from app.cli.errors import ExitCode, fail
from app.plane.serving_state import StateError
from app.plane.store.marker import MarkerError
from app.plane.store.objects import ObjectStore, StoreError, StoreUnavailable, is_remote, open_store
from training.artifact import ArtifactError

ModelDir = Annotated[
    str | None,
    typer.Option(
        "--model-dir",
        help="Model repository: a folder, or s3://bucket/prefix or gs://... "
        "(default: TEXTCLS_MODEL_DIR, as serve).",
    ),
]

# What a failed store operation exits with: the store away is a failure to retry; anything
# else (a missing model, a bad URL, a version that does not match its marker, unusable
# metadata) is bad input.
STORE_ERRORS = (StoreError, MarkerError, ArtifactError)


def store_failure(exc: Exception) -> Exception:
    """The CLI's exit for a store operation that failed (``raise store_failure(exc)``)."""
    if isinstance(exc, StoreUnavailable):
        return fail(str(exc), ExitCode.FAILED)
    return fail(str(exc))


def open_or_fail(url: str) -> ObjectStore:
    try:
        return open_store(url)
    except StoreError as exc:
        raise fail(str(exc)) from None


def _split_model_url(url: str) -> tuple[str, str, int | None]:
    """``s3://bucket/prefix/NAME[/VERSION]`` -> (the repository's URL, NAME, VERSION)."""
    parts = url.rstrip("/").split("/")
    version = int(parts.pop()) if parts[-1].isdigit() else None
    scheme_and_bucket = 3  # "s3:", "", "bucket"
    if len(parts) <= scheme_and_bucket:
        raise fail(f"{url}: name a model in the repository, e.g. s3://bucket/models/NAME[/3]")
    name = parts.pop()
    return "/".join(parts), name, version


@contextlib.contextmanager
def local_model(location: str) -> Iterator[Path]:
    """A model (``.../NAME``: its newest complete version) or a version (``.../NAME/3``) as a
    local folder: a local path as given; from an object store, a verified temporary copy."""
    if not is_remote(location):
        yield Path(location)
        return
    repo, name, version = _split_model_url(location)
    store = open_or_fail(repo)
    from app.plane.store.published import check_published, fetch_version, published_versions

    with tempfile.TemporaryDirectory(prefix="textcls-model-") as tmp:
        try:
            if version is None:
                version = published_versions(store, name)[-1]
            check_published(store, name, version)  # else the error names those there are
            copy = fetch_version(store, name, version, into=Path(tmp))
        except (*STORE_ERRORS, StateError) as exc:  # StateError: no such model
            raise store_failure(exc) from None
        yield copy


def publish_trained(url: str, version_dir: Path) -> str:
    """Publish a version trained locally to the store at ``url``; its URL there."""
    from app.plane.store.published import publish_next

    store = open_or_fail(url)
    try:
        name, version = publish_next(store, version_dir)
    except STORE_ERRORS as exc:
        raise store_failure(exc) from None
    return f"{store.url}/{name}/{version}"
