"""`python -m tests.golden --update`: rewrite every golden dissection."""

from __future__ import annotations

import sys

from tests.golden import ROOT, cases, dissect


def main(argv: list[str]) -> int:
    if argv != ["--update"]:
        print("usage: python -m tests.golden --update", file=sys.stderr)
        return 2
    for source, golden in cases():
        golden.write_text(dissect(source), encoding="utf-8")
        print(f"wrote {golden.relative_to(ROOT)} from {source.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
