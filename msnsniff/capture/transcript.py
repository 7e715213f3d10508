"""Docs-style transcripts as a capture source.

Three layouts are read, with prose around them ignored (a line with a layout's prefix is
traffic, whatever follows the prefix: garbage there is reported as malformed, not skipped):

* `C: VER 1 MSNP8 CVR0` / `S: VER 1 MSNP8` (seed 003), with `.. ` continuation lines that
  extend the previous line after a space;
* `>>> ADD 18 AL a@b a@b\\r\\n` / `<<< 201 18\\r\\n` (seed 004), with literal `\\r\\n`, trailing
  remarks after the last `\\r\\n` dropped, and `<o>` marking the server closing the connection;
* logs `  0.002 NS-alice   >>> VER 1 MSNP8 CVR0` with a time (`-` when not known, as in an
  export of a transcript without times) and a connection label per line,
  payload lines prefixed `| `, and `--- connection closed` lines.

A payload command (MSG, NOT, ...) takes its body from the lines that follow it, each line
ended by CRLF, until the declared length is reached. A client VER after traffic starts a new
connection (the documents move from the dispatch server to the notification server that way),
and so does a switchboard login, `USR TrID account cookie` or `ANS`.

`msnsniff export A B -o X.txt` writes each capture after a marker line, `# msnsniff export
of NAME` (`CAPTURE_MARK`). A file marking several captures is several captures: `captures`
names them and `read_transcript(..., section=N)` reads the Nth alone, so each reads back as
its original did (its own connections, frame numbers and analysis). Read whole, a marker
ends every connection still open, so none continues into the next capture. Commands that
read one capture (the TUI, replay, mock) take one section (`sources.one_capture`). A file
without markers reads as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from dissectors.api import Direction
from dissectors.msnp.grammar import COMMANDS, ERROR_PAYLOAD_FROM, PayloadRule, ver_dialects
from msnsniff.capture import Flow, FlowEnd, SourceEvent, SourceNote, StreamChunk

# (a traffic line may be indented, as in a Markdown code block or a quoted document)
_CS: Final = re.compile(r"^([ \t]*)([CS]):[ \t]?(.*)$")
_ARROW: Final = re.compile(r"^([ \t]*)(>>>|<<<)[ \t]?(.*)$")
_LOG: Final = re.compile(r"^\s*(\d+(?:\.\d+)?|-)\s+(\S+)\s+(>>>|<<<|---)\s?(.*)$")
_CONT: Final = re.compile(r"^[ \t]*\.\.[ \t](.*)$")
_LOG_BODY: Final = re.compile(r"^\s+\|[ ]?(.*)$")
_CLOSE: Final = re.compile(r"^[ \t]*<o>")
_LITERAL_CRLF: Final = "\\r\\n"
_CMD_WORD: Final = re.compile(r"^([A-Z]{3}|\d{3})( |$)")
_OPENS: Final = re.compile(r"^(VER |ANS |USR \S+ [^ @]+@)")
"""A client line that only starts a connection: VER (dispatch, notification), and a
switchboard's `USR TrID account cookie` or `ANS` (the NS's `USR TrID MD5|TWN ...` is not)."""
BOM: Final = "\ufeff"
"""What a Windows editor (Notepad) may put before a text file's first line: not part of it."""
EXPORT_HEADER: Final = "# msnsniff export of "
"""The first line of `msnsniff export -o X.txt`: a transcript even when no frame follows (a
filter that selected nothing, a capture of HTTP only)."""
CAPTURE_MARK: Final = EXPORT_HEADER
"""The line that starts each capture's part of an export (`# msnsniff export of NAME`)."""


def text_encoding(head: bytes) -> str:
    """How a transcript whose file starts with `head` is encoded: UTF-16 when it starts with
    that byte order mark (Windows PowerShell's `>` writes it), else UTF-8."""
    return "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"


