"""Files replaced whole (parkpulse/atomic_file.py)."""

from __future__ import annotations

from pathlib import Path

from parkpulse.atomic_file import write_atomically


def test_a_file_is_written_then_replaced_whole_and_no_scratch_stays(tmp_path: Path) -> None:
    path = tmp_path / "ledger" / "a.json"  # its folder made on the way
    write_atomically(path, b'{"v": 1}')
    write_atomically(path, b'{"v": 2}')
    assert path.read_bytes() == b'{"v": 2}'
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]
