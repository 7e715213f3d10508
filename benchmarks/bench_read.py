"""Benchmark: `msnsniff read` against tshark on the shared benchmark captures, in one run.

Generates the captures with `../shared/bench/gen_capture.py` (seed 1) into `bench-data/`
when they are missing, then runs each command as a child process and reads its wall time and
peak RSS through GNU time (`/usr/bin/time -f %M`: a small launcher, so the child does not
inherit this script's memory high-water mark, which Linux carries across fork and exec;
without it, `os.wait4`, which has that flaw). Printed:
frames/s of each, the ratio to tshark measured in the same run, and peak RSS. Also checks
correctness on the capture: per-command frame counts against the generator's ground truth
(an independent count of what the applications wrote) and malformed frames.

    python3 benchmarks/bench_read.py              # 100k and 1M packets
    python3 benchmarks/bench_read.py --sizes 100000 --repeat 3
    python3 benchmarks/bench_read.py --build compiled   # the opt-in mypyc build (setup.py)
    python3 benchmarks/bench_read.py --sizes 100000 --instructions   # callgrind counts

Which build is measured is printed first: `--build source` (the default) runs the tree as it
is (pure Python, unless `build_ext --inplace` left compiled modules in it: they are named);
`--build compiled` copies the sources to `bench-data/compiled/`, compiles them there with
`MSNSNIFF_COMPILE=1 setup.py build_ext --inplace` and runs that copy. Each run also reports
its CPU time (user + system, all processes), since wall time on a shared machine is noisy.

`--instructions` runs each command once under valgrind's callgrind and prints instruction
counts instead (the same on every run of the same build: for comparing two versions of the
code on this noisy machine; the targets are about time, so they are judged by the timed runs).

The targets (issue 3): on the 1M capture, frames-only decoding at least 2x tshark's
frames/s, JSONL output at least 1x, peak RSS under 64 MiB and the same at 100k and 1M.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT.parent / "shared" / "bench" / "gen_capture.py"
DATA = ROOT / "bench-data"
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Run:
    """One timed child process: wall seconds and peak resident set size in bytes."""

    seconds: float
    peak_rss: int
    stdout: bytes
    cpu: float = 0.0  # user + system seconds of the command and its children


GNU_TIME = Path("/usr/bin/time")
RSS_MARK = "msnsniff-bench-peak-rss-kib="


def timed(argv: list[str], cwd: Path = ROOT) -> Run:
    """Run argv to completion (output discarded); wall time and the child's peak RSS."""
    launch = [str(GNU_TIME), "-f", RSS_MARK + "%M", *argv] if GNU_TIME.exists() else argv
    start = time.perf_counter()
    proc = subprocess.Popen(launch, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr is not None else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):  # 2: msnsniff's "input damaged" (cut sessions are fine)
        raise SystemExit(f"{argv[0]} failed ({code}): {err}")
    rss = usage.ru_maxrss * 1024
    for line in err.splitlines():
        if line.startswith(RSS_MARK):
            rss = int(line[len(RSS_MARK) :]) * 1024
    return Run(seconds, rss, b"", usage.ru_utime + usage.ru_stime)


VALGRIND = shutil.which("valgrind")


