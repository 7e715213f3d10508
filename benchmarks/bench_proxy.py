"""Benchmark: `msnsniff proxy` against a direct connection and socat on loopback, in one run.

Every part is its own process: an upstream peer (this module with `--role peer`: a plain
blocking-socket server, one thread per connection), the relay under test, and a client driver
(`--role client`) per measurement. The relays: none (direct to the peer), `socat TCP-LISTEN:P,
reuseaddr,fork TCP:127.0.0.1:Q`, and `python -m msnsniff proxy --listen 127.0.0.1:P --upstream
127.0.0.1:Q -T text` with its stdout on /dev/null, exactly as a user runs them (the proxy's
live analysis child dissects everything it is sent). Each connection opens with a real MSNP
`VER` line that tells the peer what to do:

* rtt: `--round-trips` sequential 62-byte `CHG` lines, each echoed back (p50, p99, after 500
  unmeasured ones);
* c2s: `--megabytes` MB of `MSG n U 1400` frames (1,400-byte MIME payloads) client->server
  into a counting sink, which answers when it has them all;
* s2c: the same amount of `MSG alice@... Alice 1400` frames server->client (the direction the
  proxy frames and scans for XFR/RNG on its main listener);
* idle: `--idle` connections opened through the relay (each with its VER exchanged) and held:
  the relay's RSS (VmRSS; the proxy's analysis child separately; socat forks one process per
  connection, so its figure is the Pss sum over all its processes) with 0 and with them open.

Printed: the median over `--repeat` runs of each figure, the proxy's ratios to direct and to
socat from the same run, the bytes the proxy's analysis could not keep up with (forwarded but
not dissected), and the targets (issue: p99 no worse than socat's, bulk at least socat's in
both directions, RSS flat with 1,000 idle connections, here: under `--flat-kib` per
connection).

    python3 -m benchmarks.bench_proxy                    # 20,000 round trips, 100 MB, 3 runs
    python3 -m benchmarks.bench_proxy --repeat 1 --round-trips 2000 --megabytes 10  # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

ROOT: Final = Path(__file__).resolve().parents[1]
HOST: Final = "127.0.0.1"
KIB: Final = 1024
MIB: Final = 1024 * 1024
MODES: Final = ("rtt", "c2s", "s2c", "idle")
WARMUP: Final = 500
PAYLOAD_LEN: Final = 1400
CREATOR: Final = b"ab"  # pads the CHG line to exactly 62 bytes


# --- the traffic (identical in every process) ------------------------------------------------


VER: Final = b"VER 1 MSNP8 CVR0\r\n"
USR_S2C: Final = b"USR 2 OK alice@example.com Alice 1 0\r\n"


def usr_line(mode: str) -> bytes:
    """The client's login; its ticket tells the peer what to do."""
    return b"USR 2 TWN S t=bench-%s\r\n" % mode.encode()


def chg_line(trid: int) -> bytes:
    """A 62-byte MSNP CHG line (TrID kept at five digits so the length never changes)."""
    obj = b"%3Cmsnobj%20Creator%3D%22" + CREATOR + b"%22%2F%3E"
    line = b"CHG %05d NLN 268435456 %s\r\n" % (10000 + trid % 90000, obj)
    assert len(line) == 62, len(line)
    return line


def payload(n: int) -> bytes:
    head = (b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
            b"X-MMS-IM-Format: FN=Arial; EF=; CO=0; CS=0; PF=22\r\n\r\n")  # fmt: skip
    text = b"message %06d " % n
    return (head + text * PAYLOAD_LEN)[:PAYLOAD_LEN]


@functools.cache
def bulk_data(direction: str, megabytes: float) -> bytes:
    """At least `megabytes` MB of whole MSG frames: c2s with rising TrIDs from 3, as a
    client sends them; s2c as a switchboard delivers them."""
    frames = []
    total, i = 0, 0
    while total < megabytes * 1e6:
        line = (b"MSG %d U %d\r\n" % (i + 3, PAYLOAD_LEN) if direction == "c2s"
                else b"MSG alice@example.com Alice %d\r\n" % PAYLOAD_LEN)  # fmt: skip
        frames.append(line + payload(i))
        total += len(frames[-1])
        i += 1
    return b"".join(frames)


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, need) if hard == resource.RLIM_INFINITY else max(soft, min(need, hard))
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_line(sock: socket.socket) -> bytes:
    buf = bytearray()
    while not buf.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"closed in a line: {bytes(buf)!r}")
        buf += chunk
    return bytes(buf)


# --- the upstream peer ---------------------------------------------------------------------------


