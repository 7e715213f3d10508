"""Benchmark: the reference MSNP server with 1,000 concurrent logged-in clients, in one run.

The server runs in a child process (this module with `--serve`), the clients in this one on
one asyncio loop, so the two never share an event loop. Every account has `--contacts` random
others on its forward list (seeded; written into the server's store before it starts, the RL
entries with them) and BLP AL lets everyone in, so presence fans out for real. Each client
logs in (MSNP7 MD5, or MSNP8 TWN through the server's HTTP nexus with `--twn`), SYNs and goes
online; then all change status, ping (PNG/QNG), pair up in switchboards (XFR SB, CAL, RNG,
ANS) and send `--messages` numbered messages each way with ACK mode A.

Printed: logins/s, presence frames/s, PNG round trips/s, messages/s, p50/p99 latencies, the
CPU share of the server and of the clients (a phase near 100% client CPU is client-bound),
and the server's RSS (idle with the accounts loaded, after the logins, peak VmHWM). Ratios
are against a baseline measured in the same run: a trivial asyncio echo server in a child
process, driven by the same client code over the same number of connections (PNG lines echoed
back as the "QNG"; MSG frames echoed back as the "ACK").

Checked by the benchmark itself (exit status 1 when a check fails): each client's SYN lists
its forward list; every watcher gets exactly one presence frame with the right status per
contact per change; every message arrives exactly once and in order, per sender; every MSG
is ACKed; no other frame arrives.

    python3 -m benchmarks.bench_server                  # 1,000 clients, median of 3 runs
    python3 -m benchmarks.bench_server --quick          # 100 clients, 1 run: a smoke run
    python3 -m benchmarks.bench_server --clients 500 --messages 200 --window 4 --twn
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import resource
import select
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

from msnsniff.client.connection import (
    MAX_LINE,
    MAX_PAYLOAD,
    SERVER_PAYLOAD_COMMANDS,
    ClientError,
    Connection,
    Reply,
)
from msnsniff.client.passport import fetch_ticket
from msnsniff.client.session import (
    CVR_ARGS,
    Chat,
    NotificationClient,
    split_address,
    text_message,
)
from msnsniff.server.app import ReferenceServer
from msnsniff.server.config import ServerConfig
from msnsniff.server.model import LIST_BITS, Contact
from msnsniff.server.store import Store

ROOT: Final = Path(__file__).resolve().parents[1]
MIB: Final = 1024 * 1024
HOST: Final = "127.0.0.1"
MESSAGE_HEAD: Final = text_message("")  # the MIME head every benchmark message carries
CLOSE_GRACE: Final = 10.0  # seconds a child gets to exit after its stdin closes

Waiter = asyncio.Future[tuple[Reply, float]]
T = TypeVar("T")


class BenchError(Exception):
    """The run cannot go on, or a check failed; the message says which and where."""


# --- accounts and lists (the same in both processes) ----------------------------------------


def email(i: int) -> str:
    return f"u{i:05d}@bench.example.com"


def password(i: int) -> str:
    return f"pw-{i}"


def contact_graph(clients: int, contacts: int, seed: int) -> list[list[int]]:
    """Each client's forward list: `contacts` distinct others, drawn from `seed`."""
    rng = random.Random(seed)
    k = min(contacts, clients - 1)
    return [[j + (j >= i) for j in rng.sample(range(clients - 1), k)] for i in range(clients)]


def raise_nofile(need: int) -> None:
    """Raise the soft open-files limit to the hard one; BenchError when that is under `need`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, need) if hard == resource.RLIM_INFINITY else hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need:
        raise BenchError(f"{need} file descriptors needed, the hard limit is {hard}")


# --- the child: the reference server or the echo baseline -----------------------------------


class Echo(asyncio.Protocol):
    """The baseline: every byte received goes straight back."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def populate(store: Store, clients: int, contacts: int, seed: int) -> None:
    """Create the accounts and write each forward list (and the matching RL entries)."""
    accounts = [store.add_account(email(i), password(i), f"User{i}") for i in range(clients)]
    with store.transaction():
        for i, fl in enumerate(contact_graph(clients, contacts, seed)):
            a = accounts[i]
            for j in fl:
                b = accounts[j]
                c = a.contacts.get(b.email) or Contact(b.email, b.nick)
                c.lists |= LIST_BITS["FL"]
                c.groups = [0]
                store.save_contact(a, c)
                r = b.contacts.get(a.email) or Contact(a.email, a.nick)
                r.lists |= LIST_BITS["RL"]
                store.save_contact(b, r)
        for acc in accounts:
            acc.version = len(acc.contacts)
            store.save_account(acc)


