"""One capture file read by several processes, with output identical to a single process.

Theory of operation
-------------------
Every worker reads the whole file but keeps only the connections of its share
(`partition_key % jobs`, the same for both directions), runs the ordinary capture session
over them and renders each frame record (text or JSON) without its frame number. A record
is keyed by (the packet whose arrival completed it, its phase, its flow id): within a worker
the keys only grow, and a single process emits records in exactly that order, because each
packet belongs to one connection, the reassembly waits a packet's capture time ends release
their frames before the packet's own (phase 0 before 1; see `Position`), in the order the
connections opened, and the frames flushed at the end come out by flow id (a flow's id is the
packet that opened it). The parent merges the workers' sorted streams on that key and
numbers the frames, so `-j N` prints what `-j 1` prints.

Pairing (a reply's request, a request's replies) is computed in the worker, which knows only
its own frame numbers; the parent renumbers them. A reply names an earlier request, already
numbered; a request names replies that follow it in the same worker's stream, so the parent
holds a request's line until those have been numbered (a few lines at most).

Workers send batches through pipes; a worker whose pipe is full waits, so memory stays
bounded however far one worker runs ahead. Errors and notes about the file come once per
worker and are reported once.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from msnsniff.capture import SourceNote
from msnsniff.errors import MsnsniffError
from msnsniff.output import capture_key, pairing_jsonl_bytes, utf8_sink
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.paired import Pairing, new_pairing
from msnsniff.session.pairing import MAX_HELD

if TYPE_CHECKING:  # ForkContext does not exist on Windows
    from multiprocessing.context import ForkContext, SpawnContext

BATCH: Final = 2048
"""Rendered lines per message. Three processes share two cores here, so each message costs
a wake-up: `read -T jsonl` on the 1M benchmark capture took a median 12.7 s and 11.5 s with
512 lines, 11.0 s and 10.4 s with 2,048 (four alternating runs each, twice; 128 lines:
13.8 s). 8,192 lines were no faster and raised peak RSS from 52 to 75 MiB."""
WRITE_LINES: Final = 256  # JSON Lines the parent gathers into one write
QUIET_RECORDS: Final = 50_000  # send an empty progress message at least this often

# (merge key: (the record that completed the frame << 1 | its phase) << FLOW_BITS | its flow
# id, local frame number,
# rendered frame without number and pairing (None when the display filter hides it: the parent
# still counts it), pairing as (request, replies, rtt) in the worker's own frame numbers, or
# None)
WorkerPairing = tuple[int | None, tuple[int, ...] | None, float | None]
Item = tuple[int, int, str | bytes | None, WorkerPairing | None]
FLOW_BITS: Final = 40  # flow ids are record numbers
REQUESTS_REMEMBERED: Final = 1 << 16  # per worker: request frames a later reply may name


@dataclass(slots=True)
class WorkerSummary:
    """What a worker reports when it is done."""

    frames: int = 0
    undissected_bytes: int = 0
    undissected_flows: int = 0
    notes: list[SourceNote] = field(default_factory=list)
    error: str | None = None
    peak_rss: int = 0  # bytes


@dataclass(slots=True)
class ReadResult:
    """The merged outcome of a parallel read."""

    frames: int
    notes: list[SourceNote]
    error: str | None
    peak_rss: list[int]  # per worker, bytes
    undissected: tuple[int, int] = (0, 0)  # connections and bytes no dissector recognised


def widen_pipe(conn: Connection) -> None:
    """Give a pipe a 1 MiB buffer where the system allows it (Linux, where it is 64 KiB by
    default): a worker then writes a message in one go instead of waiting for the reader
    every 64 KiB. On the 1M benchmark capture, four alternating runs each: `read -T jsonl`
    took a median 10.0 s against 10.5 s, `expert` 6.55 s against 6.77 s."""
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is not None:
        with contextlib.suppress(OSError):  # over the system's limit: the default stays
            fcntl.fcntl(conn.fileno(), setsize, 1 << 20)


def _renderer(fmt: str, redact: bool) -> Callable[[FrameRecord], str | bytes] | None:
    """A record's line without its frame number and pairing (the parent adds both): UTF-8
    bytes for JSON Lines, text for text."""
    from msnsniff.output import frame_jsonl_bytes, frame_text

    if fmt == "jsonl":

        def jsonl(record: FrameRecord) -> bytes:
            return frame_jsonl_bytes(record, redact=redact)  # from ',"ts":' on

        return jsonl
    if fmt == "text":

        def text(record: FrameRecord) -> str:
            return frame_text(record, redact=redact).lstrip(" ").split(" ", 1)[1]

        return text
    return None


def _finish_line(fmt: str, no: int, rest: str | bytes, pairing: Pairing | None) -> str:
    from msnsniff.output import pairing_jsonl, pairing_text

    if isinstance(rest, bytes):
        return f'{{"no":{no}{rest.decode()}{pairing_jsonl(pairing)}'
    return f"{no:>6} {rest}{pairing_text(pairing)}"


def _work(
    path: str,
    kind: str,
    share: int,
    jobs: int,
    fmt: str,
    redact: bool,
    decode_as: Mapping[str, str],
    display: str | None,
    conn: Connection,
) -> None:
    """A worker: one share of the file's connections, paired, rendered, sent in key order."""
    from msnsniff.capture.pcap import Position, read_pcap, read_pcapng
    from msnsniff.collector import batch_collector
    from msnsniff.registry import load_dissectors
    from msnsniff.session.analysis import Analysis
    from msnsniff.session.capture_session import CaptureSession
    from msnsniff.session.filter import compile_filter
    from msnsniff.session.pairing import PairingView

    summary = WorkerSummary()
    position = Position()
    reader = read_pcap if kind == "pcap" else read_pcapng
    session = CaptureSession(load_dissectors(), decode_as=decode_as)
    render = _renderer(fmt, redact)
    # frames only (-T none): nothing is printed, so nothing needs pairing
    analysis = Analysis(session, keep_findings=False)
    view = PairingView(analysis) if render is not None else None
    shown = None if display is None else compile_filter(display)
    keys: dict[int, int] = {}  # held frame -> the record that completed it

    def line(r: FrameRecord, pairing: Pairing | None) -> Item:
        assert render is not None
        p = None if pairing is None else (pairing.request, pairing.replies, pairing.rtt)
        visible = shown is None or shown.matches(r, None if pairing is None else pairing.extra())
        # a gateway session's logical flow (`12/gw1`) sorts with the flow that carried it
        key = keys.pop(r.no) << FLOW_BITS | int(r.flow.id.partition("/")[0])
        return key, r.no, render(r) if visible else None, p
    batch: list[Item] = []
    last_sent = 0

    def collect(records: list[FrameRecord]) -> None:
        if view is None:
            return
        record_no = position.record << 1 | position.phase  # (see Position)
        for r in records:
            keys[r.no] = record_no
        batch.extend(line(r, pairing) for r, pairing in view.add(records))

    try:
        with batch_collector():  # the parent's: inherited when forked, not when spawned
            for event in reader(path, partition=(share, jobs), position=position):
                records = analysis.push(event)
                if records:
                    collect(records)
                if len(batch) >= BATCH or position.record - last_sent >= QUIET_RECORDS:
                    conn.send(batch)
                    batch, last_sent = [], position.record
            collect(analysis.finish())
            if view is not None:
                batch.extend(line(r, pairing) for r, pairing in view.flush())
    except MsnsniffError as exc:
        summary.error = str(exc)
    conn.send(batch)
    summary.frames = session.frames
    summary.undissected_bytes = session.undissected_bytes
    summary.undissected_flows = session.undissected_flows
    summary.notes = session.notes
    summary.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send(summary)
    conn.close()


