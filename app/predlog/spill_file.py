"""The log writer's spill file: prediction rows as JSON lines, appended while the DB is down.

Appends are flushed and fsynced per batch. Replay reads it in chunks from the start; the file
is removed only after every row is in the database, and the database ignores rows it already
has, so a crash between the two replays rows without duplicating them. Several processes
(``textcls serve --workers N``) may share one path: appends, chunk replays and the removal
happen under an exclusive ``flock`` on ``<path>.lock``; a replay holds it from the first
line to the removal, so no other process appends to or removes the file meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)


def _encode(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row) + b"\n"


def _decode(line: bytes) -> dict[str, Any]:
    row: dict[str, Any] = orjson.loads(line)
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    return row


class SpillFile:
    """Append rows durably; read them back in chunks; remove when replayed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.corrupt_lines = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive lock shared by every process using this path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "ab") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def exists(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append ``rows`` and fsync; raises ``OSError`` when the disk refuses."""
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(_encode(r) for r in rows)
        # Unbuffered, so a failed write leaves nothing behind to be flushed at close. The
        # file holds customer texts: readable by its owner only.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError:
                # A full disk may take part of the batch: cut it off, so the file keeps whole
                # lines and a later append does not glue a row to a broken one.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)

    def read_chunk(self, start: int, size: int) -> tuple[list[dict[str, Any]], int, bool]:
        """Up to ``size`` rows from byte ``start``: ``(rows, offset after them, reached end)``.

        A line that is not valid JSON is skipped and counted in ``corrupt_lines``; so is a
        partial last line (a crash in the middle of an append leaves one).
        """
        rows: list[dict[str, Any]] = []
        with open(self.path, "rb") as f:
            f.seek(start)
            while len(rows) < size:
                line = f.readline()
                if not line:
                    return rows, f.tell(), True
                if not line.endswith(b"\n"):
                    self.corrupt_lines += 1
                    log.warning("spill file %s: skipping a partial last line", self.path)
                    return rows, f.tell(), True
                try:
                    rows.append(_decode(line))
                except (ValueError, KeyError, TypeError):
                    self.corrupt_lines += 1
                    log.warning("spill file %s: skipping an unreadable line", self.path)
            offset = f.tell()
            at_end = not f.read(1)
        return rows, offset, at_end

    def remove(self) -> None:
        """Delete the file once every row in it is in the database."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
