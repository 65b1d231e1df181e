"""Files replaced whole: a reader sees the old content or the new, never part of either."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Make ``data`` the content of ``path`` (its folder made if need be): written to a scratch
    file of this process's beside it, then renamed into place. Processes writing one folder
    (replicas sharing a DATA_DIR) never share a scratch file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_bytes(data)
    os.replace(scratch, path)
