"""Load and validate a labelled CSV, TSV or JSONL file into texts, labels and line numbers.

Every problem of a file is found in one pass and reported together (malformed and ragged rows,
empty fields, labels with too few examples), so a user fixes the file in one round.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("csv", "tsv", "jsonl")
# The bundled example: what ``textcls train`` trains on when no --data is given.
EXAMPLE_DIR = Path(__file__).resolve().parent / "example_data"
EXAMPLE_TRAIN = EXAMPLE_DIR / "support_chat_train.csv"
EXAMPLE_TEST = EXAMPLE_DIR / "support_chat_test.csv"
EXAMPLE_NAME = "example"
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_MAX_LISTED = 50


class DataError(Exception):
    """The data file cannot be used; the message names the file and the line(s)."""

    def __init__(self, path: Path | str, problems: list[tuple[int | None, str]]) -> None:
        self.path = Path(path)
        self.problems = problems
        lines = [] if len(problems) == 1 else [f"{self.path}: {len(problems)} problems"]
        for line, message in problems[:_MAX_LISTED]:
            where = f"{self.path}:{line}" if line is not None else f"{self.path}"
            lines.append(f"{where}: {message}")
        if len(problems) > _MAX_LISTED:
            lines.append(f"... and {len(problems) - _MAX_LISTED} more problem(s) not listed")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Conflict:
    """One text that appears with more than one label."""

    text: str
    labels: tuple[str, ...]
    lines: tuple[int, ...]


@dataclass
class Dataset:
    """Rows of one file: ``lines[i]`` is the physical line where row ``i`` starts."""

    path: Path
    texts: list[str]
    labels: list[str]
    lines: list[int]
    sha256: str
    conflicts: list[Conflict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The file format: ``fmt`` if given, else from the extension."""
    if fmt:
        if fmt not in FORMATS:
            raise DataError(
                path, [(None, f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")]
            )
        return fmt
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise DataError(
            path,
            [(None, f"cannot tell the format from the extension {path.suffix!r}; pass --format")],
        )
    return found


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.start + 4]
        raise DataError(
            path, [(line, f"bytes {bad!r} at byte {offset} are not UTF-8; save the file as UTF-8")]
        ) from exc


def _read_delimited(
    path: Path, text: str, delimiter: str, text_column: str, label_column: str
) -> tuple[list[tuple[int, str, str]], list[tuple[int | None, str]]]:
    """(rows, problems): the readable rows, and every malformed or ragged one."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    kind = ("CSV", "TSV")[delimiter == "\t"]
    rows: list[tuple[int, str, str]] = []
    problems: list[tuple[int | None, str]] = []
    try:
        header = next(reader, None)
        while header == []:
            header = next(reader, None)
    except csv.Error as exc:
        raise DataError(path, [(reader.line_num, f"malformed {kind} header: {exc}")]) from None
    if header is None:
        raise DataError(path, [(1, "the file is empty (no header, no rows)")])
    header = [h.strip() for h in header]
    header_line = reader.line_num
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise DataError(
            path,
            [
                (
                    header_line,
                    f"missing column(s) {', '.join(map(repr, missing))}; the header has "
                    f"{', '.join(map(repr, header))} (see --text-column / --label-column)",
                )
            ],
        )
    ti, li = header.index(text_column), header.index(label_column)
    previous_end = reader.line_num
    while True:
        # A quoted field can span lines: the row starts on the line after the last row ended.
        start = previous_end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader goes on with the next line, so the rest of the file is still checked.
            problems.append((start, f"malformed {kind}: {exc}"))
            if reader.line_num <= previous_end:
                break
            previous_end = reader.line_num
            continue
        previous_end = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip() and len(header) > 1):
            continue
        if len(row) != len(header):
            problems.append(
                (start, f"ragged row: {len(row)} fields where the header has {len(header)}")
            )
            continue
        rows.append((start, row[ti], row[li]))
    return rows, problems


def _read_jsonl(
    path: Path, text: str, text_column: str, label_column: str
) -> tuple[list[tuple[int, str, str]], list[tuple[int | None, str]]]:
    """(rows, problems): the readable rows, and every line that is not one."""
    rows: list[tuple[int, str, str]] = []
    problems: list[tuple[int | None, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append((number, f"not valid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            problems.append((number, "each line must be a JSON object"))
            continue
        missing = [c for c in (text_column, label_column) if c not in obj]
        if missing:
            problems.append(
                (number, f"missing key(s) {', '.join(map(repr, missing))}; found {sorted(obj)}")
            )
            continue
        t, lab = obj[text_column], obj[label_column]
        if not isinstance(t, str):
            problems.append((number, f"{text_column!r} must be a string, got {type(t).__name__}"))
            continue
        if isinstance(lab, bool) or not isinstance(lab, str | int):
            problems.append((number, f"{label_column!r} must be a string or an integer"))
            continue
        rows.append((number, t, str(lab)))
    return rows, problems


def _usable_rows(
    rows: list[tuple[int, str, str]], columns: tuple[str, str], min_examples_per_label: int
) -> tuple[list[str], list[str], list[int], list[tuple[int | None, str]]]:
    """Texts, labels and lines of the rows with both, and the problems of the others and of
    labels with too few rows (counted over the usable rows, so one run reports them all)."""
    text_column, label_column = columns
    texts, labels, lines = [], [], []
    problems: list[tuple[int | None, str]] = []
    for line, t, lab in rows:
        t, lab = t.strip(), lab.strip()
        if not t:
            problems.append((line, f"empty text in column {text_column!r}"))
            continue
        if not lab:
            problems.append((line, f"empty label in column {label_column!r}"))
            continue
        texts.append(t)
        labels.append(lab)
        lines.append(line)
    counts = Counter(labels)
    first_line: dict[str, int] = {}
    for lab, line in zip(labels, lines, strict=True):
        first_line.setdefault(lab, line)
    for lab, n in sorted(counts.items()):
        if n < min_examples_per_label:
            problems.append(
                (
                    first_line[lab],
                    f"label {lab!r} has {n} example(s); each label needs at least "
                    f"{min_examples_per_label}",
                )
            )
    if len(counts) == 1:
        problems.append((None, f"only one label ({labels[0]!r}); a classifier needs two"))
    return texts, labels, lines, problems


def load_dataset(
    path: Path | str,
    *,
    fmt: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    min_examples_per_label: int = 2,
) -> Dataset:
    """Read and validate one labelled file; raise DataError naming the file and lines."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, [(None, f"cannot read the file: {exc.strerror or exc}")]) from exc
    fmt = detect_format(path, fmt)
    if not raw.strip():
        raise DataError(path, [(1, "the file is empty")])
    text = _decode(path, raw)
    if fmt == "jsonl":
        rows, problems = _read_jsonl(path, text, text_column, label_column)
    else:
        delimiter = "\t" if fmt == "tsv" else ","
        rows, problems = _read_delimited(path, text, delimiter, text_column, label_column)
    if not rows and not problems:
        raise DataError(path, [(None, "the file has no data rows")])

    texts, labels, lines, more = _usable_rows(
        rows, (text_column, label_column), min_examples_per_label
    )
    problems.extend(more)
    if problems:
        # In file order; problems of the whole file (no line) first.
        problems.sort(key=lambda p: -1 if p[0] is None else p[0])
        raise DataError(path, problems)
    return Dataset(
        path=path,
        texts=texts,
        labels=labels,
        lines=lines,
        sha256=hashlib.sha256(raw).hexdigest(),
        conflicts=find_conflicts(texts, labels, lines),
    )


def find_conflicts(texts: list[str], labels: list[str], lines: list[int]) -> list[Conflict]:
    """Texts (compared case-insensitively) that appear with different labels."""
    seen: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(texts):
        seen[" ".join(t.lower().split())].append(i)
    conflicts = []
    for idx in seen.values():
        found = {labels[i] for i in idx}
        if len(found) > 1:
            conflicts.append(
                Conflict(
                    text=texts[idx[0]],
                    labels=tuple(sorted(found)),
                    lines=tuple(lines[i] for i in idx),
                )
            )
    return conflicts
