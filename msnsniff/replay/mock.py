"""`msnsniff mock`: serve a recording's server side to a connecting client.

Theory of operation
-------------------
Every recorded connection (DS, NS, SB of each selected login) is a *script* a client
connection may follow. A new client connection starts with every unused script as a
candidate. Each frame the client sends is matched against each candidate: the next
recorded client frame with the same command, looking a few frames ahead so a client may
skip what the recorded one sent (`LOOKAHEAD`); the arguments that identify a connection
must be equal (`_identity`: the account of a login, the cookie and session of a
switchboard), and a recorded VER fits only a client offering the version its server
chose. Candidates that cannot match drop out; the best match (all arguments equal, then
fewest frames skipped, then earliest recorded) *leads*, and its recorded server frames
are sent: those after the matched frame up to the recorded client's next frame, plus any
unsolicited ones in what was skipped. Replies get the client's TrID; addresses in `XFR` and
`RNG` are rewritten to the mock's own listener, so redirects and invitations come back
here, where the cookie picks the switchboard script. A script is used up when the
connection it led (told apart from the others, or through to the script's end) closes past
the recorded login (one that leaves before its last `USR`, as replay's probe for a dispatch
server does, uses nothing up); a connection that sends what no unused script fits follows
the used ones again (a second identical client is served as the first was), one that has
named itself (an account, a cookie) only a script that fits all it sent, else it stays
where it was. A request nothing matches is logged and, if configured, answered with an
error.

`MockConnection` is sans-IO (bytes in, bytes out); `MockServer` is the asyncio edge, with a
Passport nexus and login (any password for a recorded account) for TWN logins.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TextIO

from dissectors.api import Direction
from dissectors.msnp import MsnpDissector
from dissectors.msnp.decode import choose_variant
from dissectors.msnp.frames import CommandFrame
from msnsniff.addresses import UNSPECIFIED, check_port, distinct_ports, host_port, reached, show
from msnsniff.addresses import parse as split_address
from msnsniff.capture.sources import one_capture
from msnsniff.client.passport import is_loopback
from msnsniff.errors import MsnsniffError, cannot_listen
from msnsniff.listeners import Resolve, listen, port_of, resolve
from msnsniff.replay.recording import RecConn, RecFrame, Recording, load_recording
from msnsniff.session.capture_session import CaptureSession

LOOKAHEAD: Final = 24
"""Recorded client frames a match may skip."""
READ_CHUNK: Final = 65536
CLOSE_WAIT: Final = 5.0  # seconds the connection handlers get to finish at a stop
ADDRESS_FIELDS: Final = frozenset({"address", "current_address"})
HTTP_REQUEST_LINE: Final = re.compile(rb"[A-Z]+ \S+ HTTP/\d\.\d\r?\n")
"""A client's first line when it speaks HTTP (the MSNP gateway): never an MSNP command."""
_NOT_HERE_BODY: Final = b"msnsniff mock serves MSNP over TCP only, not the HTTP gateway\n"
HTTP_NOT_HERE: Final = (b"HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\n"
                        b"Content-Length: " + str(len(_NOT_HERE_BODY)).encode() +
                        b"\r\nConnection: close\r\n\r\n" + _NOT_HERE_BODY)  # fmt: skip
"""The answer to an HTTP client: the recorded gateway exchanges are served over TCP only."""

log = logging.getLogger(__name__)


_LOGIN_METHODS: Final = frozenset({"TWN", "MD5", "SSO"})


def _usr_identity(args: tuple[str, ...]) -> tuple[str, ...]:
    """A login's `method I account`, or a switchboard's `account cookie`."""
    if args[:1] and args[0] in _LOGIN_METHODS and args[1:2] == ("I",):
        return tuple(a.casefold() for a in args[:3])
    if args[:1] and args[0] not in _LOGIN_METHODS:
        return (args[0].casefold(), *args[1:2])
    return ()


_IDENTITY: Final[Mapping[str, Callable[[tuple[str, ...]], tuple[str, ...]]]] = MappingProxyType({
    "USR": _usr_identity,
    "ANS": lambda args: (*(a.casefold() for a in args[:1]), *args[1:3]),  # account cookie id
    "CAL": lambda args: tuple(a.casefold() for a in args[:1]),  # whom the client invites
    "MSG": lambda args: args[:1],  # the acknowledgement asked for decides what comes back
})
"""Per client command, the arguments that must be equal for it to match a recorded one."""