def peer_conn(sock: socket.socket, megabytes: float) -> None:
    """One peer connection: read the VER line, echo it, then do what it asks."""
    with contextlib.suppress(OSError), sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.sendall(recv_line(sock))  # VER
        except ConnectionError:
            return  # a readiness probe
        mode = recv_line(sock).split(b"t=bench-")[-1].strip().decode()
        sock.sendall(USR_S2C)
        if mode == "rtt":
            while data := sock.recv(65536):
                sock.sendall(data)
        elif mode == "c2s":
            want, got = len(bulk_data("c2s", megabytes)), 0
            buf = bytearray(1 << 18)
            while got < want and (n := sock.recv_into(buf)):
                got += n
            sock.sendall(b"QNG %d\r\n" % got)
            while sock.recv(65536):
                pass
        elif mode == "s2c":
            sock.sendall(bulk_data("s2c", megabytes))
            while sock.recv(65536):
                pass
        else:
            while sock.recv(65536):
                pass


def run_peer(megabytes: float) -> int:
    """Listen on a free loopback port, print it, serve until killed."""
    raise_nofile(4096)
    threading.stack_size(256 * KIB)
    for direction in ("c2s", "s2c"):
        bulk_data(direction, megabytes)  # built before anything is timed
    srv = socket.create_server((HOST, 0), backlog=1024)
    print(srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=peer_conn, args=(conn, megabytes), daemon=True).start()


# --- the client driver -------------------------------------------------------------------------


def connect(port: int, mode: str) -> socket.socket:
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(VER)
    if recv_line(sock) != VER:
        raise ConnectionError("bad VER reply")
    sock.sendall(usr_line(mode))
    if recv_line(sock) != USR_S2C:
        raise ConnectionError("bad USR reply")
    return sock


