"""Benchmark: where one process spends its time, stage by stage, against tshark's budget.

`bench_read` and `bench_analysis` time whole commands; this one says which stage the time
goes to, so a change can be aimed (and the README's figures reproduced). In one process, on
the shared benchmark capture, each pass runs the capture again with one more stage than the
pass before: reading (pcap records, IP, TCP reassembly), framing (the MSNP dissector), TrID
pairing (what `read -T jsonl` prints beside each frame), JSON Lines rendering, then the
analyzers `expert` runs, added one at a time. A stage's cost is its pass minus the one
before, printed in microseconds a frame. Then JSON Lines rendering per command (the time of
each `jsonl_bytes` call, by the frame's command), and tshark's time on the same capture in
the same run, turned into the CPU a frame each target leaves on this machine's cores.

    python3 -m benchmarks.bench_stages [--sizes 100000] [--build compiled]

Each pass runs inside the measured tree (`--build compiled`: bench_read's mypyc copy), with
the cycle collector as `msnsniff` batch commands run it. Timings move with the machine
(this one is shared): compare stages within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

TSHARK = ["tshark", "-q", "-Y", "msnms", "-d", "tcp.port==1863,msnms", "-r"]


def _passes(path: str) -> Iterator[tuple[str, str | None, Callable[[], int]]]:
    """(stage, the stage its pass adds to, a pass that runs the capture through both and
    returns what it counted). Runs inside the measured tree: imports are the tree's own."""
    from msnsniff.capture.sources import captures_of
    from msnsniff.output import jsonl_bytes, new_flow_memo
    from msnsniff.registry import load_dissectors
    from msnsniff.session.analysis import Analysis
    from msnsniff.session.capture_session import CaptureSession
    from msnsniff.session.contacts import ContactLists
    from msnsniff.session.conversations import Conversations
    from msnsniff.session.expert import Expert
    from msnsniff.session.links import SessionLinks
    from msnsniff.session.pairing import run_paired
    from msnsniff.session.presence import Presence
    from msnsniff.session.transactions import Transactions
    from msnsniff.session.webapi import WebApis

    def events() -> Iterable[Any]:
        (one,) = captures_of([path])
        return one.events()

    def session() -> CaptureSession:
        return CaptureSession(load_dissectors())

    def reading() -> int:
        return sum(1 for _ in events())  # events, not frames: the count is not printed

    def framing() -> int:
        return sum(1 for _ in session().run(events()))

    def pairing() -> int:
        return sum(1 for _ in run_paired(Analysis(session(), keep_findings=False), events()))

    def rendering() -> int:
        n = 0
        memo = new_flow_memo()
        for paired in run_paired(Analysis(session(), keep_findings=False), events()):
            jsonl_bytes(paired.record, paired.pairing, memo=memo)
            n += 1
        return n

    def analysis(upto: int) -> Callable[[], int]:
        """`expert`'s analyzers, the first `upto` of them (in `add_all_analyzers`' order)."""

        def run() -> int:
            a = Analysis(session())
            txns = a.add(Transactions)
            if upto >= 2:
                lists = a.add(lambda sink: ContactLists(sink, transactions=txns))
            if upto >= 3:
                a.add(lambda sink: WebApis(sink))
            if upto >= 4:
                a.add(lambda sink: Expert(sink, lists, txns))
            for make in (SessionLinks, Presence, Conversations)[: max(0, upto - 4)]:
                a.add(make)
            n = 0
            for event in events():
                n += len(a.push(event))
            return n + len(a.finish())

        return run

    yield "reading", None, reading
    yield "framing", "reading", framing
    yield "TrID pairing", "framing", pairing
    yield "JSON Lines", "TrID pairing", rendering
    names = ["Transactions", "ContactLists", "WebApis", "Expert", "SessionLinks", "Presence",
             "Conversations"]  # fmt: skip
    for i, name in enumerate(names, 1):  # expert's analyzers, added one at a time
        yield f"+ {name}", "framing" if i == 1 else f"+ {names[i - 2]}", analysis(i)