async def serve(mode: str, args: argparse.Namespace) -> None:
    """Start the server, print its ports as one JSON line, run until stdin closes or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def stdin_ready() -> None:
        if not os.read(0, 4096):
            loop.remove_reader(0)
            stop.set()

    loop.add_reader(0, stdin_ready)
    if mode == "echo":
        echo = await loop.create_server(Echo, HOST, 0, backlog=1024)
        print(json.dumps({"ports": {"echo": echo.sockets[0].getsockname()[1]}}), flush=True)
        await stop.wait()
        echo.close()
        return
    config = ServerConfig(ds_port=0, ns_port=0, sb_port=0, http_port=0 if args.twn else None,
                          https_port=None, chl_interval=0)  # fmt: skip
    server = ReferenceServer(config)
    populate(server.store, args.clients, args.contacts, args.seed)
    await server.start()
    nexus = server.nexus_url if args.twn else None
    print(json.dumps({"ports": server.ports, "nexus": nexus}), flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()


class Child:
    """A `--serve MODE` child process: its ports, memory and CPU; closing its stdin stops it."""

    def __init__(self, mode: str, args: argparse.Namespace) -> None:
        argv = [sys.executable, "-m", "benchmarks.bench_server", "--serve", mode,
                "--clients", str(args.clients), "--contacts", str(args.contacts),
                "--seed", str(args.seed), *(["--twn"] if args.twn else [])]  # fmt: skip
        self.mode = mode
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)  # fmt: skip
        try:
            hello = json.loads(self._first_line(args.timeout))
        except BaseException:
            self.close()
            raise
        self.ports: dict[str, int] = hello["ports"]
        self.nexus: str | None = hello.get("nexus")

    def _first_line(self, timeout: float) -> str:
        out = self.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        line = out.readline().decode() if ready else ""
        if not line:
            code = self.proc.poll()
            raise BenchError(f"the {self.mode} child did not start (exit status {code})")
        return line

    def _proc(self, name: str) -> str:
        try:
            with open(f"/proc/{self.proc.pid}/{name}") as fh:
                text = fh.read()
        except OSError:
            text = ""
        if self.proc.poll() is not None:
            raise BenchError(f"the {self.mode} child exited (status {self.proc.returncode})")
        return text

    def status(self, key: str) -> int:
        """A `/proc/PID/status` size (VmRSS, VmHWM) in bytes."""
        for line in self._proc("status").splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise BenchError(f"no {key} for the {self.mode} child")

    def cpu(self) -> float:
        """User plus system CPU seconds the child used so far."""
        fields = self._proc("stat").rsplit(")", 1)[-1].split()
        if len(fields) < 13:
            raise BenchError(f"no CPU times for the {self.mode} child")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        p = self.proc
        if p.stdin is not None and not p.stdin.closed:
            p.stdin.close()
        try:
            p.wait(CLOSE_GRACE)
        except subprocess.TimeoutExpired:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p.stdout is not None:
            p.stdout.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# --- the client side --------------------------------------------------------------------------
#
# The load generator must cost less than the server, or the figures measure the clients. So
# the hot paths do not go through `Connection.read` (a task and a timer per frame, and the
# whole transcript kept): a `Link` reads whole chunks and cuts them into frames itself, and
# timeouts are per phase. The switchboard set-up and TWN tickets use the project's client.


class Link:
    """A connection read by one task: a reply to a sent command resolves that command's
    future with its arrival time, the pong the oldest ping, anything else goes to `on_frame`
    (with the frame's words)."""

    def __init__(self, conn: Connection, on_frame: Callable[[Reply, list[str]], None],
                 pong: str = "QNG") -> None:
        self.conn = conn
        self.on_frame = on_frame
        self.pong = pong
        self.waiting: dict[int, tuple[frozenset[str], Waiter]] = {}
        self.pings: deque[Waiter] = deque()
        self.recent: deque[str] = deque(maxlen=8)  # the last lines each way, for errors
        self.error: BaseException | None = None
        self._buf = bytearray()
        self.task = asyncio.create_task(self._run())

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.pings)

    def tail(self) -> str:
        return f"{self.conn.name}:" + "\n    ".join(["", *self.recent])

    async def _run(self) -> None:
        conn = self.conn
        try:
            backlog, conn.backlog = conn.backlog, []
            for r in backlog:
                self._dispatch(r, r.words)
            while True:
                data = await conn.reader.read(1 << 16)
                if not data:
                    raise ClientError("the server closed the connection")
                self._feed(data)
        except Exception as e:
            self.error = e
            for fut in [*(w for _, w in self.waiting.values()), *self.pings]:
                if not fut.done():
                    fut.set_exception(ClientError(f"{conn.name}: {e!r}"))

    def _feed(self, data: bytes) -> None:
        """Cut frames off the buffer (a payload's length is the line's last word, as in
        `Connection`); a partial frame waits for the next chunk."""
        buf = self._buf
        buf += data
        pos = 0
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_LINE:
                    raise ClientError(f"line over {MAX_LINE} bytes")
                break
            line = buf[pos:end].decode("utf-8", "surrogateescape")
            words = line.split()
            payload = b""
            start = end + 2
            if words and words[0] in SERVER_PAYLOAD_COMMANDS and words[-1].isdigit():
                length = int(words[-1])
                if length > MAX_PAYLOAD:
                    raise ClientError(f"payload of {length} bytes")
                if start + length > len(buf):
                    break
                payload = bytes(buf[start : start + length])
                start += length
            pos = start
            self._dispatch(Reply(line, payload), words)
        del buf[:pos]

    def _dispatch(self, r: Reply, words: list[str]) -> None:
        now = time.perf_counter()
        self.recent.append("<<< " + r.line)
        cmd = words[0] if words else ""
        if cmd == self.pong and self.pings:
            self.pings.popleft().set_result((r, now))
            return
        if len(words) > 1 and words[1].isdigit() and len(words[1]) <= 10:
            entry = self.waiting.get(int(words[1]))
            if entry is not None and (cmd in entry[0] or (len(cmd) == 3 and cmd.isdigit())):
                del self.waiting[int(words[1])]
                entry[1].set_result((r, now))
                return
        self.on_frame(r, words)

    def write(self, cmd: str, *args: str, payload: bytes | None = None) -> int:
        """Send `CMD TrID args... [len]` (+ payload); the TrID."""
        if self.error is not None:
            raise ClientError(f"{self.conn.name}: connection failed: {self.error!r}")
        trid = self.conn.next_trid
        self.conn.next_trid += 1
        line = " ".join((cmd, str(trid), *args, *(() if payload is None else
                                                  (str(len(payload)),))))  # fmt: skip
        self.recent.append(">>> " + line)
        self.conn.writer.write(line.encode() + b"\r\n" + (payload or b""))
        return trid

    def send(self, cmd: str, *args: str, expect: frozenset[str],
             payload: bytes | None = None) -> Waiter:
        """Send a command; the future gets the reply with its TrID whose command is in
        `expect` (or an error code), and the time it arrived."""
        fut: Waiter = asyncio.get_running_loop().create_future()
        self.waiting[self.write(cmd, *args, payload=payload)] = (expect, fut)
        return fut

    async def call(self, cmd: str, *args: str, expect: frozenset[str]) -> tuple[Reply, float]:
        """Send and wait for the reply: the reply and the round trip in seconds."""
        sent = time.perf_counter()
        fut = self.send(cmd, *args, expect=expect)
        await self.conn.drain()
        r, at = await settle(fut, self)
        return r, at - sent

    async def ping(self) -> float:
        """One PNG round trip, in seconds."""
        fut: Waiter = asyncio.get_running_loop().create_future()
        self.pings.append(fut)
        self.recent.append(">>> PNG")
        sent = time.perf_counter()
        self.conn.writer.write(b"PNG\r\n")
        await self.conn.drain()
        return (await settle(fut, self))[1] - sent