def _fetcher(
    conns: list[Connection], done: list[WorkerSummary]
) -> Callable[[int], list[Item] | None]:
    """A worker's next non-empty batch (None once it has sent its summary, kept in `done`)."""

    def fetch(worker: int) -> list[Item] | None:
        while True:
            message = conns[worker].recv()
            if isinstance(message, WorkerSummary):
                done.append(message)
                return None
            if message:
                batch: list[Item] = message
                return batch

    return fetch


def _runs(
    fetch: Callable[[int], list[Item] | None], jobs: int
) -> Iterator[tuple[int, list[Item], int, int]]:
    """The workers' items in key order, as runs `(worker, batch, start, end)`: the items
    `batch[start:end]` of one worker that come next. Each worker's keys ascend and keys are
    unique across workers (a flow belongs to one), so a run goes on while its keys stay below
    every other worker's next key. Merging whole runs of a batch, rather than item by item
    through a heap of per-item generators, took the parent's instructions on the 100k
    benchmark capture (`read -T jsonl`) from 1.59 G to 1.32 G after start-up."""
    batches = [fetch(worker) for worker in range(jobs)]
    at = [0] * jobs
    while True:
        worker = -1
        best = 0
        for i in range(jobs):
            batch = batches[i]
            if batch is not None:
                key = batch[at[i]][0]
                if worker < 0 or key < best:
                    worker, best = i, key
        if worker < 0:
            return
        limit = -1  # the smallest other worker's next key (-1: no other worker left)
        for i in range(jobs):
            other = batches[i]
            if i != worker and other is not None:
                key = other[at[i]][0]
                if limit < 0 or key < limit:
                    limit = key
        mine = batches[worker]
        assert mine is not None
        start = end = at[worker]
        n = len(mine)
        if limit < 0:
            end = n
        else:
            while end < n and mine[end][0] < limit:
                end += 1
        yield worker, mine, start, end
        if end < n:
            at[worker] = end
        else:
            batches[worker] = fetch(worker)
            at[worker] = 0


