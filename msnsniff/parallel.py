"""One capture file read by several processes, with output identical to a single process.

Theory of operation
-------------------
Every worker reads the whole file but keeps only the connections of its share
(`partition_key % jobs`, the same for both directions), runs the ordinary capture session
over them and renders each frame record (text or JSON) without its frame number. A record
is keyed by (the packet whose arrival completed it, its flow id): within a worker the keys
only grow, and a single process emits records in exactly that order, because each packet
belongs to one connection and the frames flushed at the end come out by flow id (a flow's id
is the packet that opened it). The parent merges the workers' sorted streams on that key and
numbers the frames, so `-j N` prints what `-j 1` prints.

Workers send batches through pipes; a worker whose pipe is full waits, so memory stays
bounded however far one worker runs ahead. Errors and notes about the file come once per
worker and are reported once.
"""

from __future__ import annotations

import heapq
import multiprocessing
import resource
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

from msnsniff.capture import SourceNote
from msnsniff.errors import MsnsniffError
from msnsniff.session.capture_session import FrameRecord

if TYPE_CHECKING:  # ForkContext does not exist on Windows
    from multiprocessing.context import ForkContext, SpawnContext

BATCH: Final = 2048  # rendered lines per message
QUIET_RECORDS: Final = 50_000  # send an empty progress message at least this often

Line = tuple[int, int, str]  # (record, flow id, rendered line without its frame number)


@dataclass(slots=True)
class WorkerSummary:
    """What a worker reports when it is done."""

    frames: int = 0
    undissected_bytes: int = 0
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


def _renderer(fmt: str, redact: bool) -> Callable[[FrameRecord], str] | None:
    """A record's line without its leading frame number (the parent adds it)."""
    from msnsniff.output import record_to_jsonl, record_to_text

    if fmt == "jsonl":

        def jsonl(record: FrameRecord) -> str:
            line = record_to_jsonl(record, redact=redact)
            return line[line.index(",") :]  # drop '{"no":N'

        return jsonl
    if fmt == "text":

        def text(record: FrameRecord) -> str:
            return record_to_text(record, redact=redact).lstrip(" ").split(" ", 1)[1]

        return text
    return None


def _number(fmt: str, no: int, rest: str) -> str:
    return f'{{"no":{no}{rest}' if fmt == "jsonl" else f"{no:>6} {rest}"


def _work(
    path: str,
    kind: str,
    share: int,
    jobs: int,
    fmt: str,
    redact: bool,
    decode_as: Mapping[str, str],
    conn: Connection,
) -> None:
    """A worker: one share of the file's connections, rendered, sent in key order."""
    from msnsniff.capture.pcap import Position, read_pcap, read_pcapng
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    summary = WorkerSummary()
    position = Position()
    reader = read_pcap if kind == "pcap" else read_pcapng
    session = CaptureSession(load_dissectors(), decode_as=decode_as)
    render = _renderer(fmt, redact)
    batch: list[Line] = []
    last_sent = 0
    try:
        for event in reader(path, partition=(share, jobs), position=position):
            records = session.push(event)
            record = position.record
            if records and render is not None:
                batch += [(record, int(r.flow.id), render(r)) for r in records]
            if len(batch) >= BATCH or record - last_sent >= QUIET_RECORDS:
                conn.send(batch)
                batch, last_sent = [], record
        record = position.record
        if render is not None:
            batch += [(record, int(r.flow.id), render(r)) for r in session.finish()]
        else:
            session.finish()
    except MsnsniffError as exc:
        summary.error = str(exc)
    conn.send(batch)
    summary.frames = session.frames
    summary.undissected_bytes = session.undissected_bytes
    summary.notes = session.notes
    summary.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send(summary)
    conn.close()


def _lines(conn: Connection, done: list[WorkerSummary]) -> Iterator[Line]:
    while True:
        message = conn.recv()
        if isinstance(message, WorkerSummary):
            done.append(message)
            return
        yield from message


def read_parallel(
    path: Path,
    kind: str,
    jobs: int,
    *,
    fmt: str,
    redact: bool,
    decode_as: Mapping[str, str],
    out: TextIO,
) -> ReadResult:
    """Dissect a pcap or pcapng file with `jobs` processes and print its frames in order."""
    ctx: SpawnContext | ForkContext = (
        multiprocessing.get_context("fork")  # fast start on POSIX: the code is loaded already
        if "fork" in multiprocessing.get_all_start_methods()
        else multiprocessing.get_context("spawn")
    )
    pipes = [ctx.Pipe(duplex=False) for _ in range(jobs)]
    procs = [
        ctx.Process(
            target=_work,
            args=(str(path), kind, share, jobs, fmt, redact, dict(decode_as), send),
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
    try:
        streams = [_lines(recv, done) for recv, _send in pipes]
        for _record, _flow, rest in heapq.merge(*streams, key=lambda line: line[:2]):
            no += 1
            write(_number(fmt, no, rest) + "\n")
    except EOFError as exc:
        raise MsnsniffError(f"{path}: a worker process died") from exc
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
    )
