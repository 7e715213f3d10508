"""`msnsniff export CAPTURE... -o OUT`: frames and analysis in other tools' formats, chosen
by OUT's extension, for one capture or a corpus of them.

* `.jsonl`: `read -T jsonl`'s frame objects (pairing included) plus `capture` (the file)
  and `findings` (the expert findings about that frame).
* `.txt`: a docs-style transcript (`TIME LABEL >>> line`, TIME `-` where the source has
  none, payload lines `  | ...`,
  `--- connection closed`), which `msnsniff read` reads back; each capture's part starts
  with `# msnsniff export of NAME`, so several read back as those captures, not one.
* `.pcapng`: the original packets of the selected flows, with their own packet comments (the
  proxy's notes), and each expert finding as a comment on the packet that carried the end of
  its frame (Wireshark shows them as packet comments).
* `.parquet`: a directory of four tables, hive-partitioned by capture so DuckDB and Spark
  read the whole corpus (`frames`, `transactions`, `list_changes`, `findings`; the schema
  is `SCHEMA` below and in the README). Needs pyarrow (`pip install msnsniff[parquet]`).

Each capture is analysed twice (the findings first, then the frames with them), so memory
stays flat; several captures go to `-j` worker processes and their parts are joined in the
order the captures were named (directories: their captures sorted by path), so the output is
the same for any `-j`. `-Y FILTER` keeps the frames it selects (for `.pcapng`: their flows).
`--redact` exports from a redacted copy of each capture (`msnsniff redact`).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Final, TextIO

from dissectors.api import Direction, Frame
from dissectors.http.frames import HttpMalformed, HttpMessage, HttpRequest, HttpResponse
from dissectors.msnp.frames import (
    CommandFrame,
    GapFrame,
    MalformedFrame,
    MsnpFrame,
    PartialFrame,
)
from msnsniff.capture.packets import Segment
from msnsniff.capture.transcript import EXPORT_HEADER
from msnsniff.errors import MsnsniffError, require_output_dir
from msnsniff.session.analysis import Analysis, Finding
from msnsniff.session.capture_session import CaptureSession, FrameRecord

FORMATS: Final = (".jsonl", ".txt", ".pcapng", ".parquet")
ROWS_PER_PART: Final = 100_000

SCHEMA: Final = {
    "frames": "capture, no, ts, flow, src, dst, dir, proto, cmd, trid, args (list<string>), "
              "payload_length, content_type, error_code, error_name, malformed, partial, "
              "request, rtt",
    "transactions": "capture, flow, proto, trid, cmd, request, replies (list<int64>), rtt, "
                    "expects_reply",
    "list_changes": "capture, account, flow, frame, request, kind, version, before_version, "
                    "list, contact, group, value, name",
    "findings": "capture, frame, flow, severity, code, message, related",
}  # fmt: skip
"""The Parquet tables and their columns (every table also has the `capture` partition)."""

COLUMNS: Final = {
    "frames": (("no", "int64"), ("ts", "float64"), ("flow", "string"), ("src", "string"),
               ("dst", "string"), ("dir", "string"), ("proto", "string"), ("cmd", "string"),
               ("trid", "int64"), ("args", "list<string>"), ("payload_length", "int64"),
               ("content_type", "string"), ("error_code", "int64"), ("error_name", "string"),
               ("malformed", "string"), ("partial", "bool"), ("request", "int64"),
               ("rtt", "float64")),
    "transactions": (("flow", "string"), ("proto", "string"), ("trid", "int64"),
                     ("cmd", "string"),
                     ("request", "int64"), ("replies", "list<int64>"), ("rtt", "float64"),
                     ("expects_reply", "bool")),
    "list_changes": (("account", "string"), ("flow", "string"), ("frame", "int64"),
                     ("request", "int64"), ("kind", "string"), ("version", "int64"),
                     ("before_version", "int64"), ("list", "string"), ("contact", "string"),
                     ("group", "string"), ("value", "string"), ("name", "string")),
    "findings": (("severity", "string"), ("code", "string"), ("message", "string"),
                 ("flow", "string"), ("frame", "int64"), ("related", "int64")),
}  # fmt: skip
"""Each table's column types, fixed: a capture whose column is empty (no error reply, only
HTTP) writes it with the same type as the others, so DuckDB and Spark read the parts of a
corpus as one table. A group id is a number up to MSNP9 and a GUID from MSNP10: text."""


@dataclass(frozen=True, slots=True)
class Options:
    """How `msnsniff export` reads the captures: format, filter, redaction, --decode-as."""

    kind: str  # one of FORMATS
    filter: str | None
    redact: bool
    decode_as: tuple[tuple[str, str], ...]
    section: int | None = None  # this capture's: one of a transcript's several (captures_of)


@dataclass(slots=True)
class Part:
    """What one capture's export left: a file or directory to join, and its messages."""

    path: Path
    messages: list[str] = field(default_factory=list)  # the input's damage: exit status 2
    frames: int = 0
    notes: list[str] = field(default_factory=list)  # what the format could not hold


