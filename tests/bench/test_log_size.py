"""bench.log_size on a small SQLite run: bytes per row fall as TEXTCLS_LOG_TEXT keeps less."""

from __future__ import annotations

from pathlib import Path

from bench.log_size import measure, records, sqlite_bytes


def test_bytes_per_row_follow_the_text_mode(tmp_path: Path) -> None:
    rows = records(["where is the card I ordered two weeks ago, please help"] * 3, 600)
    sizes = {
        mode: measure(f"sqlite:///{tmp_path / f'{mode}.db'}", mode, rows, sqlite_bytes)[0]
        for mode in ("full", "hash", "none")
    }
    assert sizes["full"] > sizes["hash"] > sizes["none"] > 100
    # full keeps the text (54 characters) and its hash (64) on top of what none keeps.
    assert 100 < sizes["full"] - sizes["none"] < 250
