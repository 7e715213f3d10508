"""Benchmark: the full analysis against frames-only decoding, on the same capture, one run.

Both run as single processes over the shared benchmark capture (generated into bench-data/
when missing): `msnsniff read -j 1 -T none` (framing only) and `msnsniff expert -T json
--min-severity error` (every analyzer: pairing, contact lists, session links, presence,
conversations, expert checks). Printed: frames/s of each, the ratio (target: the analysis
keeps at least half the frames-only throughput) and each one's peak RSS (target: flat, the
same at 100k and 1M packets).

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
        frames_only = [*me, "read", "-j", "1", "-T", "none", str(pcap)]
        analysis = [*me, "expert", "-T", "json", "--min-severity", "error", str(pcap)]
        if args.instructions:
            counts = {"frames only": instructions(frames_only, where),
                      "full analysis": instructions(analysis, where)}  # fmt: skip
            for name, n in counts.items():
                print(f"  {name:<14} {n / 1e9:8.3f} G instructions  "
                      f"{counts['frames only'] / n:5.2f}x frames-only")  # fmt: skip
            continue
        base = best(frames_only, args.repeat, where)
        full = best(analysis, args.repeat, where)
        for name, run in (("frames only", base), ("full analysis", full)):
            print(f"  {name:<14} {run.seconds:7.2f} s  {frames / run.seconds:>10,.0f} frames/s  "
                  f"{base.seconds / run.seconds:5.2f}x frames-only  "
                  f"peak RSS {run.peak_rss / MIB:6.1f} MiB  cpu {run.cpu:6.2f} s "
                  f"({base.cpu / run.cpu:4.2f}x frames-only's)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
