"""The spill file: durable appends, chunked reads that survive a torn last line."""

from __future__ import annotations

from pathlib import Path

from app.predlog.records import to_row
from app.predlog.spill_file import SpillFile
from tests.app.predlog.factories import make_records


def test_rows_come_back_in_chunks_as_written(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "sub" / "spill.jsonl")
    assert not spill.exists()
    rows = [to_row(r, "full") for r in make_records(5)]
    spill.append(rows[:3])
    spill.append(rows[3:])
    assert spill.exists()
    first, offset, at_end = spill.read_chunk(0, 2)
    assert first == rows[:2] and not at_end
    second, offset, at_end = spill.read_chunk(offset, 2)
    assert second == rows[2:4] and not at_end
    last, offset, at_end = spill.read_chunk(offset, 2)
    assert last == rows[4:] and at_end
    spill.remove()
    spill.remove()  # removing twice is harmless (a crash may repeat it)
    assert not spill.exists()


def test_unreadable_and_torn_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl")
    rows = [to_row(r, "none") for r in make_records(2)]
    spill.append(rows[:1])
    with open(spill.path, "ab") as f:
        f.write(b"not json\n")
    spill.append(rows[1:])
    with open(spill.path, "ab") as f:
        f.write(b'{"request_id": "torn')
    got, _, at_end = spill.read_chunk(0, 100)
    assert got == rows and at_end and spill.corrupt_lines == 2


def test_the_lock_is_exclusive_across_open_files(tmp_path: Path) -> None:
    import fcntl

    spill = SpillFile(tmp_path / "spill.jsonl")
    with spill.locked(), open(spill.lock_path, "ab") as other:
        try:
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            raise AssertionError("a second lock holder got in")
