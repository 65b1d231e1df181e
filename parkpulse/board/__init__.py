"""The planners' board, served by the worker at its API address (zh by default, ``?lang=en``).

``register`` adds the pages beside the store they read: ``/`` (the overview matrix),
``/zone/{zone}`` (one zone), ``/zone/{zone}/explain/{indicator}`` (one row's formulas with
their numbers, ``?plan=&period=``), ``/api/explain`` (one row's formulas, for ``parkpulse explain``)
and ``/api/labels`` (the vocabulary, for other front ends).
"""

from __future__ import annotations

import re
from typing import Any

import faust

from parkpulse.board.pages import explain_page, overview, zone_page
from parkpulse.config import Settings
from parkpulse.explain import ExplainError, explanation_doc
from parkpulse.schemas.catalogue import Catalogue
from parkpulse.sinks.clickhouse import ClickHouseStore
from parkpulse.sinks.connection import ClickHouseUnavailable
from parkpulse.vocabulary import Lang, labels, lang_of

IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
UNAVAILABLE = "ClickHouse is unavailable; retry later"


def register(
    app: faust.App, store: ClickHouseStore, catalogue: Catalogue, settings: Settings
) -> None:
    """Serve the board's pages from ``app``'s web server."""
    default: Lang = settings.lang

    def lang(request: Any) -> Lang:
        try:
            return lang_of(request.query.get("lang") or default)
        except ValueError:
            return default

    @app.page("/")
    async def board_overview(self: Any, request: Any) -> Any:
        try:
            rows = await store.arun(store.latest_status)
        except ClickHouseUnavailable:
            return self.text(UNAVAILABLE, status=503)
        return self.html(overview(rows, catalogue, lang(request), default))

    @app.page("/zone/{zone}")
    async def board_zone(self: Any, request: Any, zone: str) -> Any:
        if not IDENT.match(zone):
            return self.text("invalid zone", status=400)
        try:
            rows = await store.arun(store.status_rows, zone)
        except ClickHouseUnavailable:
            return self.text(UNAVAILABLE, status=503)
        if not rows:
            return self.text(f"no status rows for zone {zone}", status=404)
        return self.html(zone_page(zone, rows, catalogue, lang(request), default))

    @app.page("/zone/{zone}/explain/{indicator}")
    async def board_explain(self: Any, request: Any, zone: str, indicator: str) -> Any:
        q = request.query
        plan, period = q.get("plan") or None, q.get("period") or None
        try:
            doc = await store.arun(explanation_doc, catalogue, store, zone, indicator, plan, period)
        except ExplainError as exc:
            return self.text(str(exc), status=400)
        except ClickHouseUnavailable:
            return self.text(UNAVAILABLE, status=503)
        if doc is None:
            where = " ".join(v for v in (zone, indicator, plan, period) if v)
            return self.text(f"no status row for {where}", status=404)
        return self.html(explain_page(doc, catalogue, lang(request), default))

    @app.page("/api/explain")
    async def api_explain(self: Any, request: Any) -> Any:
        q = request.query
        zone, indicator = q.get("zone") or "", q.get("indicator") or ""
        plan, period = q.get("plan") or None, q.get("period") or None
        try:
            doc = await store.arun(explanation_doc, catalogue, store, zone, indicator, plan, period)
        except ExplainError as exc:
            return self.json({"error": str(exc)}, status=400)
        except ClickHouseUnavailable:
            return self.json({"error": UNAVAILABLE}, status=503)
        if doc is None:
            where = " ".join(v for v in (zone, indicator, plan, period) if v)
            return self.json({"error": f"no status row for {where}"}, status=404)
        return self.json(doc)

    @app.page("/api/labels")
    async def api_labels(self: Any, request: Any) -> Any:
        return self.json({"lang": lang(request), **labels(lang(request))})
