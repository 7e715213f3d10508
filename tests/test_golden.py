"""Every bundled capture and seed transcript dissects exactly as its reviewed golden file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.golden import cases, dissect


@pytest.mark.parametrize(("source", "golden"), cases(), ids=lambda p: Path(p).name)
def test_dissection_matches_golden(source: Path, golden: Path) -> None:
    assert golden.exists(), f"no golden file {golden}: run python -m tests.golden --update"
    want = golden.read_text(encoding="utf-8").splitlines()
    got = dissect(source).splitlines()
    assert len(want) > 10
    for no, (a, b) in enumerate(zip(got, want, strict=False), 1):
        assert a == b, f"{source.name} frame {no} differs from {golden.name}"
    assert len(got) == len(want)