async def settle(fut: Waiter, link: Link) -> tuple[Reply, float]:
    """The future's result; BenchError with the connection's last lines when it failed."""
    try:
        return await fut
    except ClientError as e:
        raise BenchError(f"{e}\n  {link.tail()}") from None


async def within(timeout: float, what: str, links: Callable[[], Iterable[Link]],
                 work: Awaitable[T], tally: Tally | None = None) -> T:
    """`work`, or BenchError after `timeout` seconds saying how far the tally got and
    naming a connection still waiting for a reply."""
    try:
        async with asyncio.timeout(timeout):
            return await work
    except TimeoutError:
        stuck = [link for link in links() if link.busy]
        why = f"; {tally.count:,} of {tally.target:,} frames arrived" if tally else ""
        if stuck:
            why += f"; {len(stuck):,} connections await a reply, e.g. {stuck[0].tail()}"
        raise BenchError(f"{what}: not done in {timeout:g} s{why}") from None


class Tally:
    """A count that wakes a waiter when it reaches its target."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.event = asyncio.Event()

    def reset(self, target: int) -> None:
        self.count, self.target = 0, target
        self.event.clear()
        if target <= 0:
            self.event.set()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self.event.set()


SYN_LINES: Final = frozenset({"SYN", "GTC", "BLP", "PRP", "LSG", "LST", "BPR"})


@dataclass(eq=False)
class User:
    """One benchmark client: its account, forward list and what its NS connection heard."""

    index: int
    email: str
    fl: frozenset[str]
    link: Link | None = None
    syn: list[list[str]] = field(default_factory=list)  # the SYN answer's words
    syn_left: int = -1  # MSNP8: LSG and LST lines still to come
    syn_done: asyncio.Future[None] | None = None
    presence: list[tuple[str, str, str]] = field(default_factory=list)  # (cmd, status, who)
    rings: asyncio.Queue[Reply] = field(default_factory=asyncio.Queue)
    unexpected: list[str] = field(default_factory=list)

    @property
    def ns(self) -> Link:
        assert self.link is not None
        return self.link

    def on_frame(self, tally: Tally) -> Callable[[Reply, list[str]], None]:
        def frame(r: Reply, w: list[str]) -> None:
            cmd = w[0] if w else ""
            if cmd == "ILN" and len(w) >= 4:
                self.presence.append(("ILN", w[2], w[3]))
                tally.add()
            elif cmd == "NLN" and len(w) >= 3:
                self.presence.append(("NLN", w[1], w[2]))
                tally.add()
            elif cmd == "FLN" and len(w) >= 2:
                self.presence.append(("FLN", "", w[1]))
                tally.add()
            elif cmd == "RNG":
                self.rings.put_nowait(r)
            elif cmd in SYN_LINES and self.syn_done is not None and not self.syn_done.done():
                self.syn_line(w)
            elif not (cmd == "MSG" and w[1:2] == ["Hotmail"]):  # profile, e-mail notice
                self.unexpected.append(f"NS {self.email}: {r.line}")

        return frame

    def syn_line(self, w: list[str]) -> None:
        """One line of the SYN answer; the end is the last RL line (MSNP2-7) or the count of
        LSG and LST lines the MSNP8 header announced."""
        assert self.syn_done is not None
        self.syn.append(w)
        if w[0] == "SYN":
            self.syn_left = int(w[3]) + int(w[4]) if len(w) >= 5 else -1
            end = self.syn_left == 0
        elif self.syn_left >= 0:
            self.syn_left -= w[0] in ("LST", "LSG")
            end = self.syn_left == 0
        else:
            end = w[0] == "LST" and len(w) >= 6 and w[2] == "RL" and w[4] == w[5]
        if end:
            self.syn_done.set_result(None)


@dataclass(eq=False)
class Side:
    """One end of a switchboard pair: what arrived from the other end."""

    user: User
    peer: str
    conn: Connection
    link: Link | None = None
    next_seq: int = 0
    problems: list[str] = field(default_factory=list)

    def on_frame(self, tally: Tally, delivery: list[float]) -> Callable[[Reply, list[str]], None]:
        def frame(r: Reply, w: list[str]) -> None:
            _head, sep, body = r.payload.partition(b"\r\n\r\n")
            if w[0:2] != ["MSG", self.peer] or not sep:
                self.user.unexpected.append(f"SB {self.user.email}: {r.line}")
                return
            seq_text, sent = body.split()
            seq = int(seq_text)
            if seq != self.next_seq:
                self.problems.append(f"{self.user.email} from {self.peer}: message {seq} "
                                     f"where {self.next_seq} was due")  # fmt: skip
            self.next_seq = max(self.next_seq, seq + 1)
            delivery.append(time.perf_counter() - float(sent))
            tally.add()

        return frame


ACK: Final = frozenset({"ACK", "NAK"})
ECHOED_MSG: Final = frozenset({"MSG"})


async def send_messages(link: Link, count: int, window: int, ok: str, acks: list[float],
                        problems: list[str]) -> None:
    """`count` numbered MSG A frames, at most `window` unanswered; the latencies of the
    answers (`ok`: ACK, or the echoed MSG) are kept."""
    inflight: deque[tuple[float, Waiter]] = deque()
    expect = frozenset({ok, "NAK"})

    async def oldest() -> None:
        sent, fut = inflight.popleft()
        r, at = await settle(fut, link)
        if not r.line.startswith(ok):
            problems.append(f"{link.conn.name}: {r.line} for a MSG")
        acks.append(at - sent)

    for k in range(count):
        if len(inflight) >= window:
            await oldest()
        sent = time.perf_counter()
        body = f"{k} {sent!r}".encode()
        inflight.append((sent, link.send("MSG", "A", expect=expect, payload=MESSAGE_HEAD + body)))
        await link.conn.drain()
    while inflight:
        await oldest()


async def ping_all(links: Sequence[Link], pings: int) -> list[float]:
    """Each link does `pings` PNG round trips one after the other, all links at once."""
    lat: list[float] = []

    async def one(link: Link) -> None:
        for _ in range(pings):
            lat.append(await link.ping())

    await asyncio.gather(*(one(link) for link in links))
    return lat


@dataclass
class Phase:
    """One measured phase: `count` things in `seconds`, latencies, both sides' CPU share."""

    name: str
    count: int
    seconds: float
    lat: list[float]
    lat_of: str
    server_cpu: float = math.nan
    client_cpu: float = math.nan

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else math.nan

    def p(self, q: float) -> float:
        return percentile(self.lat, q)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