# -- one capture ---------------------------------------------------------------------------


def _session(options: Options) -> CaptureSession:
    from msnsniff.registry import load_dissectors

    return CaptureSession(load_dissectors(), decode_as=dict(options.decode_as))


def _events(path: Path, options: Options, messages: list[str]) -> Iterator[Any]:
    from msnsniff.capture.sources import open_source

    try:
        yield from open_source(path, options.section)
    except MsnsniffError as exc:
        messages.append(f"msnsniff: {path}: {exc}")


@dataclass(slots=True)
class _Facts:
    """What the first pass learns: findings by frame, transactions, list changes."""

    findings: list[Finding] = field(default_factory=list)
    transactions: list[tuple[str, Any]] = field(default_factory=list)  # (proto, transaction)
    changes: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # a writer's: what its format left out
    # connections that closed (not cut by the capture's end), in order: (frames numbered by
    # then, flow id, time), so a transcript closes each where it closed
    ends: list[tuple[int, str, float | None]] = field(default_factory=list)


def _first_pass(path: Path, options: Options, messages: list[str], keep: bool,
                source: Path | None = None) -> _Facts:  # fmt: skip
    """The findings (and for Parquet the tables' other facts) of the capture at `path`;
    `source`: the capture `path` is a redacted copy of, which notes about the file name."""
    from msnsniff.capture.sources import shown
    from msnsniff.reports import add_all_analyzers
    from msnsniff.session.httppairing import HttpTransactions
    from msnsniff.session.transactions import Transactions

    facts = _Facts()
    analysis = Analysis(_session(options))
    change = facts.changes.append if keep else None
    transactions = analysis.add(lambda sink: Transactions(
        sink, on_settle=(lambda t: facts.transactions.append(("msnp", t))) if keep else None))
    if keep:  # an HTTP exchange is a transaction too: the method, its response, the time
        analysis.add(lambda sink: HttpTransactions(
            lambda _finding: None,  # its findings are the pairing view's to report
            on_settle=lambda t: facts.transactions.append(("http", t))))
    add_all_analyzers(analysis, transactions, on_list_change=change)
    session = analysis.session
    for event in _events(path, options, messages):
        analysis.push(event)
        for flow in session.closed:
            if flow.id not in session.cut:
                facts.ends.append((session.frames, flow.id, session.hung_up.get(flow.id)))
    analysis.finish()
    facts.findings = analysis.findings
    copy = str(path) if source is not None else None
    for note in analysis.session.notes:  # damage: exit status 2; any other note is said only
        where = shown(source) if source is not None and note.location == copy else note.location
        (messages if note.fatal else facts.notes).append(f"msnsniff: {where}: {note.message}")
    return facts


def _frames(path: Path, options: Options, messages: list[str]) -> Iterator[tuple[Any, Any]]:
    """(record, pairing) of every frame the filter selects."""
    for record, pairing, selected in _all_frames(path, options, messages):
        if selected:
            yield record, pairing


