"""The CLI's filters (``status --zone 济南高新区 --indicator 进出口总额``): names to ids.

A filter value that names a known zone or indicator becomes its id. One that names nothing known
is still asked for as written (the stack may hold zones of a ``--reference-dir`` this command was
not given); when nothing comes back, :func:`unmatched` says which filter matched nothing, with
the nearest known names, so the command can fail with that one line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from parkpulse.schemas.catalogue import Catalogue
from parkpulse.schemas.names import UnknownName, lookup, plan_id, resolve

FILTER_KINDS = ("zone", "indicator")
PLAN_SUGGESTIONS = 3


class FilterError(ValueError):
    """A filter that matches nothing: one line for the user, no traceback."""


def resolve_filters(
    filters: Mapping[str, str | None], catalogue: Catalogue
) -> dict[str, str | None]:
    """``filters`` with each zone and indicator name replaced by its id (others as given)."""
    out: dict[str, str | None] = {}
    for name, value in filters.items():
        if value is not None and name in FILTER_KINDS:
            value = value.strip()
            value = lookup(name, value, catalogue) or value
        elif value is not None and name == "plan":
            value = plan_id(value.strip())
        out[name] = value
    return out


def unmatched(filters: Mapping[str, str | None], catalogue: Catalogue) -> FilterError | None:
    """Why an empty answer to ``filters`` is an error: a zone or indicator value that names
    nothing in the catalogue (with the nearest names); None when every value is known."""
    for name in FILTER_KINDS:
        value = filters.get(name)
        if value is None:
            continue
        try:
            resolve(name, value, catalogue)
        except UnknownName as exc:
            return FilterError(f"--{name} {exc.detail}")
    return None


def answer_error(filters: Mapping[str, str | None], catalogue: Catalogue, message: str) -> str:
    """One line for a query the server refused (HTTP 400): the unmatched filter if there is
    one (the server refuses a value that cannot be an id), else the server's own words."""
    problem = unmatched(filters, catalogue)
    return str(problem) if problem is not None else message


def unknown_plan(plan: str | None, stored: Iterable[str]) -> FilterError | None:
    """Why an empty answer to ``--plan`` is an error: plans are not in the catalogue but in the
    stored targets, so a plan that none of them has matches nothing (with the nearest ones)."""
    known = sorted(set(stored))
    if plan is None or plan in known:
        return None
    nearest = difflib.get_close_matches(plan, known, n=PLAN_SUGGESTIONS, cutoff=0.5)
    hint = f"; nearest: {', '.join(nearest)}" if nearest else f"; stored: {len(known)} plans"
    return FilterError(f"--plan {plan!r} is not a plan of any stored target{hint}")
