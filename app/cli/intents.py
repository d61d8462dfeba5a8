"""``textcls intents discover``: group the prediction log's hand-offs into candidate new
intents, for the review page's New intents view (and a JSON file)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from app.cli.errors import fail
from app.cli.logs import DatabaseUrl, engine_for
from app.cli.remote import ModelDir
from app.config import ConfigError, load_settings
from app.predlog.intents import (
    FoundGroup,
    LoggedText,
    label_examples,
    logged_texts,
    store_groups,
)
from app.predlog.review import LogFilter
from training.discovery.clusters import MAX_TEXTS, Cluster, discover, sample
from training.discovery.space import Space, choose_space

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from training.artifact import Metadata

intents_app = typer.Typer(help="Intents no label covers yet.", no_args_is_help=True)

# Texts of each known label placed in the space, for the out-of-scope judgement and each
# group's nearest label.
LABEL_TEXTS = 20


def _when(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{flag} {value!r} is not an ISO date or date-time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _newest(model_dir: str | None, name: str) -> Metadata | None:
    """The newest version's metadata (None: no version here), in a folder or a store."""
    from training.artifact import ArtifactError, read_metadata, version_path, versions

    try:
        settings = load_settings(**({"model_dir": model_dir} if model_dir else {}))
    except ConfigError as exc:
        raise fail(str(exc)) from None
    if settings.model_store is not None:
        from app.cli.remote import STORE_ERRORS, open_or_fail, store_failure
        from app.plane.store.published import newest_metadata

        try:
            return newest_metadata(open_or_fail(settings.model_store), name)
        except STORE_ERRORS as exc:
            raise store_failure(exc) from None
    root = settings.model_dir
    found = versions(root / name)
    if not found:
        return None
    try:
        return read_metadata(version_path(root, name, found[-1]))
    except ArtifactError as exc:
        raise fail(str(exc)) from None


def training_sample(meta: Metadata | None) -> dict[str, list[str]]:
    """Up to LABEL_TEXTS texts of each label from the version's training file, when it is
    still where the trainer read it (else {})."""
    import random

    from training.data import DataError, load_dataset

    if meta is None or not Path(meta.data.file).is_file():
        return {}
    try:
        ds = load_dataset(Path(meta.data.file))
    except (DataError, OSError, ValueError):
        return {}
    by_label: dict[str, list[str]] = {}
    for text, label in zip(ds.texts, ds.labels, strict=True):
        if label in meta.labels:
            by_label.setdefault(label, []).append(text)
    rng = random.Random(0)
    return {k: rng.sample(v, min(LABEL_TEXTS, len(v))) for k, v in sorted(by_label.items())}