def _all_frames(
    path: Path, options: Options, messages: list[str]
) -> Iterator[tuple[Any, Any, bool]]:
    """(record, pairing, whether the filter selects it) of every frame."""
    from msnsniff.session.filter import compile_filter
    from msnsniff.session.pairing import run_paired

    display = None if options.filter is None else compile_filter(options.filter)
    analysis = Analysis(_session(options), keep_findings=False)
    for paired in run_paired(analysis, _events(path, options, messages)):
        pairing = paired.pairing
        yield paired.record, pairing, display is None or display.matches(
            paired.record, None if pairing is None else pairing.extra()
        )


def export_one(source: Path, name: str, part: Path, options: Options) -> Part:
    """Export one capture to `part` (a file, or for Parquet a directory)."""
    result = Part(part)
    path = source
    tmp: tempfile.TemporaryDirectory[str] | None = None
    redaction: list[str] = []  # what --redact did to packets, as `redact` says it
    try:
        if options.redact:
            try:
                path, tmp = _redacted(source, name, result.messages, redaction)
            except MsnsniffError as exc:  # this capture only: the others are still exported
                result.messages.append(f"msnsniff: {exc}; left out (--redact exports only what "
                                       "it could redact)")  # fmt: skip
                path, tmp = _no_packets()
        facts = _first_pass(path, options, result.messages, options.kind == ".parquet",
                            source if path != source else None)
        writer = WRITERS[options.kind]
        result.frames = writer(path, name, part, options, facts, result.messages)
        result.notes = redaction + facts.notes
    finally:
        if tmp is not None:
            tmp.cleanup()
    return result


def _redacted(source: Path, name: str, messages: list[str], notes: list[str]
              ) -> tuple[Path, tempfile.TemporaryDirectory[str]]:  # fmt: skip
    """A redacted copy of `source` (of a damaged one, of the packets before its damage,
    which goes in `messages`, in `read`'s words); what the redaction did to packets beyond
    names and secrets (left out, written without their payload...) goes in `notes`, as
    `msnsniff redact` says it."""
    from msnsniff.capture.sources import file_kind
    from msnsniff.redact import redact, summary_notes

    try:
        kind = file_kind(source)
    except MsnsniffError as exc:  # (it leaves the naming to its callers)
        raise MsnsniffError(f"{source}: {exc}") from exc
    if kind == "transcript":
        raise MsnsniffError(f"{source}: --redact works on pcap and pcapng captures only")
    tmp = tempfile.TemporaryDirectory(prefix="msnsniff-redact-")
    out = Path(tmp.name) / "redacted.pcapng"
    with out.open("wb") as fh:
        summary = redact(source, fh, out.name)
    if summary.damage is not None:
        messages.append(f"msnsniff: {summary.damage}")
    notes.extend(f"msnsniff: {name}: --redact: {note}" for note in summary_notes(summary))
    return out, tmp


def _no_packets() -> tuple[Path, tempfile.TemporaryDirectory[str]]:
    """An empty capture: what a capture that could not be redacted is exported as (never the
    capture itself), so its part is written the way any capture without frames is."""
    from msnsniff.capture.write import PcapngWriter

    tmp = tempfile.TemporaryDirectory(prefix="msnsniff-redact-")
    out = Path(tmp.name) / "nothing.pcapng"
    with out.open("wb") as fh:
        PcapngWriter(fh)
    return out, tmp


def _by_frame(findings: Iterable[Finding]) -> dict[int, list[Finding]]:
    out: dict[int, list[Finding]] = {}
    for f in findings:
        if f.frame is not None:
            out.setdefault(f.frame, []).append(f)
    return out


# -- writers ----------------------------------------------------------------------------------


def _write_jsonl(path: Path, name: str, part: Path, options: Options, facts: _Facts,
                 messages: list[str]) -> int:  # fmt: skip
    from msnsniff.output import dumps, record_to_json

    findings = _by_frame(facts.findings)
    count = 0
    with part.open("wb") as fh:
        for record, pairing in _frames(path, options, messages):
            obj = record_to_json(record, redact=options.redact, pairing=pairing)
            obj["capture"] = name
            obj["findings"] = [f.to_json() for f in findings.get(record.no, ())]
            fh.write(dumps(obj).encode("utf-8") + b"\n")  # undecodable bytes as \xNN
            count += 1
    return count


