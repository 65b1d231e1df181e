"""Every runbook an alert links to exists in docs/operations.md."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of ``markdown`` (lower case, punctuation dropped,
    spaces to hyphens)."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_alert_runbook_has_a_section() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/parkpulse.rules.yml").read_text())
    links = {
        rule["annotations"]["runbook"]
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    anchors = github_anchors((ROOT / "docs/operations.md").read_text(encoding="utf-8"))
    wanted = {
        "indicator-behind-plan",
        "binding-indicator-behind-plan",
        "zone-feed-stale",
        "dead-letters-rising",
        "clickhouse-sink-failing",
        "pipeline-stalled",
    }
    assert wanted <= {link.split("#", 1)[1] for link in links}
    for link in links:
        path, anchor = link.split("#", 1)
        assert path == "docs/operations.md"
        assert anchor in anchors, f"{link}: no such section"