def instructions(argv: list[str], cwd: Path = ROOT) -> int:
    """Instructions executed by argv and the processes it forks, counted by callgrind: the
    same figure on every run of the same build and input, whatever else the machine does
    (wall time here moves by 30-40%). It counts work, not time: memory stalls are free."""
    if VALGRIND is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    proc = subprocess.run(
        [VALGRIND, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
    )  # fmt: skip
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{argv[0]} failed under valgrind ({proc.returncode})")
    counts = [int(line.rsplit(":", 1)[1].replace(",", ""))
              for line in proc.stderr.decode(errors="replace").splitlines()
              if "Collected :" in line]  # fmt: skip
    if not counts:
        raise SystemExit("valgrind printed no instruction count")
    return sum(counts)  # one line per process


def best(argv: list[str], repeat: int, cwd: Path = ROOT) -> Run:
    """The median wall time and median CPU time of `repeat` runs, and the largest peak RSS."""
    runs = [timed(argv, cwd) for _ in range(repeat)]
    return Run(
        sorted(r.seconds for r in runs)[len(runs) // 2],
        max(r.peak_rss for r in runs),
        b"",
        sorted(r.cpu for r in runs)[len(runs) // 2],
    )


def hot_modules() -> list[str]:
    """The modules setup.py compiles in the opt-in build (its HOT list)."""
    text = (ROOT / "setup.py").read_text()
    start = text.index("HOT = [")
    block = text[start : text.index("]", start)]
    return [line.strip().strip('",') for line in block.splitlines()[1:] if line.strip()]


def tree(build: str) -> tuple[Path, str]:
    """The source tree to run msnsniff from, and which build it is (printed with the figures).

    `compiled`: a copy of the sources in bench-data/compiled/, compiled there in place."""
    hot = hot_modules()
    if build == "compiled":
        where = DATA / "compiled"
        if where.exists():
            shutil.rmtree(where)
        where.mkdir(parents=True)
        for name in ("dissectors", "msnsniff"):
            shutil.copytree(ROOT / name, where / name, ignore=shutil.ignore_patterns(
                "*.so", "__pycache__", "*.c"))  # fmt: skip
        for name in ("setup.py", "pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, where / name)
        print(f"compiling {len(hot)} modules with mypyc in {where} ...", flush=True)
        subprocess.run(
            [sys.executable, "setup.py", "build_ext", "--inplace"], cwd=where, check=True,
            env={**os.environ, "MSNSNIFF_COMPILE": "1"}, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    else:
        where = ROOT
    compiled = [m for m in hot if list((where / m).parent.glob(Path(m).stem + ".*.so"))]
    if not compiled:
        return where, "pure Python (no compiled module in the tree)"
    return where, f"mypyc-compiled, {len(compiled)} of setup.py's {len(hot)} modules: " + ", ".join(
        compiled
    )


def capture(packets: int) -> tuple[Path, Path]:
    DATA.mkdir(exist_ok=True)
    pcap = DATA / f"msnp_{packets}.pcap"
    truth = DATA / f"msnp_{packets}.truth.jsonl"
    if not pcap.exists() or not truth.exists():
        if not GEN.exists():
            raise SystemExit(f"the generator is missing: {GEN}")
        subprocess.run(
            [sys.executable, str(GEN), "--packets", str(packets), "--seed", "1", "-o", str(pcap),
             "--truth", str(truth), "-q"],
            check=True,
        )  # fmt: skip
    return pcap, truth


def truth_counts(truth: Path) -> tuple[collections.Counter[str], int]:
    """Per-command counts of complete frames in the ground truth, and the cut frames."""
    counts: collections.Counter[str] = collections.Counter()
    cut = 0
    with truth.open() as fh:
        for line in fh:
            if '"type":"frame"' not in line:
                continue
            rec = json.loads(line)
            if rec["complete"]:
                counts[rec["cmd"]] += 1
            else:
                cut += 1
    return counts, cut


def our_counts(
    pcap: Path, cwd: Path = ROOT
) -> tuple[collections.Counter[str], collections.Counter[str]]:
    """Per-command counts and malformed reasons from `msnsniff read -T jsonl` (streamed)."""
    argv = [sys.executable, "-m", "msnsniff", "read", "-T", "jsonl", str(pcap)]
    counts: collections.Counter[str] = collections.Counter()
    malformed: collections.Counter[str] = collections.Counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=cwd) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            rec = json.loads(line)
            if rec["malformed"] is not None:
                malformed[rec["malformed"]["reason"].split(":")[0]] += 1
            else:
                counts[rec["cmd"]] += 1
    return counts, malformed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=3, help="runs per command (median time)")
    ap.add_argument("--no-check", action="store_true", help="skip the correctness check")
    ap.add_argument("--build", choices=("source", "compiled"), default="source",
                    help="run the tree as it is, or a mypyc-compiled copy of it")  # fmt: skip
    ap.add_argument("--instructions", action="store_true",
                    help="count instructions under callgrind (once each, ~50x slower) "
                         "instead of timing")  # fmt: skip
    args = ap.parse_args()
    tshark = shutil.which("tshark")
    if args.instructions:
        return count_instructions(args.sizes, args.build, tshark)
    me = [sys.executable, "-m", "msnsniff", "read"]
    where, label = tree(args.build)
    print(f"msnsniff build measured: {label}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    rows = []
    for packets in args.sizes:
        pcap, truth = capture(packets)
        expected, cut = truth_counts(truth)
        frames = sum(expected.values())
        print(f"\n== {pcap.name}: {packets:,} packets, {frames:,} complete frames "
              f"(+{cut} cut by the capture end), {pcap.stat().st_size / MIB:.1f} MiB")  # fmt: skip
        results = {
            "msnsniff frames": best([*me, "-T", "none", str(pcap)], args.repeat, where),
            "msnsniff jsonl": best([*me, "-T", "jsonl", str(pcap)], args.repeat, where),
        }
        if tshark:
            argv = [tshark, "-r", str(pcap), "-q", "-Y", "msnms", "-d", "tcp.port==1863,msnms"]
            results["tshark -q -Y msnms"] = best(argv, args.repeat)
        base = results.get("tshark -q -Y msnms")
        for name, run in results.items():
            rate = frames / run.seconds
            ratio = f"{base.seconds / run.seconds:5.2f}x tshark" if base else "(no tshark)"
            cpu = f"cpu {run.cpu:6.2f} s" + (
                f" ({base.cpu / run.cpu:4.2f}x tshark's)" if base else "")  # fmt: skip
            print(f"  {name:<20} {run.seconds:7.2f} s  {rate:>10,.0f} frames/s  {ratio}  "
                  f"peak RSS {run.peak_rss / MIB:6.1f} MiB  {cpu}")  # fmt: skip
            rows.append((packets, name, run))
        if not args.no_check:
            got, malformed = our_counts(pcap, where)
            diff = {c: (got[c], expected[c]) for c in got.keys() | expected.keys()
                    if got[c] != expected[c]}  # fmt: skip
            print(f"  check: {sum(got.values()):,} frames decoded; per-command counts "
                  + ("match the ground truth" if not diff else f"DIFFER: {diff}"))
            print(f"  check: malformed {dict(malformed) or 'none'} (cut frames in truth: {cut})")
    if not tshark:
        print("\ntshark not found: install it (apt-get install tshark) for the baseline")
    return 0


def count_instructions(sizes: list[int], build: str, tshark: str | None) -> int:
    """`--instructions`: each command once under callgrind, and the ratio of tshark's count
    to ours (above 1: msnsniff does less work per frame). Startup is included: compare on
    the same capture."""
    me = [sys.executable, "-m", "msnsniff", "read"]
    where, label = tree(build)
    print(f"msnsniff build measured: {label}")
    for packets in sizes:
        pcap, _truth = capture(packets)
        print(f"\n== {pcap.name}: instructions (callgrind)")
        counts = {
            "msnsniff frames -j 1": instructions([*me, "-j", "1", "-T", "none", str(pcap)], where),
            "msnsniff jsonl -j 1": instructions([*me, "-j", "1", "-T", "jsonl", str(pcap)], where),
        }
        if tshark:
            counts["tshark -q -Y msnms"] = instructions(
                [tshark, "-r", str(pcap), "-q", "-Y", "msnms", "-d", "tcp.port==1863,msnms"]
            )
        base = counts.get("tshark -q -Y msnms")
        for name, n in counts.items():
            ratio = f"{base / n:5.2f}x tshark" if base else "(no tshark)"
            print(f"  {name:<22} {n / 1e9:8.3f} G instructions  {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