def _write_txt(path: Path, name: str, part: Path, options: Options, facts: _Facts,
               messages: list[str]) -> int:  # fmt: skip
    count = 0
    written: set[str] = set()  # labels with a frame in the transcript
    left: dict[tuple[str, str], int] = {}  # what a transcript cannot hold: (kind, why)
    stem = "_".join(Path(name).stem.split()) or "capture"  # a label is one word: no spaces
    ends = iter(facts.ends)
    end = next(ends, None)
    with part.open("w", encoding="utf-8", errors="surrogateescape", newline="\n") as fh:
        fh.write(f"{EXPORT_HEADER}{name}\n")

        def close_before(no: int) -> None:
            """Close the connections that closed before frame `no`, where they closed (one
            the capture left open is left open: it reads back as cut, as it was)."""
            nonlocal end
            while end is not None and end[0] < no:
                label = f"{stem}-flow{end[1]}"
                if label in written:
                    when = "-" if end[2] is None else f"{end[2]:.6f}"
                    fh.write(f"{when} {label} --- connection closed\n")
                end = next(ends, None)

        for record, _pairing in _frames(path, options, messages):
            close_before(record.no)
            frame = record.frame
            if not isinstance(frame, MsnpFrame) or not isinstance(frame, CommandFrame):
                kind = ("partial (joined mid-way, not damage)" if isinstance(frame, PartialFrame)
                        else "malformed or gap" if isinstance(frame, MsnpFrame)
                        else record.proto.upper())  # fmt: skip
                why = "a transcript holds MSNP command lines only"
                left[kind, why] = left.get((kind, why), 0) + 1
                continue
            if _breaks_lines(frame):  # it would read back as other lines, or as garbage
                why = ("a CR or LF that ends no CRLF line, as in binary P2P data, cannot be "
                       "written as transcript lines")
                left["MSNP", why] = left.get(("MSNP", why), 0) + 1
                continue
            label = f"{stem}-flow{record.flow.id}"
            arrow = ">>>" if frame.direction is Direction.C2S else "<<<"
            ts = "-" if record.ts is None else f"{record.ts:.6f}"  # (a transcript's: no time)
            fh.write(f"{ts} {label} {arrow} {_text(frame.line)}\n")
            payload = frame.payload_bytes
            if payload:
                lines = payload.split(b"\r\n")
                if lines and lines[-1] == b"":
                    lines.pop()
                for line in lines:
                    fh.write(f"    | {_text(line)}\n")
            written.add(label)
            count += 1
        close_before(sys.maxsize)
    for (kind, why), n in left.items():
        facts.notes.append(f"msnsniff: {name}: {n} {kind} frames left out ({why}; .jsonl or "
                           ".pcapng keep them)")  # fmt: skip
    return count


