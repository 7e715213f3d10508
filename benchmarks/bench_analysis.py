"""Benchmark: the full analysis against frames-only decoding, on the same capture, one run.

Over the shared benchmark capture (generated into bench-data/ when missing): `msnsniff read
-T none` (framing only) and `msnsniff expert -T json --min-severity error` (every analyzer:
pairing, contact lists, session links, presence, conversations, expert checks), each as one
process (`-j 1`) and as it runs by default on this machine (`read` splits the connections
between processes; `expert` has a second process dissect while the first analyses). Printed:
frames/s of each, the ratios of like to like (target: the analysis keeps at least half the
frames-only throughput) and each one's peak RSS (target: flat, the same at 100k and 1M
packets; with two processes, the larger one's).

    python3 -m benchmarks.bench_analysis [--sizes 100000 1000000] [--repeat 3]
    python3 -m benchmarks.bench_analysis --build compiled   # the opt-in mypyc build
    python3 -m benchmarks.bench_analysis --sizes 100000 --instructions   # callgrind counts

The build measured is printed first (see bench_read's `--build`), and each run's CPU time.
"""

from __future__ import annotations

import argparse
import os
import sys

from benchmarks.bench_read import MIB, best, capture, instructions, tree, truth_counts

EXPERT = ["-T", "json", "--min-severity", "error"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", choices=("source", "compiled"), default="source",
                    help="run the tree as it is, or a mypyc-compiled copy of it")  # fmt: skip
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions under callgrind (once each) instead of timing")
    args = ap.parse_args()
    me = [sys.executable, "-m", "msnsniff"]
    where, label = tree(args.build)
    print(f"msnsniff build measured: {label}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    for packets in args.sizes:
        pcap, truth = capture(packets)
        frames = sum(truth_counts(truth)[0].values())
        print(f"\n== {pcap.name}: {frames:,} frames")
        runs = {
            "frames only -j 1": [*me, "read", "-j", "1", "-T", "none", str(pcap)],
            "analysis -j 1": [*me, "expert", "-j", "1", *EXPERT, str(pcap)],
            "frames only": [*me, "read", "-T", "none", str(pcap)],
            "analysis": [*me, "expert", *EXPERT, str(pcap)],
        }
        if args.instructions:  # one process each: callgrind counts the one it starts
            counts = {name: instructions(runs[name], where)
                      for name in ("frames only -j 1", "analysis -j 1")}  # fmt: skip
            for name, n in counts.items():
                print(f"  {name:<17} {n / 1e9:8.3f} G instructions  "
                      f"{counts['frames only -j 1'] / n:5.2f}x frames-only")  # fmt: skip
            continue
        done = {name: best(argv, args.repeat, where) for name, argv in runs.items()}
        for name, run in done.items():
            base = done["frames only" if name in ("frames only", "analysis") else
                        "frames only -j 1"]  # fmt: skip
            print(f"  {name:<17} {run.seconds:7.2f} s  {frames / run.seconds:>10,.0f} frames/s  "
                  f"{base.seconds / run.seconds:5.2f}x frames-only  "
                  f"peak RSS {run.peak_rss / MIB:6.1f} MiB  cpu {run.cpu:6.2f} s "
                  f"({base.cpu / run.cpu:4.2f}x frames-only's)")  # fmt: skip
        single = done["analysis -j 1"].seconds
        print(f"  default analysis against one process: {single / done['analysis'].seconds:.2f}x"
              " faster")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
