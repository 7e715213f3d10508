"""`python -m tests.golden --update`: rewrite every golden dissection.

`--recapture` first records the reference server's sample captures again
(`msnsniff/samples.py`: real loopback runs of the server and the client) into `captures/`,
then rewrites every golden file: the one command that regenerates them all.
"""

from __future__ import annotations

import sys

from tests.golden import ROOT, cases, dissect


def main(argv: list[str]) -> int:
    if argv not in (["--update"], ["--recapture"]):
        print("usage: python -m tests.golden --update | --recapture", file=sys.stderr)
        return 2
    if argv == ["--recapture"]:
        from msnsniff.samples import main as record
        from msnsniff.samples_http import main as record_http

        record([str(ROOT / "captures")])
        record_http([str(ROOT / "captures")])
    for source, golden in cases():
        golden.write_text(dissect(source), encoding="utf-8")
        print(f"wrote {golden.relative_to(ROOT)} from {source.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