def _breaks_lines(frame: CommandFrame) -> bool:
    """True when the frame's line, or a CRLF-ended line of its payload, holds a CR or LF of
    its own: the transcript reader ends a line there, so the frame would not read back."""
    payload = frame.payload_bytes or b""
    if payload.endswith(b"\r\n"):
        payload = payload[:-2]
    parts = (frame.line, *payload.split(b"\r\n"))
    return any(b"\r" in part or b"\n" in part for part in parts)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _write_pcapng(path: Path, name: str, part: Path, options: Options, facts: _Facts,
                  messages: list[str]) -> int:  # fmt: skip
    from msnsniff.capture.pcap import packet_records
    from msnsniff.capture.sources import file_kind
    from msnsniff.capture.write import PcapngWriter
    from msnsniff.session.tunnels import Carriers

    try:
        kind = file_kind(path)
    except MsnsniffError:  # not a capture: the first pass said so, in read's words
        kind = None
    if kind != "pcap" and kind != "pcapng":  # this capture only: the others are still
        # exported, and it leaves an empty section, so even an export of these alone is a pcapng
        if kind == "transcript":
            messages.append(f"msnsniff: {name}: a transcript has no packets to export as "
                            "pcapng; left out")  # fmt: skip
        with part.open("wb") as fh:
            PcapngWriter(fh)
        return 0
    findings = _by_frame(facts.findings)
    flows: set[tuple[str | None, str | None]] = set()
    ends: dict[tuple[str, str, str], list[tuple[int, str]]] = {}
    carriers = Carriers()
    chosen: set[str] = set()  # logical flows selected (their labels: their first keys)
    carrier: FrameRecord | None = None  # the last frame that carried a logical flow's bytes
    count = 0
    for record, _pairing, selected in _all_frames(path, options, messages):
        flow = record.flow
        inner = "/" in flow.id  # a logical flow (MSNP through the HTTP gateway)
        if getattr(record.frame, "carried", ()):
            carrier = record
            carriers.add(record)
        if selected:
            if inner and flow.label is not None:
                chosen.add(flow.label)
            else:
                flows.add((flow.client, flow.server))
            count += 1
        # a logical frame's finding goes on the packet that carried its last byte
        at = carrier if inner and carrier is not None else record
        for f in findings.get(record.no, ()):  # kept for every flow, written for the chosen
            frame = at.frame
            end = frame.offset + max(len(frame.raw), 1)
            key = (at.flow.client or "", at.flow.server or "", frame.direction.value)
            ends.setdefault(key, []).append((end, f"msnsniff {f.severity.name.lower()} "
                                                  f"{f.code}: {f.message}"))
    flows |= {(f.client, f.server) for f in carriers.of(chosen)}
    writer = _PacketWriter(part, flows, ends, _fragment_segments(path))
    comments: dict[int, str] = {}  # the input's packet comments (the proxy's notes): kept
    origlens: dict[int, int] = {}  # and the wire lengths of the packets it cut short
    try:
        for no, ts, link, data in packet_records(path, comments, origlens):
            try:
                writer.packet(no, ts, link, data, comments.pop(no, None), origlens.pop(no, None))
            except MsnsniffError as exc:  # a time a pcapng cannot hold: say which packet
                raise MsnsniffError(f"{path}: packet {no}: {exc}") from exc
    except MsnsniffError as exc:  # damage: the packets before it are written, as read shows
        messages.append(f"msnsniff: {exc}")  # their frames (the same words: said once)
    writer.close()
    return count


def _fragment_segments(path: Path) -> dict[int, tuple[Segment, bool]]:
    """Each IP fragment's packet number -> the TCP segment its datagram carries, and whether
    it is the fragment that completed the datagram (a fragment has no TCP ports of its own,
    so which flow it belongs to is known only once its datagram is put back together)."""
    from msnsniff.capture.packets import Defragmenter, fragment_of, tcp_segment
    from msnsniff.capture.pcap import packet_records

    defrag = Defragmenter()
    pending: dict[tuple[bytes, bytes, int], list[int]] = {}
    out: dict[int, tuple[Segment, bool]] = {}
    with contextlib.suppress(MsnsniffError):  # damage: the writing pass reports it
        for no, _ts, link, data in packet_records(path):
            frag = fragment_of(link, data)
            if frag is None:
                continue
            pending.setdefault(frag[0], []).append(no)
            seg = tcp_segment(link, data, defrag)
            if seg is not None:
                for each in pending.pop(frag[0]):
                    out[each] = (seg, each == no)
    return out


@dataclass(slots=True)
class _HalfPos:
    base: int | None = None


