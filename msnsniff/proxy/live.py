"""The proxy's live analysis, in a child process so that forwarding never waits for it.

The relay (parent) sends every event through a pipe to `python -m msnsniff.proxy.live`,
which turns them into the capture events `msnsniff read` uses (`StreamChunk`, `Gap`,
`FlowEnd`), runs the full analysis on them and prints frames to stdout (text or JSON Lines,
`-Y` filtered, `--redact`ed) and the proxy's notes (rewrites, refused upstreams, script
actions) and expert findings to stderr, as they happen. The pipe is bounded: when the child
falls behind by more than `MAX_BACKLOG` bytes, the parent drops the copy (never the
forwarded bytes) and sends a `Gap` as soon as the pipe has room for it (it tries every
`GAP_RETRY` seconds, and before the next data or the end in that direction), so the analysis
says exactly what it missed when it missed it, not when that connection next says something.

Message format: a header `!BIBdI` (type, connection, direction, timestamp, length) and
`length` bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import sys
import time
from collections.abc import Iterator
from typing import IO, BinaryIO, Final, TextIO

from dissectors.api import Direction

HEADER: Final = struct.Struct("!BIBdI")
OPEN, DATA, END, CLOSED, NOTE, GAP = range(1, 7)
MAX_BACKLOG: Final = 8 << 20
CONTROL_ROOM: Final = 1 << 20
"""Bytes over `MAX_BACKLOG` kept for the small messages the analysis cannot do without
(a connection's opening and end, the proxy's notes, the gap before an end): dropping one
made the analysis ignore a connection for good, or never end it."""
PIPE_SIZE: Final = 1 << 20  # the pipe to the child: fewer, larger writes (Linux; else default)
GAP_RETRY: Final = 0.05  # seconds between tries to announce dropped bytes
FLUSH_DELAY: Final = 0.005  # seconds: the live output lags by at most this much more
CLOSE_WAIT: Final = 3.0
"""Seconds the child may take to finish its output once the proxy stops; after that its
output is not being read (`msnsniff proxy | sleep 60`) and it is ended, so a stop is never
held up by a reader that does not read."""
PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h
_DIRS: Final = {0: Direction.C2S, 1: Direction.S2C}


def _dir_code(direction: Direction) -> int:
    return 0 if direction is Direction.C2S else 1


class AnalysisTap:
    """The parent's end: sends tap events to the analysis child, bounded."""

    def __init__(self, proc: asyncio.subprocess.Process, err: IO[bytes] | None = None) -> None:
        self.proc = proc
        self.dropped: dict[tuple[int, int], int] = {}
        self.dropped_total = 0
        self.cut_short = False  # the child was ended before it finished its output
        # how the child ended when nobody asked it to (killed, crashed): from then on the
        # proxy's notes are written here (`err`, else our stderr), as nothing else prints them
        self.died: str | None = None
        self._err = err
        self._closing = False
        self._watch = asyncio.ensure_future(self._watch_child())
        self._batch: list[bytes] = []  # messages written together every FLUSH_DELAY seconds
        self._batched = 0  # their bytes
        self._flush: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None  # announcing the gaps in `dropped`
        stdin = proc.stdin
        pipe = None if stdin is None else stdin.transport.get_extra_info("pipe")
        # not POSIX (no fcntl), not Linux (no F_SETPIPE_SZ), or over the system's
        # /proc/sys/fs/pipe-max-size: the default size stays
        with contextlib.suppress(ImportError, AttributeError, OSError):
            import fcntl

            if pipe is not None:
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)

    @classmethod
    async def start(cls, args: list[str], stdout: IO[bytes] | None = None,
                    stderr: IO[bytes] | None = None) -> AnalysisTap:
        """Start the child; its output goes to ours unless files are given."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "msnsniff.proxy.live", "--parent", str(os.getpid()), *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=stdout, stderr=stderr,
        )
        return cls(proc, stderr)

    async def _watch_child(self) -> None:
        """Say at once when the child ends on its own: its frames, findings and the proxy's
        notes would otherwise stop without a word, and the bytes it then misses be blamed
        on it falling behind."""
        code = await self.proc.wait()
        if self._closing:
            return
        self.died = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        self._say(f"msnsniff proxy: the analysis ended ({self.died}): frames and findings are "
                  "no longer printed; the traffic is still forwarded, and the proxy's notes "
                  "follow here")  # fmt: skip

    def _say(self, text: str) -> None:
        """A line on the proxy's stderr (or the analysis's `err` file), never raising."""
        with contextlib.suppress(OSError, ValueError):
            if self._err is not None:
                self._err.write(text.encode("utf-8", "replace") + b"\n")
                self._err.flush()
            else:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()

    def _send(self, kind: int, conn: int, direction: int, data: bytes,
              room: int = MAX_BACKLOG) -> bool:
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            return False
        if stdin.transport.get_write_buffer_size() + self._batched > room:
            return False
        self._batch.append(HEADER.pack(kind, conn, direction, time.time(), len(data)))
        self._batch.append(data)
        self._batched += HEADER.size + len(data)
        if self._flush is None:  # one pipe write (and one wake-up of the child) per batch
            self._flush = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._write)
        return True

    def _write(self) -> None:
        self._flush = None
        stdin = self.proc.stdin
        if self._batch and stdin is not None and not stdin.is_closing():
            stdin.write(b"".join(self._batch))
        self._batch.clear()
        self._batched = 0

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None:
        self._send(OPEN, conn, 0, "\0".join((label, client, server, kind)).encode(),
                   MAX_BACKLOG + CONTROL_ROOM)

    def data(self, conn: int, direction: Direction, data: bytes) -> None:
        key = (conn, _dir_code(direction))
        self._flush_gap(*key)
        if key in self.dropped or not self._send(DATA, conn, key[1], data):
            self.dropped[key] = self.dropped.get(key, 0) + len(data)
            self.dropped_total += len(data)
            if self._retry is None:
                self._retry = asyncio.get_running_loop().call_later(GAP_RETRY, self._announce)

    def _announce(self) -> None:
        """Send the gaps not sent yet; try again later while the pipe has no room."""
        self._retry = None
        for conn, code in list(self.dropped):
            self._flush_gap(conn, code)
        stdin = self.proc.stdin
        if self.dropped and stdin is not None and not stdin.is_closing():
            self._retry = asyncio.get_running_loop().call_later(GAP_RETRY, self._announce)

    def _flush_gap(self, conn: int, code: int, room: int = MAX_BACKLOG) -> None:
        """Report the bytes dropped on this direction, if the pipe has `room`."""
        lost = self.dropped.pop((conn, code), 0)
        if lost and not self._send(GAP, conn, code, struct.pack("!Q", lost), room):
            self.dropped[(conn, code)] = lost

    def ended(self, conn: int, direction: Direction, reason: str) -> None:
        room = MAX_BACKLOG + CONTROL_ROOM  # the gap goes before the end, whatever the backlog
        self._flush_gap(conn, _dir_code(direction), room)
        self._send(END, conn, _dir_code(direction), reason.encode(), room)

    def closed(self, conn: int) -> None:
        room = MAX_BACKLOG + CONTROL_ROOM
        for code in (0, 1):
            self._flush_gap(conn, code, room)
        self._send(CLOSED, conn, 0, b"", room)

    def note(self, conn: int | None, text: str) -> None:
        if self.died is not None:
            self._say(f"proxy: {_printable(text)}")
            return
        self._send(NOTE, conn or 0, 0, text.encode("utf-8", "replace"),
                   MAX_BACKLOG + CONTROL_ROOM)

    async def close(self) -> None:
        """Send what is batched and end the child's input; wait `CLOSE_WAIT` seconds for it
        to finish its output, then end it (`cut_short`) rather than wait on its reader."""
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._flush is not None:
            self._flush.cancel()
        self._write()
        stdin = self.proc.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), CLOSE_WAIT)
        except TimeoutError:
            self.cut_short = True
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), CLOSE_WAIT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        await self._watch  # it has seen the end, and says nothing of an end we asked for


# --- the child ---------------------------------------------------------------------------------


def _printable(text: str) -> str:
    """A note with its control characters escaped (`\\x1b`): notes quote what a server or
    client sent (an XFR's address, a script's frame), which must not drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _messages(fh: BinaryIO) -> Iterator[tuple[int, int, int, float, bytes]]:
    while True:
        head = fh.read(HEADER.size)
        if len(head) < HEADER.size:
            return
        kind, conn, direction, ts, length = HEADER.unpack(head)
        data = fh.read(length)
        if len(data) < length:
            return
        yield kind, conn, direction, ts, data