async def measure(child: Child, name: str, lat_of: str,
                  work: Awaitable[tuple[int, list[float]]]) -> Phase:
    """Run `work` (it returns the count and the latencies) and time it."""
    s0, c0, t0 = child.cpu(), time.process_time(), time.perf_counter()
    count, lat = await work
    seconds = time.perf_counter() - t0
    return Phase(name, count, seconds, lat, lat_of, (child.cpu() - s0) / seconds,
                 (time.process_time() - c0) / seconds)  # fmt: skip


@dataclass
class Report:
    """One run's phases (those compared with the baseline also by name), checks and RSS."""

    phases: list[Phase]
    checks: list[str]
    failures: list[str]
    rss: dict[str, int]
    compared: dict[str, Phase] = field(default_factory=dict)  # "PNG", "MSG"


async def close_all(links: Iterable[Link | None], conns: Iterable[Connection],
                    child: Child) -> None:
    """Stop reading, stop the child (so it does not write to connections going away), then
    drop the client connections."""
    tasks = [link.task for link in links if link is not None]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(child.close)
    for conn in conns:
        conn.writer.transport.abort()


# --- the reference-server run ---------------------------------------------------------------


def fl_from_syn(lines: Sequence[list[str]], dialect: int) -> set[str]:
    """The forward list a SYN answer lists (counted form up to MSNP7, the burst from MSNP8)."""
    out = set()
    for w in lines:
        if w[0] != "LST":
            continue
        if dialect < 8 and len(w) >= 7 and w[2] == "FL" and w[4] != "0":
            out.add(w[6])
        elif dialect >= 8 and len(w) >= 4 and w[3].isdigit() and int(w[3]) & 1:
            out.add(w[1])
    return out


