"""Golden dissections: each bundled capture and each seed transcript, as JSON Lines.

`python -m tests.golden --update` rewrites them; review the diff before committing. The test
in `test_golden.py` dissects the same inputs and compares line by line.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import SEEDS

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def cases() -> list[tuple[Path, Path]]:
    """(input, golden JSONL) pairs: captures keep theirs beside them, seeds keep theirs here."""
    out = [(p, p.with_suffix(".jsonl")) for p in sorted((ROOT / "captures").glob("*.pcap*"))]
    for seed in ("003", "004"):
        found = sorted(SEEDS.glob(f"{seed}_*.txt"))
        if found:
            out.append((found[0], HERE / f"seed_{seed}.jsonl"))
    return out


def dissect(path: Path) -> str:
    """The `read -T jsonl` output for one input, exactly as the CLI prints it."""
    import contextlib
    import io

    from msnsniff.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["read", "-T", "jsonl", str(path)])
    return buf.getvalue()
