"""The version's drift reference (training.reference), from the run's held-out rows; the
package stage writes it into metadata.json."""

from __future__ import annotations

from training.reference import HeldOutRows, Reference, reference_statistics
from training.stages.calibrate import Calibrated
from training.stages.held_out import HeldOut
from training.stages.prepare import Prepared


def reference_of(prep: Prepared, held: HeldOut, cal: Calibrated) -> Reference:
    """The run's reference: on the test rows when there are some, else on the held-out ones."""
    texts = prep.splits.texts
    split = "test" if "test" in cal.probs and texts["test"] else held.split
    return reference_statistics(
        labels=prep.splits.labels,
        train_texts=texts["train"],
        held=HeldOutRows(
            split=split,
            texts=texts["train"] if split == "cv" else texts[split],
            probs=cal.probs[split],
        ),
        rule=(cal.fallback.threshold, cal.fallback.margin),
    )
