"""A model's versions as the repository holds them, and the route of one request to them.

``ModelEntry`` is what the repository knows of one model: the primary version, the labelled
versions loaded beside it, their failures and the serving state it routes by. ``route`` picks
the version (and the shadow) that a request's ``version`` and session lead to, with the error
that says why when none can answer; it reads the entry and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import InvalidInput, ModelNotFound, ModelNotReady, VersionNotFound
from app.plane import serving_state as ss
from app.plane.batcher import Batcher
from app.plane.loaded_model import LoadedModel
from app.plane.plan import BatchPlan
from app.plane.traffic import Route, UnknownLabel, choose


@dataclass(frozen=True, slots=True)
class Serving:
    """The version answering a model's requests, with its batch queue and how it batches."""

    model: LoadedModel
    batcher: Batcher
    plan: BatchPlan | None = None


@dataclass(slots=True, kw_only=True)
class VersionFailure:
    version: int
    error: str
    at: float
    fingerprint: tuple[int, ...]


@dataclass(slots=True, kw_only=True)
class ModelEntry:
    """Everything the repository knows about one model name.

    ``serving`` is the primary version; ``others`` the labelled versions loaded beside it.
    ``state`` is the serving state as last read; ``effective`` the same with each label
    pointing at a version loaded here (``stable`` at the primary), which is what routes.
    """

    name: str
    serving: Serving | None = None
    others: dict[int, Serving] = field(default_factory=dict)
    failures: dict[int, VersionFailure] = field(default_factory=dict)
    loading: int | None = None
    state: ss.ServingState = ss.EMPTY
    effective: ss.ServingState = ss.EMPTY
    state_stamp: tuple[int, int, int] | None = None
    state_error: str | None = None
    preloaded: dict[int, LoadedModel] = field(default_factory=dict)

    def loaded(self, version: int) -> Serving | None:
        if self.serving is not None and self.serving.model.version == version:
            return self.serving
        return self.others.get(version)

    @property
    def status(self) -> str:
        """``ready`` (a version serves), ``loading`` (not yet tried, or loading now) or
        ``failed`` (every version tried failed; retried when its folder changes)."""
        if self.serving is not None:
            return "ready"
        if self.failures and self.loading is None:
            return "failed"
        return "loading"

    def versions_loaded(self) -> list[int]:
        found = set(self.others)
        if self.serving is not None:
            found.add(self.serving.model.version)
        return sorted(found)


def effective_state(entry: ModelEntry, state: ss.ServingState) -> ss.ServingState:
    """``state`` with each label on a version loaded here (``stable`` on the primary)."""
    primary = entry.serving.model.version if entry.serving else None
    labels = {
        label: version
        for label, version in state.labels.items()
        if entry.loaded(version) is not None
    }
    if ss.STABLE in state.labels and primary is not None:
        labels[ss.STABLE] = primary  # a stable that failed to load: the last good one
    return ss.ServingState(labels, state.canary_share, state.updated_at)


def route(
    entry: ModelEntry, version: int | str | None, session: str | None = None
) -> tuple[Serving, Serving | None, Route]:
    """(the version that answers, the shadow version or None, the route taken)."""
    primary = entry.serving
    if primary is None:
        if entry.failures and entry.loading is None:
            raise ModelNotReady(f"model {entry.name!r} has no version that loads; see /models")
        raise ModelNotReady(f"model {entry.name!r} is still loading")
    try:
        taken = choose(
            entry.effective,
            entry.name,
            primary.model.version,
            requested=version,
            session=session,
        )
    except UnknownLabel as exc:
        if isinstance(version, str) and version in entry.state.labels:
            wanted = entry.state.labels[version]
            failure = entry.failures.get(wanted)
            why = f": {failure.error}" if failure else " yet"
            raise ModelNotReady(
                f"model {entry.name!r} version {wanted} (label {version!r}) is not loaded{why}"
            ) from None
        raise VersionNotFound(str(exc)) from None
    serving = entry.loaded(taken.version)
    if serving is None:
        loaded = entry.versions_loaded()
        shown = ", ".join(map(str, loaded))
        raise VersionNotFound(
            f"model {entry.name!r} version {taken.version} is not served; "
            f"serving version{'s' if len(loaded) > 1 else ''} {shown}"
        )
    shadow = entry.loaded(taken.shadow) if taken.shadow is not None else None
    return serving, shadow, taken


def entry_for(entries: dict[str, ModelEntry], name: str | None, default: str | None) -> ModelEntry:
    """The named model's entry (with no name, the default model's: ``default``, else the
    only one), or the error that names what exists. The repository works out ``default``."""
    if name is None:
        name = _default_name(entries, default)
    entry = entries.get(name)
    if entry is None:
        known = ", ".join(sorted(entries)) or "none"
        raise ModelNotFound(f"model {name!r} not found; models: {known}")
    return entry


def _default_name(entries: dict[str, ModelEntry], default: str | None) -> str:
    if default:
        return default
    if len(entries) == 1:
        return next(iter(entries))
    if not entries:
        raise ModelNotReady("no model is loaded yet")
    names = ", ".join(sorted(entries))
    raise InvalidInput(
        f"several models are served ({names}) and none is the default; name one in 'model', "
        "or choose the default on the server (textcls models default NAME)"
    )
