"""What a bureau table may need besides its file (``--plan``, ``--zone``, ``--period``), and
keeping those options beside the file's archived copy so ``produce --replay`` reads it the same
way again. Its own module: the readers, ``readers.py`` (which picks one) and ``kept.py`` all use
it, and none of them should import another for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from parkpulse.schemas.catalogue import Catalogue

OPTIONS_SUFFIX = ".options.json"


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What a bureau table may need besides its file (ids or names; None: from the file)."""

    plan: str | None = None
    zone: str | None = None
    period: str | None = None
    ledger: Path | None = None  # where bulletin revisions are remembered (DATA_DIR/bulletins)

    def kept(self) -> dict[str, str]:
        """The options worth keeping beside an archived copy."""
        return {k: v for k, v in asdict(self).items() if v is not None and k != "ledger"}


def keep_options(archived_copy: Path, options: ReadOptions | None) -> None:
    """Write ``options`` beside an archived file (nothing when there are none)."""
    kept = options.kept() if options is not None else {}
    if kept:
        archived_copy.with_name(archived_copy.name + OPTIONS_SUFFIX).write_bytes(orjson.dumps(kept))


def kept_options(path: Path) -> ReadOptions | None:
    """The options kept beside an archived file, or None."""
    side = path.with_name(path.name + OPTIONS_SUFFIX)
    if not side.is_file():
        return None
    try:
        return ReadOptions(**orjson.loads(side.read_bytes()))
    except (orjson.JSONDecodeError, TypeError):
        return None


def is_options_file(path: Path) -> bool:
    return path.name.endswith(OPTIONS_SUFFIX)


def option_problem(options: ReadOptions, catalogue: Catalogue) -> str | None:
    """Why ``--zone`` or ``--period`` as given names nothing (one line, with the nearest known
    zones), or None: checked before anything is published, so a mistyped option is one line
    rather than a dead letter for every row it would apply to."""
    from parkpulse.producers.bulletin import parse_period
    from parkpulse.schemas.names import UnknownName, resolve

    if options.zone is not None:
        try:
            resolve("zone", options.zone, catalogue)
        except UnknownName as exc:
            return f"--zone {exc.detail}"
    if options.period is not None and parse_period(options.period, 2000) is None:
        return f"--period {options.period!r} names no period (2024-06, 2024年1-6月, 上半年)"
    return None
