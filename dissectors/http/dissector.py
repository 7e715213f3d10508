"""The HTTP/1.x dissector: one per connection, two h11 parsers and the request queue.

Theory of operation
-------------------
Each direction has a `_Side` holding an h11 connection in the role that *receives* that
direction: requests (C2S) are read by an h11 server, responses (S2C) by an h11 client. The
client must know which request a response answers (a HEAD response has no body), so the S2C
side is "armed" with a stand-in request of the same method, taken in order from the queue of
requests the C2S side has seen (pipelining: one at a time, in order); a response with no
request in sight (the capture joined late) waits while a request may still come, and once
either direction has ended is read as the answer to a GET. After a complete
message the side starts h11's next cycle (the C2S side first sends h11 a stand-in empty
response); a connection h11 wants closed but that carries more bytes gets a fresh parser.

Offsets: a side knows where its h11 connection's data began in the stream (`base`), how much
it fed, and h11's unconsumed tail, so every message's first byte and length are exact.

Bad bytes: h11's `RemoteProtocolError` (or an over-long head) ends the message; the side
switches to resynchronising: it reads whole lines and stops at the first one that is a
request line (C2S) or status line (S2C), reporting everything before it as one
`HttpMalformed` with h11's reason and the offset where the bad message began (split every
`MAX_RUN` bytes). Decisions depend only on the bytes, never on how they were chunked.
`next_frame` serves the direction fed first; in strict mode a malformed frame raises.
"""

from __future__ import annotations

import re
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Final

import h11

from dissectors.api import NEED_DATA, Carried, Direction, DissectorError, NeedData
from dissectors.http import apps
from dissectors.http.frames import (
    AppInfo,
    HttpFrame,
    HttpMalformed,
    HttpRequest,
    HttpResponse,
)
from dissectors.http.limits import (
    MAX_BODY,
    MAX_DECODED,
    MAX_HEAD,
    MAX_LINE,
    MAX_RAW,
    MAX_RUN,
    problem,
)

C2S, S2C = Direction.C2S, Direction.S2C
METHODS: Final = (
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT",
)  # fmt: skip
REQUEST_LINE: Final = re.compile(
    rb"(?:" + b"|".join(METHODS) + rb") [\x21-\x7e]+ HTTP/1\.[01]\r?\n"
)
STATUS_LINE: Final = re.compile(rb"HTTP/1\.[01] [1-5]\d\d(?: [^\r\n]*)?\r?\n")
START_LINES: Final = MappingProxyType({C2S: REQUEST_LINE, S2C: STATUS_LINE})
HTTP_PORTS: Final = frozenset({80, 8000, 8008, 8080, 8081, 3128})
AUTH_CHECKS: Final = (
    (re.compile(r"(?i)^basic\s"), "http.basic_auth"),
    (re.compile(r"(?i)[\s,]pwd="), "http.cleartext_password"),  # Passport1.4 sign-in
)
"""Authorization header pattern -> problem code (secrets are named, never copied)."""
HEAD_TOO_LONG: Final = f"head or chunk line over {MAX_HEAD} bytes without its end"
REASONS: Final = MappingProxyType({
    "Receive buffer too long": HEAD_TOO_LONG,
    "illegal request line": "not a {start} line",
    "no request line received": "not a {start} line",
    "illegal status line": "not a {start} line",
    "no response line received": "not a {start} line",
    "peer unexpectedly closed connection": "the connection ended inside a head",
})
"""h11's words -> ours, where h11 says one thing two ways depending on how much it had read
(a reason must not depend on the chunking); other reasons are h11's own."""


CUT_SHORT: Final = "peer closed connection without sending complete message body"
"""h11's words for a stream that ended inside a body (the head was read)."""


_QUOTED: Final = r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
BYTES_REPR: Final = re.compile(rf"bytearray\(b{_QUOTED}\)|(?<!\w)b{_QUOTED}")
"""Python's repr of bytes in h11's words (`bytearray(b'zz\\r\\n')`): shown as the quoted
text alone (`'zz\\r\\n'`), escapes kept."""


def _reason(text: str, direction: Direction) -> str:
    key = text.split(":", 1)[0]
    start = "request" if direction is C2S else "status"
    if key in REASONS:
        return REASONS[key].format(start=start)
    return BYTES_REPR.sub(lambda m: m.group(1) or m.group(2), text)


