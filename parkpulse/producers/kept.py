"""Kept feed files and their ledger: what a fresh embedded broker must be given again.

Every file ``produce`` / ``targets`` publishes is kept under ``DATA_DIR/feeds/{kind}/`` as
``{digest}-{name}`` (named by content, so once). Beside it, ``DATA_DIR/feeds/ledger/`` holds one
small JSON entry per kept file: the name the clerk published it under (the dead letters' origin,
on a replay too, so a replay lands on the same dead-letter rows), the broker incarnation
(``epoch``) and the last offset it left on each topic-partition.

A file has *landed* once the worker group has committed past all of those offsets: the worker
writes a batch to ClickHouse before committing it, so ClickHouse then holds everything the file
said (for targets, also once their re-keyed copies are consumed). The worker records landed files
in ClickHouse's ``feed_ledger`` table; after the in-memory broker is lost only the files not in it
go in again, so recovery is bounded by the un-landed tail, not by history. The landed marks live
with the data they vouch for: a ClickHouse rebuilt from nothing has none and gets every file.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from parkpulse.atomic_file import write_atomically
from parkpulse.config import Settings
from parkpulse.producers.read_options import is_options_file

ARCHIVE_DIR = "feeds"
LEDGER_DIR = "ledger"
KINDS = ("targets", "observations", "registrations")
_KEPT_NAME = re.compile(r"^[0-9a-f]{16}-(?P<origin>.+)$")

# (topic, partition) -> offset
Offsets = Mapping[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class Entry:
    """What one publication of a kept file left on the broker."""

    file: str  # the kept copy's name, ``{digest}-{name}``
    kind: str
    origin: str  # the name it was published under
    epoch: str = ""  # the broker incarnation the offsets belong to ("" = a durable Kafka)
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def to_json(self) -> bytes:
        offsets = [[t, p, o] for (t, p), o in sorted(self.last_offsets.items())]
        doc = {"file": self.file, "kind": self.kind, "origin": self.origin, "epoch": self.epoch}
        return orjson.dumps({**doc, "last_offsets": offsets})

    @classmethod
    def from_json(cls, data: bytes) -> Entry:
        doc = orjson.loads(data)
        offsets = {(str(t), int(p)): int(o) for t, p, o in doc.get("last_offsets", [])}
        return cls(doc["file"], doc["kind"], doc["origin"], str(doc.get("epoch", "")), offsets)

    def landed(self, committed: Offsets, *, epoch: str) -> bool:
        """Whether the group has committed past every offset this publication left (committed
        offsets are the next offset to read). Offsets of another broker incarnation say
        nothing about this one's."""
        if self.epoch != epoch:
            return False
        return all(committed.get(tp, -1) > last for tp, last in self.last_offsets.items())


def origin_of(path: Path) -> str:
    """The name a file was published under: a kept copy's name without its digest."""
    match = _KEPT_NAME.match(path.name)
    kept = match is not None and path.parent.parent.name == ARCHIVE_DIR
    return match.group("origin") if kept and match else path.name


def _folder(settings: Settings, name: str) -> Path:
    return settings.data_dir / ARCHIVE_DIR / name


def archive(settings: Settings, path: Path, kind: str, *, name: str | None = None) -> Path:
    """Keep a copy of a published file under DATA_DIR/feeds/ (named by content, so once:
    ``name`` is its ``kept_name`` when known); a file that is already a kept copy stays where
    it is."""
    folder = _folder(settings, kind)
    if path.parent.resolve() == folder.resolve():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / (name or kept_name(path))
    if not dest.exists():
        shutil.copyfile(path, dest)
    return dest


def kept_name(path: Path) -> str:
    """The name ``archive`` keeps ``path`` under (content digest + name)."""
    return f"{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}-{path.name}"


def archived(settings: Settings, *, skip: Iterable[str] = ()) -> list[tuple[Path, str]]:
    """Every kept file, targets first, then feeds, then register exports, oldest first;
    without the names in ``skip``."""
    skipped = set(skip)
    out: list[tuple[Path, str]] = []
    for kind in KINDS:
        folder = _folder(settings, kind)
        if folder.is_dir():
            files = sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime, p.name))
            out += [
                (p, kind)
                for p in files
                if p.is_file() and p.name not in skipped and not is_options_file(p)
            ]
    return out


def record(settings: Settings, entry: Entry) -> None:
    """Write (or replace) the ledger entry of a kept file, atomically."""
    write_atomically(_folder(settings, LEDGER_DIR) / f"{entry.file}.json", entry.to_json())


def entries(settings: Settings) -> list[Entry]:
    """Every ledger entry (an unreadable one is skipped: its file is simply replayed)."""
    folder = _folder(settings, LEDGER_DIR)
    out: list[Entry] = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            try:
                out.append(Entry.from_json(path.read_bytes()))
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return out


def last_offsets(delivered: Iterable[tuple[object, int]]) -> dict[tuple[str, int], int]:
    """The last offset per (topic, partition) among deliveries: each one's aiokafka
    ``RecordMetadata`` (the offset of its first record) with how many records it covers (a
    message 1, a record batch its count)."""
    out: dict[tuple[str, int], int] = {}
    for meta, count in delivered:
        tp = (str(meta.topic), int(meta.partition))  # type: ignore[attr-defined]
        last = int(meta.offset) + count - 1  # type: ignore[attr-defined]
        out[tp] = max(out.get(tp, -1), last)
    return out