class _PacketWriter:
    """Writes the packets of the selected flows, with comments where findings' frames end."""

    def __init__(self, part: Path, flows: set[tuple[str | None, str | None]],
                 ends: dict[tuple[str, str, str], list[tuple[int, str]]],
                 fragments: dict[int, tuple[Segment, bool]]) -> None:  # fmt: skip
        self._fragments = fragments  # IP fragments: their datagram's segment (see above)
        self._fh: BinaryIO = part.open("wb")
        self._writer: Any = None
        self._flows = flows
        self._ends = {k: sorted(v) for k, v in ends.items()}
        self._halves: dict[tuple[bytes, int, bytes, int], _HalfPos] = {}
        self._first_link: int | None = None  # the capture's, for a file no packet is chosen for

    def packet(self, no: int, ts: float, link: int, data: bytes,
               comment: str | None = None, orig_len: int | None = None) -> None:  # fmt: skip
        """Write packet `no` if its flow was selected, with its own `comment` (the input's)
        and the findings whose frames end in it; `orig_len`: its wire length, if the
        capture cut it short."""
        from msnsniff.capture.packets import format_endpoint, tcp_segment
        from msnsniff.capture.write import PcapngWriter

        self._first_link = link if self._first_link is None else self._first_link
        seg, completes = self._fragments.get(no) or (tcp_segment(link, data), True)
        if seg is None:
            return
        a, b = format_endpoint(seg.src, seg.sport), format_endpoint(seg.dst, seg.dport)
        if (a, b) in self._flows:
            key = (a, b, "c2s")
        elif (b, a) in self._flows:
            key = (b, a, "s2c")
        else:
            return
        if self._writer is None:
            self._writer = PcapngWriter(self._fh, linktype=link)
        interface = self._writer.interface(link)  # a pcapng of several link types keeps each
        if not completes:  # an IP fragment before the one that completes its datagram
            self._writer.write(ts, data, comment, interface, orig_len)
            return
        half = self._halves.setdefault((seg.src, seg.sport, seg.dst, seg.dport), _HalfPos())
        if seg.flags & 0x02:
            half.base = (seg.seq + 1) & 0xFFFFFFFF
        elif seg.payload:
            if half.base is None:
                half.base = seg.seq
            start = (seg.seq - half.base) & 0xFFFFFFFF
            end = start + len(seg.payload)
            pending = self._ends.get(key)
            notes = [] if comment is None else [comment]
            kept = set() if comment is None else set(comment.split("\n"))
            while pending and start < pending[0][0] <= end:
                note = pending.pop(0)[1]
                if note not in kept:  # an export of an export: its findings are there
                    notes.append(note)
            comment = "\n".join(notes) or None
        self._writer.write(ts, data, comment, interface, orig_len)

    def close(self) -> None:
        if self._writer is None:  # nothing selected: still a pcapng file, with no packets
            from msnsniff.capture.write import PcapngWriter

            link = 1 if self._first_link is None else self._first_link
            self._writer = PcapngWriter(self._fh, linktype=link)
        self._writer.flush()
        self._fh.close()


def _write_parquet(path: Path, name: str, part: Path, options: Options, facts: _Facts,
                   messages: list[str]) -> int:  # fmt: skip
    tables = _ParquetTables(part, name)
    count = 0
    for record, pairing in _frames(path, options, messages):
        tables.frame(record, pairing)
        count += 1
    for proto, txn in facts.transactions:
        tables.add("transactions", {
            "flow": txn.flow, "proto": proto, "trid": txn.trid if proto == "msnp" else None,
            "cmd": txn.cmd, "request": txn.request, "replies": _replies(proto, txn),
            "rtt": txn.rtt, "expects_reply": txn.expects_reply,
        })  # fmt: skip
    for c in facts.changes:
        tables.add("list_changes", c.to_json())
    for f in facts.findings:
        tables.add("findings", {k: v for k, v in f.to_json().items()})
    tables.close()
    return count


def _replies(proto: str, txn: Any) -> list[int]:
    """A transaction's reply frames as JSON Lines' `replies` has them: an MSNP request's
    replies and what it led to (the JOI a ringing CAL brought)."""
    outcome = getattr(txn, "outcome", None) if proto == "msnp" else None
    return list(txn.replies) + ([] if outcome is None else [outcome])


def _malformed_reason(frame: Frame) -> str | None:
    """The `malformed` column: JSON Lines' `malformed.reason` (an HTTP response's `reason`
    is its status text, not a fault, so only malformed and gap frames have one)."""
    if isinstance(frame, GapFrame):
        return f"{frame.length} {frame.reason}"
    if isinstance(frame, MalformedFrame | HttpMalformed):
        return frame.reason
    return None