def client_rtt(port: int, round_trips: int) -> dict[str, float]:
    with connect(port, "rtt") as sock:
        times: list[int] = []
        for i in range(WARMUP + round_trips):
            line = chg_line(i + 3)
            start = time.perf_counter_ns()
            sock.sendall(line)
            if recv_exact(sock, len(line)) != line:
                raise ConnectionError(f"round trip {i}: a different line came back")
            times.append(time.perf_counter_ns() - start)
    times = sorted(times[WARMUP:])
    return {"p50": times[len(times) // 2] / 1e3, "p99": times[len(times) * 99 // 100] / 1e3}


def client_bulk(port: int, direction: str, megabytes: float) -> dict[str, float]:
    data = bulk_data(direction, megabytes)
    total = len(data)
    with connect(port, direction) as sock:
        start = time.perf_counter()
        if direction == "c2s":
            sock.sendall(data)
            reply = recv_line(sock)
            if reply != b"QNG %d\r\n" % total:
                raise ConnectionError(f"the sink got {reply!r}, expected {total} bytes")
        else:
            buf = bytearray(1 << 18)
            got = 0
            while got < total and (n := sock.recv_into(buf)):
                got += n
            if got != total:
                raise ConnectionError(f"got {got} of {total} bytes")
        seconds = time.perf_counter() - start
    return {"mbps": total / 1e6 / seconds}


def client_idle(port: int, idle: int) -> None:
    """Open `idle` connections, say so, hold them until stdin closes."""
    raise_nofile(idle + 64)
    socks = [connect(port, "idle") for _ in range(idle)]
    print(json.dumps({"open": len(socks)}), flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()


def run_client(args: argparse.Namespace) -> int:
    if args.test == "idle":
        client_idle(args.port, args.idle)
        return 0
    result = (client_rtt(args.port, args.round_trips) if args.test == "rtt"
              else client_bulk(args.port, args.test, args.megabytes))  # fmt: skip
    print(json.dumps(result), flush=True)
    return 0


# --- the relays ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def proc_kib(pid: int, key: str, name: str = "status") -> int:
    """A `key:` figure in kB from /proc/PID/status (or smaps_rollup); 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Relay:
    """One relay under test (or none): its port, process and memory."""

    name: str
    upstream: int
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    err: IO[bytes] | None = None
    stderr_text: str = ""

    def start(self, fmt: str) -> None:
        if self.name == "direct":
            self.port = self.upstream
            return
        self.port = free_port()
        if self.name == "socat":
            argv = ["socat", f"TCP-LISTEN:{self.port},reuseaddr,fork",
                    f"TCP:{HOST}:{self.upstream}"]  # fmt: skip
        else:
            argv = [sys.executable, "-m", "msnsniff", "proxy", "--listen", f"{HOST}:{self.port}",
                    "--upstream", f"{HOST}:{self.upstream}", "-T", fmt]  # fmt: skip
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.err)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited at start: {self._stderr()}")
            if self.name == "proxy" and "msnsniff proxy:" not in self._stderr():
                time.sleep(0.05)
                continue
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                time.sleep(0.2)  # the probe's socat child and upstream thread wind down
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{self.name} did not start listening")

    def _stderr(self) -> str:
        if self.err is None:
            return ""
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def memory(self) -> tuple[int, int]:
        """KiB: the relay's own RSS (socat: Pss summed over all its processes) and the
        analysis child's RSS (proxy only)."""
        if self.proc is None:
            return 0, 0
        pid = self.proc.pid
        if self.name == "socat":
            pids = [pid, *children(pid)]
            return sum(proc_kib(p, "Pss", "smaps_rollup") for p in pids), 0
        return proc_kib(pid, "VmRSS"), sum(proc_kib(c, "VmRSS") for c in children(pid))

    def peak(self) -> int:
        return proc_kib(self.proc.pid, "VmHWM") if self.proc is not None else 0

    def cpu(self) -> tuple[float, float]:
        """CPU seconds of the relay and of its children (the proxy's analysis)."""
        if self.proc is None:
            return 0.0, 0.0
        kids = children(self.proc.pid) if self.name == "proxy" else []
        return cpu_seconds(self.proc.pid), sum(cpu_seconds(c) for c in kids)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr_text = self._stderr()
        if self.err is not None:
            self.err.close()

    def undissected(self) -> int:
        for line in self.stderr_text.splitlines():
            if "were forwarded but not dissected" in line:
                return int(line.split()[2])
        return 0


# --- the driver ----------------------------------------------------------------------------------


def client(args: argparse.Namespace, port: int, test: str) -> dict[str, float]:
    argv = [sys.executable, "-m", "benchmarks.bench_proxy", "--role", "client", "--port",
            str(port), "--test", test, "--round-trips", str(args.round_trips),
            "--megabytes", str(args.megabytes)]  # fmt: skip
    out = subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout
    result: dict[str, float] = json.loads(out)
    return result


def idle_memory(args: argparse.Namespace, relay: Relay) -> dict[str, float]:
    """The relay's memory with 0 connections, with `--idle` open, and after they close."""
    time.sleep(0.5)
    own0, child0 = relay.memory()
    argv = [sys.executable, "-m", "benchmarks.bench_proxy", "--role", "client", "--port",
            str(relay.port), "--test", "idle", "--idle", str(args.idle)]  # fmt: skip
    with subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as cl:
        assert cl.stdout is not None and cl.stdin is not None
        json.loads(cl.stdout.readline())
        time.sleep(1.0)
        own1, child1 = relay.memory()
        cl.stdin.close()
        cl.wait()
    time.sleep(1.0)
    own2, child2 = relay.memory()
    return {"rss0": own0, "rss_idle": own1, "rss_after": own2,
            "child0": child0, "child_idle": child1, "child_after": child2}  # fmt: skip


def one_run(args: argparse.Namespace, upstream: int, name: str) -> dict[str, float]:
    relay = Relay(name, upstream)
    relay.start(args.format)
    try:
        row = idle_memory(args, relay)
        row |= client(args, relay.port, "rtt")
        for direction in ("c2s", "s2c"):
            cpu0 = relay.cpu()
            row[direction] = client(args, relay.port, direction)["mbps"]
            cpu1 = relay.cpu()
            row[f"{direction}_cpu"] = cpu1[0] - cpu0[0]
            row[f"{direction}_child_cpu"] = cpu1[1] - cpu0[1]
        row["hwm"] = relay.peak()
    finally:
        relay.stop()
    row["undissected"] = relay.undissected()
    return row


@dataclass(slots=True)
class Results:
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def med(self, name: str, key: str) -> float:
        return statistics.median(r[key] for r in self.runs[name])

    def ratio(self, key: str, base: str) -> float:
        """The proxy's figure over `base`'s, each run with its own same-run baseline."""
        pairs = zip(self.runs["proxy"], self.runs[base], strict=True)
        return statistics.median(p[key] / b[key] for p, b in pairs)


def fmt_kib(kib: float) -> str:
    return f"{kib / KIB:6.1f}"


def report(args: argparse.Namespace, res: Results) -> int:
    names = list(res.runs)
    total_mb = len(bulk_data("c2s", args.megabytes)) / 1e6
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nmedians of {args.repeat} run(s); {args.round_trips:,} round trips of a 62-byte CHG;"
          f" {total_mb:.1f} MB bulk; {args.idle:,} idle connections; proxy -T {args.format}"
          f" > /dev/null; RSS in MiB; load average {load}")  # fmt: skip
    print(f"{'relay':<8} {'p50 us':>7} {'p99 us':>7} {'c2s MB/s':>9} {'s2c MB/s':>9} "
          f"{'RSS 0':>6} {'RSS idle':>8} {'KiB/conn':>8} {'after':>6} {'peak':>6}  analysis "
          "child RSS 0/idle/after")  # fmt: skip
    for name in names:
        rss0, rss1 = res.med(name, "rss0"), res.med(name, "rss_idle")
        per_conn = (rss1 - rss0) / args.idle if name != "direct" else 0.0
        mem = (f"{fmt_kib(rss0)} {fmt_kib(rss1):>8} {per_conn:8.1f} "
               f"{fmt_kib(res.med(name, 'rss_after'))} "
               f"{fmt_kib(res.med(name, 'hwm'))}")  # fmt: skip
        if name == "direct":
            mem = f"{'n/a':>6} {'n/a':>8} {'n/a':>8} {'n/a':>6} {'n/a':>6}"
        elif name == "socat":
            mem += "  (socat: Pss sum over its forked processes)"
        else:
            mem += "  " + "/".join(
                fmt_kib(res.med(name, k)).strip() for k in ("child0", "child_idle", "child_after")
            )
        print(f"{name:<8} {res.med(name, 'p50'):7.1f} {res.med(name, 'p99'):7.1f} "
              f"{res.med(name, 'c2s'):9.1f} {res.med(name, 's2c'):9.1f} {mem}")  # fmt: skip
    if "proxy" not in res.runs:
        return 0
    for base in [n for n in names if n != "proxy"]:
        print(f"proxy/{base:<6} p50 {res.ratio('p50', base):5.2f}x  p99 "
              f"{res.ratio('p99', base):5.2f}x  c2s {res.ratio('c2s', base):5.2f}x  "
              f"s2c {res.ratio('s2c', base):5.2f}x")  # fmt: skip
    cpu = "  ".join(
        f"{d} {res.med('proxy', d + '_cpu'):.2f}+{res.med('proxy', d + '_child_cpu'):.2f}"
        for d in ("c2s", "s2c")
    )
    print(
        f"proxy CPU s (relay+analysis) per bulk: {cpu};  forwarded but not dissected: "
        f"{res.med('proxy', 'undissected') / 1e6:.1f} MB per run (median)"
    )
    per_conn = (res.med("proxy", "rss_idle") - res.med("proxy", "rss0")) / args.idle
    socat = "socat" in res.runs
    p99 = f"(same-run ratio {res.ratio('p99', 'socat'):.2f}x)" if socat else ""
    checks: list[tuple[str, bool | None]] = [
        (f"p99 <= socat {p99}", res.ratio("p99", "socat") <= 1.0 if socat else None),
        *((f"{d} MB/s >= socat", res.ratio(d, "socat") >= 1.0 if socat else None)
          for d in ("c2s", "s2c")),
        (f"RSS flat: +{per_conn:.1f} KiB/idle conn (<= {args.flat_kib:g})",
         per_conn <= args.flat_kib),
    ]  # fmt: skip
    for text, ok in checks:
        verdict = "n/a (no socat)" if ok is None else "met" if ok else "MISSED"
        print(f"target: {text:<46} {verdict}")
    return 0


def main_bench(args: argparse.Namespace) -> int:
    raise_nofile(args.idle * 4 + 256)
    relays = ["direct", "socat", "proxy"]
    if shutil.which("socat") is None:
        print(
            "socat NOT FOUND: install it (apt-get install -y socat); no socat baseline",
            file=sys.stderr,
        )
        relays.remove("socat")
    peer_argv = [sys.executable, "-m", "benchmarks.bench_proxy", "--role", "peer",
                 "--megabytes", str(args.megabytes)]  # fmt: skip
    peer = subprocess.Popen(peer_argv, cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert peer.stdout is not None
        upstream = int(peer.stdout.readline())
        res = Results({name: [] for name in relays})
        for i in range(args.repeat):
            for name in relays:
                row = one_run(args, upstream, name)
                res.runs[name].append(row)
                print(
                    f"run {i + 1} {name:<6} p50 {row['p50']:6.1f} us  p99 {row['p99']:6.1f} us"
                    f"  c2s {row['c2s']:7.1f} MB/s  s2c {row['s2c']:7.1f} MB/s",
                    flush=True,
                )
        return report(args, res)
    finally:
        peer.send_signal(signal.SIGTERM)
        peer.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of everything (medians)")
    ap.add_argument("--round-trips", type=int, default=20_000)
    ap.add_argument("--megabytes", type=float, default=100.0, help="bulk per direction")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections for the RSS test")
    ap.add_argument(
        "--flat-kib",
        type=float,
        default=16.0,
        help="'flat' RSS: at most this much growth per idle connection",
    )
    ap.add_argument(
        "-T",
        dest="format",
        choices=("text", "jsonl", "none"),
        default="text",
        help="the proxy's live output format (to /dev/null)",
    )
    ap.add_argument(
        "--role", choices=("bench", "peer", "client"), default="bench", help=argparse.SUPPRESS
    )
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--test", choices=MODES, default="rtt", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role == "peer":
        return run_peer(args.megabytes)
    if args.role == "client":
        return run_client(args)
    return main_bench(args)


if __name__ == "__main__":
    raise SystemExit(main())
