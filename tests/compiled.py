"""Run the test suite against the opt-in mypyc build, the build the speed benchmarks judge.

CI runs the suite on pure Python (what `pip install .` gives). The compiled build can behave
differently: mypyc checks declared types as it reads attributes, boxes a tuple anew each time
it stores one (so `is` between them never holds), and makes the compiled classes final. This
copies the tree to bench-data/compiled-tests/tree (beside a link to ../shared, so the tests
that read the shared captures find them), compiles setup.py's modules there and runs pytest
in the copy, with any arguments given:

    python -m tests.compiled                        # the whole suite (about 2 min to build)
    python -m tests.compiled tests/msnsniff/session -x

Needs a C compiler and the Python headers, like `MSNSNIFF_COMPILE=1 pip install .`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACE = ROOT / "bench-data" / "compiled-tests"
COPIED = ("dissectors", "msnsniff", "tests", "captures", "benchmarks")
FILES = ("setup.py", "pyproject.toml", "README.md")


def build(place: Path = PLACE) -> Path:
    """A fresh compiled copy of the tree under `place`; returns its root."""
    tree = place / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    skip = shutil.ignore_patterns(
        "*.so", "__pycache__", "*.c", ".hypothesis", "snapshot_report.html"
    )
    for name in COPIED:
        shutil.copytree(ROOT / name, tree / name, ignore=skip)
    for name in FILES:
        shutil.copy(ROOT / name, tree / name)
    shared, link = ROOT.parent / "shared", place / "shared"  # tests read ../shared
    if shared.is_dir() and not link.exists():
        link.symlink_to(shared)
    print(f"compiling setup.py's modules with mypyc in {tree} ...", flush=True)
    subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree, check=True,
        env={**os.environ, "MSNSNIFF_COMPILE": "1"}, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return tree


def main(argv: list[str]) -> int:
    """Build the compiled copy, then run pytest in it with `argv`; pytest's exit status."""
    tree = build()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv]
    return subprocess.run(command, cwd=tree, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
