"""Write a trained model as a versioned artifact: temp folder first, then an atomic rename."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from training import artifact
from training.artifact import Metadata


def save_serving_model(model: keras.Model, path: Path) -> None:
    """SavedModel with ``serving_default``: string ``text`` [batch] -> float32 ``probabilities``.

    The signature needs no Keras custom objects: ``tf.saved_model.load`` is enough to serve it.
    """
    archive = keras.export.ExportArchive()
    archive.track(model)  # for the lookup tables the endpoint uses
    # Keras finds those by walking the model in SavedModel mode, and gives up on a layer whose
    # walk raises (a nested multi-input model does): track every resource the checkpoint walk
    # reaches (lookup tables, the encoder's SentencePiece model) by itself.
    for obj in tf.train.TrackableView(model).descendants():
        if isinstance(obj, tf.saved_model.experimental.TrackableResource):
            archive.track(obj)
    # track() also lists every Keras variable for the revived object's `.variables`, and the
    # endpoint's captured tf.Variables are saved again beside them: two copies of each weight
    # on disk and in memory after loading (encoder: 168 -> 85 MB on disk, load RSS +264 ->
    # +175 MiB). Nothing reads `.variables` of a loaded artifact; the endpoint's copy is enough.
    for attr in ("variables", "trainable_variables", "non_trainable_variables"):
        setattr(archive._tf_trackable, attr, [])

    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        return {artifact.OUTPUT_KEY: tf.cast(model(text, training=False), tf.float32)}

    archive.add_endpoint(
        name=artifact.SIGNATURE_KEY,
        fn=serve,
        input_signature=[tf.TensorSpec([None], tf.string, name=artifact.INPUT_KEY)],
    )
    archive.write_out(str(path), verbose=False)


def export_version(
    model: keras.Model,
    model_dir: Path,
    name: str,
    metadata: Metadata,
    write_report: Callable[[Path], None] | None = None,
) -> Path:
    """Export to ``<model_dir>/<name>/.tmp-*``, then publish as the next version; return it.

    On any failure the temp folder is removed and no version folder appears.
    """
    artifact.validate_name(name)
    model_path = model_dir / name
    model_path.mkdir(parents=True, exist_ok=True)
    temp = model_path / f"{artifact.TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        save_serving_model(model, temp)
        if write_report is not None:
            report_dir = temp / artifact.REPORT_DIR
            report_dir.mkdir()
            write_report(report_dir)
        # Another trainer may publish the same number meanwhile: take the next one and retry.
        for _ in range(100):
            version = artifact.next_version(model_path)
            metadata.version = version
            metadata.name = name
            artifact.write_metadata(temp, metadata)
            try:
                return artifact.publish(temp, model_path, version)
            except (artifact.ArtifactError, FileExistsError, OSError):
                if not (model_path / str(version)).exists():
                    raise
        raise artifact.ArtifactError(f"{model_path}: could not claim a version number")
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