def check_presence(users: Sequence[User], cmds: frozenset[str], status: str) -> list[str]:
    """Each watcher heard exactly one `cmds` frame with `status` per forward-list contact."""
    bad = []
    for u in users:
        got = sorted(who for cmd, st, who in u.presence if cmd in cmds and st == status)
        if len(u.presence) != len(u.fl) or got != sorted(u.fl):
            extra = len(u.presence) - len(got)
            bad.append(f"{u.email}: {len(got)} right presence frames of {len(u.fl)} expected, "
                       f"{extra} others")  # fmt: skip
        u.presence.clear()
    return bad


def first(items: list[str], n: int = 5) -> list[str]:
    return items[:n] + ([f"... and {len(items) - n} more"] if len(items) > n else [])


async def login(u: User, child: Child, dialect: int, tally: Tally) -> None:
    """VER, INF or CVR, USR I, USR S (MD5, or TWN with a ticket from the nexus)."""
    conn = await Connection.open(HOST, child.ports["ns"], f"NS {u.email}")
    u.link = link = Link(conn, u.on_frame(tally))
    auth = "MD5" if dialect <= 7 else "TWN"
    r, _ = await link.call("VER", f"MSNP{dialect}", "CVR0", expect=frozenset({"VER"}))
    if r.words[2:3] != [f"MSNP{dialect}"]:
        raise BenchError(f"{u.email}: VER answered {r.line}")
    if dialect <= 7:
        await link.call("INF", expect=frozenset({"INF"}))
    else:
        await link.call("CVR", *CVR_ARGS, u.email, expect=frozenset({"CVR"}))
    r, _ = await link.call("USR", auth, "I", u.email, expect=frozenset({"USR"}))
    if r.words[2:4] != [auth, "S"] or len(r.words) < 5:
        raise BenchError(f"{u.email}: USR I answered {r.line}")
    if dialect <= 7:
        answer = hashlib.md5((r.words[4] + password(u.index)).encode()).hexdigest()
    else:
        assert child.nexus is not None
        answer = await fetch_ticket(child.nexus, u.email, password(u.index), r.words[4])
    r, _ = await link.call("USR", auth, "S", answer, expect=frozenset({"USR"}))
    if r.words[2:3] != ["OK"]:
        raise BenchError(f"{u.email}: login refused: {r.line}")