class _Numbers:
    """The global numbers of one worker's last `limit` request frames, by local number.

    Local numbers only grow, so two arrays searched by bisection hold them: 16 bytes a
    request instead of a dict entry and two int objects (about 100), which kept the parent's
    memory growing with the capture until the limit was reached."""

    __slots__ = ("_globals", "_limit", "_locals", "_start")

    def __init__(self, limit: int) -> None:
        self._locals = array("q")
        self._globals = array("q")
        self._start = 0  # entries before it are forgotten
        self._limit = limit

    def add(self, local: int, no: int) -> None:
        self._locals.append(local)
        self._globals.append(no)
        if len(self._locals) - self._start > self._limit:
            self._start += 1
            if self._start >= self._limit:  # drop the forgotten half at once
                del self._locals[: self._start]
                del self._globals[: self._start]
                self._start = 0

    def get(self, local: int) -> int | None:
        locals_ = self._locals
        i = bisect_left(locals_, local, self._start)
        return self._globals[i] if i < len(locals_) and locals_[i] == local else None


class _Renumber:
    """Turns the workers' own frame numbers in pairings into global ones, holding a request
    until the replies it names have been numbered (they follow it in its worker's stream).

    Like the single-process `PairingView`, at most `MAX_HELD` lines wait: past that the oldest
    request goes out with the replies numbered so far (none known: null, as there). A reply's
    number is kept only while a waiting request may still name it."""

    def __init__(self, jobs: int) -> None:
        self.requests = [_Numbers(REQUESTS_REMEMBERED) for _ in range(jobs)]  # local -> global
        self.replies: list[dict[int, int]] = [{} for _ in range(jobs)]
        self.reply_order: deque[tuple[int, int, int]] = deque()  # (global, worker, local)
        self.queue: deque[tuple[int, str | bytes | None, int, tuple[Any, ...] | None]] = deque()

    def add(
        self,
        no: int,
        worker: int,
        local: int,
        rest: str | bytes | None,
        pairing: tuple[Any, ...] | None,
    ) -> None:
        if pairing is not None:
            request, replies, _rtt = pairing
            if replies is not None:
                self.requests[worker].add(local, no)
            elif request is not None:
                self.replies[worker][local] = no
                self.reply_order.append((no, worker, local))
        self.queue.append((no, rest, worker, pairing))

    def ready(self, final: bool) -> Iterator[tuple[int, str | bytes | None, Pairing | None]]:
        queue = self.queue
        while queue:
            no, rest, worker, pairing = queue[0]
            if pairing is None:
                queue.popleft()
                yield no, rest, None
                continue
            request, replies, rtt = pairing
            if replies is not None:
                mapped = self.replies[worker]
                early = len(queue) > MAX_HELD
                # a worker's replies arrive in order: the last one numbered means all are
                if not (final or early) and replies and replies[-1] not in mapped:
                    break
                known = tuple(mapped[r] for r in replies if r in mapped)
                queue.popleft()
                if early and not known and replies:  # out before any reply: nothing known yet
                    yield no, rest, new_pairing(None, None, None)
                else:
                    yield no, rest, new_pairing(None, known, rtt)
            else:
                queue.popleft()
                found = None if request is None else self.requests[worker].get(request)
                yield no, rest, new_pairing(found, None, rtt)
        head = queue[0][0] if queue else None
        order = self.reply_order
        while order and (head is None or order[0][0] < head):  # no waiting request names it
            _no, worker, local = order.popleft()
            self.replies[worker].pop(local, None)