def _ver_fits(frames: tuple[RecFrame, ...], index: int, frame: CommandFrame) -> bool:
    """A recorded VER fits a client's only if the version its server chose is one this
    client offers: a server never answers with a dialect the client did not ask for."""
    for rec in frames[index + 1:]:
        if rec.c2s:
            break
        if rec.frame.cmd == "VER":
            chosen = rec.frame.args[:1]
            if not chosen or chosen[0] == "0":  # the recorded server refused them all
                return True
            return chosen[0].casefold() in {a.casefold() for a in frame.args}
    return True


_FITS: Final[Mapping[str, Callable[[tuple[RecFrame, ...], int, CommandFrame], bool]]] = (
    MappingProxyType({"VER": _ver_fits})
)
"""Per client command, a check on the recorded exchange beyond equal identities."""


def _identity(frame: CommandFrame) -> tuple[str, ...]:
    """The arguments that must be equal for a client frame to match a recorded one."""
    of = _IDENTITY.get(frame.cmd)
    return () if of is None else of(frame.args)


@dataclass(slots=True)
class _Candidate:
    conn: RecConn
    cursor: int = 0  # index in conn.frames after the last matched frame


@dataclass(slots=True)
class MockBook:
    """What all connections share: the scripts, which are used up and which are led."""

    recording: Recording
    address: str  # host:port the rewritten addresses name
    used: set[str] = field(default_factory=set)
    led: dict[str, int] = field(default_factory=dict)  # script key -> connection id
    reused: set[str] = field(default_factory=set)  # used again in this round of reuse

    def scripts(self) -> list[RecConn]:
        return [c for c in self.recording.conns if c.key not in self.used]

    def reusable(self) -> list[RecConn]:
        """The scripts to follow again: those not yet followed again in this round (so a
        second login's NS connection does not take the dispatch script its DS connection
        just followed); when every one has been, a new round."""
        left = [c for c in self.recording.conns if c.key not in self.reused]
        if not left:
            self.reused.clear()
            return list(self.recording.conns)
        return left

    @property
    def finished(self) -> bool:
        return all(c.key in self.used for c in self.recording.conns)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a client frame gets: bytes to send, lines for the log, and whether to close."""

    data: bytes
    log: tuple[str, ...]
    close: bool


class MockConnection:
    """One client connection to the mock (see the module docstring)."""

    def __init__(self, book: MockBook, cid: int, unmatched_error: int | None = None,
                 address: str | None = None) -> None:
        self.book = book
        self.cid = cid
        self.address = book.address if address is None else address  # what XFR/RNG name
        self.unmatched_error = unmatched_error
        self.dissector = MsnpDissector()
        self.candidates: list[_Candidate] | None = None
        self.lead: _Candidate | None = None
        self.identified = False  # the lead was picked by an account, cookie... or alone
        self.named = False  # a matched frame named the connection (an account, a cookie...)
        self.reusing = False  # following a script an earlier connection used up
        self.sent: list[CommandFrame] = []  # the client's frames that matched, until reused
        self.early: set[int] = set()  # recorded replies sent before their recorded place
        self.unmatched = 0
        self.ended = False  # the client sent OUT: nothing more is read or answered
        self.started = False  # bytes came: the first are not an HTTP request

    def receive(self, data: bytes) -> Reply:
        """What the client's bytes get. Its OUT ends the connection: nothing is sent for
        anything after it, and for it only what the recorded server sent after the recorded
        OUT, when that is the recorded client's next frame (`_after_out`)."""
        if self.ended:
            return Reply(b"", (), True)
        if not self.started and HTTP_REQUEST_LINE.match(data):
            self.ended = True
            return Reply(HTTP_NOT_HERE, (f"mock: connection {self.cid}: an HTTP request (the "
                                         "MSNP gateway?): answered 501; the mock serves MSNP "
                                         "over TCP only",), True)  # fmt: skip
        self.started = True
        self.dissector.feed(Direction.C2S, data)
        out: list[bytes] = []
        notes: list[str] = []
        close = False
        for frame in self.dissector.drain():
            if isinstance(frame, CommandFrame) and frame.cmd == "OUT":
                self.ended = close = True
                out.append(self._after_out(frame))
                break
            if not isinstance(frame, CommandFrame):
                notes.append(f"mock: connection {self.cid}: cannot read the client's bytes "
                             f"at offset {frame.offset}")  # fmt: skip
                continue
            data_out, matched = self._answer(frame)
            if not matched:
                self.unmatched += 1
                notes.append(f"mock: connection {self.cid}: nothing recorded matches "
                             f"{_show(frame)}{self._where()}")  # fmt: skip
                trid = _trid_text(frame)
                if self.unmatched_error is not None and trid is not None:
                    data_out = str(self.unmatched_error).encode() + b" " + trid + b"\r\n"
            if data_out:
                self.dissector.feed(Direction.S2C, data_out)
                self.dissector.drain()
                out.append(data_out)
        return Reply(b"".join(out), tuple(notes), close)

    def _after_out(self, frame: CommandFrame) -> bytes:
        """The server frames recorded after the recorded OUT, when that OUT is where the
        lead's script goes on (a message that crossed the OUT, as on the gateway, where the
        server had it queued); nothing when the client skipped ahead to OUT (the unsolicited
        frames of what it skipped are not its). The lead then counts as followed past it."""
        lead = self.lead
        if lead is None or lead.cursor >= len(lead.conn.frames):
            return b""
        rec = lead.conn.frames[lead.cursor]
        if not rec.c2s or rec.frame.cmd != "OUT":
            return b""
        later = _next_client_frame(lead.conn, lead.cursor + 1)
        sent = [self._rewrite(r, None, frame) for r in lead.conn.frames[lead.cursor + 1:later]
                if r.no not in self.early]  # fmt: skip
        lead.cursor = later
        return b"".join(sent)

    def closed(self) -> None:
        """The connection ended: the script it followed is used up when `done_with_lead` (a
        VER alone, which every login begins with, uses up nobody's)."""
        if self.lead is not None:
            if self.done_with_lead:
                self.book.used.add(self.lead.conn.key)
                if self.reusing:
                    self.book.reused.add(self.lead.conn.key)
            self.book.led.pop(self.lead.conn.key, None)

    @property
    def done_with_lead(self) -> bool:
        """Whether the script it followed is used up when it closes: it was told apart from
        the others (or was gone through to its last client frame: a connection that sent
        only `SYN` fits the logins' scripts too, further on) and not left during the login."""
        if self.lead is None or self.left_during_login:
            return False
        return self.identified or not any(rec.c2s for rec in
                                          self.lead.conn.frames[self.lead.cursor:])

    @property
    def left_during_login(self) -> bool:
        """Whether the recorded client still had a `USR` to send where this one stopped: a
        login left half done (replay's probe for a dispatch server, a client that gave up at
        the password) is not the session recorded, and leaves it to the next connection."""
        if self.lead is None:
            return False
        return any(rec.c2s and rec.frame.cmd == "USR"
                   for rec in self.lead.conn.frames[self.lead.cursor:])  # fmt: skip

    def _where(self) -> str:
        return f" (following {self.lead.conn.label})" if self.lead is not None else ""

    def _answer(self, frame: CommandFrame) -> tuple[bytes, bool]:
        if self.candidates is None:
            self.candidates = self._starting(self.book.scripts())
        found = self._best(frame)
        if found is None and not self.reusing:
            # no unused script fits what this connection sent (fitting the only unused
            # script is no saying: a VER fits every login): follow a used one again, as a
            # server serves the same client twice (a second identical client used to get
            # nothing and hang); its frames so far are matched again, quietly (they were
            # answered already)
            found = self._reuse(frame, self.book.reusable())
        if found is None and self.named:  # any script this login fits, in whatever round
            found = self._reuse(frame, self.book.recording.conns)
        if found is None:
            return b"", False
        self.sent.append(frame)
        keep, lead, index = found
        return self._follow(keep, lead, index, frame), True

    def _reuse(
        self, frame: CommandFrame, scripts: Iterable[RecConn]
    ) -> tuple[list[tuple[_Candidate, int]], _Candidate, int] | None:
        """`_best` among `scripts` used or not, once this connection's earlier frames are
        matched there again. A connection that already said who it is (its login's account)
        goes over only if they all fit there and `frame` too: a script of the same account
        that ends sooner (a failed login) made a second login hang at its USR S. When none
        fits, it stays where it was."""
        named = self.named
        saved = (self.candidates, self.lead, self.identified, self.reusing, dict(self.book.led),
                 set(self.early))
        self.reusing = True
        self.candidates = self._starting(scripts)
        fits = True
        for earlier in self.sent:
            again = self._best(earlier)
            if again is not None:
                self._follow(*again, earlier)
            else:
                fits = False
        found = self._best(frame) if fits or not named else None
        if found is None and named:
            self.candidates, self.lead, self.identified, self.reusing, led, self.early = saved
            self.book.led.clear()
            self.book.led.update(led)
        return found

    def _starting(self, scripts: Iterable[RecConn]) -> list[_Candidate]:
        """The candidates of a new connection: the scripts no other connection leads."""
        return [_Candidate(c) for c in scripts if self.book.led.get(c.key, self.cid) == self.cid]

    def _best(
        self, frame: CommandFrame
    ) -> tuple[list[tuple[_Candidate, int]], _Candidate, int] | None:
        """The candidates `frame` fits (with the index it matched) and the best of them."""
        assert self.candidates is not None
        best: tuple[tuple[int, int, int], _Candidate, int] | None = None
        keep: list[tuple[_Candidate, int]] = []
        for order, cand in enumerate(self.candidates):
            if (cand.conn.key in self.book.used and not self.reusing) or self.book.led.get(
                    cand.conn.key, self.cid) != self.cid:  # fmt: skip
                continue
            found = _match(cand, frame)
            if found is None:
                continue
            index, exact, skipped = found
            keep.append((cand, index))
            score = (0 if exact else 1, skipped, order)
            if best is None or score < best[0]:
                best = (score, cand, index)
        return None if best is None else (keep, best[1], best[2])

    def _follow(self, keep: list[tuple[_Candidate, int]], lead: _Candidate, index: int,
                frame: CommandFrame) -> bytes:  # fmt: skip
        """Move every candidate that fits past its match; `lead`'s server frames to send."""
        self.candidates = [c for c, _ in keep]
        start = lead.cursor
        for cand, i in keep:
            cand.cursor = i + 1
        # the lead's server frames up to its next client frame are sent now: never again as
        # frames skipped over (the profile after USR would come a second time with SYN)
        lead.cursor = _next_client_frame(lead.conn, index + 1)
        if self.lead is not None and self.lead is not lead:
            self.book.led.pop(self.lead.conn.key, None)
        self.lead = lead
        self.named = self.named or bool(_identity(frame))
        self.identified = self.identified or self.named or len(keep) == 1
        self.book.led[lead.conn.key] = self.cid
        return self._frames(lead.conn, start, index, frame)

    def _frames(self, conn: RecConn, start: int, index: int, frame: CommandFrame) -> bytes:
        """The server frames to send for recorded client frame `index`: unsolicited ones
        skipped over since `start`, then everything after it up to the next client frame
        (but replies sent already), then its own replies recorded after the client's next
        frames: a recorded client that sent its requests without waiting (Twisted's two
        CHGs) had them answered after both, and a client that waits for each answer would
        otherwise wait for good."""
        recording = self.book.recording
        request = conn.frames[index]
        trid = _trid_text(frame)
        out: list[bytes] = []
        for rec in conn.frames[start:index]:
            if not rec.c2s and rec.no not in recording.reply_of:
                out.append(self._rewrite(rec, None, frame))
        later = _next_client_frame(conn, index + 1)
        for rec in conn.frames[index + 1:later]:
            if rec.no not in self.early:
                mine = recording.reply_of.get(rec.no) == request.no
                out.append(self._rewrite(rec, trid if mine else None, frame))
        clients = 0
        for rec in conn.frames[later:]:
            if rec.c2s:
                clients += 1
                if clients > LOOKAHEAD:
                    break
            elif recording.reply_of.get(rec.no) == request.no and rec.no not in self.early:
                self.early.add(rec.no)
                out.append(self._rewrite(rec, trid, frame))
        return b"".join(out)

    def _rewrite(self, rec: RecFrame, trid: bytes | None, request: CommandFrame) -> bytes:
        frame = rec.frame
        words = frame.line.split(b" ")
        changed = False
        if trid is not None and frame.trid is not None and frame.trid != 0 and len(words) > 1:
            words[1] = trid
            changed = True
        if frame.cmd in ("XFR", "RNG"):
            variant = choose_variant(frame)
            offset = 2 if frame.trid is not None else 1
            for i, spec in enumerate(variant.args if variant is not None else ()):
                at = offset + i
                if spec.name not in ADDRESS_FIELDS or at >= len(words):
                    continue
                if split_address(words[at].decode("ascii", "replace")) is not None:
                    words[at] = self.address.encode()
                    changed = True
        if not changed:
            return frame.raw
        return b" ".join(words) + b"\r\n" + (frame.payload_bytes or b"")


