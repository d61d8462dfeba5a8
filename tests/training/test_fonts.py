"""Report plots draw Chinese and Japanese labels with the pinned CJK font of the default
install, and the trainer says so when a label cannot be drawn."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402

from training import fonts  # noqa: E402

LABELS = ("订单状态", "挂失银行卡", "カードが届かない")


def render(text: str, **font: object) -> np.ndarray:
    """``text`` drawn alone, as an RGBA array (the same figure size and position each time)."""
    fig = plt.figure(figsize=(3, 0.6), dpi=100)
    fig.text(0.02, 0.3, text, fontsize=16, **font)  # type: ignore[arg-type]
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba()).copy()  # type: ignore[attr-defined]
    plt.close(fig)
    return pixels


def test_the_pinned_font_is_installed_and_checked() -> None:
    path, why_not = fonts.packaged_font()
    assert why_not is None, why_not
    assert path is not None and path.name == fonts.FONT_FILE


def ink(pixels: np.ndarray) -> int:
    return int((pixels[..., :3].min(axis=-1) < 160).sum())


@pytest.mark.parametrize("label", LABELS)
def test_the_plots_draw_cjk_labels_not_the_missing_glyph_box(label: str) -> None:
    fonts.use_fallback_fonts()
    assert fonts.plot_labels([label, "refund"]) == ([label, "refund"], False)
    path, _ = fonts.packaged_font()
    for char in label:
        drawn = render(char)
        # The missing-glyph box of the same fonts: a private-use character none of them draws.
        assert not np.array_equal(drawn, render("\ue000")), f"{char!r} is drawn as a box"
        # About the ink of the pinned font's own glyph (its faces differ a little by locale).
        known = ink(render(char, fontproperties=FontProperties(fname=path)))
        assert known > 0 and abs(ink(drawn) - known) <= 0.3 * known, char


def test_a_label_no_font_draws_is_an_index_and_a_warning() -> None:
    labels = ["refund", "\ue000\ue001"]
    assert fonts.plot_labels(labels) == (["0", "1"], True)
    (warning,) = fonts.label_warnings(labels)
    assert "label indices" in warning and repr("\ue000\ue001") in warning
    assert fonts.label_warnings(["refund", *LABELS]) == []