async def run_server(args: argparse.Namespace, child: Child) -> Report:
    dialect = 8 if args.twn else 7
    graph = contact_graph(args.clients, args.contacts, args.seed)
    users = [User(i, email(i), frozenset(email(j) for j in fl)) for i, fl in enumerate(graph)]
    rss = {"idle": child.status("VmRSS")}
    phases: list[Phase] = []
    compared: dict[str, Phase] = {}
    checks: list[str] = []
    failures: list[str] = []
    tally = Tally()
    t = args.timeout
    sides: list[Side] = []
    loop = asyncio.get_running_loop()

    def ns_links() -> list[Link]:
        return [u.link for u in users if u.link is not None]

    try:
        # --- login --------------------------------------------------------------------------
        gate = asyncio.Semaphore(args.concurrency)

        async def one_login(u: User, lat: list[float]) -> None:
            async with gate:
                t0 = time.perf_counter()
                try:
                    await login(u, child, dialect, tally)
                except (ClientError, OSError) as e:
                    raise BenchError(f"login of {u.email} failed: {e!r}") from e
                lat.append(time.perf_counter() - t0)

        async def logins() -> tuple[int, list[float]]:
            lat: list[float] = []
            await asyncio.gather(*(one_login(u, lat) for u in users))
            return len(users), lat

        how = "TWN, HTTP nexus" if args.twn else "MD5"
        phases.append(await measure(child, f"login (MSNP{dialect} {how})", "login",
                                    within(t, "logins", ns_links, logins())))  # fmt: skip
        rss["logged in"] = child.status("VmRSS")

        # --- SYN --------------------------------------------------------------------------
        async def one_sync(u: User, lat: list[float]) -> None:
            u.syn_done = loop.create_future()
            t0 = time.perf_counter()
            u.ns.write("SYN", "0")
            await u.ns.conn.drain()
            await u.syn_done
            lat.append(time.perf_counter() - t0)
            if fl_from_syn(u.syn, dialect) != u.fl:
                failures.append(f"{u.email}: SYN lists another forward list")

        async def syncs() -> tuple[int, list[float]]:
            lat: list[float] = []
            await asyncio.gather(*(one_sync(u, lat) for u in users))
            return len(users), lat

        phases.append(await measure(child, "SYN (whole lists)", "SYN",
                                    within(t, "SYN", ns_links, syncs())))  # fmt: skip
        checks.append(f"SYN: {len(users):,} forward lists as written")

        # --- presence ---------------------------------------------------------------------
        status_tail = ("0",) if dialect >= 8 else ()

        async def change(status: str) -> tuple[int, list[float]]:
            tally.reset(sum(len(u.fl) for u in users))
            replies = await asyncio.gather(*(u.ns.call("CHG", status, *status_tail,
                                                       expect=frozenset({"CHG"}))
                                             for u in users))  # fmt: skip
            for u, (r, _) in zip(users, replies, strict=True):
                if r.words[0] != "CHG":
                    raise BenchError(f"{u.email}: CHG {status} answered {r.line}")
            await tally.event.wait()
            return tally.count, [dt for _, dt in replies]

        fanout = sum(len(u.fl) for u in users)
        for status, cmds, name in (("NLN", frozenset({"ILN", "NLN"}), "CHG NLN: ILN/NLN out"),
                                   ("AWY", frozenset({"NLN"}), "CHG AWY: NLN out")):
            phases.append(await measure(child, name, "CHG reply",
                                        within(t, f"CHG {status}", ns_links, change(status),
                                               tally)))  # fmt: skip
            bad = check_presence(users, cmds, status)
            failures += first(bad)
            if not bad:
                checks.append(f"CHG {status}: {fanout:,} presence frames, exactly one per "
                              f"watcher and contact")  # fmt: skip

        # --- PNG round trips under load -----------------------------------------------------
        async def pings() -> tuple[int, list[float]]:
            lat = await ping_all(ns_links(), args.pings)
            return len(lat), lat

        compared["PNG"] = await measure(child, f"PNG/QNG x{args.pings} per client",
                                        "PNG->QNG", within(t, "PNG", ns_links, pings()))
        phases.append(compared["PNG"])

        # --- switchboards (through the project's client) -------------------------------------
        order = list(users)
        random.Random(args.seed + 1).shuffle(order)
        pairs = [(order[i], order[i + 1]) for i in range(0, len(order) - 1, 2)]

        async def open_pair(a: User, b: User, lat: list[float]) -> None:
            t0 = time.perf_counter()
            r, _ = await a.ns.call("XFR", "SB", expect=frozenset({"XFR"}))
            if r.words[0] != "XFR" or len(r.words) < 6:
                raise BenchError(f"{a.email}: XFR SB answered {r.line}")
            try:
                sb = await Connection.open(*split_address(r.words[3]), f"SB {a.email}", t)
                u = await sb.call("USR", a.email, r.words[5], timeout=t)
                if u.cmd != "USR":
                    raise BenchError(f"{a.email}: switchboard USR answered {u.line}")
                caller = Chat(sb, a.email)

                async def callee() -> Chat:
                    rng = await b.rings.get()
                    if rng.words[5:6] != [a.email]:
                        raise BenchError(f"{b.email}: RNG from the wrong caller: {rng.line}")
                    return await NotificationClient(b.ns.conn, b.email, dialect).answer(rng, t)

                joi, answered = await asyncio.gather(caller.invite(b.email, t), callee())
            except (ClientError, OSError, TimeoutError) as e:
                raise BenchError(f"switchboard {a.email} -> {b.email}: {e!r}") from e
            if joi.cmd != "JOI" or joi.words[1:2] != [b.email]:
                raise BenchError(f"{a.email}: CAL {b.email} ended with {joi.line}")
            lat.append(time.perf_counter() - t0)
            sides.extend((Side(a, b.email, caller.conn), Side(b, a.email, answered.conn)))

        async def boards() -> tuple[int, list[float]]:
            lat: list[float] = []
            await asyncio.gather(*(open_pair(a, b, lat) for a, b in pairs))
            return len(pairs), lat

        phases.append(await measure(child, "switchboards (XFR SB..JOI)", "XFR..JOI",
                                    within(t, "switchboards", ns_links, boards())))
        checks.append(f"switchboards: {len(pairs):,} pairs joined (RNG from the right caller)")

        # --- messages, with PNG probes on some NS connections ---------------------------------
        delivery: list[float] = []
        for s in sides:
            s.link = Link(s.conn, s.on_frame(tally, delivery))
        probe_lat: list[float] = []

        async def probe(u: User, done: asyncio.Event) -> None:
            while not done.is_set():
                probe_lat.append(await u.ns.ping())
                await asyncio.sleep(args.probe_gap)

        def sb_links() -> list[Link]:
            return [s.link for s in sides if s.link is not None]

        async def messages() -> tuple[int, list[float]]:
            tally.reset(len(sides) * args.messages)
            acks: list[float] = []
            problems: list[str] = []
            done = asyncio.Event()
            probers = [asyncio.create_task(probe(u, done))
                       for u in random.Random(args.seed + 2).sample(users, args.probes)]
            try:
                await asyncio.gather(*(send_messages(link, args.messages, args.window, "ACK",
                                                     acks, problems) for link in sb_links()))
                await tally.event.wait()
            finally:
                done.set()
                await asyncio.gather(*probers, return_exceptions=True)
            failures.extend(first(problems))
            return tally.count, acks

        compared["MSG"] = last = await measure(
            child, f"MSG A->ACK ({args.messages} per sender)", "MSG->ACK",
            within(t, "messages", sb_links, messages(), tally))  # fmt: skip
        phases.append(last)
        phases.append(Phase("  the same, delivered", last.count, last.seconds, delivery,
                            "send->peer"))  # fmt: skip
        phases.append(Phase(f"  PNG during MSG ({args.probes} clients)", len(probe_lat),
                            last.seconds, probe_lat, "PNG->QNG"))  # fmt: skip
        bad_seq = [p for s in sides for p in s.problems]
        short = [f"{s.user.email} got {s.next_seq} of {args.messages} from {s.peer}"
                 for s in sides if s.next_seq != args.messages]  # fmt: skip
        failures += first(bad_seq) + first(short)
        if not bad_seq and not short:
            checks.append(f"messages: {len(sides) * args.messages:,} delivered exactly once, in "
                          "order, per sender; all ACKed")  # fmt: skip

        # --- nothing else arrived -------------------------------------------------------------
        await asyncio.sleep(0.5)
        stray = [x for u in users for x in u.unexpected] + [
            f"NS {u.email}: {p}" for u in users for p in u.presence]
        failures += first(stray)
        if not stray:
            checks.append("no unexpected frame on any connection")
        for link in [*ns_links(), *sb_links()]:
            if link.error is not None:
                failures.append(f"{link.conn.name}: connection failed: {link.error!r}")
        rss["peak"] = child.status("VmHWM")
    finally:
        conns = [*(s.conn for s in sides), *(u.link.conn for u in users if u.link)]
        await close_all([*(s.link for s in sides), *(u.link for u in users)], conns, child)
    return Report(phases, checks, failures, rss, compared)