def _trid_text(frame: CommandFrame) -> bytes | None:
    """The client's TrID as it wrote it (`041`, not 41): replies echo it byte for byte."""
    if frame.trid is None:
        return None
    words = frame.line.split(b" ", 2)
    return words[1] if len(words) > 1 else None


def _next_client_frame(conn: RecConn, start: int) -> int:
    """The index of the first recorded client frame from `start` on (the end if none)."""
    return next((i for i in range(start, len(conn.frames)) if conn.frames[i].c2s),
                len(conn.frames))


def _match(cand: _Candidate, frame: CommandFrame) -> tuple[int, bool, int] | None:
    """Where `frame` matches in `cand`'s script: (index, all arguments equal, skipped)."""
    frames = cand.conn.frames
    skipped = 0
    identity = _identity(frame)
    fits = _FITS.get(frame.cmd)
    for i in range(cand.cursor, len(frames)):
        rec = frames[i]
        if not rec.c2s:
            continue
        if rec.frame.cmd == frame.cmd and _identity(rec.frame) == identity and (
                fits is None or fits(frames, i, frame)):  # fmt: skip
            return i, rec.frame.args == frame.args, skipped
        skipped += 1
        if skipped > LOOKAHEAD:
            break
    return None


def _show(frame: CommandFrame) -> str:
    """A client frame for the log: command and TrID (arguments may carry credentials)."""
    return f"{frame.cmd} {frame.trid}" if frame.trid is not None else frame.cmd


