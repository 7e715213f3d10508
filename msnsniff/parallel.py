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
leaves a slot for a request's pairing and holds its output from there until those have been
numbered (a few lines at most). Everything else the worker renders whole, pairing and all:
the parent's work for most lines is to pick the worker whose line comes next and put the
line's number in front of it.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import orjson

from msnsniff.capture import SourceNote
from msnsniff.errors import MsnsniffError
from msnsniff.output import capture_key, pairing_jsonl_bytes, pairing_text, utf8_sink
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.paired import Paired, Pairing
from msnsniff.session.pairing import MAX_HELD, new_pairing

if TYPE_CHECKING:  # ForkContext does not exist on Windows
    from multiprocessing.context import ForkContext, SpawnContext

BATCH: Final = 2048
"""Rendered lines per message. Three processes share two cores here, so each message costs
a wake-up: `read -T jsonl` on the 1M benchmark capture took a median 12.7 s and 11.5 s with
512 lines, 11.0 s and 10.4 s with 2,048 (four alternating runs each, twice; 128 lines:
13.8 s). 8,192 lines were no faster and raised peak RSS from 52 to 75 MiB."""
WRITE_PARTS: Final = 512  # numbers, renderings and pairings the parent gathers into one write
QUIET_RECORDS: Final = 50_000  # send an empty progress message at least this often

# A worker's batch, in the form the parent merges with the least work per line: the lines'
# merge keys, ascending ((the record that completed the frame << 1 | its phase) << FLOW_BITS |
# its flow id); the worker's own
# number of the first line (local numbers are consecutive: the pairing view releases the
# records in the order the session numbered them); each line's rendering without its number
# (empty when the display filter hides it: the parent still counts it; a rendering never is),
# ending with its pairing and newline when that needs no renumbering (most lines); the lines
# whose pairing names frame numbers (requests and replies), by index in the batch, as
# (request, replies, rtt, the JSON tail from `"rtt"` on) in the worker's own numbers.
WorkerPairing = tuple[int | None, tuple[int, ...] | None, float | None, bytes]
Batch = tuple[list[int], int, list[bytes], dict[int, WorkerPairing]]
FLOW_BITS: Final = 40  # flow ids are record numbers
REQUESTS_REMEMBERED: Final = 1 << 16  # per worker: request frames a later reply may name
RECENT: Final = 32  # requests a reply's is looked for among first


@dataclass(slots=True)
class WorkerSummary:
    """What a worker reports when it is done."""

    frames: int = 0
    undissected_bytes: int = 0
    undissected_flows: int = 0
    notes: list[SourceNote] = field(default_factory=list)
    note_keys: list[int] = field(default_factory=list)
    """Per note, the record key (as the lines': `Position`) at which it came, so the parent
    says every worker's notes in the order one process meets them."""
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


def _renderer(fmt: str, redact: bool) -> Callable[[FrameRecord], bytes] | None:
    """A record's line without its frame number and pairing (the parent adds both), as UTF-8
    bytes in either format."""
    from msnsniff.output import frame_jsonl_bytes, frame_text, new_flow_memo

    if fmt == "jsonl":
        memo = new_flow_memo()

        def jsonl(record: FrameRecord) -> bytes:
            return frame_jsonl_bytes(record, redact=redact, memo=memo)  # from ',"ts":' on

        return jsonl
    if fmt == "text":

        def text(record: FrameRecord) -> bytes:
            return frame_text(record, redact=redact).lstrip(" ").split(" ", 1)[1].encode()

        return text
    return None


def _rtt_tail(rtt: float | None) -> bytes:
    """The end of a JSON line from its `"rtt"` key on, as `pairing_jsonl_bytes` writes it."""
    if rtt is None:
        return _NULL_RTT
    return b',"rtt":%b}\n' % orjson.dumps(round(rtt, 6))


_NULL_RTT: Final = b',"rtt":null}\n'
_UNPAIRED: Final = pairing_jsonl_bytes(None) + b"\n"