@dataclass(slots=True)
class _Pending:
    """A request the S2C side will pair a response with."""

    offset: int
    method: str
    target: str
    frame: HttpRequest | None = None  # once complete


@dataclass(slots=True)
class _Side:
    """One direction: its h11 parser, the message being read, or the garbage being skipped."""

    direction: Direction
    conn: h11.Connection
    base: int = 0  # stream offset of the first byte fed to `conn`
    fed: int = 0  # bytes fed to `conn`
    ended: bool = False
    armed: bool = False  # S2C: h11 was told which request comes next
    # the message being read
    start: int = 0
    raw: bytearray = field(default_factory=bytearray)
    head: h11.Request | h11.Response | None = None
    head_bytes: bytearray | None = field(default_factory=bytearray)  # from `start`, until
    # the head is read (h11 drops the lines of a head it rejects, so we keep our own copy)
    body: bytearray = field(default_factory=bytearray)
    wire_body: int = 0
    # resynchronising
    junk: bytearray | None = None
    junk_start: int = 0  # stream offset of junk[0]
    run_start: int = 0  # stream offset where the malformed run began
    run_lost: int = 0  # bytes of the run h11 consumed (no longer in `junk`)
    run_head: bytes = b""  # those bytes as read (a head, a body so far), for the run's `raw`
    run_known: int | None = None  # with a head: the run's bytes before a gap in it
    reason: str = ""
    run_method: str | None = None  # C2S: the run is a request whose body went bad
    run_answers: int | None = None  # S2C: the run is a response to the request at this offset
    first_line: bool = True  # the run's first line is the bad message's own: skip it
    scanned: int = 0  # bytes of `junk` already known to be garbage
    no_host: bool = False  # C2S: the message is an HTTP/1.1 request without Host (re-read)

    @property
    def consumed(self) -> int:
        return self.base + self.fed - len(self.conn.trailing_data[0])


def _new_conn(direction: Direction) -> h11.Connection:
    role = h11.SERVER if direction is C2S else h11.CLIENT
    return h11.Connection(role, max_incomplete_event_size=MAX_HEAD)


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def decode_body(body: bytes, coding: str | None) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """`body` with its content coding undone, bounded by `MAX_DECODED`; and any problems."""
    if not coding or coding in ("identity",):
        return body, ()
    if coding not in ("gzip", "x-gzip", "deflate"):
        return body, (problem("http.unknown_encoding", coding=coding),)
    attempts = (16 + zlib.MAX_WBITS,) if coding != "deflate" else (zlib.MAX_WBITS, -zlib.MAX_WBITS)
    error = ""
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, MAX_DECODED)
        except zlib.error as exc:
            error = str(exc)
            continue
        if inflater.unconsumed_tail:
            return out, (problem("http.decoded_capped", coding=coding, cap=MAX_DECODED),)
        return out, ()
    return body, (problem("http.bad_encoding", coding=coding, error=error),)


