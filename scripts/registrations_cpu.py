"""CPU per registration of the worker's Python steps alone, in one process (issue 14).

Builds N simulated registrations as the bench publishes them (envelopes of ``BATCH_SIZE`` per
zone, keyed by zone), then times — with ``time.process_time``, so other load on the machine
matters little — each step a registrations batch of ``REGISTRATIONS_TAKE`` messages goes
through: ``read_batch`` (decode and validate) and ``block`` (the Native block,
``RegistrationBlock.of``) in the reader process, then ``dedupe`` (against a warm id cache, zones
loaded empty) and ``native`` (the block's bytes) in the worker; chdb's insert is not
included. ``--digest`` prints a hash of every step's output, to show a change gives the same
rows.

    .venv/bin/python scripts/registrations_cpu.py [-n 200000] [--repeat 3] [--digest]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from parkpulse.producers import simulate as sim
from parkpulse.schemas.catalogue import load_catalogue
from parkpulse.schemas.registration_block import RegistrationBlock
from parkpulse.schemas.wire import registration_envelope
from parkpulse.streams.app import REGISTRATIONS_TAKE
from parkpulse.streams.registrations import DistinctIds, Message, dedupe, read_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--registrations", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--digest", action="store_true")
    args = parser.parse_args()
    sim_dir = sim.simulate(Path(tempfile.mkdtemp(prefix="parkpulse-regcpu-")) / "sim", feeds=False)
    catalogue = load_catalogue(sim_dir.reference_dir)
    stream = sim.RegistrationStream(sim.sim_zones(), seed=sim.SEED)
    sent = "2026-01-01T00:00:00+00:00"  # fixed, so that --digest compares runs
    messages = [
        Message(orjson.dumps(registration_envelope(records, sent_at=sent)), 0, i, zone.encode())
        for i, (zone, records) in enumerate(sim.envelopes(stream(0, args.registrations)))
    ]
    takes = [
        messages[i : i + REGISTRATIONS_TAKE] for i in range(0, len(messages), REGISTRATIONS_TAKE)
    ]
    n = args.registrations
    for _ in range(args.repeat):
        ids = DistinctIds()
        for zone in catalogue.zones:
            ids.load(zone, [], [], [])
        spent = dict.fromkeys(("read_batch", "block", "dedupe", "native"), 0.0)
        digest = {k: hashlib.sha256() for k in spent}
        for take in takes:
            now = datetime.now(UTC)
            t0 = time.process_time()
            batch = read_batch(take, catalogue, now)
            t1 = time.process_time()
            block = RegistrationBlock.of(batch.registrations)
            t2 = time.process_time()
            counted = dedupe(block, ids)
            for zone, (hashes, tally) in counted.zones.items():
                ids.add(zone, hashes, tally)
            t3 = time.process_time()
            native = counted.new.native()
            t4 = time.process_time()
            for step, (start, end) in zip(
                spent, ((t0, t1), (t1, t2), (t2, t3), (t3, t4)), strict=True
            ):
                spent[step] += end - start
            if args.digest:
                digest["read_batch"].update(orjson.dumps(batch.registrations.columns()))
                digest["block"].update(block.hashes.tobytes())
                tallies = sorted((z, sorted(t.items())) for z, (_, t) in counted.zones.items())
                digest["dedupe"].update(orjson.dumps(tallies))
                digest["native"].update(native)
        total = sum(spent.values())
        print(
            f"{total / n * 1e6:6.2f} µs/event: "
            + ", ".join(f"{k} {v / n * 1e6:.2f}" for k, v in spent.items())
        )
        if args.digest:
            print("  digest " + " ".join(f"{k}={d.hexdigest()[:10]}" for k, d in digest.items()))


if __name__ == "__main__":
    main()