class _Lines:
    """A worker's lines not sent yet, gathered as a `Batch`: a line whose pairing names no
    frame gets its final ending here, so the parent only puts its number in front."""

    __slots__ = ("first", "jsonl", "keys", "lines", "pairs")

    def __init__(self, jsonl: bool) -> None:
        self.jsonl = jsonl
        self.keys: list[int] = []
        self.first = 1  # the local number of lines[0]
        self.lines: list[bytes] = []
        self.pairs: dict[int, WorkerPairing] = {}

    def add(self, key: int, rest: bytes | None, pairing: Pairing | None) -> None:
        """One line, in local-number order (`rest` None: hidden by the display filter)."""
        self.keys.append(key)
        lines = self.lines
        if pairing is None:
            lines.append(b"" if rest is None else rest + (_UNPAIRED if self.jsonl else b"\n"))
            return
        request, replies, rtt = pairing.request, pairing.replies, pairing.rtt
        if request is not None or replies is not None:
            self.pairs[len(lines)] = (request, replies, rtt, _rtt_tail(rtt) if self.jsonl else b"")
            lines.append(b"" if rest is None else rest)
        elif rest is None:
            lines.append(b"")
        elif self.jsonl:  # a pairing that names no frame (a request out before its replies)
            lines.append(rest + pairing_jsonl_bytes(pairing) + b"\n")
        else:
            lines.append(rest + (pairing_text(pairing) + "\n").encode())

    def take(self) -> Batch:
        """The lines gathered so far, as one message; the next batch starts empty."""
        batch = (self.keys, self.first, self.lines, self.pairs)
        self.first += len(self.keys)
        self.keys, self.lines, self.pairs = [], [], {}
        return batch


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
    pending = _Lines(fmt == "jsonl")

    def add(paired: list[Paired]) -> None:
        assert render is not None
        for r, pairing in paired:
            visible = shown is None or shown.matches(
                r, None if pairing is None else pairing.extra()
            )
            # a gateway session's logical flow (`12/gw1`) sorts with the flow that carried it
            key = keys.pop(r.no) << FLOW_BITS | int(r.flow.id.partition("/")[0])
            pending.add(key, render(r) if visible else None, pairing)

    last_sent = 0

    def collect(records: list[FrameRecord]) -> None:
        if view is None:
            return
        record_no = position.record << 1 | position.phase  # (see Position)
        for r in records:
            keys[r.no] = record_no
        add(view.add(records))

    notes = session.notes
    note_keys = summary.note_keys

    try:
        with batch_collector():  # the parent's: inherited when forked, not when spawned
            for event in reader(path, partition=(share, jobs), position=position):
                records = analysis.push(event)
                if records:
                    collect(records)
                if len(notes) != len(note_keys):  # (rare: a note came with this event)
                    note_keys.extend([position.record << 1 | position.phase]
                                     * (len(notes) - len(note_keys)))  # fmt: skip
                if len(pending.keys) >= BATCH or position.record - last_sent >= QUIET_RECORDS:
                    conn.send(pending.take())
                    last_sent = position.record
            collect(analysis.finish())
            if view is not None:
                add(view.flush())
    except MsnsniffError as exc:
        summary.error = str(exc)
    conn.send(pending.take())
    summary.frames = session.frames
    summary.undissected_bytes = session.undissected_bytes
    summary.undissected_flows = session.undissected_flows
    summary.notes = notes  # those after the last event come at its end, in their order:
    note_keys.extend([(position.record + 1) << 1] * (len(notes) - len(note_keys)))
    summary.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send(summary)
    conn.close()


def _flow_number(location: str) -> int:
    """The flow a note is about, as one process meets their notes at one record: the
    connections in the order they opened (a flow is the number of its opening packet)."""
    word = location.removeprefix("flow ").partition("/")[0]
    return int(word) if location.startswith("flow ") and word.isdigit() else 0


def _fetcher(
    conns: list[Connection], done: list[WorkerSummary]
) -> Callable[[int], Batch | None]:
    """A worker's next non-empty batch (None once it has sent its summary, kept in `done`)."""

    def fetch(worker: int) -> Batch | None:
        while True:
            message = conns[worker].recv()
            if isinstance(message, WorkerSummary):
                done.append(message)
                return None
            batch: Batch = message
            if batch[0]:
                return batch

    return fetch