class _ParquetTables:
    """Rows collected per table and written as part files under TABLE/capture=NAME/."""

    def __init__(self, root: Path, capture: str) -> None:
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise MsnsniffError("Parquet export needs pyarrow: pip install 'msnsniff[parquet]'"
                                ) from exc  # fmt: skip
        self._root = root
        self._capture = capture
        self._rows: dict[str, list[dict[str, Any]]] = {t: [] for t in SCHEMA}
        self._parts: dict[str, int] = dict.fromkeys(SCHEMA, 0)

    def frame(self, record: FrameRecord, pairing: Any) -> None:
        """One `frames` row. `malformed` is the reason and `partial` whether it is only the
        tail of a frame the capture joined mid-way (JSON Lines' `malformed.partial`): true
        for that, false for damage (malformed bytes, a gap), null for a well-formed frame."""
        frame = record.frame
        reason = _malformed_reason(frame)
        row: dict[str, Any] = {
            "no": record.no, "ts": record.ts, "flow": record.flow.id,
            "src": record.flow.client if frame.direction is Direction.C2S else record.flow.server,
            "dst": record.flow.server if frame.direction is Direction.C2S else record.flow.client,
            "dir": frame.direction.value, "proto": record.proto, "cmd": None, "trid": None,
            "args": None, "payload_length": None, "content_type": None, "error_code": None,
            "error_name": None, "malformed": reason,
            "partial": None if reason is None else isinstance(frame, PartialFrame),
            "request": None if pairing is None else pairing.request,
            "rtt": None if pairing is None else pairing.rtt,
        }  # fmt: skip
        if isinstance(frame, HttpRequest):  # as in JSON Lines: method and target
            row["cmd"], row["args"] = frame.method, [frame.target]
        elif isinstance(frame, HttpResponse):  # status and reason
            row["cmd"], row["args"] = str(frame.status), [frame.reason]
        if isinstance(frame, HttpMessage):
            row["payload_length"] = frame.wire_body_length or None
            row["content_type"] = frame.content_type
        elif isinstance(frame, CommandFrame):
            row["cmd"], row["trid"], row["args"] = frame.cmd, frame.trid, list(frame.args)
            row["payload_length"] = frame.payload_length
            if frame.payload_length is not None:
                payload = frame.payload
                row["content_type"] = getattr(payload, "content_type", None)
            code = getattr(frame, "code", None)
            if code is not None:
                row["error_code"], row["error_name"] = code, getattr(frame, "error_name", None)
        self.add("frames", row)

    def add(self, table: str, row: dict[str, Any]) -> None:
        from msnsniff.output import printable_tree

        rows = self._rows[table]
        rows.append(printable_tree(row))  # Parquet strings are UTF-8: bytes as \xNN
        if len(rows) >= ROWS_PER_PART:
            self._flush(table)

    def _flush(self, table: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = self._rows[table]
        if not rows and self._parts[table]:
            return
        texts = [name for name, kind in COLUMNS[table] if kind == "string"]
        for row in rows:
            for name in texts:
                if row.get(name) is not None and not isinstance(row[name], str):
                    row[name] = str(row[name])
        directory = self._root / table / f"capture={_partition(self._capture)}"
        directory.mkdir(parents=True, exist_ok=True)
        schema = pa.schema([(name, _arrow_type(kind)) for name, kind in COLUMNS[table]])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema),
                       directory / f"part-{self._parts[table]}.parquet")  # fmt: skip
        self._parts[table] += 1
        self._rows[table] = []

    def close(self) -> None:
        for table in SCHEMA:  # a table with no rows still gets a part: its columns
            self._flush(table)


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    if kind.startswith("list<"):
        return pa.list_(_arrow_type(kind[5:-1]))
    return {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
            "bool": pa.bool_()}[kind]  # fmt: skip


MAX_PARTITION: Final = 240  # a directory name's 255 bytes, less `capture=` and a `-N` suffix


def _partition(name: str) -> str:
    """A capture's name as a hive partition value: percent-encoded as Hive and Spark write
    them (no '/' or '=' left), which DuckDB, pyarrow and Spark decode, so the `capture`
    column reads the name as given, as JSON Lines' `capture` has it (a name too long for a
    directory keeps its end, after `...`)."""
    from urllib.parse import quote

    value = quote(name, safe="")
    if len(value) <= MAX_PARTITION:
        return value
    # too long for a directory name (a deep path): its end, which holds the file's name
    return next("..." + quote(name[i:], safe="") for i in range(len(name))
                if len(quote(name[i:], safe="")) <= MAX_PARTITION - 3)  # fmt: skip


