"""Fonts for report plots: a fallback order covering CJK and other scripts, and a label check.

Matplotlib's default DejaVu Sans has no CJK glyphs (Chinese labels come out as empty boxes and
a "Glyph ... missing" warning). Matplotlib >= 3.6 falls back glyph by glyph through the
families in ``font.family``, so the plots list every installed family of FALLBACK_FAMILIES
(Debian/Ubuntu: ``apt-get install fonts-noto-cjk``; the Docker image installs it). Labels
that no installed font can draw are replaced by their index, and report.md prints the
index-to-label table.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

FALLBACK_FAMILIES = (
    "DejaVu Sans",
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
    "Noto Sans CJK TC",
    "Noto Sans Thai",
    "Noto Sans",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)


# Where Debian's fonts-noto-cjk puts them: registered even when matplotlib's font cache was
# built before the package was installed (the cache is not refreshed by itself).
FONT_FILES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansThai-Regular.ttf",
)


@functools.cache
def installed_families() -> tuple[str, ...]:
    """The families of FALLBACK_FAMILIES that matplotlib can find, in order."""
    from pathlib import Path

    from matplotlib import font_manager

    registered = {f.fname for f in font_manager.fontManager.ttflist}
    for path in FONT_FILES:
        if Path(path).is_file() and path not in registered:
            font_manager.fontManager.addfont(path)
    known = {f.name for f in font_manager.fontManager.ttflist}
    return tuple(f for f in FALLBACK_FAMILIES if f in known)


@functools.cache
def covered_codepoints() -> frozenset[int]:
    """Every code point some installed fallback family has a glyph for."""
    from matplotlib import font_manager, ft2font

    covered: set[int] = set()
    for family in installed_families():
        path = font_manager.findfont(
            font_manager.FontProperties(family=family), fallback_to_default=False
        )
        covered.update(ft2font.FT2Font(path).get_charmap())
    return frozenset(covered)


def drawable(text: str, covered: Iterable[int] | None = None) -> bool:
    """True when every non-space character of ``text`` has a glyph in ``covered``."""
    cps = covered_codepoints() if covered is None else frozenset(covered)
    return all(ch.isspace() or ord(ch) in cps for ch in text)


def plot_labels(
    labels: Sequence[str], covered: Iterable[int] | None = None
) -> tuple[list[str], bool]:
    """The labels to draw, and whether they are indices (some label has no glyphs)."""
    cps = covered_codepoints() if covered is None else frozenset(covered)
    if all(drawable(lab, cps) for lab in labels):
        return list(labels), False
    return [str(i) for i in range(len(labels))], True


def use_fallback_fonts() -> None:
    """Point matplotlib's default family at the installed fallback order."""
    import matplotlib

    families = installed_families()
    if families:
        matplotlib.rcParams["font.family"] = list(families)