@intents_app.command("discover")
def discover_command(
    model: Annotated[str, typer.Argument(help="The model whose log to read.")],
    *,
    since: Annotated[str | None, typer.Option(help="Logged at or after (ISO, UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Logged before (ISO, UTC).")] = None,
    min_size: Annotated[
        int, typer.Option(min=2, max=10_000, help="Fewest texts a group needs.")
    ] = 5,
    every: Annotated[
        bool, typer.Option("--all", help="Group every logged text, not only the hand-offs.")
    ] = False,
    space: Annotated[
        str,
        typer.Option(
            help="Embedding: auto (the model's encoder, the encoder package, "
            "else TF-IDF), encoder or tfidf."
        ),
    ] = "auto",
    out: Annotated[Path | None, typer.Option("--out", help="Write the groups as JSON.")] = None,
    save: Annotated[
        bool, typer.Option(help="Store the groups for the review page's New intents view.")
    ] = True,
    model_dir: ModelDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Group the logged texts that fell back or are out of scope (further from every known
    label's training texts than nearly all of those are from each other), biggest first."""
    start, end = _when(since, "--since"), _when(until, "--until")
    if start and end and start >= end:
        raise fail("--since must be before --until")
    if space not in ("auto", "encoder", "tfidf"):
        raise fail(f"--space {space!r}: use auto, encoder or tfidf")
    meta = _newest(model_dir, model)
    try:
        chosen = choose_space(meta.arch if meta else "", space)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(str(exc)) from None
    started = time.monotonic()
    where = LogFilter(model=model, since=start, until=end)
    with engine_for(database_url) as engine:
        found = _discover(engine, where, meta=meta, space=chosen, min_size=min_size, every=every)
        groups = [
            FoundGroup(
                members=[(found.rows[i].request_id, found.rows[i].index) for i in c.members],
                examples=c.examples,
                terms=c.terms,
                nearest_label=c.nearest_label,
                nearest_similarity=c.nearest_similarity,
            )
            for c in found.clusters
        ]
        ids = store_groups(engine, model, space=chosen.name, groups=groups) if save else []
    body = _body(model, chosen.name, found, ids=ids, window=(start, end))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _summary(body, min_size, time.monotonic() - started, stored=bool(ids))


@dataclass(frozen=True, kw_only=True)
class Found:
    """The window's logged texts (``logged`` of them), the ones read (``rows``: all, or a
    sample past the space's read limit) and the groups, whose members index ``rows``."""

    logged: int
    rows: list[LoggedText]
    clusters: list[Cluster]


def _discover(
    engine: Engine,
    where: LogFilter,
    *,
    meta: Metadata | None,
    space: Space,
    min_size: int,
    every: bool,
) -> Found:
    logged = logged_texts(engine, where)
    known = training_sample(meta) or label_examples(engine, where, LABEL_TEXTS)
    fell_back = [True] * len(logged) if every else [r.fallback for r in logged]
    kept = sample([r.text for r in logged], fell_back, space.read_limit or len(logged))
    rows = [logged[i] for i in kept]
    texts, picked = [r.text for r in rows], [fell_back[i] for i in kept]
    clusters = discover(texts, picked, known, space, min_size=min_size)
    return Found(logged=len(logged), rows=rows, clusters=clusters)


def _body(
    model: str, space: str, found: Found, *, ids: list[int], window: tuple[datetime | None, ...]
) -> dict[str, Any]:
    """The JSON the command writes (``--out``)."""
    start, end = window
    return {
        "model": model,
        "space": space,
        "texts": found.logged,
        "read": len(found.rows),
        "out_of_scope": "fallback, or further from the known labels' training texts than "
        "nearly all of them are from each other, or closer to other logged texts than to "
        "those",
        "since": start.isoformat() if start else None,
        "until": end.isoformat() if end else None,
        "clusters": [
            {
                "id": ids[k] if ids else k + 1,
                "size": len(c.members),
                "texts": [found.rows[i].text for i in c.members[:MAX_TEXTS]],
                "examples": c.examples,
                "terms": c.terms,
                "nearest_label": c.nearest_label,
                "nearest_similarity": c.nearest_similarity,
            }
            for k, c in enumerate(found.clusters)
        ],
    }


def _summary(body: dict[str, Any], min_size: int, seconds: float, *, stored: bool) -> None:
    clusters = body["clusters"]
    grouped = sum(c["size"] for c in clusters)
    read = "" if body["read"] == body["texts"] else f" (read {body['read']}, hand-offs first)"
    typer.echo(
        f"{body['texts']} texts{read} in {body['space']}: {len(clusters)} groups of "
        f"{min_size}+ hold {grouped} ({seconds:.1f}s)"
        + ("; stored for the review page" if stored else "")
    )
    for c in clusters[:20]:
        near = c["nearest_label"]
        near_text = f", nearest {near} ({c['nearest_similarity']:.2f})" if near else ""
        typer.echo(f"  #{c['id']:<5} {c['size']:>5} texts  {', '.join(c['terms'][:5])}{near_text}")


def register(cli: typer.Typer) -> None:
    """Add the ``intents`` command group to the root CLI."""
    cli.add_typer(intents_app, name="intents")
