"""``parkpulse simulate``: deterministic, the shape DESIGN.md's "Scale" gives, and valid input."""

from __future__ import annotations

import csv
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from parkpulse.producers import simulate as sim
from parkpulse.producers.feed import read_feed, read_targets
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.registration import validate_registration
from parkpulse.schemas.wire import batch_id_of
from parkpulse.streams.plan import evaluate
from tests.conftest import PARKPULSE

NOW = datetime(2026, 11, 21, tzinfo=UTC)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> sim.Simulated:
    """Six zones, three years, 2,000 registrations: every part, small enough to read back."""
    out = tmp_path_factory.mktemp("sim")
    return sim.simulate(out, zones=6, first_year=2019, years=3, registrations=2_000)


def test_the_same_seed_writes_the_same_bytes(small: sim.Simulated, tmp_path: Path) -> None:
    again = sim.simulate(tmp_path, zones=6, first_year=2019, years=3, registrations=2_000)
    for path in small.files:
        twin = again.out / path.relative_to(small.out)
        assert twin.read_bytes() == path.read_bytes(), path.name
    other = sim.simulate(tmp_path / "other", zones=6, first_year=2019, years=3, seed="another")
    assert other.feed_files[0].read_bytes() != small.feed_files[0].read_bytes()


def test_national_scale_is_178_zones_30_indicators_ten_years() -> None:
    zones = sim.sim_zones()
    assert len(zones) == 178 == len({z.id for z in zones})
    assert len({z.province for z in zones}) == 31
    assert len(sim.SPECS) == 30
    assert (sim.ZONES, sim.YEARS) == (178, 10)
    assert sim.ZONES * len(sim.SPECS) * 12 * sim.YEARS == 640_800  # DESIGN.md: ~640k figures
    # The registration-derived indicators are left to the registrations stream.
    assert not {"new_market_entities", "new_enterprises"} & set(sim.SPECS)
    assert set(sim.SPECS) <= set(load_catalogue().indicators)


def test_the_reference_dir_extends_the_catalogue(small: sim.Simulated) -> None:
    catalogue = load_catalogue(small.reference_dir)
    simulated = {z for z in catalogue.zones if z.startswith("sim-")}
    assert simulated == {f"sim-{i:03d}-hitech" for i in range(1, 7)}
    assert "jinan-hitech" in catalogue.zones  # the bundled zones stay


def test_every_figure_and_target_is_valid_feed_input(small: sim.Simulated) -> None:
    catalogue = load_catalogue(small.reference_dir)
    rows = [row for path in small.feed_files for row in read_feed(path, catalogue, now=NOW)]
    assert [row.error for row in rows if row.error] == []
    first_prints = [r for r in rows if r.record.action != "R"]
    assert len(first_prints) == small.observations == 6 * 30 * 12 * 3
    assert len(rows) - len(first_prints) == small.revisions > 0
    keys = Counter(r.record.key for r in first_prints)
    assert set(keys.values()) == {1}  # one first print per figure
    revised = [r.record for r in rows if r.record.action == "R"]
    assert all(o.revision == 1 and o.obs_status == "A" for o in revised)
    units = {(r.record.indicator, r.text.split(",")[8]) for r in rows}
    assert ("budget_revenue", "CNY_10K") in units  # one zone in seven reports in 万元
    bases = {r.record.indicator: r.record.basis for r in rows}
    assert bases["gdp"] == "YTD" and bases["hitech_enterprises"] == "LEVEL"
    targets = list(read_targets(small.targets_file, catalogue))
    assert [t.error for t in targets if t.error] == []
    assert len(targets) == small.targets == 6 * 12  # from 2019 on: the 14th plan only


def test_the_plans_are_a_mix_of_ahead_and_behind(small: sim.Simulated) -> None:
    catalogue = load_catalogue(small.reference_dir)
    observations = [
        r.record for path in small.feed_files for r in read_feed(path, catalogue, now=NOW)
    ]
    targets = [t.record for t in read_targets(small.targets_file, catalogue)]
    statuses = Counter()
    for zone in {t.zone for t in targets}:
        for indicator in {t.indicator for t in targets if t.zone == zone}:
            rows = evaluate(zone, catalogue.indicators[indicator], observations, targets)
            latest = max(rows, key=lambda r: r.period)
            statuses[latest.status] += 1
    assert len(statuses) >= 3, statuses


def test_registrations_are_deterministic_unique_and_valid(small: sim.Simulated) -> None:
    stream = sim.RegistrationStream(sim.sim_zones(6))
    records = list(stream(0, 5_000))
    assert records == list(stream(0, 5_000))
    assert records[4_000:] == list(stream(4_000, 1_000))  # any range on its own
    assert len({r["registration_id"] for r in records}) == 5_000
    catalogue = load_catalogue(small.reference_dir)
    kinds = Counter(validate_registration(r, catalogue, now=NOW).entity_type for r in records)
    assert kinds["individual_business"] > kinds["enterprise"] > kinds["farmers_cooperative"] > 0
    zones = Counter(r["zone"] for r in records)
    assert len(zones) == 6 and max(zones.values()) > 2 * min(zones.values())  # sizes differ
    lines = small.out.joinpath("registrations", "registrations.jsonl").read_bytes().splitlines()
    envelopes = [orjson.loads(line) for line in lines]
    assert sum(len(e["registrations"]) for e in envelopes) == 2_000
    for envelope in envelopes:
        assert len({r["zone"] for r in envelope["registrations"]}) == 1  # one zone, the key
        assert len(envelope["registrations"]) <= sim.BATCH_SIZE
        ids = [r["registration_id"] for r in envelope["registrations"]]
        assert envelope["batch_id"] == batch_id_of(ids)


def test_the_verb(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [
            PARKPULSE,
            "simulate",
            "--out",
            str(out),
            "--zones",
            "3",
            "--years",
            "1",
            "--registrations",
            "500",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "monthly figures" in result.stdout and "1,080" in result.stdout  # 3 × 30 × 12
    assert f"--reference-dir {out / 'reference'}" in result.stdout
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert (manifest["zones"], manifest["observations"], manifest["registrations"]) == (
        3,
        1_080,
        500,
    )
    with (out / "reference" / "zones.csv").open(encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 3