def _end_with_parent(parent: int) -> None:
    """Linux: have the kernel send SIGTERM when the proxy dies, even by SIGKILL; blocked on
    output nobody reads, the child would otherwise outlive it. Elsewhere nothing changes."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent and os.getppid() != parent:  # the proxy died before the request was made
        raise SystemExit(0)


def run_child(argv: list[str], inp: BinaryIO, out: TextIO, err: TextIO) -> int:
    """Read the parent's events until EOF; print frames, notes and findings as they come.

    The child lowers its own priority: on a machine with few cores it would otherwise take
    CPU from the forwarding process (the analysis may lag; the traffic must not). It ignores
    SIGINT and SIGHUP: Ctrl-C or a closed terminal reach the whole process group, and the
    stop is the proxy's to make (it ends our input, and gives us `CLOSE_WAIT` s to finish)."""
    import argparse
    import contextlib
    import os
    import signal

    with contextlib.suppress(OSError):
        os.nice(19)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):  # a closed terminal's hang-up, too: the proxy stops us
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    from msnsniff.capture import SourceEvent
    from msnsniff.cli import _discard_stdout, _printer
    from msnsniff.collector import batch_collector
    from msnsniff.proxy.tap import EventTap
    from msnsniff.registry import load_dissectors
    from msnsniff.reports import add_all_analyzers, finding_text
    from msnsniff.session.analysis import Analysis
    from msnsniff.session.capture_session import CaptureSession
    from msnsniff.session.filter import compile_filter
    from msnsniff.session.paired import Paired
    from msnsniff.session.pairing import PairingView

    parser = argparse.ArgumentParser(prog="msnsniff.proxy.live")
    parser.add_argument("--parent", type=int, default=0)
    parser.add_argument("-T", dest="format", default="text")
    parser.add_argument("-Y", dest="filter", default=None)
    parser.add_argument("--redact", action="store_true")
    args = parser.parse_args(argv)
    _end_with_parent(args.parent)
    emit = _printer(args.format, args.redact, out,
                    compile_filter(args.filter) if args.filter else None)  # fmt: skip
    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=True)
    view = PairingView(analysis, max_held=0)  # live: each frame printed as it comes
    add_all_analyzers(analysis, view.transactions)
    printing = True  # until the reader of our output goes away (`msnsniff proxy | head`)

    def closed_output() -> None:
        """Stop printing frames, quietly: the traffic goes on through the proxy, and the
        notes and findings on stderr still come."""
        nonlocal printing
        printing = False
        _discard_stdout(out)
        err.write("proxy: the output was closed; frames are no longer printed (the traffic "
                  "is still forwarded; notes and findings still come here)\n")

    def show(paired: Paired) -> None:
        if printing:
            try:
                emit(paired)
            except BrokenPipeError:
                closed_output()

    def flush() -> None:
        if printing:
            try:
                out.flush()
            except BrokenPipeError:
                closed_output()
        err.flush()

    def push(event: SourceEvent) -> None:
        for paired in view.add(analysis.push(event)):
            show(paired)
        for finding in analysis.take_findings():
            err.write(f"finding {finding_text(finding)}\n")
        flush()

    events = EventTap(push)
    with batch_collector():  # a long run of short-lived frames, as `msnsniff read`
        for kind, conn, code, ts, data in _messages(inp):
            direction = _DIRS.get(code, Direction.C2S)
            if kind == OPEN:
                label, client, server, role = data.decode().split("\0")
                events.opened(conn, label, client, server, role)
            elif kind == NOTE:
                err.write(f"proxy: {_printable(data.decode('utf-8', 'replace'))}\n")
                err.flush()
            elif kind == DATA:
                events.data(conn, direction, data, ts)
            elif kind == GAP:
                (length,) = struct.unpack("!Q", data)
                err.write(f"proxy: connection {conn}: the analysis fell behind; {length} bytes "
                          "not dissected (they were forwarded)\n")  # fmt: skip
                events.gap(conn, direction, length, ts)
            elif kind == END:
                events.ended(conn, direction, data.decode(), ts)
            elif kind == CLOSED:
                events.closed(conn, ts)
        for paired in view.add(analysis.finish()) + view.flush():
            show(paired)
        for finding in analysis.take_findings():
            err.write(f"finding {finding_text(finding)}\n")
    flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(run_child(sys.argv[1:], sys.stdin.buffer, sys.stdout, sys.stderr))
