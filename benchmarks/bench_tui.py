"""Benchmark: the TUI on the shared benchmark captures, headless (Textual's `run_test`).

Each capture runs in a child process of its own (so its memory figures are its own):
`MsnsniffApp(Workspace(), source=...)` at 120x40, timed from before the app starts. The
stream's `render_lines` is wrapped to log every paint (its end time, cursor, scroll, rows), so
a latency is "key event sent to the driver" until "the first stream paint showing its effect",
and does not include Pilot's `wait_for_idle`, which never sees an idle process while the
loader thread runs (each `pilot.press` would cost 2 s of its own). Printed:

* first screen: app start to the first stream paint with frames in it;
* keys while indexing goes on: pagedown, end, home, `p` (reply to request and back), and
  pagedown in a filtered view; p50/p99/max key-to-paint latency;
* a filter applied while indexing (`msnp.cmd == "MSG"`): time to the first filtered rows on
  screen, and until it has scanned every frame indexed when it was applied; and the same
  filter over the whole index once loading is done;
* indexing: total time and frames/s (with the UI running, as the user gets it);
* memory: VmRSS growth per indexed frame (from just before the app starts to the end of
  loading, after a gc), the peak (VmHWM) and `index.memory()` per frame;
* baseline: Textual's stock DataTable adding 100,000 rows (`add_row` each) and painting them.

    python3 -m benchmarks.bench_tui                     # 100k and 1M packets
    python3 -m benchmarks.bench_tui --sizes 100000 --keys 10

The targets (the TUI issue): first screen under 1 s on the 1M capture; keys, pair jumps
and filters responsive while indexing (taken here as p99 key-to-paint under 100 ms and
first filtered rows under 1 s); memory under 0.5 KiB per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_read import MIB, capture

SIZE = (120, 40)
FILTER = 'msnp.cmd == "MSG"'
FIRST_SCREEN_TARGET = 1.0  # seconds
KEY_TARGET = 0.100  # p99 key-to-paint, seconds
FILTER_TARGET = 1.0  # first filtered rows on screen, seconds
BYTES_PER_FRAME_TARGET = 512
TIMEOUT = 30.0  # seconds to wait for one effect before calling it missed


def rss() -> tuple[int, int]:
    """This process's resident set size and its peak (VmRSS, VmHWM), bytes."""
    got = {"VmRSS:": 0, "VmHWM:": 0}
    with open("/proc/self/status") as fh:
        for line in fh:
            key = line.split(maxsplit=1)[0]
            if key in got:
                got[key] = int(line.split()[1]) * 1024
    return got["VmRSS:"], got["VmHWM:"]


@dataclass(frozen=True, slots=True)
class Paint:
    """One paint of the stream view: when it ended and what it showed."""

    t: float
    cursor: int
    top: int
    rows: int  # -1: every frame
    count: int
    blank: bool


# --- the TUI, in a child -------------------------------------------------------------------------


