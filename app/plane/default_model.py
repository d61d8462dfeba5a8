"""The default model: which model answers requests that name none, and why.

``TEXTCLS_DEFAULT_MODEL`` if set; else the model recorded in the repository's own
``serving.json`` (training.artifact: the first model published or served, or the one chosen
with ``textcls models default`` or ``PUT /admin/default-model``); else the only model. With
several models and none of these, such requests get 422, and the start-up log says so before
the service reports ready.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from training.artifact import (
    ArtifactError,
    read_default_model,
    record_default_if_first,
    repository_state_stamp,
    write_default_model,
)

if TYPE_CHECKING:
    from app.plane.store.objects import ObjectStore

# The repository's log: these lines read as its own.
log = logging.getLogger("app.plane.repository")

SETTING, REPOSITORY, ONLY_MODEL = "setting", "repository", "only model"


class DefaultModel:
    """The recorded default as last read, and the choice it leads to among the models."""

    def __init__(self, model_dir: Path, setting: str | None) -> None:
        self.model_dir = model_dir
        self.setting = setting
        self.recorded: str | None = None
        self.error: str | None = None  # why the file cannot be read
        self.record_error: str | None = None  # why the first model cannot be recorded
        self._stamp: tuple[int, int, int] | None = None
        self._said: tuple[str | None, str | None, tuple[str, ...]] | None = None

    def read(self) -> None:
        """Re-read the recorded default when its file changed; keep the last good one."""
        stamp = repository_state_stamp(self.model_dir)
        if stamp == self._stamp and self.error is None:
            return
        try:
            recorded = read_default_model(self.model_dir)
        except ArtifactError as exc:
            if self.error != str(exc):
                log.error("%s; keeping the previous default model", exc)
            self.error = str(exc)
            return
        self.recorded, self.error, self._stamp = recorded, None, stamp

    def write(self, name: str, store: ObjectStore | None) -> None:
        """Record ``name`` as the default: in the object store first when the models are in
        one (a conditional write, which every replica's mirror copies at its next poll), then
        in the local folder; ArtifactError unless it is a model there."""
        if store is not None:
            from app.errors import ModelStoreUnavailable
            from app.plane.store.objects import StoreError
            from app.plane.store.published import write_default

            try:
                write_default(store, name)
            except StoreError as exc:
                raise ModelStoreUnavailable(f"{exc}; nothing was changed") from exc
        write_default_model(self.model_dir, name)

    def record_first(self, name: str) -> None:
        """With none recorded, record ``name``, the only model, now that it serves."""
        if self.recorded is not None:
            return
        try:
            wrote = record_default_if_first(self.model_dir, name)
        except (OSError, ArtifactError) as exc:  # e.g. a read-only folder: still the only one
            if self.record_error != str(exc):
                log.warning("cannot record %s as the default model: %s", name, exc)
            self.record_error = str(exc)
            return
        if wrote:
            log.info("recorded %s as the default model in %s", name, self.model_dir)
        self.read()

    def choose(self, names: Collection[str]) -> tuple[str | None, str | None]:
        """(the model answering requests that name none, where that choice comes from:
        ``setting``, ``repository`` or ``only model``), or (None, None) when there is none."""
        if self.setting is not None:
            return self.setting, SETTING
        if self.recorded is not None and self.recorded in names:
            return self.recorded, REPOSITORY
        if len(names) == 1:
            return next(iter(names)), ONLY_MODEL
        return None, None

    def say(self, names: Collection[str]) -> None:
        """Log the choice once per change of it or of the models."""
        default, source = self.choose(names)
        listed_names = tuple(sorted(names))
        said = (default, source, listed_names)
        if said == self._said or not listed_names:
            return
        self._said = said
        listed = ", ".join(listed_names)
        if source == SETTING and default not in names:
            log.warning(
                "TEXTCLS_DEFAULT_MODEL=%s names no model in %s (models: %s): requests without "
                "'model' get 404",
                default,
                self.model_dir,
                listed,
            )
        elif source == SETTING:
            log.info("requests without 'model' go to %s (TEXTCLS_DEFAULT_MODEL)", default)
        elif source == REPOSITORY:
            log.info("requests without 'model' go to %s, the repository's default model", default)
        elif source == ONLY_MODEL:
            log.info("requests without 'model' go to %s, the only model", default)
        else:
            log.warning(
                "%d models are served (%s) and no default model is recorded: /classify "
                "requests without 'model' get 422. Choose one with `textcls models default %s` "
                "(or PUT /admin/default-model, or TEXTCLS_DEFAULT_MODEL), or name the model in "
                "each request",
                len(listed_names),
                listed,
                listed_names[0],
            )