class HttpDissector:
    """Sans-IO HTTP/1.x dissector for one connection (both directions)."""

    name: ClassVar[str] = "http"
    carries: ClassVar[bool] = True  # gateway frames carry MSNP (`dissectors.api.Carried`)

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self._sides = {d: _Side(d, _new_conn(d)) for d in Direction}
        self._pending: deque[_Pending] = deque()
        self._out: deque[HttpFrame] = deque()
        self._order: list[Direction] = []  # directions with unread bytes, in feed order

    # -- the Dissector protocol --------------------------------------------------------------
    def feed(self, direction: Direction, data: bytes) -> None:
        """Take bytes of one direction; empty `data` marks that direction's end of stream."""
        side = self._sides[direction]
        if side.ended:
            return
        if not data:
            side.ended = True
        if side.junk is not None:
            side.junk += data
        else:
            self._give(side, data)
        if direction not in self._order:
            self._order.append(direction)

    def gap(self, direction: Direction, length: int) -> None:
        """Bytes lost: the message in progress cannot be trusted; resynchronise after it."""
        side = self._sides[direction]
        self._pump(side)
        if side.junk is None:
            self._fail(side, f"{length} bytes missing (capture gap)")
        assert side.junk is not None
        if side.run_head and side.run_known is None:  # its raw stops here: bytes are missing
            side.run_known = side.run_lost + len(side.junk)
        side.run_lost += length
        side.junk_start += length
        if direction not in self._order:
            self._order.append(direction)

    def next_frame(self) -> HttpFrame | NeedData:
        """The next complete frame, or `NEED_DATA`; in strict mode a malformed frame raises."""
        if not self._out:
            self._run()
        if not self._out:
            return NEED_DATA
        frame = self._out.popleft()
        if self.strict and isinstance(frame, HttpMalformed):
            raise DissectorError(frame.reason, offset=frame.offset, direction=frame.direction)
        return frame

    def drain(self) -> list[HttpFrame]:
        """Every frame available now, in the order `next_frame` would return them."""
        out: list[HttpFrame] = []
        while (frame := self.next_frame()) is not NEED_DATA:
            assert not isinstance(frame, NeedData)
            out.append(frame)
        return out

    @classmethod
    def sniff(cls, first_bytes: bytes, direction: Direction, ports: Sequence[int]) -> float:
        """Confidence from the first line: a request line (C2S) or a status line (S2C)."""
        line = first_bytes.split(b"\n", 1)[0] + b"\n"
        score = 0.0
        if REQUEST_LINE.match(line):
            score = 0.85 if direction is C2S else 0.5
        elif STATUS_LINE.match(line):
            score = 0.85 if direction is S2C else 0.5
        elif any(first_bytes.startswith(m + b" ") for m in METHODS) and b"\n" not in first_bytes:
            score = 0.35  # a request line not complete yet
        if score and HTTP_PORTS.intersection(ports):
            score = min(1.0, score + 0.1)
        return score

    # -- driving -----------------------------------------------------------------------------
    def _run(self) -> None:
        order = self._order
        while order:
            direction = order.pop(0)
            self._pump(self._sides[direction])
            if direction is C2S:
                self._pump(self._sides[S2C])  # new requests may arm the response side

    def _give(self, side: _Side, data: bytes) -> None:
        side.fed += len(data)
        if side.head_bytes is not None:
            side.head_bytes += data
        if len(side.raw) < MAX_RAW:
            side.raw += data[: MAX_RAW - len(side.raw)]
        if data:
            side.conn.receive_data(data)
        elif side.ended:
            side.conn.receive_data(b"")

    def _pump(self, side: _Side) -> None:
        while True:
            if side.junk is not None:
                if not self._resync(side):
                    return
                continue
            if side.direction is S2C and not side.armed and not self._arm(side):
                return
            try:
                event = side.conn.next_event()
            except h11.RemoteProtocolError as exc:
                if self._cut_short(side, str(exc)):
                    self._on_end(side, incomplete=True)
                elif not self._without_host(side, str(exc)):
                    self._fail(side, _reason(str(exc), side.direction))
                continue
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return
            if event is h11.PAUSED:
                self._cycle(side)
            elif isinstance(event, h11.Request | h11.Response):
                self._on_head(side, event)
            elif isinstance(event, h11.InformationalResponse):
                self._on_informational(side, event)
            elif isinstance(event, h11.Data):
                side.wire_body += len(event.data)
                if len(side.body) < MAX_BODY:
                    side.body += event.data[: MAX_BODY - len(side.body)]
            elif isinstance(event, h11.EndOfMessage):
                self._on_end(side)

    def _arm(self, side: _Side) -> bool:
        """Tell the S2C parser which request comes next; False when it must wait."""
        if side.ended and not side.conn.trailing_data[0]:
            return False  # nothing more will come
        if self._pending:
            method = self._pending[0].method
        elif side.ended or self._sides[C2S].ended:
            if not side.conn.trailing_data[0]:
                return False
            method = "GET"  # the capture missed the request
        else:
            return False
        side.conn.send(h11.Request(method=method, target="/", headers=[("Host", "-")]))
        side.conn.send(h11.EndOfMessage())
        side.armed = True
        return True

    def _on_head(self, side: _Side, event: h11.Request | h11.Response) -> None:
        size = side.consumed - side.start
        if size > MAX_HEAD:
            self._fail(side, HEAD_TOO_LONG)
            return
        side.head, side.head_bytes = event, None
        if isinstance(event, h11.Request):
            self._pending.append(
                _Pending(side.start, _text(event.method), _text(event.target))
            )

    def _on_informational(self, side: _Side, event: h11.InformationalResponse) -> None:
        """An interim response (100 Continue): it names the request it answers, which stays
        pending for its final response (the request's answer)."""
        end = side.consumed
        pending = self._pending[0] if self._pending else None
        self._out.append(HttpResponse(
            S2C, side.start, bytes(side.raw[: end - side.start]), end - side.start,
            _text(event.http_version), tuple((_text(k), _text(v)) for k, v in event.headers),
            b"", 0, status=event.status_code, reason=_text(event.reason),
            request_offset=pending.offset if pending is not None else None,
            request_method=pending.method if pending is not None else None,
            request_target=pending.target if pending is not None else None,
        ))  # fmt: skip
        self._next_message(side, end)

    @staticmethod
    def _cut_short(side: _Side, reason: str) -> bool:
        """The stream ended inside a body whose head was read: the message, cut short, is
        still a message (its head and the body so far), not bytes that are not HTTP."""
        return (side.ended and side.head is not None and side.head_bytes is None
                and reason.startswith(CUT_SHORT))  # fmt: skip

    def _on_end(self, side: _Side, incomplete: bool = False) -> None:
        end = side.consumed
        head = side.head
        assert head is not None
        length = end - side.start
        headers = tuple((_text(k), _text(v)) for k, v in head.headers)
        problems: list[tuple[str, str]] = [problem("http.incomplete")] if incomplete else []
        if side.wire_body > MAX_BODY:
            problems.append(problem("http.body_capped", size=side.wire_body, cap=MAX_BODY))
        coding = next((v.strip().lower() for k, v in headers if k == "content-encoding"), None)
        body, trouble = decode_body(bytes(side.body), coding)
        problems += trouble
        raw = bytes(side.raw[:length])
        version = "1.1" if side.no_host else _text(head.http_version)
        if side.no_host:
            problems.append(problem("http.no_host"))
        common = (side.direction, side.start, raw, length, version, headers,
                  body, side.wire_body, tuple(problems))  # fmt: skip
        if isinstance(head, h11.Request):
            for key, value in headers:
                if key == "authorization":
                    scheme = value.split(" ", 1)[0]
                    problems += [problem(code, scheme=scheme) for rx, code in AUTH_CHECKS
                                 if rx.search(value)]  # fmt: skip
            common = (*common[:-1], tuple(problems))
            target = _text(head.target)
            path, _, query = target.partition("?")
            info, carried = apps.decode_request(path, query, headers, body)
            request = HttpRequest(
                *common, app=info, carried=carried, method=_text(head.method),
                target=target, path=path, query=query,
            )  # fmt: skip
            for waiting in self._pending:
                if waiting.offset == side.start:
                    waiting.frame = request
            frame: HttpFrame = request
        else:
            pending = self._pending.popleft() if self._pending else None
            answered = pending.frame if pending is not None else None
            info2: AppInfo | None
            info2, carried2 = apps.decode_response(head.status_code, headers, body, answered)
            frame = HttpResponse(
                *common, app=info2, carried=carried2, status=head.status_code,
                reason=_text(head.reason),
                request_offset=pending.offset if pending is not None else None,
                request_method=pending.method if pending is not None else None,
                request_target=pending.target if pending is not None else None,
            )  # fmt: skip
        self._out.append(frame)
        if incomplete:  # the stream has ended: nothing more to parse
            self._restart(side, end, b"")
        else:
            self._cycle(side)

    def _cycle(self, side: _Side) -> None:
        """Start h11's next request/response cycle, or a fresh parser when it will not."""
        conn = side.conn
        end = side.consumed
        if side.direction is C2S and conn.our_state is h11.SEND_RESPONSE:
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            side.armed = False
            self._next_message(side, end)
            return
        tail = conn.trailing_data[0]
        self._restart(side, end, tail)

    def _without_host(self, side: _Side, reason: str) -> bool:
        """An HTTP/1.1 request without Host (h11 refuses it): read it again as HTTP/1.0,
        the same number of bytes, so the request and its body are still dissected (and its
        credentials seen); the frame keeps version 1.1 and says Host is missing."""
        if side.direction is not C2S or side.head_bytes is None or side.no_host \
                or not reason.startswith("Missing mandatory Host"):
            return False
        original = bytes(side.head_bytes)
        line = REQUEST_LINE.match(original)
        if line is None:
            return False
        cut = original.rindex(b"HTTP/1.1", 0, line.end())
        patched = original[:cut] + b"HTTP/1.0" + original[cut + 8:]
        self._restart(side, side.start, patched)
        side.raw = bytearray(original[:MAX_RAW])
        side.no_host = True
        return True

    def _restart(self, side: _Side, at: int, data: bytes) -> None:
        side.conn = _new_conn(side.direction)
        side.no_host = False
        side.base, side.fed, side.armed = at, 0, False
        side.start, side.head, side.body, side.wire_body = at, None, bytearray(), 0
        side.raw, side.head_bytes = bytearray(), bytearray()
        self._give(side, data)
        if side.ended and data:
            side.conn.receive_data(b"")

    def _next_message(self, side: _Side, at: int) -> None:
        side.no_host = False
        tail = side.conn.trailing_data[0]
        side.raw, side.head_bytes = bytearray(tail[:MAX_RAW]), bytearray(tail)
        side.start, side.head, side.body, side.wire_body = at, None, bytearray(), 0

    # -- bad bytes ---------------------------------------------------------------------------
    def _fail(self, side: _Side, reason: str) -> None:
        """The message at `side.start` is not HTTP: switch to resynchronising."""
        in_head = side.head_bytes is not None
        if side.head_bytes is not None:  # the head itself: every byte since `start`
            tail, consumed = bytes(side.head_bytes), side.start
        else:  # in the body: what h11 has not read (it dropped a bad chunk line)
            tail, consumed = side.conn.trailing_data[0], side.consumed
        side.run_answers = None
        if side.direction is S2C and self._pending and side.armed:
            answered = self._pending.popleft()  # the request's answer is lost
            if not in_head:  # (a status line and head were read: it is that answer, bad)
                side.run_answers = answered.offset
        side.junk = bytearray(tail)
        side.junk_start = consumed
        side.run_start = side.start
        side.run_lost = consumed - side.start
        side.run_head = bytes(side.raw[: side.run_lost])  # (`raw` starts at `start`)
        side.run_known = None
        side.reason = reason
        request = side.head if side.direction is C2S and not in_head else None
        side.run_method = _text(request.method) if isinstance(request, h11.Request) else None
        side.first_line = in_head
        side.scanned = 0
        side.conn = _new_conn(side.direction)
        side.armed = False

    def _resync(self, side: _Side) -> bool:
        """Skip garbage a line at a time; True once parsing resumed (or a frame was cut)."""
        junk = side.junk
        assert junk is not None
        pos = side.scanned
        line_re = START_LINES[side.direction]
        while True:
            nl = junk.find(b"\n", pos, pos + MAX_LINE)
            if nl < 0:
                if len(junk) - pos >= MAX_LINE:
                    nl = pos + MAX_LINE - 1
                elif side.ended:
                    pos = len(junk)
                    break
                else:
                    break
            line_end = nl + 1
            if not side.first_line and line_re.fullmatch(bytes(junk[pos:line_end])):
                self._emit_junk(side, pos)
                side.junk = None
                at = side.junk_start
                self._restart(side, at, bytes(junk))
                return True
            side.first_line = False
            pos = line_end
            if pos + side.run_lost >= MAX_RUN:
                break
        if side.ended and pos == len(junk):  # the rest of the stream is garbage
            self._emit_junk(side, pos)
            side.junk = None
            self._restart(side, side.junk_start, b"")
            return False
        if pos and pos + side.run_lost >= MAX_RUN:
            self._emit_junk(side, pos)
            return True
        side.scanned = pos
        return False

    def _emit_junk(self, side: _Side, upto: int) -> None:
        """A malformed frame from the run's start to `junk[upto]`; `junk` keeps the rest."""
        junk = side.junk
        assert junk is not None
        length = side.run_lost + upto
        if length <= 0:
            return
        head = side.run_head  # the bytes h11 read before it failed, then the rest: `raw`
        # starts at the frame's offset (without them a bad body's raw began mid-body); after
        # a gap in the run, only the bytes before it, which are contiguous
        known = MAX_RAW if side.run_known is None else min(side.run_known, MAX_RAW)
        raw = (head + bytes(junk[:upto]))[:known] if head else bytes(junk[: min(upto, MAX_RAW)])
        side.run_head, side.run_known = b"", None
        self._out.append(HttpMalformed(side.direction, side.run_start, raw, side.reason, length,
                                       side.run_method, side.run_answers))
        side.run_method = side.run_answers = None
        del junk[:upto]
        side.scanned = 0
        side.junk_start += upto
        side.run_start = side.junk_start
        side.run_lost = 0
        side.reason = "more bytes that are not HTTP"


def carried_of(frame: HttpFrame) -> tuple[Carried, ...]:
    """The tunnelled bytes a frame carries (empty for most)."""
    return getattr(frame, "carried", ())
