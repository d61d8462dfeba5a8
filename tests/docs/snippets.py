"""The code blocks of the documentation pages, as the tests run them.

A ```sh or ```python block is run as written (against a test server, see test_snippets.py)
unless the line right above it is a marker:

    <!-- snippet: skip (why it cannot run in the tests) -->
    <!-- snippet: cli (why it is parsed, not run) -->

``cli`` blocks hold ``textcls`` commands; the tests parse each with the real CLI instead of
running it (training a real model takes minutes). A ```json block right after a block that is
run shows its answer; the tests compare its keys with the real answer's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!-- snippet: (skip|cli) \((.+)\) -->$")
RUNNABLE = ("sh", "python")


@dataclass(frozen=True)
class Snippet:
    page: str  # relative to docs/
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    mode: str  # run | skip | cli
    shown_json: str | None  # the ```json block that follows it, if any

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def page_snippets(page: str) -> list[Snippet]:
    """Every ```sh and ```python block of ``docs/<page>``, in order."""
    lines = (DOCS / page).read_text().splitlines()
    blocks: list[tuple[int, str, str, str | None]] = []  # (line, language, code, marker)
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence or not fence.group(1):
            i += 1
            continue
        start, language = i, fence.group(1)
        end = next(j for j in range(start + 1, len(lines)) if lines[j].startswith("```"))
        marker = MARKER.match(lines[start - 1]) if start > 0 else None
        if start > 0 and lines[start - 1].startswith("<!-- snippet") and not marker:
            raise AssertionError(f"{page}:{start}: a malformed snippet marker")
        blocks.append(
            (start + 1, language, "\n".join(lines[start + 1 : end]) + "\n", marker and marker[1])
        )
        i = end + 1
    snippets = []
    for k, (line, language, code, marker) in enumerate(blocks):
        if language not in RUNNABLE:
            continue
        after = blocks[k + 1] if k + 1 < len(blocks) else None
        # A ```json fence on the line right after this block's closing fence.
        adjacent = after is not None and after[0] == line + len(code.splitlines()) + 2
        shown = after[2] if after is not None and adjacent and after[1] == "json" else None
        snippets.append(Snippet(page, line, language, code, marker or "run", shown))
    return snippets
