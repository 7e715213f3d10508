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
numbers the frames, so `-j N` prints what `-j 1` prints. (A display filter on pairing values,
such as `msnp.rtt`, runs in one process.)

Pairing (a reply's request, a request's replies) is decided where one process decides it:
in a `PairingView`, which holds a request's line until the request settles, and past
`MAX_HELD` held lines lets the oldest go with what is known so far. What it holds and when it
lets go depends on every connection's lines, so a worker cannot decide it for its share
alone (it used to, and a request that settled after `MAX_HELD` other lines then printed
`[]` where one process printed null). Each worker renders its frames as they come and says
what its pairing analyzers say: which lines are requests, which request each reply answers
(with the times), and which requests settled in which source event. The parent plays one
process's view from that (`_View`): the same lines go out at the same points with the same
pairing, and it holds at most `MAX_HELD` lines and one source event's.

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
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.httppairing import HttpTransactions
from msnsniff.session.pairing import MAX_HELD, new_pairing
from msnsniff.session.transactions import Transaction, Transactions

if TYPE_CHECKING:  # ForkContext does not exist on Windows
    from multiprocessing.context import ForkContext, SpawnContext

BATCH: Final = 2048
"""Rendered lines per message. Three processes share two cores here, so each message costs
a wake-up: `read -T jsonl` on the 1M benchmark capture took a median 12.7 s and 11.5 s with
512 lines, 11.0 s and 10.4 s with 2,048 (four alternating runs each, twice; 128 lines:
13.8 s). 8,192 lines were no faster and raised peak RSS from 52 to 75 MiB."""
WRITE_PARTS: Final = 512  # numbers, renderings and pairings the parent gathers into one write
QUIET_RECORDS: Final = 50_000  # send an empty progress message at least this often

# A worker's batch, in the form the parent merges with the least work per item. Its items are
# the worker's lines and, rarely, a note that requests settled while no line came; per item:
# its merge key, ascending ((the record that completed the frame << 1 | its phase) <<
# FLOW_BITS | its flow id), and its rendering without its number and pairing (empty when the
# display filter hides the line: the parent still counts it; a rendering never is empty).
# Then, by item index: what pairs (`Fact`, for requests and replies only), the requests that
# settled (worker numbers) once the item's source event was fed, the HTTP responses held for
# their request's frame that it resolved ((the response's worker number, its request's, -1
# when its connection closed first; and 1 when the response is among the request's replies,
# its answer, 0 for a 100 Continue)), and `checks`: per item
# LINE_CHECKED when the parent's view checks what it can release after it (the last line of
# a source event that made lines, as one process's view does after each such event),
# LINE when not, NO_LINE for a settle-only item.
Fact = tuple[int, int, float | None, float | None]
"""(REQUEST or HELD, its own worker number, None, None), or (REPLY, OUTCOME or INTERIM, its
request's worker number, its time since the request, the request's round-trip time after
it)."""
Interims = dict[int, list[tuple[int, int, int]]]
Batch = tuple[list[int], list[bytes], dict[int, Fact], dict[int, list[int]], Interims, bytearray]
REQUEST: Final = 0
REPLY: Final = 1
OUTCOME: Final = 2  # the JOI a ringing CAL led to: shown among the CAL's replies (`PairingView`)
INTERIM: Final = 3  # an HTTP 100 Continue after its request's frame: a reply, not among its
#                     request's replies
HELD: Final = 4  # an HTTP response before its request's frame: held for it
LINE: Final = 0
LINE_CHECKED: Final = 1
NO_LINE: Final = 2
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