def _per_command(path: str) -> dict[str, tuple[int, float]]:
    """Frames and seconds of `jsonl_bytes` by command (the payload's MIME type for MSG)."""
    from dissectors.msnp.frames import CommandFrame
    from msnsniff.capture.sources import captures_of
    from msnsniff.output import REMEMBERED_PAYLOAD_BYTES, jsonl_bytes, new_flow_memo
    from msnsniff.registry import load_dissectors
    from msnsniff.session.analysis import Analysis
    from msnsniff.session.capture_session import CaptureSession
    from msnsniff.session.pairing import run_paired

    (one,) = captures_of([path])
    counts: Counter[str] = Counter()
    spent: dict[str, float] = {}
    clock = time.perf_counter
    memo = new_flow_memo()
    for paired in run_paired(Analysis(CaptureSession(load_dissectors()), keep_findings=False),
                             one.events()):  # fmt: skip
        frame = paired.record.frame
        start = clock()
        jsonl_bytes(paired.record, paired.pairing, memo=memo)
        took = clock() - start
        key = type(frame).__name__
        if isinstance(frame, CommandFrame):
            key = frame.cmd
            if frame.cmd == "MSG" and frame.payload_length is not None:
                size = "big" if frame.payload_length > REMEMBERED_PAYLOAD_BYTES else "small"
                key = f"MSG ({size})"
        counts[key] += 1
        spent[key] = spent.get(key, 0.0) + took
    return {k: (counts[k], spent[k]) for k in counts}


def inner(path: str) -> None:
    """The measured side: prints one JSON object of stage timings."""
    from msnsniff.collector import batch_collector

    stages: list[tuple[str, str | None, float]] = []
    with batch_collector():
        for name, base, run in _passes(path):
            start = time.process_time()
            run()
            stages.append((name, base, time.process_time() - start))
        by_cmd = _per_command(path)
    print(json.dumps({"stages": stages, "by_cmd": by_cmd}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    ap.add_argument("--build", choices=("source", "compiled"), default="source")
    ap.add_argument("--inner", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        inner(args.inner)
        return 0
    from benchmarks.bench_read import capture, timed, tree, truth_counts

    where, label = tree(args.build)
    print(f"msnsniff build measured: {label}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    cores = os.cpu_count() or 1
    for packets in args.sizes:
        pcap, truth = capture(packets)
        frames = sum(truth_counts(truth)[0].values())
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--inner", str(pcap)],
            cwd=where, env={**os.environ, "PYTHONPATH": str(where)},
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        got = json.loads(out.stdout)
        tshark = timed([*TSHARK, str(pcap)]).seconds
        per = 1e6 / frames
        print(f"\n== {pcap.name}: {frames:,} frames; CPU a frame, one process")
        passes = {name: seconds for name, _base, seconds in got["stages"]}
        for name, base, seconds in got["stages"]:
            cost = seconds - (0.0 if base is None else passes[base])
            after = "" if base is None else f" on top of {base}"
            print(f"  {name:<16} {cost * per:6.2f} us{after} (its pass: {seconds:.2f} s)")
        print("\n  JSON Lines rendering by command (share of rendering time):")
        by_cmd = got["by_cmd"]
        total = sum(s for _n, s in by_cmd.values()) or 1.0
        for cmd, (n, s) in sorted(by_cmd.items(), key=lambda kv: -kv[1][1])[:12]:
            print(f"  {cmd:<16} {n:8,} frames  {s / n * 1e6:6.2f} us each  {s / total:6.1%}")
        full = got["stages"][-1][2]
        print(
            f"\n  the full analysis at half of frames-only may take 2 x framing's pass, "
            f"{2 * passes['framing']:.2f} s; it takes {full:.2f} s "
            f"({passes['framing'] / full:.2f}x frames-only)"
        )
        t = tshark / frames * 1e6
        print(f"\n  tshark (one process, wall): {tshark:.2f} s = {t:.2f} us a frame")
        print(
            f"  on {cores} cores with perfect splitting: frames-only at 2x tshark leaves "
            f"{cores * t / 2:.2f} us of CPU a frame; JSON Lines at 1x leaves {cores * t:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