class MockServer:
    """The asyncio edge: one listener for every connection, plus Passport."""

    def __init__(self, recording: Recording, listen: tuple[str, int],
                 passport: tuple[str, int] = ("127.0.0.1", 0),
                 unmatched_error: int | None = None,
                 on_log: Callable[[str], None] | None = None,
                 resolver: Resolve = resolve) -> None:  # fmt: skip
        self.recording = recording
        self.listen = listen
        self.resolver = resolver  # a listen host's addresses: each on the same port
        self.passport_address = passport
        self.unmatched_error = unmatched_error
        self.book = MockBook(recording, "")
        self.logs: list[str] = []
        self._on_log = on_log
        self._server: asyncio.Server | None = None
        self._passport: object | None = None
        self._ids = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[object]] = set()
        self.all_served = asyncio.Event()

    async def start(self) -> None:
        from msnsniff.server.passport import Passport

        accounts = {c.account.casefold() for c in self.recording.conns if c.account}
        passport = Passport(lambda account, password: account.casefold() in accounts)
        self._server = await listen(
            lambda hosts, p: asyncio.start_server(self._serve, hosts, p),
            *self.listen, self.resolver)
        port = port_of(self._server)
        self.book.address = show(self.listen[0], port)
        host, http = self.passport_address
        await passport.start(host, http, 0 if http == 0 else http + 1, resolver=self.resolver)
        self._passport = passport
        self.nexus_url = passport.nexus_url
        self.http_nexus_url = passport.http_nexus_url

    @property
    def address(self) -> str:
        return self.book.address

    @property
    def listening(self) -> bool:
        """Whether the MSNP listener is up (what failed after it was the Passport's)."""
        return self._server is not None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # the handler reads its end and finishes on its own
        if self._handlers:  # ended before the loop is, which would cancel them noisily
            await asyncio.wait(list(self._handlers), timeout=CLOSE_WAIT)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        from msnsniff.server.passport import Passport

        if isinstance(self._passport, Passport):
            await self._passport.close()

    def _reached(self, writer: asyncio.StreamWriter) -> str | None:
        """On a wildcard listener, the address this client connected to (what its redirects
        and invitations must name: 0.0.0.0 is no address to connect to); else None, the
        listener's own."""
        local = writer.get_extra_info("sockname")
        if self.listen[0] not in UNSPECIFIED or not isinstance(local, tuple):
            return None
        return show(reached(self.listen[0], local), local[1])

    def _log(self, line: str) -> None:
        self.logs.append(line)
        if self._on_log is not None:
            self._on_log(line)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._ids += 1
        conn = MockConnection(self.book, self._ids, self.unmatched_error,
                              self._reached(writer))
        self._writers.add(writer)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            while data := await reader.read(READ_CHUNK):
                reply = conn.receive(data)
                for line in reply.log:
                    self._log(line)
                if reply.data:
                    writer.write(reply.data)
                    await writer.drain()
                if reply.close:
                    break
        except OSError:
            pass
        finally:
            conn.closed()
            self._writers.discard(writer)
            if handler is not None:
                self._handlers.discard(handler)
            writer.close()
            if conn.lead is not None and conn.identified and conn.left_during_login:
                self._log(f"mock: connection {conn.cid} left during the login "
                          f"({conn.lead.conn.label} stays unused)")
            elif conn.lead is not None and conn.done_with_lead:
                self._log(f"mock: connection {conn.cid} done ({conn.lead.conn.label})")
            elif conn.lead is not None:
                self._log(f"mock: connection {conn.cid} closed (it had matched no single "
                          "recorded connection)")
            if self.book.finished:
                self.all_served.set()


