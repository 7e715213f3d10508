"""One capture analysed by two processes at once: one dissects, the other analyses.

Theory of operation
-------------------
`Pipeline` forks a child that reads the capture through an ordinary capture session and
splits each command line into TrID and arguments; the parent decodes the named fields and
runs the analyzers. (The child used to decode three frames in four: pickling and unpickling
the decoded fields cost more than decoding them in the parent. `expert` on the 1M
benchmark capture, median of five alternating runs: 11.7 s now against 12.4 s then; on the
100k capture the busier process runs 5.64 G instructions against 6.29 G.) For each source
event the child sends, in order, the frame records the event completed and then the flows
it closed; a flow is described once, before its first use. The parent rebuilds each
record, its frame's split cached (through the framer's `new_frame`, native in the compiled
build), and hands the records and closed flows on event
by event (`events()`), the session's end marked, so a caller makes exactly the calls `Analysis.push`
and `Analysis.finish` make in one process (as `drive_pipelined` does): every analyzer sees
the same calls in the same order, so the output cannot differ. The two halves run at once,
on two cores. A source error comes at the point it happened, and the session's end after
it, as in one process.

Command frames (the bulk) travel as tuples of plain values; any other frame travels pickled
whole. Messages are batches of items, and the pipe's buffer bounds how far the child runs
ahead, so memory stays flat. Batches are small, 64 items: the objects of a batch are then
still in the CPU's caches when they are pickled, unpickled and analysed. With 2,048 items
`expert` on the 1M benchmark capture took a median 9.7 s and 10.2 s against 7.9 s and 9.5 s
with 64 (five alternating runs each, twice); 16 items were slower again (10.6 s).

The child ends with the session's notes and the error that stopped the source, if any; a
crash in the child is raised in the parent with its traceback.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import sys
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, Final

from dissectors.msnp.framer import new_frame
from dissectors.msnp.frames import CommandFrame
from dissectors.msnp.grammar import C2S, S2C
from dissectors.msnp.parts import command_parts, split_command
from msnsniff.capture import Flow, SourceNote
from msnsniff.errors import MsnsniffError
from msnsniff.parallel import widen_pipe
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession, FrameRecord

BATCH: Final = 64  # items per message (see the theory of operation)

# item tags (an item is a tuple; its first element says what it is)
FLOW: Final = 0  # (FLOW, id, client, server, label, opened): a flow, before its first use
COMMAND: Final = 1  # (COMMAND, no, ts, flow id, proto, c2s, offset, raw, header_len,
#                     payload_length, dialect, inferred, cmd, split): a CommandFrame's
#                     record, its line split into (TrID, arguments)
RECORD: Final = 2  # (RECORD, no, ts, flow id, proto, frame): any other record
EVENT: Final = 3  # (EVENT, closed flow ids, cut flow ids, final, hung up): the records since
#                   the last EVENT are what one source event produced (the session's last
#                   ones when final), and these flows closed after them (those cut by the
#                   capture's end, no FIN or reset seen, named again; of the others, the
#                   time of the first FIN or reset by id, where known)
ERROR: Final = 4  # (ERROR, message): the source stopped with this error here

# the child's last message: (DONE, notes) or (CRASH, traceback text)
DONE: Final = "done"
CRASH: Final = "crash"

_new_tuple: Final = tuple.__new__

Event = tuple[list[FrameRecord], list[Flow], list[str], bool, dict[str, float] | None]
"""What one source event produced: its records, the flows it closed, the ids of those the
capture ended rather than the connection, whether it was the session's end (`finish`), and
the time a FIN or reset ended each of the others (`CaptureSession.hung_up`)."""


def pipeline_available() -> bool:
    """True where a child can be forked (it inherits the loaded code and the arguments) and
    this process may have children (a pool's daemonic worker may not)."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


def _flow_item(flow: Flow) -> tuple[Any, ...]:
    return (FLOW, flow.id, flow.client, flow.server, flow.label, flow.opened)


def _picklable(frame: Any) -> Any:
    """`frame`, or when it holds an unpicklable cached value, a copy without its caches
    (the fields named with `_`, which the parent computes again on demand)."""
    try:
        pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    except (TypeError, AttributeError, pickle.PicklingError):
        from dataclasses import fields, replace

        cached = {f.name: None for f in fields(frame) if f.name.startswith("_") and f.init}
        stripped = replace(frame, **cached)
        for f in fields(frame):  # fields set after construction (`cmd`) survive `replace`
            if not f.init and not f.name.startswith("_"):
                object.__setattr__(stripped, f.name, getattr(frame, f.name))
        return stripped
    return frame


class _Sender:
    """The child's side: items collected into batches and sent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.items: list[tuple[Any, ...]] = []
        self.flows: set[str] = set()  # described to the parent and not yet closed

    def event(self, records: list[FrameRecord], closed: list[Flow], cut: list[str],
              final: bool, hung_up: dict[str, float]) -> None:  # fmt: skip
        items = self.items
        flows = self.flows
        for record in records:
            flow = record.flow
            flow_id = flow.id
            if flow_id not in flows:
                flows.add(flow_id)
                items.append(_flow_item(flow))
            frame = record.frame
            if type(frame) is CommandFrame:
                # the split `command_parts` would make, from the fields read here, and not
                # kept in the frame (this process drops the frame once it is sent)
                direction, raw, header_len, dialect = (
                    frame.direction, frame.raw, frame.header_len, frame.dialect
                )
                items.append(
                    (
                        COMMAND, record.no, record.ts, flow_id, record.proto,
                        direction is C2S, frame.offset, raw, header_len, frame.payload_length,
                        dialect, frame.dialect_inferred, frame.cmd,
                        split_command(raw, header_len, direction, dialect),
                    )
                )  # fmt: skip
            else:
                if isinstance(frame, CommandFrame):
                    command_parts(frame)
                items.append((RECORD, record.no, record.ts, flow_id, record.proto, frame))
        closed_ids = []
        for flow in closed:
            if flow.id not in flows:  # closed before any frame of it: described all the same
                items.append(_flow_item(flow))
            flows.discard(flow.id)
            closed_ids.append(flow.id)
        # (a copy: the session adds to its dict until it next resets it; None when empty, as
        # it nearly always is, so that most events pickle no dict)
        items.append((EVENT, closed_ids, list(cut), final, dict(hung_up) if hung_up else None))
        if len(items) >= BATCH:
            self.flush()

    def error(self, message: str) -> None:
        self.items.append((ERROR, message))

    def flush(self) -> None:
        if not self.items:
            return
        try:
            data = pickle.dumps(self.items, protocol=pickle.HIGHEST_PROTOCOL)
        except (TypeError, AttributeError, pickle.PicklingError):
            self.items = [
                (*item[:5], _picklable(item[5])) if item[0] == RECORD else item
                for item in self.items
            ]
            data = pickle.dumps(self.items, protocol=pickle.HIGHEST_PROTOCOL)
        self.conn.send_bytes(data)
        self.items = []


def _dissect(path: str, session: CaptureSession, conn: Connection,
             section: int | None = None) -> None:  # fmt: skip
    """The child: the capture dissected, its command lines split, sent event by event, then
    the notes."""
    from msnsniff.capture.sources import open_source

    sender = _Sender(conn)
    try:
        try:
            for event in open_source(path, section):
                records = session.push(event)
                if records or session.closed:
                    sender.event(records, session.closed, session.cut, False,
                                 session.hung_up)
        except MsnsniffError as exc:
            sender.error(str(exc))
        records = session.finish()
        sender.event(records, session.closed, session.cut, True, session.hung_up)
        sender.flush()
        conn.send_bytes(pickle.dumps((DONE, session.notes)))
    except BaseException:  # reported to the parent, which raises it
        with contextlib.suppress(OSError):
            conn.send_bytes(pickle.dumps((CRASH, traceback.format_exc())))
    finally:
        conn.close()


class Pipeline:
    """The parent's side: a forked child dissects `path` (with a session from `session`)
    while the caller consumes `events()`. Use it as a context manager, so the child is
    stopped when the caller stops early."""

    def __init__(self, path: str, session: Callable[[], CaptureSession],
                 section: int | None = None) -> None:  # fmt: skip
        self.path = path
        self.notes: list[SourceNote] = []
        self._flows: dict[str, Flow] = {}
        self._pending: list[tuple[Any, ...]] = []  # items received, not yet given out
        self._at = 0
        self._done = False
        ctx = multiprocessing.get_context("fork")
        for stream in (sys.stdout, sys.stderr):  # or the child would print its copy too
            with contextlib.suppress(Exception):
                stream.flush()
        self._recv, send = ctx.Pipe(duplex=False)
        widen_pipe(self._recv)
        self._proc = ctx.Process(target=_dissect, args=(path, session(), send, section),
                                 daemon=True)
        self._proc.start()
        send.close()  # the parent only reads: a dead child then shows as EOF

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pipe and reap the dissecting process, terminating it after five seconds."""
        self._recv.close()
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join()

    def _receive(self) -> bool:
        """The next batch into `_pending`; False once the child is done (notes kept)."""
        if self._done:
            return False
        try:
            message = pickle.loads(self._recv.recv_bytes())
        except EOFError as exc:
            raise MsnsniffError(f"{self.path}: the dissecting process died") from exc
        if type(message) is list:
            self._pending, self._at = message, 0
            return True
        self._done = True
        if message[0] == CRASH:
            raise RuntimeError(f"the dissecting process failed:\n{message[1]}")
        self.notes.extend(message[1])
        return False

    def events(self) -> Iterator[Event]:
        """Every source event's records and closed flows, in order, the session's end last
        (`final`). Where the source failed, raises its `MsnsniffError`; calling `events()`
        again then gives what follows (the session's end, as `finish` gives it)."""
        flows = self._flows
        make = new_frame
        records: list[FrameRecord] = []
        while self._at < len(self._pending) or self._receive():
            items, at = self._pending, self._at
            end = len(items)
            while at < end:
                item = items[at]
                at += 1
                tag = item[0]
                if tag == COMMAND:
                    (
                        _tag, no, ts, flow_id, proto, is_c2s, offset, raw, header_len,
                        payload_length, dialect, inferred, cmd, split,
                    ) = item  # fmt: skip
                    frame = make(
                        C2S if is_c2s else S2C, offset, raw, header_len, payload_length,
                        dialect, inferred, cmd, split,
                    )  # fmt: skip
                    records.append(
                        _new_tuple(FrameRecord, (no, ts, flows[flow_id], proto, frame))
                    )
                elif tag == EVENT:
                    _tag, closed_ids, cut_ids, final, hung_up = item
                    closed = [flows.pop(flow_id) for flow_id in closed_ids]
                    self._at = at
                    yield records, closed, cut_ids, final, hung_up
                    records = []
                elif tag == RECORD:
                    _tag, no, ts, flow_id, proto, other = item
                    records.append(_new_tuple(FrameRecord, (no, ts, flows[flow_id], proto, other)))
                elif tag == FLOW:
                    _tag, flow_id, client, server, label, opened = item
                    flows[flow_id] = Flow(flow_id, client, server, label, opened)
                else:  # ERROR: the source failed after the last EVENT (nothing of it is lost)
                    self._at = at
                    raise MsnsniffError(str(item[1]))
            self._at = at


def drive_pipelined(
    analysis: Analysis,
    path: str,
    each: Callable[[], None],
    session: Callable[[], CaptureSession],
    section: int | None = None,
) -> str | None:
    """What `Analysis.push` over every event of `path` then `Analysis.finish` do, with a
    forked child dissecting (fresh sessions from `session`) while this process runs the
    analyzers; `each` is called after every event. Returns the error that stopped the
    source, if any; the session's notes land in `analysis.session.notes`. `section`: the
    capture of a transcript of several to read (`open_source`)."""
    error = None
    with Pipeline(path, session, section) as pipe:
        while True:
            try:
                for records, closed, cut, final, hung_up in pipe.events():
                    analysis.feed(records, closed, cut, hung_up)
                    if final:
                        analysis.conclude()
                    each()
                break
            except MsnsniffError as exc:  # as in one process: then the session's end
                error = str(exc)
        analysis.session.notes.extend(pipe.notes)
    return error
