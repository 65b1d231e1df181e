"""What every stage's web views share: checked query parameters and a store read as JSON.

The views themselves sit beside the stage whose table they read (``@app.page`` in
``rollup_stage.py``, ``deadletter_stage.py``, ``registrations_stage.py``); a bad parameter is a
400 with one line, ClickHouse being down a 503, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.connection import ClickHouseUnavailable

IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def params(request: Any, names: Sequence[str]) -> dict[str, str | None]:
    """The named query parameters (None when absent); ValueError when one is not an ident."""
    out: dict[str, str | None] = {}
    for name in names:
        value = request.query.get(name) or None
        if value is not None and not IDENT.match(value):
            raise ValueError(f"invalid {name}: must match {IDENT.pattern}")
        out[name] = value
    return out


async def json_of(web: Any, store: ClickHouseStore, fn: Callable[[], Any]) -> Any:
    """``fn()`` on the store's thread as a JSON response (400 on ValueError, 503 when down)."""
    try:
        data = await store.arun(fn)
    except ValueError as exc:
        return web.json({"error": str(exc)}, status=400)
    except ClickHouseUnavailable:
        return web.json({"error": "ClickHouse is unavailable; retry later"}, status=503)
    return web.json(data)


def bad_request(web: Any, exc: ValueError) -> Any:
    """A one-line 400."""
    return web.json({"error": str(exc)}, status=400)


async def read_json(
    web: Any, store: ClickHouseStore, request: Any, names: Sequence[str], read: Callable[..., Any]
) -> Any:
    """``read(*values of names)`` on the store's thread as JSON, the parameters checked first."""
    try:
        asked = params(request, names)
    except ValueError as exc:
        return bad_request(web, exc)
    return await json_of(web, store, lambda: read(*asked.values()))
