"""Fonts for report plots: a fallback order covering CJK and other scripts, and a label check.

Matplotlib's default DejaVu Sans has no CJK glyphs (Chinese labels come out as empty boxes and
a "Glyph ... missing" warning). Matplotlib >= 3.6 falls back glyph by glyph through the
families in ``font.family``, so the plots list every installed family of FALLBACK_FAMILIES.
textcls's default install brings Noto Sans CJK (Chinese, Japanese, Korean) from PyPI, pinned
and checked by sha256 like the encoder's weights, so a fresh machine draws CJK labels; a system
Noto CJK (Debian/Ubuntu ``fonts-noto-cjk``, which the Docker image installs) serves too. Labels
that no installed font can draw are replaced by their index: report.md prints the
index-to-label table and ``label_warnings`` says why, for the CLI to print.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
from collections.abc import Iterable, Sequence
from pathlib import Path

# The CJK font of the default install: Noto Sans CJK (OFL-1.1) as Noto publishes it (a
# variable font collection; matplotlib draws its default instance).
FONT_PACKAGE = "manimgx-fonts-cjk"
FONT_PACKAGE_VERSION = "2026.9.26.post1"
FONT_MODULE = "manimgx_fonts_cjk"
FONT_FILE = "NotoSansCJK-VF.otf.ttc"
# Checked by hand against the 2026.9.26.post1 wheel. A different file is not used.
FONT_SHA256 = "d3d8256cdec8dbcb3552284bc6b20c734dd60c2ee9df83b5758e34807c4bac32"

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
def packaged_font() -> tuple[Path | None, str | None]:
    """(the pinned CJK font file, None), or (None, why it cannot be used)."""
    spec = importlib.util.find_spec(FONT_MODULE)
    pin = f"{FONT_PACKAGE}=={FONT_PACKAGE_VERSION}"
    if spec is None or spec.origin is None:
        return None, f"{FONT_PACKAGE} is not installed (pip install {pin})"
    path = Path(spec.origin).parent / FONT_FILE
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        return None, f"{path}: unreadable ({exc}); reinstall {pin}"
    if digest != FONT_SHA256:
        return None, f"{path}: sha256 {digest} is not the pinned {FONT_SHA256} ({pin} expected)"
    return path, None


@functools.cache
def installed_families() -> tuple[str, ...]:
    """The families of FALLBACK_FAMILIES that matplotlib can find, in order."""
    from matplotlib import font_manager

    registered = {f.fname for f in font_manager.fontManager.ttflist}
    for path in FONT_FILES:
        if Path(path).is_file() and path not in registered:
            font_manager.fontManager.addfont(path)
    packaged, _ = packaged_font()
    if packaged is not None and str(packaged) not in registered:
        font_manager.fontManager.addfont(str(packaged))
        # Matplotlib draws a variable font's default instance, Thin here, and would warn at
        # every lookup of the normal weight: registered as normal, the warning goes.
        entries = font_manager.fontManager.ttflist
        for i, entry in enumerate(entries):
            if entry.fname == str(packaged):
                entries[i] = dataclasses.replace(entry, weight=400)
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


def label_warnings(labels: Sequence[str]) -> list[str]:
    """Why the report plots show label indices instead of ``labels``, if they do."""
    cps = covered_codepoints()
    missing = [lab for lab in labels if not drawable(lab, cps)]
    if not missing:
        return []
    _, why_not = packaged_font()
    shown = ", ".join(repr(lab) for lab in missing[:3]) + (" ..." if len(missing) > 3 else "")
    return [
        f"no installed font draws every character of {len(missing)} label(s) ({shown}): the "
        "report plots show label indices instead (report.md lists them)"
        + (f"; the CJK font of the default install is not used: {why_not}" if why_not else "")
    ]


def use_fallback_fonts() -> None:
    """Point matplotlib's default family at the installed fallback order."""
    import matplotlib

    families = installed_families()
    if families:
        matplotlib.rcParams["font.family"] = list(families)