def run_mock(
    args: argparse.Namespace, session: Callable[[argparse.Namespace], CaptureSession],
    out: TextIO, err: TextIO,
) -> int:  # fmt: skip
    """`msnsniff mock`: serve until Ctrl-C, SIGTERM or SIGHUP (or, with --once, until every
    script is used); 2 at the end when the capture was damaged (what came before the damage
    was served)."""
    from msnsniff.signals import stop_requested

    code = args.unmatched_error
    if code is not None and not 100 <= code <= 999:  # an error reply is `NNN TrID`
        raise MsnsniffError(f"bad --unmatched-error {code} (an MSNP error code: 3 digits, "
                            "e.g. 500)")  # fmt: skip
    listen = host_port(args.listen, listening=True)
    passport = host_port(args.passport, listening=True)
    if passport[1]:
        check_port(passport[1] + 1, "the HTTPS Passport (the port after --passport)")
        distinct_ports({"mock (--listen)": listen[1], "HTTP Passport (--passport)": passport[1],
                        "HTTPS Passport (the port after --passport)": passport[1] + 1})
    for host in (listen[0], passport[0]):
        if not args.allow_remote and not is_loopback(host):
            raise MsnsniffError(f"mock: {host} is not a loopback address (--allow-remote "
                                "allows it)")  # fmt: skip
    one = one_capture(args.file, args.capture, "mock serves one recording at a time")
    recording = load_recording(one, session(args), select=args.session)
    for note in recording.notes:
        err.write(f"msnsniff: {note}\n")

    def show(line: str) -> None:
        err.write(line + "\n")
        err.flush()

    async def main() -> None:
        stop = stop_requested(hangup=True)  # a closed terminal: a clean stop, not death
        server = MockServer(recording, listen, passport, args.unmatched_error, show)
        try:
            await server.start()
        except OSError as e:
            await server.close()
            raise cannot_listen("mock: ", e, host=passport[0] if server.listening else listen[0]
                                ) from e
        out.write(f"mock: serving {len(recording.conns)} recorded connections of {one.label} "
                  f"on {server.address}\nmock: Passport nexus {server.nexus_url} (also "
                  f"{server.http_nexus_url})\n")  # fmt: skip
        out.flush()
        try:
            waits = [asyncio.ensure_future(stop.wait())]
            if args.once:
                waits.append(asyncio.ensure_future(server.all_served.wait()))
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        finally:
            await server.close()

    asyncio.run(main())
    return 2 if recording.damaged else 0