def looks_like_transcript(head: bytes) -> bool:
    """True when the first bytes of a file read as a transcript of any supported layout."""
    encoding = text_encoding(head)
    if encoding != "utf-8":  # (an odd cut at the end of `head` costs one character)
        head = head[: len(head) & ~1]
    text = head.decode(encoding, "replace").removeprefix(BOM)
    if text.startswith(EXPORT_HEADER):
        return True
    for line in text.splitlines()[:400]:
        for pattern in (_CS, _ARROW, _LOG):
            m = pattern.match(line)
            if m and _CMD_WORD.match(m.group(m.lastindex or 1)):
                return True
    return False


def _payload_length(line: str, direction: Direction, dialect: int | None) -> int | None:
    """The payload length `line` declares: a payload command's last argument, or from
    MSNP13 an error reply's third word (`241 12 LEN`); `dialect` is the one the
    connection's VER chose (None: no VER seen, where a three-word error is taken to
    carry one, as no earlier dialect has that shape)."""
    tokens = line.split()
    if len(tokens) < 2:
        return None
    if len(tokens[0]) == 3 and tokens[0].isdigit():
        if len(tokens) != 3 or (dialect is not None and dialect < ERROR_PAYLOAD_FROM):
            return None
        last = tokens[-1]
        return int(last) if last.isdigit() and len(last) <= 9 else None
    spec = COMMANDS.get(tokens[0])
    if spec is None or spec.payload(direction) is PayloadRule.NONE:
        return None
    last = tokens[-1]
    return int(last) if last.isdigit() and len(last) <= 9 else None


@dataclass(slots=True)
class _Conn:
    flow: Flow
    offsets: dict[Direction, int] = field(
        default_factory=lambda: {Direction.C2S: 0, Direction.S2C: 0}
    )
    closed: bool = False
    dialect: int | None = None  # chosen by the server's VER, once seen


@dataclass(slots=True)
class _Pending:
    """A line read but not yet emitted (a continuation or payload body may follow)."""

    conn: _Conn
    direction: Direction
    text: str
    ts: float | None
    lineno: int
    need: int = 0  # payload bytes still wanted
    header: bytes | None = None  # the line(s) as wire bytes, once no continuation can follow
    first: str = ""
    declared: int | None = None
    body: list[str] = field(default_factory=list)
    body_style: str = "plain"  # "plain": any following line; "log": only `| ` lines
    indent: str = ""  # the traffic line's indentation, which its body lines lose too
    literal_crlf: bool = False  # the line spells CRLF `\r\n`: so do its body lines


