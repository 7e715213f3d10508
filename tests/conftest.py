"""Shared fixtures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
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


@pytest.fixture
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair made for this test, both ends up: (the end to capture on, the end to send
    from). Deleting either end deletes both (an interface that vanishes under a capture);
    whatever is left is deleted afterwards. Skips the test where one cannot be made (not
    root, no `ip`, a kernel or container without veth)."""
    import os
    import secrets
    import shutil

    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("a veth pair needs root")
    if shutil.which("ip") is None:
        pytest.skip("a veth pair needs the `ip` command (iproute2)")
    name = f"msv{secrets.token_hex(4)}"  # (interface names: at most 15 characters)
    ends = (f"{name}a", f"{name}b")
    made = subprocess.run(["ip", "link", "add", ends[0], "type", "veth", "peer", "name",
                           ends[1]], capture_output=True, text=True)  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot make a veth pair here: {made.stderr.strip()}")
    try:
        for end in ends:
            subprocess.run(["ip", "link", "set", end, "up"], check=True)
        yield ends
    finally:
        subprocess.run(["ip", "link", "del", ends[0]], capture_output=True)