class _Merge:
    """The workers' lines in key order, one at a time: `next()` names the worker `w` whose
    line comes next, then `lines[w][index]` is that line (`first[w] + index` its local
    number) and `pairs[w]` its batch's paired lines. Each worker's keys ascend and keys are
    unique across workers (a flow belongs to one), so the next line is the one with the
    smallest key among each worker's next. This native loop over the workers' next keys, line
    by line, took the parent's instructions on the 100k benchmark capture (`read -T jsonl`,
    two workers, start-up included) from 2.20 G to 1.99 G against merging runs of lines
    through a generator and bisection: the two workers' keys interleave, so a run was under
    three lines on average."""

    __slots__ = ("_at", "_fetch", "_keys", "_live", "_refill", "first", "index", "lines",
                 "pairs")  # fmt: skip

    def __init__(self, fetch: Callable[[int], Batch | None], jobs: int) -> None:
        self._fetch = fetch
        self._keys: list[list[int]] = [[] for _ in range(jobs)]
        self._live = [True] * jobs  # per worker: not done yet
        self._at = [0] * jobs  # per worker: its batch's next line
        self.first = [0] * jobs
        self.lines: list[list[bytes]] = [[] for _ in range(jobs)]
        self.pairs: list[dict[int, WorkerPairing]] = [{} for _ in range(jobs)]
        self.index = 0
        for worker in range(jobs):
            self._take(worker)
        self._refill = -1  # the worker whose batch the last line ended (fetched when needed)

    def _take(self, worker: int) -> None:
        batch = self._fetch(worker)
        if batch is None:
            self._live[worker] = False
        else:
            self._keys[worker], self.first[worker], self.lines[worker], self.pairs[worker] = batch
            self._at[worker] = 0

    def next(self) -> int:
        """The worker whose line comes next, -1 once every worker is done. Its next batch is
        fetched only when the line after is asked for, so a worker that dies costs none of
        the lines received before."""
        if self._refill >= 0:
            self._take(self._refill)
            self._refill = -1
        keys, at, live = self._keys, self._at, self._live
        worker = -1
        best = 0
        for i in range(len(keys)):
            if live[i]:
                key = keys[i][at[i]]
                if worker < 0 or key < best:
                    worker, best = i, key
        if worker >= 0:
            index = at[worker]
            self.index = index
            at[worker] = index + 1
            if index + 1 == len(keys[worker]):
                self._refill = worker
        return worker


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
        low = self._start
        recent = len(locals_) - RECENT
        if recent > low and locals_[recent] <= local:  # most replies name a recent request
            low = recent
        i = bisect_left(locals_, local, low)
        return self._globals[i] if i < len(locals_) and locals_[i] == local else None


# A request waiting for its replies' numbers: (its number, worker, its replies in the
# worker's numbers, rtt, JSON tail, where its pairing goes in the parent's output (-1: hidden))
Waiting = tuple[int, int, tuple[int, ...], float | None, bytes, int]


class _Renumber:
    """Turns the workers' own frame numbers in pairings into global ones. A request's line
    is written at once, but with a slot for its pairing, filled once the replies it names
    have been numbered (they follow it in its worker's stream); the output is written only
    up to the first slot not filled yet.

    Like the single-process `PairingView`, at most `MAX_HELD` lines wait: once that many
    lines follow the oldest waiting request it goes out with the replies numbered so far
    (none known: null, as there). A reply's number is kept only while a waiting request may
    still name it."""

    def __init__(self, jobs: int) -> None:
        self.requests = [_Numbers(REQUESTS_REMEMBERED) for _ in range(jobs)]  # local -> global
        self.replies: list[dict[int, int]] = [{} for _ in range(jobs)]
        self.reply_order: deque[tuple[int, int, int]] = deque()  # (global, worker, local)
        self.waiting: deque[Waiting] = deque()

    def request(self, no: int, worker: int, local: int, replies: tuple[int, ...],
                rtt: float | None, tail: bytes, slot: int) -> None:  # fmt: skip
        """A request numbered `no`; its pairing goes to `slot` once its replies are known."""
        self.requests[worker].add(local, no)
        self.waiting.append((no, worker, replies, rtt, tail, slot))

    def reply(self, no: int, worker: int, local: int, request: int) -> int | None:
        """A reply numbered `no`: its request's number, if it is still remembered."""
        if self.waiting:  # a waiting request may name it
            self.replies[worker][local] = no
            self.reply_order.append((no, worker, local))
        return self.requests[worker].get(request)

    def ready(self, no: int, final: bool, output: _Output, jsonl: bool) -> None:
        """Fill the pairing of each request that can go out now that `no` lines are numbered
        into its slot of `output`."""
        waiting = self.waiting
        while waiting:
            first, worker, replies, rtt, tail, slot = waiting[0]
            mapped = self.replies[worker]
            early = no - first + 1 > MAX_HELD  # the lines from it on
            # a worker's replies arrive in order: the last one numbered means all are
            if not (final or early) and replies and replies[-1] not in mapped:
                break
            waiting.popleft()
            if slot >= 0:
                known = tuple([mapped[r] for r in replies if r in mapped])
                output.parts[slot - output.written] = (
                    _pairing_of(jsonl, None, None, None, _NULL_RTT)
                    if early and not known and replies  # out before any reply: nothing known
                    else _pairing_of(jsonl, None, known, rtt, tail)
                )
        head = waiting[0][0] if waiting else None
        order = self.reply_order
        while order and (head is None or order[0][0] < head):  # no waiting request names it
            _no, worker, local = order.popleft()
            self.replies[worker].pop(local, None)