async def tui_run(path: Path, keys: int) -> dict[str, Any]:
    """Drive the app over one capture; the figures as a dict."""
    from textual import events
    from textual.geometry import Region
    from textual.strip import Strip

    from msnsniff.session.workspace import Workspace
    from msnsniff.tui.app import MsnsniffApp
    from msnsniff.tui.widgets.stream import StreamView

    paints: list[Paint] = []
    original = StreamView.render_lines

    def render_lines(self: StreamView, crop: Region) -> list[Strip]:
        strips = original(self, crop)
        rows = -1 if self.rows is None else len(self.rows)
        blank = not any(s.text.strip() for s in strips)
        paints.append(Paint(time.perf_counter(), self.cursor, self.scroll_offset.y, rows,
                            self.workspace.index.count, blank))  # fmt: skip
        return strips

    # timing wraps the real method: a patch mypy cannot type
    StreamView.render_lines = render_lines  # type: ignore[method-assign, assignment]
    pauses: list[float] = []  # the collector's full (generation 2) passes, seconds
    began = [0.0]

    def collected(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                began[0] = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - began[0])

    gc.collect()
    rss_before, _ = rss()
    out: dict[str, Any] = {"latency": {}, "missed": []}
    ws = Workspace()
    app = MsnsniffApp(ws, source=path)
    start = time.perf_counter()
    done_at: list[float] = []
    gc.callbacks.append(collected)

    async def until(test: Callable[[], bool], timeout: float = TIMEOUT) -> float | None:
        """Wait for `test` (polled every 2 ms); when it held, or None after the timeout."""
        limit = time.perf_counter() + timeout
        while time.perf_counter() < limit:
            if not done_at and ws.done:
                done_at.append(time.perf_counter())
            if test():
                return time.perf_counter()
            await asyncio.sleep(0.002)
        return None

    def painted_since(t0: float, test: Callable[[Paint], bool]) -> Callable[[], bool]:
        return lambda: any(p.t >= t0 and test(p) for p in reversed(paints[-50:]))

    def first_paint(t0: float, test: Callable[[Paint], bool]) -> float | None:
        return next((p.t for p in paints if p.t >= t0 and test(p)), None)

    async def key(name: str, label: str) -> None:
        """Send one key; log the time to the first paint whose cursor or scroll moved."""
        stream = app.query_one(StreamView)
        cursor, top = stream.cursor, stream.scroll_offset.y
        char = name if len(name) == 1 else None
        t0 = time.perf_counter()
        assert app._driver is not None
        app._driver.send_message(events.Key(name, char))

        def moved(p: Paint) -> bool:
            return p.cursor != cursor or p.top != top

        if await until(painted_since(t0, moved), 5.0) is None:
            out["missed"].append(label)
            return
        t = first_paint(t0, moved)
        assert t is not None
        out["latency"].setdefault(label, []).append(t - t0)

    async with app.run_test(size=SIZE) as pilot:
        out["mounted"] = time.perf_counter() - start
        shown = await until(lambda: any(not p.blank and p.count for p in paints))
        first = first_paint(start, lambda p: not p.blank and p.count > 0)
        out["first_screen"] = None if shown is None or first is None else first - start
        out["count_at_first_screen"] = ws.index.count
        stream = app.query_one(StreamView)
        await until(lambda: ws.index.count > 2000)  # a few pages to move in
        out["keys_while_loading"] = not ws.done
        out["progress_at_keys"] = ws.progress
        for _ in range(keys):
            await key("pagedown", "pagedown")
        for _ in range(max(1, keys // 5)):
            await key("end", "end")
            await key("home", "home")
            await key("pagedown", "pagedown")
        for _ in range(max(1, keys // 5)):  # a reply on screen: to its request and back
            stream.move_to_row(stream.cursor + 37 * stream.size.height)
            await asyncio.sleep(0.01)
            row = stream.cursor
            while row < stream.row_count and ws.index.request_of(row + 1) is None:
                row += 1
            if row >= stream.row_count:
                break
            stream.move_to_row(row)
            await asyncio.sleep(0.01)
            await key("p", "p (pair)")
            await key("p", "p (pair)")
        # a filter while indexing: first rows on screen, then caught up with the index
        t0 = time.perf_counter()
        at_apply = ws.index.count
        out["filter_applied_at"] = at_apply
        out["filter_while_loading"] = not ws.done
        app.apply_filter(FILTER)
        if await until(painted_since(t0, lambda p: p.rows > 0 and not p.blank)) is None:
            out["missed"].append("filter first rows")
        t = first_paint(t0, lambda p: p.rows > 0 and not p.blank)
        out["filter_first_rows"] = None if t is None else t - t0
        for _ in range(max(1, keys // 2)):
            # a page down needs a page below: wait (untimed) until the filter pass found it
            await until(lambda: stream.row_count > stream.cursor + 2 * stream.size.height)
            await key("pagedown", "pagedown (filtered)")
        caught = await until(lambda: app.scanned >= at_apply, 120.0)
        out["filter_caught_up"] = None if caught is None else caught - t0
        out["filter_rate"] = None if caught is None else at_apply / (caught - t0)
        app.apply_filter("")
        await until(lambda: stream.rows is None)
        # the rest of the load
        await until(lambda: ws.done, 1200.0)
        out["indexing"] = (done_at[0] if done_at else time.perf_counter()) - start
        out["frames"] = ws.index.count
        out["index_bytes"] = ws.index.memory()
        # the same filter over the whole index, nothing else running
        await pilot.pause(0.3)
        t0 = time.perf_counter()
        app.apply_filter(FILTER)
        t1 = await until(painted_since(t0, lambda p: p.rows > 0 and not p.blank))
        t = first_paint(t0, lambda p: p.rows > 0 and not p.blank)
        out["filter_done_first_rows"] = None if t1 is None or t is None else t - t0
        t2 = await until(lambda: app.scanned >= ws.index.count and not app.scanning, 600.0)
        out["filter_full"] = None if t2 is None else t2 - t0
        out["filter_matches"] = len(stream.rows) if stream.rows is not None else 0
        for _ in range(max(1, keys // 2)):
            await key("end", "end/home (loaded, filtered)")
            await key("home", "end/home (loaded, filtered)")
        gc.callbacks.remove(collected)
        out["gc_pauses"] = pauses
        gc.collect()
        rss_after, peak = rss()
        out["rss_before"], out["rss_after"], out["rss_peak"] = rss_before, rss_after, peak
    return out


# --- the stock DataTable, in a child -------------------------------------------------------------


async def datatable_run(rows: int) -> dict[str, Any]:
    """Time Textual's DataTable adding `rows` rows one `add_row` at a time, then painting."""
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Table(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

    data = [(f"{n:>7}", f"{n * 0.00123:11.6f}", f"{n % 997:08x}", "→" if n % 2 else "←",
             f"MSG {n} N 131  text/plain; hello from user{n % 50}@example.com")
            for n in range(1, rows + 1)]  # fmt: skip
    app = Table()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        table.add_columns("no", "time", "flow", "dir", "frame")
        await pilot.pause()
        gc.collect()
        rss_before, _ = rss()
        t0 = time.perf_counter()
        for row in data:
            table.add_row(*row)
        added = time.perf_counter() - t0
        await pilot.pause()
        painted = time.perf_counter() - t0
        t1 = time.perf_counter()
        await pilot.press("end")
        end_key = time.perf_counter() - t1
        rss_after, _ = rss()
    return {"rows": rows, "added": added, "painted": painted, "end_key": end_key,
            "rss_per_row": (rss_after - rss_before) / rows}  # fmt: skip


# --- the parent ----------------------------------------------------------------------------------


def child(argv: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_tui", "--child", *argv]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(value: float | None) -> str:
    return "missed" if value is None else f"{value * 1000:7.0f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(name: str, r: dict[str, Any]) -> list[bool]:
    """Print one capture's figures; the pass/fail of its targets."""
    lat: dict[str, list[float]] = r["latency"]
    every = [v for vs in lat.values() for v in vs]
    frames = r["frames"]
    grown = (r["rss_after"] - r["rss_before"]) / frames
    peak = (r["rss_peak"] - r["rss_before"]) / frames
    first = r["first_screen"]
    checks = [
        first is not None and first < FIRST_SCREEN_TARGET,
        bool(every) and pct(every, 0.99) < KEY_TARGET and not r["missed"],
        r["filter_first_rows"] is not None and r["filter_first_rows"] < FILTER_TARGET,
        grown < BYTES_PER_FRAME_TARGET,
    ]
    loading = "while indexing" if r["keys_while_loading"] else "AFTER indexing (too fast?)"
    print(f"\n== {name}: {frames:,} frames")
    print(
        f"  first screen        {ms(first)}  (app mounted {ms(r['mounted'])}, "
        f"{r['count_at_first_screen']:,} frames indexed)   {verdict(checks[0])} < 1 s"
    )
    print(f"  keys {loading} (from {r['progress_at_keys']:.0%}), key-to-paint:")
    for label, values in lat.items():
        print(f"    {label:<28} n={len(values):<3} p50 {ms(statistics.median(values))}  "
              f"p99 {ms(pct(values, 0.99))}  max {ms(max(values))}")  # fmt: skip
    if every:
        print(f"    {'all keys':<28} n={len(every):<3} p50 {ms(statistics.median(every))}  "
              f"p99 {ms(pct(every, 0.99))}   {verdict(checks[1])} p99 < 100 ms"
              + (f"  missed: {r['missed']}" if r["missed"] else ""))  # fmt: skip
    gcs = r["gc_pauses"]
    if gcs:
        print(
            f"    (full gc passes during the run: {len(gcs)}, longest {ms(max(gcs))}, "
            f"total {sum(gcs):.2f} s: each one stalls the UI)"
        )
    rate = r["filter_rate"]
    print(
        f"  filter {FILTER} applied at {r['filter_applied_at']:,} frames"
        f"{' (indexing)' if r['filter_while_loading'] else ''}: first rows "
        f"{ms(r['filter_first_rows'])} {verdict(checks[2])} < 1 s; caught up "
        f"{ms(r['filter_caught_up'])}" + (f" ({rate:,.0f} frames/s)" if rate else "")
    )
    print(
        f"  filter after loading: first rows {ms(r['filter_done_first_rows'])}, all "
        f"{frames:,} frames {ms(r['filter_full'])} ({r['filter_matches']:,} match)"
    )
    print(
        f"  indexing            {r['indexing']:7.2f} s  {frames / r['indexing']:>9,.0f} frames/s"
        f"  (UI running)"
    )
    print(f"  memory              RSS +{grown:5.0f} B/frame after load "
          f"(+{(r['rss_after'] - r['rss_before']) / MIB:.0f} MiB), peak +{peak:.0f} B/frame, "
          f"index.memory() {r['index_bytes'] / frames:.0f} B/frame   "
          f"{verdict(checks[3])} < 512 B")  # fmt: skip
    return checks


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--keys", type=int, default=20, help="pagedown presses (others scale)")
    ap.add_argument("--rows", type=int, default=100_000, help="DataTable baseline rows")
    ap.add_argument("--child", nargs=2, metavar=("KIND", "ARG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, arg = args.child
        if kind == "tui":
            result = asyncio.run(tui_run(Path(arg), args.keys))
        else:
            result = asyncio.run(datatable_run(int(arg)))
        print(json.dumps(result))
        return 0
    results: list[tuple[str, bool]] = []
    grown: list[tuple[int, int]] = []  # (frames, RSS growth) of each capture
    for packets in args.sizes:
        pcap, _truth = capture(packets)
        r = child(["tui", str(pcap), "--keys", str(args.keys)])
        grown.append((r["frames"], r["rss_after"] - r["rss_before"]))
        checks = report(pcap.name, r)
        for what, ok in zip(("first screen", "keys", "filter", "memory"), checks, strict=True):
            results.append((f"{pcap.name} {what}", ok))
    if len(grown) > 1 and grown[-1][0] != grown[0][0]:
        (n0, b0), (n1, b1) = grown[0], grown[-1]
        slope = (b1 - b0) / (n1 - n0)
        print(f"\nmemory, marginal (between the captures): {slope:.0f} B/frame, fixed part "
              f"{(b0 - slope * n0) / MIB:.0f} MiB")  # fmt: skip
    if args.rows:
        d = child(["datatable", str(args.rows)])
        print(
            f"\n== baseline: Textual DataTable, {d['rows']:,} rows: add_row each "
            f"{d['added']:.2f} s, painted {d['painted']:.2f} s, `end` {ms(d['end_key'])}, "
            f"RSS +{d['rss_per_row']:.0f} B/row"
        )
    print("\ntargets: " + ", ".join(f"{name} {verdict(ok)}" for name, ok in results))
    return 0 if all(ok for _name, ok in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