class _Facts:
    """What a worker's pairing analyzers say as its records are fed, for the parent's view:
    the requests, each reply's request and times, and the requests that settled. They are
    attached as `PairingView` attaches them, with the same listeners, so the parent can
    release the lines exactly where one process's view releases them."""

    __slots__ = ("flow", "interims", "pairs", "settled")

    def __init__(self, analysis: Analysis) -> None:
        self.pairs: dict[int, Fact] = {}  # by frame (worker number), until its line is made
        self.settled: list[int] = []  # requests settled since the last source event's items
        self.interims: list[tuple[int, int, int]] = []  # held responses resolved since
        self.flow = "0"  # the connection of the last of them (a source event's are one's)
        analysis.add(lambda sink: Transactions(
            sink, on_request=self._request, on_reply=self._reply, on_settle=self._settle,
            on_outcome=self._outcome,
        ))  # fmt: skip
        analysis.add(lambda sink: HttpTransactions(
            sink, on_request=self._request, on_reply=self._reply, on_settle=self._settle,
            on_early=self._early,
        ))  # fmt: skip

    def _request(self, txn: Transaction) -> None:
        self.pairs[txn.request] = (REQUEST, txn.request, None, None)

    def _reply(self, txn: Transaction, record: FrameRecord) -> None:
        rtt = None if txn.ts is None or record.ts is None else record.ts - txn.ts
        self.pairs[record.no] = (REPLY, txn.request, rtt, txn.rtt)

    def _outcome(self, txn: Transaction, record: FrameRecord) -> None:
        rtt = None if txn.ts is None or record.ts is None else record.ts - txn.ts
        self.pairs[record.no] = (OUTCOME, txn.request, rtt, txn.rtt)

    def _settle(self, txn: Transaction) -> None:
        self.settled.append(txn.request)
        self.flow = txn.flow

    def _early(self, txn: Transaction | None, record: FrameRecord, gone: bool) -> None:
        """As `PairingView._early`: a response before its request's frame is held until the
        request comes (an answer then among its replies) or its connection closes; a 100
        Continue after it is a reply of its own."""
        no = record.no
        if txn is None:
            if gone:
                self.interims.append((no, -1, 0))
                self.flow = record.flow.id
            else:
                self.pairs[no] = (HELD, no, None, None)
        elif no < txn.request:  # held, and its request has come
            self.interims.append((no, txn.request, int(no in txn.replies)))
            self.flow = txn.flow
        else:
            rtt = None if txn.ts is None or record.ts is None else record.ts - txn.ts
            self.pairs[no] = (INTERIM, txn.request, rtt, None)