def _pairing_of(jsonl: bool, request: int | None, replies: tuple[int, ...] | None,
                rtt: float | None, tail: bytes) -> bytes:  # fmt: skip
    """A line's ending from its pairing in global numbers (`tail`: its JSON from "rtt" on)."""
    if not jsonl:
        return (pairing_text(new_pairing(request, replies, rtt)) + "\n").encode()
    if replies is not None:
        return b',"request":null,"replies":[%b]%b' % (b",".join([b"%d" % r for r in replies]),
                                                      tail)  # fmt: skip
    if request is not None:
        return b',"request":%d,"replies":null%b' % (request, tail)
    return b',"request":null,"replies":null%b' % (tail if rtt is not None else _NULL_RTT)


def _text_writer(out: TextIO) -> Callable[[bytes], object]:
    """A writer of UTF-8 bytes to a text stream that cannot take them as they are (text
    output, or a stream in another encoding). Should the stream refuse a character, the
    lines before it are written one by one first, as they were when each line was written
    alone, and the error then raised."""

    def write(data: bytes) -> None:
        text = data.decode()
        try:
            out.write(text)
        except UnicodeEncodeError:
            for line in text.split("\n")[:-1]:
                out.write(line + "\n")
            raise

    return write


class _Output:
    """The parent's output not written yet, as parts (numbers, renderings, pairings) joined
    into one write; a waiting request's pairing is a slot filled later, and only the parts
    before the first slot not filled yet can be written."""

    __slots__ = ("parts", "sink", "written")

    def __init__(self, sink: Callable[[bytes], object]) -> None:
        self.parts: list[bytes] = []
        self.written = 0  # parts written before parts[0]
        self.sink = sink

    def flush(self, upto: int) -> None:
        """Write the parts before `upto` (counted from parts[0])."""
        if upto > 0:
            parts = self.parts
            data = b"".join(parts[:upto])
            del parts[:upto]  # written once, even if the write fails (a closed pipe)
            self.written += upto
            self.sink(data)

    def flush_ready(self, waiting: deque[Waiting]) -> None:
        """Write what comes before the first pairing still unknown."""
        for _first, _worker, _replies, _rtt, _tail, slot in waiting:
            if slot >= 0:
                self.flush(slot - self.written)
                return
        self.flush(len(self.parts))


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
    jsonl = fmt == "jsonl"
    sink = utf8_sink(out) if jsonl else None
    renumber = _Renumber(jobs)
    waiting = renumber.waiting
    # each line's number goes in front of its rendering
    numbered = (b"{%b\"no\":%%d" % capture_key(capture).encode()) if jsonl else b"%6d "

    output = _Output(sink if sink is not None else _text_writer(out))
    parts = output.parts
    try:
        merge = _Merge(_fetcher([r for r, _s in pipes], done), jobs)
        while True:
            worker = merge.next()
            if worker < 0:
                break
            j = merge.index
            no += 1
            paired = merge.pairs[worker].get(j)
            if paired is None:  # its ending is rendered: the line only gets its number
                line = merge.lines[worker][j]
                if line:  # (empty: hidden by the display filter)
                    parts.append(numbered % no)
                    parts.append(line)
            else:  # a request or a reply: its pairing is renumbered
                request, replies, rtt, tail = paired
                rest = merge.lines[worker][j]
                local = merge.first[worker] + j
                if replies is not None:
                    slot = -1
                    if rest:
                        parts.append(numbered % no)
                        parts.append(rest)
                        slot = output.written + len(parts)
                        parts.append(b"")  # filled by `ready`
                    renumber.request(no, worker, local, replies, rtt, tail, slot)
                else:
                    found = None if request is None else renumber.reply(no, worker, local, request)
                    if rest:
                        parts.append(numbered % no)
                        parts.append(rest)
                        parts.append(_pairing_of(jsonl, found, None, rtt, tail))
            if waiting:
                renumber.ready(no, False, output, jsonl)
            if len(parts) >= WRITE_PARTS:
                output.flush_ready(waiting)
        renumber.ready(no, True, output, jsonl)
    except EOFError as exc:
        raise MsnsniffError(f"{path}: a worker process died") from exc
    finally:
        try:
            output.flush_ready(waiting)  # what came before any failure is written all the same
        finally:
            for proc in procs:
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.terminate()
    notes: list[SourceNote] = []
    for *_order, note in sorted(  # (worker and index: unique, so notes are never compared)
        (key, _flow_number(note.location), w, at, note)
        for w, summary in enumerate(done) for at, (key, note) in enumerate(
            zip(summary.note_keys, summary.notes, strict=True))
    ):  # fmt: skip
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