# --- the echo baseline ------------------------------------------------------------------------


async def run_echo(args: argparse.Namespace, child: Child, count: int) -> Report:
    """The same pings and messages over `count` connections to the echo server."""
    t = args.timeout
    stray: list[str] = []
    gate = asyncio.Semaphore(args.concurrency)
    links: list[Link] = []

    async def connect(i: int) -> None:
        async with gate:
            conn = await Connection.open(HOST, child.ports["echo"], f"echo {i}", t)
            links.append(Link(conn, lambda r, w: stray.append(r.line), pong="PNG"))

    async def opens() -> tuple[int, list[float]]:
        await asyncio.gather(*(connect(i) for i in range(count)))
        return count, []

    async def pings() -> tuple[int, list[float]]:
        lat = await ping_all(links, args.pings)
        return len(lat), lat

    async def messages() -> tuple[int, list[float]]:
        acks: list[float] = []
        problems: list[str] = []
        await asyncio.gather(*(send_messages(link, args.messages, args.window, "MSG", acks,
                                             problems) for link in links))  # fmt: skip
        stray.extend(problems)
        return len(acks), acks

    try:
        phases = [await measure(child, "connect", "", within(t, "connect", list, opens()))]
        phases.append(await measure(child, f"PNG echo x{args.pings} per conn", "PNG->PNG",
                                    within(t, "PNG echo", lambda: links, pings())))
        phases.append(await measure(child, f"MSG echo ({args.messages} per conn)", "MSG->MSG",
                                    within(t, "MSG echo", lambda: links, messages())))
        rss = {"peak": child.status("VmHWM")}
    finally:
        await close_all(links, [link.conn for link in links], child)
    return Report(phases, [], first(stray), rss, {"PNG": phases[1], "MSG": phases[2]})


# --- printing -----------------------------------------------------------------------------


def show(phases: Iterable[Phase]) -> None:
    print(f"  {'phase':<34} {'count':>9} {'time':>8} {'rate/s':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8}  {'latency of':<11} CPU server/clients")  # fmt: skip
    for p in phases:
        cpu = ("" if math.isnan(p.server_cpu)
               else f"{p.server_cpu:4.0%} / {p.client_cpu:4.0%}")  # fmt: skip
        lat = (f"{p.p(0.5) * 1e3:8.2f} {p.p(0.99) * 1e3:8.2f}" if p.lat
               else f"{'':>8} {'':>8}")  # fmt: skip
        print(f"  {p.name:<34} {p.count:>9,} {p.seconds:>6.2f} s {p.rate:>10,.0f} {lat}  "
              f"{p.lat_of:<11} {cpu}")  # fmt: skip


