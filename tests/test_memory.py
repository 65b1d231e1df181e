"""The worker's malloc tuning (parkpulse/memory.py)."""

from __future__ import annotations

import platform

from parkpulse.memory import tune_malloc


def test_glibc_takes_the_settings_and_others_are_left_alone() -> None:
    # mallopt(3) returns 1 for each setting glibc accepts; elsewhere nothing is changed.
    assert tune_malloc() is (platform.libc_ver()[0] == "glibc")