class _Items:
    """A worker's items not sent yet, gathered as a `Batch`."""

    __slots__ = ("checks", "interims", "keys", "lines", "pairs", "settles")

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.lines: list[bytes] = []
        self.pairs: dict[int, Fact] = {}
        self.settles: dict[int, list[int]] = {}
        self.interims: Interims = {}
        self.checks = bytearray()

    def settled(self, facts: _Facts, key: int | None) -> None:
        """What settled while the last source event was fed: with its last line, or when it
        made none an item of its own at `key`."""
        if key is not None:
            self.keys.append(key)
            self.lines.append(b"")
            self.checks.append(NO_LINE)
        at = len(self.keys) - 1
        if facts.settled:
            self.settles[at] = facts.settled
            facts.settled = []
        if facts.interims:
            self.interims[at] = facts.interims
            facts.interims = []

    def take(self) -> Batch:
        """The items gathered so far, as one message; the next batch starts empty."""
        batch = (self.keys, self.lines, self.pairs, self.settles, self.interims, self.checks)
        self.keys, self.lines, self.pairs, self.settles, self.interims = [], [], {}, {}, {}
        self.checks = bytearray()
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
    """A worker: one share of the file's connections, each frame rendered as it comes, with
    what pairs it, sent in key order; the parent pairs and releases the lines."""
    from msnsniff.capture.pcap import Position, read_pcap, read_pcapng
    from msnsniff.collector import batch_collector
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession
    from msnsniff.session.filter import compile_filter

    summary = WorkerSummary()
    position = Position()
    reader = read_pcap if kind == "pcap" else read_pcapng
    session = CaptureSession(load_dissectors(), decode_as=decode_as)
    render = _renderer(fmt, redact)
    # frames only (-T none): nothing is printed, so nothing needs pairing
    analysis = Analysis(session, keep_findings=False)
    facts = _Facts(analysis) if render is not None else None
    # (a filter on pairing values runs in one process: `read` asks for -j 1 then)
    shown = None if display is None else compile_filter(display)
    items = _Items()

    def collect(records: list[FrameRecord]) -> None:
        """One source event's records, as lines; then the requests settled while it was fed."""
        if facts is None:
            return
        key = position.record << 1 | position.phase  # (see Position)
        keys, lines, checks, pairs = items.keys, items.lines, items.checks, facts.pairs
        for r in records:
            # a gateway session's logical flow (`12/gw1`) sorts with the flow that carried it
            fact = pairs.pop(r.no, None) if pairs else None
            if fact is not None:
                items.pairs[len(keys)] = fact
            keys.append(key << FLOW_BITS | int(r.flow.id.partition("/")[0]))
            assert render is not None
            lines.append(render(r) if shown is None or shown.matches(r, None) else b"")
            checks.append(LINE)
        if records:
            checks[-1] = LINE_CHECKED
            if facts.settled or facts.interims:
                items.settled(facts, None)
        elif facts.settled or facts.interims:  # (the closing event of a connection, say)
            items.settled(facts, key << FLOW_BITS | int(facts.flow.partition("/")[0]))

    last_sent = 0
    notes = session.notes
    note_keys = summary.note_keys

    try:
        with batch_collector():  # the parent's: inherited when forked, not when spawned
            for event in reader(path, partition=(share, jobs), position=position):
                records = analysis.push(event)
                if records or (facts is not None and (facts.settled or facts.interims)):
                    collect(records)
                if len(notes) != len(note_keys):  # (rare: a note came with this event)
                    note_keys.extend([position.record << 1 | position.phase]
                                     * (len(notes) - len(note_keys)))  # fmt: skip
                if len(items.keys) >= BATCH or position.record - last_sent >= QUIET_RECORDS:
                    conn.send(items.take())
                    last_sent = position.record
            collect(analysis.finish())
    except MsnsniffError as exc:
        summary.error = str(exc)
    conn.send(items.take())
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
    """The workers' items in key order, one at a time: `next()` names the worker `w` whose
    item comes next, then `lines[w][index]` is that item's line, and `pairs[w]`,
    `settles[w]` and `checks[w]` are its batch's (see `Batch`). Each worker's keys ascend and
    keys are unique across workers (a flow belongs to one), so the next line is the one with the
    smallest key among each worker's next. This native loop over the workers' next keys, line
    by line, took the parent's instructions on the 100k benchmark capture (`read -T jsonl`,
    two workers, start-up included) from 2.20 G to 1.99 G against merging runs of lines
    through a generator and bisection: the two workers' keys interleave, so a run was under
    three lines on average."""

    __slots__ = ("_at", "_fetch", "_keys", "_live", "_refill", "checks", "index", "interims",
                 "lines", "pairs", "settles")  # fmt: skip

    def __init__(self, fetch: Callable[[int], Batch | None], jobs: int) -> None:
        self._fetch = fetch
        self._keys: list[list[int]] = [[] for _ in range(jobs)]
        self._live = [True] * jobs  # per worker: not done yet
        self._at = [0] * jobs  # per worker: its batch's next line
        self.lines: list[list[bytes]] = [[] for _ in range(jobs)]
        self.pairs: list[dict[int, Fact]] = [{} for _ in range(jobs)]
        self.settles: list[dict[int, list[int]]] = [{} for _ in range(jobs)]
        self.interims: list[Interims] = [{} for _ in range(jobs)]
        self.checks = [bytearray() for _ in range(jobs)]
        self.index = 0
        for worker in range(jobs):
            self._take(worker)
        self._refill = -1  # the worker whose batch the last line ended (fetched when needed)

    def _take(self, worker: int) -> None:
        batch = self._fetch(worker)
        if batch is None:
            self._live[worker] = False
        else:
            (self._keys[worker], self.lines[worker], self.pairs[worker], self.settles[worker],
             self.interims[worker], self.checks[worker]) = batch
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
    """The global numbers of one worker's last `limit` request frames (and HTTP responses
    held for their request's frame), by local number.

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


class _View:
    """One process's `PairingView`, played by the parent from the workers' facts, so that
    `-j N` releases every line where `-j 1` does and prints the same pairing.

    Theory of operation: the lines are numbered in key order and held from the oldest one not
    released yet. After the last line of each source event that made lines (`LINE_CHECKED`),
    and once the requests that settled in it are known, the oldest lines go out while they
    are not requests still waiting to settle, and while more than `MAX_HELD` lines follow
    them, whatever they are (a request then shows the replies known so far; none known is
    null): `PairingView._release` after each `add`. A request's replies are those its
    workers' facts named so far (and the JOI a ringing CAL led to, after them); a reply's
    pairing is known when it arrives. Memory follows the held lines, at most `MAX_HELD` and
    one source event's."""

    __slots__ = ("_held", "_interims", "_jsonl", "_numbered", "_numbers", "_outcomes",
                 "_parts", "_requests", "_sink", "_unsettled")  # fmt: skip

    def __init__(self, jobs: int, jsonl: bool, numbered: bytes,
                 sink: Callable[[bytes], object]) -> None:  # fmt: skip
        self._jsonl = jsonl
        self._numbered = numbered  # each line's number goes in front of its rendering
        self._sink = sink
        self._parts: list[bytes] = []  # numbers, renderings and pairings not written yet
        self._held: deque[tuple[int, bytes, Fact | None]] = deque()  # number, rendering, fact
        # per worker, the global numbers of its last requests, by its own numbers
        self._numbers = [_Numbers(REQUESTS_REMEMBERED) for _ in range(jobs)]
        self._requests: dict[int, tuple[list[int], list[float | None]]] = {}  # held
        #                                         request -> its replies so far, [its rtt]
        self._unsettled: set[int] = set()
        self._outcomes: dict[int, list[int]] = {}  # held request -> the frames it led to
        self._interims: dict[int, int] = {}  # held early response -> its request, once come

    def add(self, no: int, line: bytes, fact: Fact | None, worker: int) -> None:
        """Line `no` of `worker` (empty: hidden by the display filter) and what pairs it."""
        if fact is None:
            if self._held:
                self._held.append((no, line, None))
            elif line:  # nothing before it waits: its pairing (none) is all there is
                self._write(no, line, _UNPAIRED if self._jsonl else b"\n")
            return
        kind, local, rtt, _request_rtt = fact
        if kind in (REQUEST, HELD):
            self._numbers[worker].add(local, no)
            if kind == REQUEST:
                self._requests[no] = ([], [None])
            self._unsettled.add(no)
            self._held.append((no, line, fact))
            return
        request = self._numbers[worker].get(local)
        if request is not None and kind != INTERIM:
            waiting = self._requests.get(request)
            if waiting is not None:
                if kind == REPLY:
                    waiting[0].append(no)
                    waiting[1][0] = _request_rtt
                else:  # OUTCOME
                    self._outcomes.setdefault(request, []).append(no)
        if self._held:  # its pairing is rendered when it goes out
            self._held.append((no, line, (REPLY, -1 if request is None else request, rtt, None)))
        elif line:
            self._write(no, line, _pairing_of(self._jsonl, request, None, rtt,
                                              _rtt_tail(rtt) if self._jsonl else b""))  # fmt: skip

    def settle(self, worker: int, requests: list[int]) -> None:
        """`worker`'s requests (its own numbers) settled."""
        numbers = self._numbers[worker]
        for local in requests:
            no = numbers.get(local)
            if no is not None:
                self._unsettled.discard(no)

    def resolve(self, worker: int, responses: list[tuple[int, int, int]]) -> None:
        """`worker`'s held responses whose request came (or whose connection closed first:
        -1), in its own numbers; an answer goes among its request's replies."""
        numbers = self._numbers[worker]
        for local, request, answer in responses:
            no = numbers.get(local)
            found = None if request < 0 else numbers.get(request)
            if no is None:
                continue
            if answer and found is not None:
                waiting = self._requests.get(found)
                if waiting is not None:
                    waiting[0].append(no)
            if no in self._unsettled:  # still held (not forced out)
                self._unsettled.discard(no)
                if found is not None:
                    self._interims[no] = found

    def release(self, last: int, final: bool) -> None:
        """What goes out once line `last` and its source event's settlements are in (all of
        it when `final`)."""
        held, unsettled, jsonl = self._held, self._unsettled, self._jsonl
        stay = last - MAX_HELD  # lines numbered up to here go out whatever they wait for
        while held:
            no, line, fact = held[0]
            if not (final or no <= stay or no not in unsettled):
                break
            held.popleft()
            if fact is None:
                pairing = _UNPAIRED if jsonl else b"\n"
            elif fact[0] == REQUEST:
                early = no in unsettled  # more replies may come: none known is unknown
                unsettled.discard(no)
                replies, rtt = self._requests.pop(no)
                led_to = self._outcomes.pop(no, None) if self._outcomes else None
                shown = (tuple(replies if led_to is None else replies + led_to)
                         if replies or not early else None)  # fmt: skip
                pairing = _pairing_of(jsonl, None, shown, rtt[0],
                                      _rtt_tail(rtt[0]) if jsonl else b"")  # fmt: skip
            elif fact[0] == HELD:  # its request, if it came before the response went out
                unsettled.discard(no)
                found = self._interims.pop(no, None) if self._interims else None
                pairing = (_pairing_of(jsonl, found, None, None, _NULL_RTT if jsonl else b"")
                           if found is not None else _UNPAIRED if jsonl else b"\n")  # fmt: skip
            else:
                request = fact[1]
                pairing = _pairing_of(jsonl, None if request < 0 else request, None, fact[2],
                                      _rtt_tail(fact[2]) if jsonl else b"")  # fmt: skip
            if line:
                self._write(no, line, pairing)

    def _write(self, no: int, line: bytes, pairing: bytes) -> None:
        parts = self._parts
        parts.append(self._numbered % no)
        parts.append(line)
        parts.append(pairing)
        if len(parts) >= WRITE_PARTS:
            self.flush()

    def flush(self) -> None:
        """Write what went out so far."""
        if self._parts:
            data = b"".join(self._parts)
            self._parts = []  # written once, even if the write fails (a closed pipe)
            self._sink(data)


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
    # each line's number goes in front of its rendering
    numbered = (b"{%b\"no\":%%d" % capture_key(capture).encode()) if jsonl else b"%6d "
    view = _View(jobs, jsonl, numbered, sink if sink is not None else _text_writer(out))
    try:
        merge = _Merge(_fetcher([r for r, _s in pipes], done), jobs)
        while True:
            worker = merge.next()
            if worker < 0:
                break
            j = merge.index
            check = merge.checks[worker][j]
            if check != NO_LINE:
                no += 1
                pairs = merge.pairs[worker]
                view.add(no, merge.lines[worker][j], pairs.get(j) if pairs else None, worker)
            settles = merge.settles[worker]
            if settles:
                settled = settles.get(j)
                if settled is not None:
                    view.settle(worker, settled)
            interims = merge.interims[worker]
            if interims:
                resolved = interims.get(j)
                if resolved is not None:
                    view.resolve(worker, resolved)
            if check == LINE_CHECKED:
                view.release(no, False)
    except EOFError as exc:
        raise MsnsniffError(f"{path}: a worker process died") from exc
    finally:
        try:  # what came before any failure is written all the same
            view.release(no, True)
            view.flush()
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