def ratio_line(name: str, ours: Phase, base: Phase) -> str:
    return (f"  {name:<10} rate {ours.rate / base.rate:5.2f}x echo   "
            f"p50 {ours.p(0.5) / base.p(0.5):5.2f}x echo's   "
            f"p99 {ours.p(0.99) / base.p(0.99):5.2f}x echo's")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 100 clients, 1 run")
    ap.add_argument("--contacts", type=int, default=20, help="forward-list size per client")
    ap.add_argument("--messages", type=int, default=100, help="messages per sender (each way)")
    ap.add_argument("--window", type=int, default=1, help="unacknowledged MSGs per sender")
    ap.add_argument("--pings", type=int, default=50, help="PNG round trips per client")
    ap.add_argument("--probes", type=int, default=50,
                    help="clients that keep pinging during the message phase")
    ap.add_argument("--probe-gap", type=float, default=0.01, help=argparse.SUPPRESS)
    ap.add_argument("--concurrency", type=int, default=100, help="logins/connects at once")
    ap.add_argument("--twn", action="store_true",
                    help="MSNP8 TWN logins through the HTTP nexus instead of MSNP7 MD5")
    ap.add_argument("--repeat", type=int, default=3, help="runs (median per phase)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per phase")
    ap.add_argument("--serve", choices=("msnp", "echo"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.clients, args.repeat = 100, 1
    if min(args.clients - 1, args.messages, args.window, args.pings, args.repeat) < 1:
        ap.error("need at least 2 clients, 1 message, a window of 1, 1 ping and 1 run")
    args.probes = min(args.probes, args.clients)
    try:
        raise_nofile(2 * args.clients + 256)
        if args.serve:
            asyncio.run(serve(args.serve, args))
            return 0
        return bench(args)
    except BenchError as e:
        print(f"bench_server: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_server: interrupted", file=sys.stderr)
        return 130


def median(runs: Sequence[Report]) -> Report:
    """Per phase, the run with the median rate; every run's checks must hold; largest RSS."""

    def pick(phases: Sequence[Phase]) -> Phase:
        return sorted(phases, key=lambda p: p.rate)[len(phases) // 2]

    first_run = runs[0]
    return Report(
        [pick([r.phases[i] for r in runs]) for i in range(len(first_run.phases))],
        first_run.checks if all(r.checks == first_run.checks for r in runs) else [],
        [f"run {n}: {x}" if len(runs) > 1 else x
         for n, r in enumerate(runs, 1) for x in r.failures],
        {k: max(r.rss[k] for r in runs) for k in first_run.rss},
        {k: pick([r.compared[k] for r in runs]) for k in first_run.compared},
    )  # fmt: skip


def bench(args: argparse.Namespace) -> int:
    pairs = args.clients // 2
    print(f"== reference server: {args.clients:,} clients, {args.contacts} contacts each, "
          f"{pairs:,} switchboard pairs x {args.messages} messages each way, window "
          f"{args.window}; server and clients in separate processes, {os.cpu_count()} CPUs; "
          f"median of {args.repeat} run(s) per phase")  # fmt: skip
    ours_runs: list[Report] = []
    base_runs: list[Report] = []
    for _ in range(args.repeat):  # alternated, so both see the same machine
        with Child("msnp", args) as child:
            ours_runs.append(asyncio.run(run_server(args, child)))
        with Child("echo", args) as child:
            base_runs.append(asyncio.run(run_echo(args, child, 2 * pairs)))
    ours, base = median(ours_runs), median(base_runs)
    show(ours.phases)
    print(f"\n== baseline: asyncio echo server, same client code, {2 * pairs:,} connections")
    show(base.phases)
    print("\n== server vs. echo (rate: higher is better; latency: lower is better)")
    print(ratio_line("PNG/QNG", ours.compared["PNG"], base.compared["PNG"]))
    print(ratio_line("MSG/ACK", ours.compared["MSG"], base.compared["MSG"]))
    r = ours.rss
    per_client = (r["logged in"] - r["idle"]) / args.clients / 1024
    print(f"\n== server RSS: {r['idle'] / MIB:.1f} MiB idle ({args.clients:,} accounts, "
          f"{args.clients * args.contacts:,} FL entries), {r['logged in'] / MIB:.1f} MiB "
          f"logged in ({per_client:.1f} KiB per login), peak {r['peak'] / MIB:.1f} MiB; "
          f"echo server peak {base.rss['peak'] / MIB:.1f} MiB")  # fmt: skip
    for line in ours.checks:
        print(f"  check ok: {line}")
    failures = ours.failures + [f"echo: {x}" for x in base.failures]
    for line in failures:
        print(f"  CHECK FAILED: {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
