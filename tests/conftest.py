"""Shared fixtures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import SHARED

GEN = SHARED / "bench" / "gen_capture.py"

Generate = Callable[..., tuple[Path, Path]]


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generate:
    """`generated(packets, seed, *options)` -> (pcap, ground-truth JSONL) from the shared
    benchmark generator, made once per session for each set of arguments (skips the test
    when the generator is absent)."""
    made: dict[tuple[str, ...], tuple[Path, Path]] = {}

    def make(packets: int, seed: int, *options: str) -> tuple[Path, Path]:
        if not GEN.exists():
            pytest.skip(f"the shared benchmark generator is not at {GEN}")
        key = (str(packets), str(seed), *options)
        if key not in made:
            where = tmp_path_factory.mktemp("gen")
            pcap, truth = where / "cap.pcap", where / "truth.jsonl"
            subprocess.run(
                [sys.executable, str(GEN), "--packets", str(packets), "--seed", str(seed),
                 "-o", str(pcap), "--truth", str(truth), "-q", *options],
                check=True,
            )  # fmt: skip
            made[key] = pcap, truth
        return made[key]

    return make
