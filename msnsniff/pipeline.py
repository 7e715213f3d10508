"""One capture analysed by two processes at once: one dissects, the other analyses.

Theory of operation
-------------------
`drive_pipelined` forks a child that reads the capture through an ordinary capture session
and decodes every command frame's arguments (the split into TrID and arguments and the named
fields: the part of the analysis that needs nothing from other frames). For each source event
it sends, in order, the frame records the event completed and then the flows it closed; a
flow is described once, before its first use. The parent rebuilds each record, its frame's
decoded arguments already cached, and gives the records and the closed flows to its analyzers
exactly as `Analysis.push` does in one process: every analyzer sees the same calls in the same
order, so the output cannot differ. The two halves run at once, on two cores.

Command frames (the bulk) travel as tuples of plain values; any other frame travels pickled
whole. Messages are batches of items, and the pipe's buffer bounds how far the child runs
ahead, so memory stays flat. The child ends with the session's notes and the error that
stopped the source, if any; a crash in the child is raised in the parent with its traceback.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Final

from dissectors.api import Direction
from dissectors.msnp.decode import Decoded, decode
from dissectors.msnp.frames import CommandFrame, new_command_frame
from msnsniff.capture import Flow, SourceNote
from msnsniff.errors import MsnsniffError
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession, FrameRecord

BATCH: Final = 2048  # items per message

# item tags (an item is a tuple; its first element says what it is)
FLOW: Final = 0  # (FLOW, id, client, server, label, opened): a flow, before its first use
COMMAND: Final = 1  # (COMMAND, no, ts, flow id, proto, c2s, offset, raw, header_len,
#                     payload_length, dialect, inferred, cmd, split, fields, variant, problems,
#                     credentials): a CommandFrame's record, decoded
RECORD: Final = 2  # (RECORD, no, ts, flow id, proto, frame): any other record
CLOSED: Final = 3  # (CLOSED, flow id): both directions of the flow ended

# the child's last message: (DONE, notes, error or None) or (CRASH, traceback text)
DONE: Final = "done"
CRASH: Final = "crash"

_new_tuple: Final = tuple.__new__


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

    def records(self, records: list[FrameRecord], closed: list[Flow]) -> None:
        items = self.items
        flows = self.flows
        c2s = Direction.C2S
        for record in records:
            flow = record.flow
            flow_id = flow.id
            if flow_id not in flows:
                flows.add(flow_id)
                items.append(_flow_item(flow))
            frame = record.frame
            if type(frame) is CommandFrame:
                fields, variant, problems, credentials = decode(frame)
                trid_args = frame._split
                items.append(
                    (
                        COMMAND, record.no, record.ts, flow_id, record.proto,
                        frame.direction is c2s, frame.offset, frame.raw, frame.header_len,
                        frame.payload_length, frame.dialect, frame.dialect_inferred, frame.cmd,
                        trid_args, fields, variant, problems, credentials,
                    )
                )  # fmt: skip
            else:
                if isinstance(frame, CommandFrame):
                    decode(frame)
                items.append((RECORD, record.no, record.ts, flow_id, record.proto, frame))
        for flow in closed:
            if flow.id not in flows:  # closed before any frame of it: described all the same
                items.append(_flow_item(flow))
            flows.discard(flow.id)
            items.append((CLOSED, flow.id))
        if len(items) >= BATCH:
            self.flush()

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


def _dissect(path: str, session: CaptureSession, conn: Connection) -> None:
    """The child: the capture dissected, decoded and sent, then the notes and error."""
    from msnsniff.capture.sources import open_source

    sender = _Sender(conn)
    try:
        error = None
        try:
            for event in open_source(path):
                records = session.push(event)
                if records or session.closed:
                    sender.records(records, session.closed)
            sender.records(session.finish(), session.closed)
        except MsnsniffError as exc:
            error = str(exc)
            sender.records(session.finish(), session.closed)
        sender.flush()
        conn.send_bytes(pickle.dumps((DONE, session.notes, error)))
    except BaseException:  # reported to the parent, which raises it
        with contextlib.suppress(OSError):
            conn.send_bytes(pickle.dumps((CRASH, traceback.format_exc())))
    finally:
        conn.close()


class _Rebuilder:
    """The parent's side: items back into frame records, fed to the analysis in order."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.flows: dict[str, Flow] = {}

    def feed(self, items: list[tuple[Any, ...]]) -> None:
        flows = self.flows
        feed = self.analysis.feed
        records: list[FrameRecord] = []
        c2s, s2c = Direction.C2S, Direction.S2C
        make = new_command_frame
        set_attr = object.__setattr__
        for item in items:
            tag = item[0]
            if tag == COMMAND:
                (
                    _tag, no, ts, flow_id, proto, is_c2s, offset, raw, header_len,
                    payload_length, dialect, inferred, cmd, split, fields, variant, problems,
                    credentials,
                ) = item  # fmt: skip
                frame = make(
                    c2s if is_c2s else s2c, offset, raw, header_len, payload_length, dialect,
                    inferred, cmd,
                )  # fmt: skip
                set_attr(frame, "_split", split)
                set_attr(frame, "_decoded", _new_tuple(
                    Decoded, (fields, variant, problems, credentials)
                ))  # fmt: skip
                records.append(_new_tuple(FrameRecord, (no, ts, flows[flow_id], proto, frame)))
            elif tag == RECORD:
                _tag, no, ts, flow_id, proto, other = item
                records.append(_new_tuple(FrameRecord, (no, ts, flows[flow_id], proto, other)))
            elif tag == FLOW:
                _tag, flow_id, client, server, label, opened = item
                flows[flow_id] = Flow(flow_id, client, server, label, opened)
            else:  # CLOSED: what came before it was fed first, as in one process
                if records:
                    feed(records, ())
                    records = []
                feed((), (flows.pop(item[1]),))
        if records:
            feed(records, ())


def drive_pipelined(
    analysis: Analysis,
    path: str,
    each: Callable[[], None],
    session: Callable[[], CaptureSession],
) -> str | None:
    """Analyse `path` with a forked child dissecting it (a fresh session from `session`)
    while this process runs `analysis`'s analyzers; `each` is called after every batch.
    Returns the error that stopped the source, if any; the session's notes land in
    `analysis.session.notes`. The analyzers end (`finish`) here, as `Analysis.finish` does."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    child_session = session()
    proc = ctx.Process(target=_dissect, args=(path, child_session, send), daemon=True)
    proc.start()
    send.close()  # the parent only reads: a dead child then shows as EOF
    rebuild = _Rebuilder(analysis)
    loads = pickle.loads
    try:
        while True:
            try:
                message = loads(recv.recv_bytes())
            except EOFError as exc:
                raise MsnsniffError(f"{path}: the dissecting process died") from exc
            if type(message) is list:
                rebuild.feed(message)
                each()
                continue
            if message[0] == CRASH:
                raise RuntimeError(f"the dissecting process failed:\n{message[1]}")
            _done, notes, error = message
            notes_list: list[SourceNote] = notes
            analysis.session.notes.extend(notes_list)
            analysis.conclude()
            each()
            return str(error) if error is not None else None
    finally:
        recv.close()
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
            proc.join()