Writer = Callable[[Path, str, Path, Options, _Facts, list[str]], int]
WRITERS: Final[dict[str, Writer]] = {
    ".jsonl": _write_jsonl,
    ".txt": _write_txt,
    ".pcapng": _write_pcapng,
    ".parquet": _write_parquet,
}


# -- the command ------------------------------------------------------------------------------


def _job(args: tuple[str, str, str, Options]) -> Part:
    source, name, part, options = args
    return export_one(Path(source), name, Path(part), options)


def run_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """`msnsniff export`: 0, or 2 when a capture could not be read whole."""
    target = Path(args.output)
    require_output_dir(target)
    kind = next((k for k in FORMATS if target.name.lower().endswith(k)), None)
    if kind is None:
        raise MsnsniffError(f"export: say the format by OUT's extension: {', '.join(FORMATS)}")
    # (before any work: the join would fail at the end, naming its temporary file)
    if kind == ".parquet" and target.exists() and not target.is_dir():
        raise MsnsniffError(f"{target}: not a directory (a Parquet export is a directory of "
                            "tables): name another OUT")  # fmt: skip
    if kind != ".parquet" and target.is_dir():
        raise MsnsniffError(f"{target}: is a directory: name a file for OUT")
    if args.filter is not None:
        from msnsniff.session.filter import compile_filter

        compile_filter(args.filter)  # a bad filter stops here, with its column shown
    from msnsniff.capture.sources import captures_of
    from msnsniff.corpus import expand, in_order, jobs_for

    captures = captures_of(expand(args.files))
    decode_as = tuple((port, proto) for port, _, proto in
                      (x.partition("=") for x in args.decode_as))  # fmt: skip
    options = Options(kind, args.filter, args.redact, decode_as)
    jobs = jobs_for(0 if args.jobs is None else args.jobs, len(captures))  # default: every core
    work = Path(tempfile.mkdtemp(prefix="msnsniff-export-", dir=target.parent))
    try:
        tasks = [(c.path, c.name, str(work / f"{i:06d}{kind}"),
                  options if c.section is None else replace(options, section=c.section))
                 for i, c in enumerate(captures)]  # fmt: skip
        parts = in_order(_job, tasks, jobs)
        _join(kind, [p.path for p in parts], target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    status = 0
    for part in parts:
        for message in dict.fromkeys(part.messages):  # both passes meet the same damage
            err.write(message + "\n")
            status = 2
        for note in part.notes:
            err.write(note + "\n")
    total = sum(p.frames for p in parts)
    err.write(f"msnsniff: exported {total} frame{'s' if total != 1 else ''} of "
              f"{len(captures)} capture{'s' if len(captures) != 1 else ''} to {target}\n")
    return status


def _join(kind: str, parts: list[Path], target: Path) -> None:
    """The parts, in order, as `target` (pcapng sections simply follow each other)."""
    if kind == ".parquet":
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for part in parts:
            if not part.exists():
                continue
            names = {capture.name for table in part.iterdir() for capture in table.iterdir()}
            for name in sorted(names):
                # a capture named twice (or two whose names are alike once made safe) gets a
                # partition of its own: moved onto the first, it would nest inside it, where
                # `TABLE/*/*.parquet` never looks
                unique, n = name, 1
                while any((target / table.name / unique).exists() for table in part.iterdir()):
                    n += 1
                    unique = f"{name}-{n}"
                for table in part.iterdir():
                    if (table / name).exists():
                        (target / table.name).mkdir(parents=True, exist_ok=True)
                        shutil.move(str(table / name), target / table.name / unique)
        return
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as out:
            for part in parts:
                if part.exists():
                    with part.open("rb") as fh:
                        shutil.copyfileobj(fh, out)
        partial.replace(target)
    except BaseException:  # (a full disk, OUT made a directory meanwhile): no stray file
        partial.unlink(missing_ok=True)
        raise