def read_parallel(
    path: Path,
    kind: str,
    jobs: int,
    *,
    fmt: str,
    redact: bool,
    decode_as: Mapping[str, str],
    out: TextIO,
    display: str | None = None,
    capture: str | None = None,
) -> ReadResult:
    """Dissect a pcap or pcapng file with `jobs` processes and print its frames in order
    (each JSON line naming `capture` first, when given)."""
    ctx: SpawnContext | ForkContext = (
        multiprocessing.get_context("fork")  # fast start on POSIX: the code is loaded already
        if "fork" in multiprocessing.get_all_start_methods()
        else multiprocessing.get_context("spawn")
    )
    pipes = [ctx.Pipe(duplex=False) for _ in range(jobs)]
    for recv, _send in pipes:
        widen_pipe(recv)
    procs = [
        ctx.Process(
            target=_work,
            args=(str(path), kind, share, jobs, fmt, redact, dict(decode_as), display, send),
            daemon=True,
        )
        for share, (_recv, send) in enumerate(pipes)
    ]
    for proc in procs:
        proc.start()
    for _recv, send in pipes:
        send.close()  # the parent only reads: a dead worker then shows as EOF
    done: list[WorkerSummary] = []
    no = 0
    write = out.write
    sink = utf8_sink(out) if fmt == "jsonl" else None
    renumber = _Renumber(jobs)
    queue, add, ready = renumber.queue, renumber.add, renumber.ready
    requests = renumber.requests

    parts: list[bytes] = []  # JSON Lines waiting to be written together
    key = capture_key(capture)
    head = key.encode()

    def put(line_no: int, line: str | bytes, paired: Pairing | None) -> None:
        if sink is not None and isinstance(line, bytes):
            parts.append(b'{%s"no":%d%s%s\n' % (head, line_no, line, pairing_jsonl_bytes(paired)))
            if len(parts) >= WRITE_LINES:
                flush()
        else:
            if parts:  # gathered lines first, so the order holds
                flush()
            text = _finish_line(fmt, line_no, line, paired)
            write(("{" + key + text[1:] if key and isinstance(line, bytes) else text) + "\n")

    def flush() -> None:
        if parts and sink is not None:
            data = b"".join(parts)
            parts.clear()  # written once, even if the write fails (a closed pipe)
            sink(data)

    try:
        for worker, batch, start, end in _runs(_fetcher([r for r, _s in pipes], done), jobs):
            for j in range(start, end):
                _key, local, rest, pairing = batch[j]
                no += 1
                if not queue and (pairing is None or pairing[1] is None):
                    # nothing waits and this is no request: out at once (what `ready` would do)
                    if rest is not None:
                        if pairing is None:
                            put(no, rest, None)
                        else:
                            request, _replies, rtt = pairing
                            found = None if request is None else requests[worker].get(request)
                            put(no, rest, new_pairing(found, None, rtt))
                    continue
                add(no, worker, local, rest, pairing)
                for line_no, line, paired in ready(False):
                    if line is not None:
                        put(line_no, line, paired)
        for line_no, line, paired in ready(True):
            if line is not None:
                put(line_no, line, paired)
    except EOFError as exc:
        raise MsnsniffError(f"{path}: a worker process died") from exc
    finally:
        try:
            flush()  # what came before any failure is written all the same
        finally:
            for proc in procs:
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.terminate()
    notes: list[SourceNote] = []
    for summary in done:
        for note in summary.notes:
            if note not in notes:
                notes.append(note)
    errors = {s.error for s in done if s.error is not None}
    return ReadResult(
        frames=sum(s.frames for s in done),
        notes=notes,
        error=min(errors) if errors else None,
        peak_rss=[s.peak_rss for s in done],
        undissected=(sum(s.undissected_flows for s in done),
                     sum(s.undissected_bytes for s in done)),
    )