class TranscriptReader:
    """Turns transcript lines into stream chunks (a pure state machine over text lines).

    `section` (counted from 1) reads only the lines after that capture marker, up to the
    next; without it every capture is read, a marker closing the connections before it.
    `name` names the flows (`NAME#N`); `where` the file in notes (`WHERE:LINE`), by default
    `name`: the path as the user gave it, so two files of one name, or a pipe, are told
    apart."""

    def __init__(self, name: str, section: int | None = None, where: str | None = None) -> None:
        self.name = name
        self.where = name if where is None else where
        self._conns: dict[str, _Conn] = {}
        self._count = 0
        self._pending: _Pending | None = None
        self._section = section
        self._marks = 0  # capture markers seen

    def _conn(self, label: str, direction: Direction, text: str) -> _Conn:
        conn = self._conns.get(label)
        opens = direction is Direction.C2S and _OPENS.match(text) is not None
        if conn is None or conn.closed or (opens and conn.offsets[Direction.C2S] > 0):
            self._count += 1
            flow_label = None if label == "" else label
            conn = _Conn(Flow(f"{self.name}#{self._count}", label=flow_label))
            self._conns[label] = conn
        return conn

    def read(self, lines: Iterable[str]) -> Iterator[SourceEvent]:
        """Every source event of a transcript's lines; flows still open at the end are closed."""
        section = self._section
        lineno = 0
        for lineno, raw_line in enumerate(lines, 1):
            line = raw_line.rstrip("\r\n")
            if lineno == 1:
                line = line.removeprefix(BOM)
            if line.startswith(CAPTURE_MARK):
                self._marks += 1
                if section is not None and self._marks > section:
                    yield from self._flush()  # its capture ends here, not the file
                    break  # the next capture's
                yield from self._new_capture()
                continue
            if section is None or self._marks == section:
                yield from self._line(line, lineno)
        yield from self._flush(lineno)
        for conn in self._conns.values():
            if not conn.closed:
                yield from self._close(conn, None, "end of transcript", cut=True)

    def _new_capture(self) -> Iterator[SourceEvent]:
        """A capture marker: what was open belongs to the capture before, and ends here."""
        yield from self._flush()
        for conn in self._conns.values():
            if not conn.closed:
                yield from self._close(conn, None, "end of its capture in the transcript",
                                       cut=True)
        self._conns.clear()

    def _close(self, conn: _Conn, ts: float | None, reason: str,
               cut: bool = False) -> Iterator[SourceEvent]:  # fmt: skip
        conn.closed = True
        for d in Direction:
            yield FlowEnd(conn.flow, d, ts, reason, cut)

    def _line(self, line: str, lineno: int) -> Iterator[SourceEvent]:
        pending = self._pending
        if pending is not None:
            if pending.header is None:
                cont = _CONT.match(line)
                if cont and pending.body_style == "plain":
                    pending.text += " " + cont.group(1)
                    return
                self._finish_header(pending)
            if pending.need > 0:
                body = self._body_line(line, pending)
                if body is not None:
                    pending.body.append(body)
                    pending.need -= len(body.encode("utf-8", "surrogateescape")) + 2
                    if pending.need <= 0:
                        yield from self._flush()
                    return
        m = _LOG.match(line)
        if m:
            yield from self._flush()
            ts = None if m.group(1) == "-" else float(m.group(1))  # `-`: a time not known
            label, arrow, text = m.group(2), m.group(3), m.group(4)
            if arrow == "---":
                conn = self._conns.get(label)
                if conn is not None and not conn.closed:
                    yield from self._close(conn, ts, text.strip() or "closed")
                return
            direction = Direction.C2S if arrow == ">>>" else Direction.S2C
            self._start(self._conn(label, direction, text), direction, text, ts, lineno, "log")
            return
        m = _CS.match(line) or _ARROW.match(line)
        if m and m.group(3).strip():  # the prefix marks traffic: a line that is no command is
            # sent as it is and reported malformed by the dissector, as on the wire
            yield from self._flush()
            direction = Direction.C2S if m.group(2) in ("C", ">>>") else Direction.S2C
            text = m.group(3)
            self._start(self._conn("", direction, text), direction, text, None, lineno, "plain",
                        m.group(1))
            return
        if _CLOSE.match(line):
            yield from self._flush()
            conn = self._conns.get("")
            if conn is not None and not conn.closed:
                yield from self._close(conn, None, "server closed the connection")

    @staticmethod
    def _body_line(line: str, pending: _Pending) -> str | None:
        if pending.body_style == "log":
            m = _LOG_BODY.match(line)
            return m.group(1) if m else None
        if _CS.match(line) or _ARROW.match(line) or _LOG.match(line):
            return None
        line = line.removeprefix(pending.indent)
        if pending.literal_crlf and _LITERAL_CRLF in line:  # the CRLF it spells ends it (the
            # flush adds it back); inner ones are CRLFs too, and what follows the last a remark
            line = line[: line.rindex(_LITERAL_CRLF)].replace(_LITERAL_CRLF, "\r\n")
        return line

    def _start(
        self,
        conn: _Conn,
        direction: Direction,
        text: str,
        ts: float | None,
        lineno: int,
        style: str,
        indent: str = "",
    ) -> None:
        self._pending = _Pending(conn, direction, text, ts, lineno, body_style=style,
                                 indent=indent, literal_crlf=_LITERAL_CRLF in text)

    @staticmethod
    def _finish_header(pending: _Pending) -> None:
        """Turn the (continued) line into wire bytes; decide whether body lines follow."""
        text = pending.text
        tail = ""
        if _LITERAL_CRLF in text:
            # keep everything up to the last literal CRLF; what follows is a remark
            cut = text.rindex(_LITERAL_CRLF)
            tail = text[cut + len(_LITERAL_CRLF) :]
            text = text[:cut].replace(_LITERAL_CRLF, "\r\n") + "\r\n"
        else:
            text = text.rstrip() + "\r\n"
        first, _, inline_body = text.partition("\r\n")
        pending.declared = _payload_length(first, pending.direction, pending.conn.dialect)
        if pending.declared is not None:  # unless it is the payload's end, which has no CRLF
            # to spell (`QRY 1 id 32\r\n<32 hex>`): it then makes up the declared length
            size = len(inline_body.encode("utf-8", "surrogateescape"))
            end = next((t for t in (tail, tail.rstrip()) if t and size + len(
                t.encode("utf-8", "surrogateescape")) == pending.declared), "")
            text += end
            inline_body += end
        pending.first = first
        pending.header = text.encode("utf-8", "surrogateescape")
        if pending.direction is Direction.S2C and first.startswith("VER "):
            chosen = ver_dialects(first.split()[1:])
            if chosen:
                pending.conn.dialect = max(chosen)
        if pending.declared is not None and not inline_body:
            pending.need = pending.declared

    def _flush(self, last_line: int | None = None) -> Iterator[SourceEvent]:
        """Emit the pending line with its body. `last_line`: the file ended there, so a
        payload still short of its declared length was cut by the end of the file (a
        truncated transcript: a fatal note), not ended early by the next traffic line (a
        hand-written length that is wrong: a note only)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if pending.header is None:
            self._finish_header(pending)
        cut = last_line is not None and pending.need > 0
        assert pending.header is not None
        data = pending.header
        declared = pending.declared
        if pending.body:
            body = "".join(b + "\r\n" for b in pending.body).encode("utf-8", "surrogateescape")
            data += body[:declared] if declared is not None else body
            if declared is not None and len(body) > declared + 2:  # more than a final CRLF
                yield SourceNote(
                    f"{pending.first.split()[0]} declares {declared} payload bytes; the "
                    f"transcript's {len(body) - declared} further body bytes are dropped: "
                    f"{body[declared:declared + 40]!r}",
                    f"{self.where}:{pending.lineno}",
                )
        if declared is not None:
            got = len(data) - len(pending.first.encode("utf-8", "surrogateescape")) - 2
            if cut:
                yield SourceNote(
                    f"the file ends at line {last_line} inside the payload of "
                    f"{pending.first.split()[0]}: {got} of its {declared} declared bytes "
                    "(the transcript is truncated)",
                    f"{self.where}:{pending.lineno}",
                    fatal=True,
                )
            elif got != declared:
                yield SourceNote(
                    f"{pending.first.split()[0]} declares {declared} payload bytes but the "
                    f"transcript gives {got}",
                    f"{self.where}:{pending.lineno}",
                )
        conn = pending.conn
        offset = conn.offsets[pending.direction]
        conn.offsets[pending.direction] = offset + len(data)
        yield StreamChunk(conn.flow, pending.direction, offset, data, pending.ts)


def read_transcript(
    lines: Iterable[str], name: str = "transcript", section: int | None = None,
    where: str | None = None,
) -> Iterator[SourceEvent]:
    """Chunk events for every connection in a transcript (or in its `section`th capture);
    `where` names the file in notes (by default `name`)."""
    return TranscriptReader(name, section, where).read(lines)


def captures(lines: Iterable[str]) -> list[str]:
    """The names of the captures an export marked in a transcript, in order (none: a
    transcript of one capture, or not an export)."""
    names = []
    for n, line in enumerate(lines):
        text = line.removeprefix(BOM) if n == 0 else line
        if text.startswith(CAPTURE_MARK):
            names.append(text[len(CAPTURE_MARK) :].rstrip("\r\n"))
    return names
