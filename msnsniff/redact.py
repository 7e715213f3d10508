"""`msnsniff redact IN OUT`: a capture with its accounts pseudonymised and its credentials
removed, that still decodes to the same frames.

Theory of operation
-------------------
Pass one reads every TCP packet and rebuilds each direction of each connection as one byte
stream (positions counted from the SYN, or from the first byte seen), then works out the
*edits* each stream needs, as (start, end, replacement) in stream positions:

* MSNP connections are dissected and each frame is rewritten on its own: arguments the
  grammar types as secrets (tickets, MD5 hashes, switchboard cookies) and the credential
  headers of payloads (`MSPAuth`, `MSPProf`, `MSPSec`) become consistent placeholders
  (`redacted-cookie-3`: the same value always gets the same one, so a cookie still links
  the XFR that gave it to the USR that uses it); every e-mail address, raw or URL-encoded,
  becomes a consistent pseudonym (`user3@example.invalid`), and so does one a gap or the
  capture's end cut in its domain (`bob@hotmail.c`) if it starts an address seen whole
  anywhere in the capture (else a placeholder, `redacted-address-1`), and so does the last
  word of a line cut before its `@` where the grammar has an address (`ADD 6 AL bob`); a
  payload that changed length gets its length argument recomputed. Bytes that are not a
  whole command (the partial first line of a capture joined mid-way, garbage, the rest of a
  line after a gap) are hidden as `x`, but first read for secrets by their shape
  (`credentials.TAIL_SECRETS`, the table the `--redact` outputs use too: the rest of a USR
  line still has its ticket, the rest of a profile message its MSPAuth), so a packet
  comment quoting one is redacted too; a line of a form the grammar has no rule for gets
  the same.
* HTTP connections (Passport, the message APIs) get the same for their heads
  (`Authorization` passwords, and any other scheme's credentials after its name,
  `Authentication-Info` tickets, cookies) and for bodies of a
  known length (XML-RPC `password`/`hpassword`, form `pwd`/`password`/`sig`/`session_key`;
  the MSNP commands in an HTTP gateway body like MSNP on TCP), whose `Content-Length` is
  recomputed. A message without a body (a GET, a 1xx, 204 or 304 answer) is followed by the
  next one on the connection; a chunked body is de-chunked, redacted and, when it changed,
  sent again as one chunk (its trailers kept); a response framed by the connection's end
  runs to the end of the stream.
* Any other connection gets its e-mail addresses replaced.

Pass two copies the capture packet by packet (same order, times and link layer), giving each
TCP segment the redacted bytes of the stream positions it carried, its sequence and
acknowledgement numbers moved by the edits before them, and new IP lengths and checksums.
Addresses kept as they are: protocol constants such as the QRY client id
`msmsgs@msnmsgr.com` (`KEEP`).
"""

from __future__ import annotations

import bisect
import gzip
import re
import struct
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final

from dissectors.api import Direction
from dissectors.http.dissector import decode_body
from dissectors.msnp import MsnpDissector
from dissectors.msnp.decode import choose_variant
from dissectors.msnp.framer import GAP_TAIL, JOINED, SKIPPED, TOO_LONG
from dissectors.msnp.frames import CommandFrame, ErrorFrame, MalformedFrame
from dissectors.msnp.grammar import ACCOUNT_TYPES, COMMANDS
from msnsniff.capture.packets import (
    ETH,
    SUPPORTED_LINKS,
    Defragmenter,
    fragment_of,
    ip_offset,
    pppoe_length_at,
    tcp_segment,
)
from msnsniff.capture.write import internet_checksum
from msnsniff.credentials import (
    BODY_SECRETS,
    FROM_PP,
    HTTP_PARAMS,
    hide_tail_secrets,
    placeholder,
)
from msnsniff.errors import MsnsniffError

MASK: Final = 0xFFFFFFFF
MAX_HOLE: Final = 16 << 20  # bytes a stream's hole may span; beyond, a sequence number jumped
MSNP_PORTS: Final = frozenset({1863, 1864, 1865})
EMAIL: Final = re.compile(rb"[A-Za-z0-9._+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                          rb"\.[A-Za-z]{2,}")  # fmt: skip
CUT_EMAIL: Final = re.compile(rb"(?<![A-Za-z0-9._+-])[A-Za-z0-9._+-]+(?:@|%40)[A-Za-z0-9.-]*\Z")
"""An address at the very end of bytes cut short, perhaps cut in its domain (`Pseudonyms.cut`)."""
KEEP: Final = frozenset({b"msmsgs@msnmsgr.com"})
PAYLOAD_SECRETS: Final = frozenset({b"mspauth", b"mspprof", b"mspsec"})
PAYLOAD_SECRET_HEADER: Final = re.compile(rb"(?im)^[ \t]*(?:" + b"|".join(sorted(PAYLOAD_SECRETS))
                                          + rb")[ \t]*:")  # fmt: skip
NO_SECRET_ARGS: Final = frozenset(
    cmd.encode() for cmd, spec in COMMANDS.items()
    if not any(a.type == "secret" for v in spec.c2s + spec.s2c for a in v.args)
)
"""Commands none of whose lines the grammar gives a secret argument (all but USR, ANS, XFR
and RNG): `Pseudonyms.learn` passes over them unless a payload has a credential header."""
HTTP_SECRET_HEADERS: Final = frozenset({b"cookie", b"set-cookie"})
HTTP_AUTH_HEADERS: Final = frozenset({b"authorization", b"proxy-authorization"})
"""Headers whose value after the scheme is a credential (Basic's base64 `user:password`, a
bearer token), except the `name=value` forms `HTTP_PARAMS` already reads (Passport1.4's)."""
HTTP_START: Final = re.compile(rb"^(?:[A-Z]+ \S+ HTTP/1\.[01]|HTTP/1\.[01] \d{3})")
MSNP_START: Final = re.compile(rb"^[A-Z]{3}(?: |\r\n)")

UNREADABLE: Final = frozenset({SKIPPED, GAP_TAIL, JOINED, TOO_LONG})
"""Reasons of the malformed runs that start with no command: bytes the dissector could not
read, such as the tail of a line whose start a capture gap, or a capture joined mid-way, cut
off (`...ticket&p=PROFILE\r\n`), so no rule can tell which of them are a credential."""
CUT_SHORT: Final = ("truncated:", "frame cut by a capture gap")
"""How the reasons of the malformed frames a capture's end or a gap cut short start: their
last bytes may be part of an address (`Pseudonyms.cut`)."""
_NOT_EOL: Final = re.compile(rb"[^\r\n]")
_COMMAND_WORD: Final = re.compile(rb"^(?:[A-Z]{3}|[0-9]{3})(?: |$)")
_WORD_BOUND: Final = rb"(?<![A-Za-z0-9._+%%-])%s(?![A-Za-z0-9._+%%@-])"


def _account_words() -> frozenset[tuple[str, Direction, int]]:
    """(command, direction, word index) where some variant of some dialect has an address
    (an `account` argument): the index counts the command word as 0, with and without a
    TrID, as a line cut short may be read either way."""
    out = set()
    for cmd, spec in COMMANDS.items():
        for direction in (Direction.C2S, Direction.S2C):
            for variant in spec.variants(direction):
                for i, arg in enumerate(variant.args):
                    if arg.type in ACCOUNT_TYPES:
                        out.add((cmd, direction, i + 1))
                        out.add((cmd, direction, i + 2))
    return frozenset(out)


ACCOUNT_WORDS: Final = _account_words()

Key = tuple[bytes, int, bytes, int]  # (src, sport, dst, dport) of one direction
Record = tuple[int, float, int, bytes]  # packet_records': (number, time, link type, bytes)
Edit = tuple[int, int, bytes]  # (start, end, replacement) in stream positions


@dataclass(slots=True)
class Pseudonyms:
    """Consistent replacements: one pseudonym per account, one placeholder per secret."""

    accounts: dict[bytes, bytes] = field(default_factory=dict)  # lower-case address -> alias
    secrets: dict[bytes, bytes] = field(default_factory=dict)
    hidden: bytes | None = None
    """What every secret becomes instead of its own placeholder: `msnsniff proxy --redact`
    gives its notes the marker its output prints."""
    pseudonymise: bool = True  # False: addresses stay (the --redact outputs keep them)
    partial: dict[bytes, bytes] = field(default_factory=dict)  # cut address -> placeholder
    known: set[bytes] = field(default_factory=set)
    """Every whole address in the capture (lower case, `@`), found before any edit
    (`know`): a cut form may start one that only a later connection shows whole."""

    def know(self, data: bytes) -> None:
        """Note the whole addresses in `data` (a stream), for `cut` and `cut_word`."""
        for match in EMAIL.finditer(data):
            self.known.add(match.group(0).replace(b"%40", b"@").lower())

    def _starting(self, plain: bytes) -> list[bytes]:
        """The addresses seen, before or after, that start with `plain`."""
        return [a for a in self.known.union(self.accounts) if a.startswith(plain)]

    def account(self, match: re.Match[bytes]) -> bytes:
        """A matched address's alias (a `re.sub` callback): one per account, case-insensitive;
        the system sender in `KEEP` stays as it is."""
        text = match.group(0)
        encoded = b"%40" in text
        plain = text.replace(b"%40", b"@").lower()
        if plain in KEEP:
            return text
        alias = self.accounts.get(plain)
        if alias is None:
            alias = b"user%d@example.invalid" % (len(self.accounts) + 1)
            self.accounts[plain] = alias
        return alias.replace(b"@", b"%40") if encoded else alias

    def secret(self, value: bytes, kind: str) -> bytes:
        """A secret value's placeholder (one per value), inside its quotes; empty, 0 and '' stay."""
        if not value or value in (b"0", b"''"):
            return value
        quoted = value[:1] == value[-1:] == b"'" and len(value) > 1
        core = value[1:-1] if quoted else value
        alias = self.secrets.get(core)
        if alias is None:
            alias = self.hidden or placeholder(kind, len(self.secrets) + 1)
            self.secrets[core] = alias
        return b"'" + alias + b"'" if quoted else alias

    def text(self, data: bytes) -> bytes:
        """`data` with every e-mail address (plain or %40-encoded) replaced by its alias."""
        return EMAIL.sub(self.account, data) if self.pseudonymise else data

    def learn(self, direction: Direction, line: bytes, payload: bytes = b"") -> None:
        """Take note of the secrets of one whole MSNP frame (its line without the CRLF, its
        payload) as if it were redacted in a capture, for `comment`: `msnsniff proxy --redact`
        shows it each frame its `--script` sees, as the script's error may quote one. Every
        word of a secret the shapes of `TAIL_SECRETS` find counts too (the extra words of
        USR's answer, which the grammar types but a capture's frame keeps). A command with no
        secret argument (most frames) is passed over at once, unless its payload has a
        credential header (the profile message's MSPAuth)."""
        if line[:3] in NO_SECRET_ARGS and not (payload and PAYLOAD_SECRET_HEADER.search(payload)):
            return
        _msnp_bytes(line + b"\r\n" + payload, direction, self)
        hide_tail_secrets(line, direction, self.secret)

    def cut(self, data: bytes) -> bytes:
        """Bytes a gap or the capture's end cut short, their last address hidden even if it
        was cut in its domain (`robert.smith@hotmail.c`), where `EMAIL` no longer sees one:
        one that starts an address seen anywhere in the capture (`known`: a later
        connection's too) becomes that address, so `text` gives it that account's alias;
        any other becomes a placeholder (`redacted-address-2`, one per cut form, no
        address, so `text` leaves it alone)."""
        match = CUT_EMAIL.search(data)
        if match is None:
            return data
        plain = match.group(0).replace(b"%40", b"@").lower()
        if plain in KEEP or plain in self.accounts or plain in self.known:
            return data  # a whole address of its own: `text` gives it its alias
        starting = self._starting(plain)
        if len(starting) == 1:
            seen = starting[0]
            return data[: match.start()] + (seen.replace(b"@", b"%40")
                                            if b"%40" in match.group(0) else seen)
        if len(starting) > 1 or not EMAIL.fullmatch(match.group(0)):
            alias = self.partial.get(plain)
            if alias is None:
                alias = placeholder("address", len(self.partial) + 1)
                self.partial[plain] = alias
            return data[: match.start()] + alias
        return data  # a whole address, as far as can be told: `text` gives it an alias

    def cut_word(self, word: bytes) -> bytes:
        """The last word of a line cut short before its address's `@` (`ADD 6 AL robert.sm`),
        where the grammar has an address (`ACCOUNT_WORDS`): neither `EMAIL` nor `cut` can tell
        it from any word. One that starts exactly one address seen (`known`) becomes that address
        (`text` gives it that account's alias); any other a placeholder, one per cut form."""
        plain = word.lower()
        starting = self._starting(plain)
        if len(starting) == 1:
            return starting[0]
        alias = self.partial.get(plain)
        if alias is None:
            alias = placeholder("address", len(self.partial) + 1)
            self.partial[plain] = alias
        return alias

    def comment(self, text: str) -> str:
        """A packet comment as the packets are redacted: a proxy's note may quote a frame
        (`script error on USR: ValueError('... t=...&p=...')`), so every secret value found in
        the packets (replaced there, or in bytes hidden whole) gets the same placeholder here
        (or `hidden`; the longest first; values under 4 bytes, no credential, are left alone),
        every address its pseudonym (when pseudonymising), and a credential parameter the
        packets did not hold (`pwd=...`) the marker."""
        from msnsniff.credentials import scrub_body

        data = text.encode("utf-8", "surrogateescape")
        # only those in the text: the same result as all of them, and no pattern of thousands
        # of alternatives compiled per comment (a long capture's, a long proxy run's)
        secrets = sorted((v for v in self.secrets if len(v) >= 4 and v in data), key=len,
                         reverse=True)  # fmt: skip
        if secrets:
            pattern = re.compile(b"|".join(re.escape(v) for v in secrets))
            data = pattern.sub(lambda m: self.secrets[m.group(0)], data)
        data = self.text(data)
        for cut in sorted(self.partial, key=len, reverse=True):  # after `text`: no address
            # it starts; a cut form without `@` only as a whole word (`cut_word`'s `bob` is
            # not hidden inside `bobcat`)
            found = re.escape(cut) if b"@" in cut else _WORD_BOUND % re.escape(cut)
            data = re.sub(found, self.partial[cut], data, flags=re.I)
        return scrub_body(data.decode("utf-8", "surrogateescape"))


# -- pass one: streams and their edits ---------------------------------------------------------


@dataclass(slots=True)
class _Half:
    base: int | None = None  # the sequence number of stream position 0
    chunks: dict[int, bytes] = field(default_factory=dict)
    stream: bytes = b""
    holes: list[tuple[int, int]] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # edit starts, for bisect
    shifts: list[int] = field(default_factory=list)  # total size change after each edit
    result: bytes | None = None  # the redacted stream, made on first use
    opener: bool = False  # it sent a SYN without ACK: the client's direction
    first: int | None = None  # the packet number of its first payload byte
    end: int | None = None  # where the stream stops: after it, a jump past MAX_HOLE
    cut: int = 0  # packets whose payload lay past `end`: written without it
    stray: bool = False  # a payload lay before position 0: not in `stream`, never written
    top: int = 0  # where the bytes read so far end
    late: list[tuple[int, int, int]] = field(default_factory=list)
    """(packet number, stream position, bytes) of the payloads that came after both sides of
    the connection had closed (`_Router`): redacted with the stream, but no reader decodes
    them."""

    def add(self, no: int, seq: int, flags: int, payload: bytes) -> None:
        if flags & 0x02:  # SYN
            self.opener = self.opener or not flags & 0x10
            if self.base is None:
                self.base = (seq + 1) & MASK
            return
        if self.base is None:
            self.base = seq
        if payload:
            self.first = no if self.first is None else self.first
            pos = (seq - self.base) & MASK
            if pos >= 1 << 31:  # before the stream's first byte (a capture joined
                self.stray = True  # mid-way, then a segment sent before): not read
            elif len(payload) > len(self.chunks.get(pos, b"")):
                self.chunks[pos] = payload
                self.top = max(self.top, pos + len(payload))

    def build(self) -> None:
        out = bytearray()
        for pos in sorted(self.chunks):
            data = self.chunks[pos]
            if pos > len(out) + MAX_HOLE:  # (a damaged or reused sequence number): what
                self.end = len(out)  # follows is not this stream, and its bytes not read:
                break  # their packets are written without them
            if pos > len(out):
                self.holes.append((len(out), pos))
                out += bytes(pos - len(out))
            if pos + len(data) > len(out):
                out += data[len(out) - pos :]
        self.stream = bytes(out)
        self.chunks = {}

    def set_edits(self, edits: list[Edit]) -> None:
        self.edits = sorted(edits)
        shift = 0
        for start, end, new in self.edits:
            self.starts.append(start)
            shift += len(new) - (end - start)
            self.shifts.append(shift)

    def position(self, pos: int) -> int:
        """Where stream position `pos` is after the edits (monotonic)."""
        i = bisect.bisect_right(self.starts, pos) - 1
        if i < 0:
            return pos
        start, end, new = self.edits[i]
        before = self.shifts[i - 1] if i else 0
        if pos >= end:
            return pos + self.shifts[i]
        return start + before + min(pos - start, len(new))

    def redacted(self, start: int, end: int) -> bytes:
        """The redacted bytes between two redacted positions."""
        if self.result is None:
            parts, at = [], 0
            for edit_start, edit_end, new in self.edits:
                parts += [self.stream[at:edit_start], new]
                at = edit_end
            parts.append(self.stream[at:])
            self.result = b"".join(parts)
        return self.result[start:end]


Conn = dict[Key, _Half]  # one connection's directions, by their 4-tuple


class _Router:
    """Which connection a TCP segment belongs to, decided the same way in both passes (they
    read the same segments in the same order): a SYN on a 4-tuple whose connection closed (a
    FIN each way, or a reset) opens a new one, as a reused port does, so its bytes are read
    as a stream of their own instead of at a position counted from the old connection's
    sequence numbers (where they could not be placed, and a packet that lay outside every
    stream was not redacted). Pass one makes the connections (`conns`); pass two, given
    them, finds each again."""

    def __init__(self, conns: list[Conn] | None = None) -> None:
        self.conns: list[Conn] = [] if conns is None else conns
        self._made = 0
        self._current: dict[Key, int] = {}
        self._fins: dict[int, set[Key]] = {}
        self._reset: set[int] = set()

    def _closed(self, i: int) -> bool:
        return i in self._reset or len(self._fins.get(i, ())) == 2

    def route(self, key: Key, flags: int) -> tuple[Conn, bool]:
        """The connection of a segment from `key` with these TCP flags, and whether it came
        after both sides had closed (a segment that opened a new connection did not)."""
        back = (key[2], key[3], key[0], key[1])
        i = self._current.get(key, self._current.get(back))
        if i is None or (flags & 0x02 and not flags & 0x10 and self._closed(i)):
            i = self._made
            self._made += 1
            if i == len(self.conns):
                self.conns.append({})
            self._current[back] = i
        self._current[key] = i
        after = self._closed(i)
        if flags & 0x01:
            self._fins.setdefault(i, set()).add(key)
        if flags & 0x04:
            self._reset.add(i)
        return self.conns[i], after


def _msnp_edits(c2s: _Half, s2c: _Half, names: Pseudonyms) -> None:
    dissector = MsnpDissector()
    for direction, half in ((Direction.C2S, c2s), (Direction.S2C, s2c)):
        at = 0
        for hole_start, hole_end in half.holes:
            if hole_start > at:  # empty bytes would end the stream (a hole at the start)
                dissector.feed(direction, half.stream[at:hole_start])
            dissector.gap(direction, hole_end - hole_start)
            at = hole_end
        dissector.feed(direction, half.stream[at:])
        dissector.feed(direction, b"")  # its end: the bytes of a frame it cuts short come out
    edits: dict[Direction, list[Edit]] = {Direction.C2S: [], Direction.S2C: []}
    for frame in dissector.drain():
        raw = getattr(frame, "raw", b"")
        if not raw:
            continue
        new = (_msnp_frame(frame, names) if isinstance(frame, CommandFrame)
               else _other(frame, names, dissector.dialect))  # fmt: skip
        if new != raw:
            edits[frame.direction].append((frame.offset, frame.offset + len(raw), new))
    c2s.set_edits(edits[Direction.C2S])
    s2c.set_edits(edits[Direction.S2C])


def _msnp_frame(frame: CommandFrame, names: Pseudonyms) -> bytes:
    words = frame.line.split(b" ")
    if not isinstance(frame, ErrorFrame):
        variant = choose_variant(frame)
        if variant is None:  # a form the grammar has no rule for (the first, partial line of
            # a capture joined mid-way that reads as a command, `TWN S t=...`): its secrets are
            # found by their shape, as in bytes that are not a command
            words = hide_tail_secrets(frame.line, frame.direction, names.secret).split(b" ")
        first = 2 if frame.trid is not None else 1
        for i, spec in enumerate(variant.args if variant is not None else ()):
            at = first + i
            if at >= len(words):
                break
            if spec.type == "secret":  # a rest argument (`*extra:secret`): every word of it
                for j in range(at, len(words) if spec.rest else at + 1):
                    words[j] = names.secret(words[j], spec.name)
            if spec.rest:
                break
    line = names.text(b" ".join(words))
    payload = frame.payload_bytes
    if payload is None:
        return line + b"\r\n"
    new_payload = names.text(_payload_secrets(payload, names))
    if len(new_payload) != frame.payload_length:
        parts = line.split(b" ")
        if parts[-1] == str(frame.payload_length).encode():
            parts[-1] = str(len(new_payload)).encode()
            line = b" ".join(parts)
    return line + b"\r\n" + new_payload


def _payload_secrets(payload: bytes, names: Pseudonyms, cut: bool = False) -> bytes:
    """`payload` with the values of its credential headers (`PAYLOAD_SECRETS`) replaced. Of
    a payload `cut` short before its blank line all of it is headers, the last one perhaps
    cut in its value (`MSPAuth: 1Y8W...`): what is there of the value is replaced too."""
    head, sep, body = payload.partition(b"\r\n\r\n")
    if not sep and not cut:
        return payload
    lines = []
    for header in head.split(b"\r\n"):
        name, colon, value = header.partition(b":")
        if colon and name.strip().lower() in PAYLOAD_SECRETS:
            header = name + b": " + names.secret(value.strip(), name.strip().decode())
        lines.append(header)
    return b"\r\n".join(lines) + sep + body


def _other(frame: object, names: Pseudonyms, dialect: int) -> bytes:
    """A frame that is not a whole command, redacted so that it reads back as the same frame.
    Bytes that start with no command (`UNREADABLE`, the rest of a frame cut by a gap) become
    `x`, their CR and LF kept (no lower-case `x` starts a command, so no run ends sooner); a
    command cut short (by a gap or the capture's end) or with a bad payload length has its
    line redacted as the whole line would be (the ticket of `USR 3 TWN S t=...` cut before
    its CRLF), its payload's credential headers (`MSPAuth`, perhaps cut in its value) and
    addresses replaced and its declared length moved by as many bytes as they changed, so
    the cut stays where it was; an address the cut falls in (`ADD 6 AL bob@hotmail.c`) is
    hidden too (`Pseudonyms.cut`). The secrets of hidden bytes are still recognised
    (`credentials.TAIL_SECRETS`), for the packet comments that quote them."""
    raw: bytes = getattr(frame, "raw", b"")
    if not isinstance(frame, MalformedFrame):
        return names.text(raw)
    line, crlf, rest = raw.partition(b"\r\n")
    if frame.reason in UNREADABLE or not _COMMAND_WORD.match(line):
        hide_tail_secrets(raw, frame.direction, names.secret)  # known for the comments
        return _NOT_EOL.sub(b"x", raw)
    cut = frame.reason.startswith(CUT_SHORT)
    if cut and not crlf:
        line = names.cut(line)
        words = line.split(b" ")
        last = words[-1]
        if (last and b"@" not in last and b"%40" not in last and names.pseudonymise
                and (words[0].decode("ascii"), frame.direction, len(words) - 1)
                in ACCOUNT_WORDS):  # fmt: skip
            words[-1] = names.cut_word(last)  # cut before its `@`: `ADD 6 AL robert.sm`
            line = b" ".join(words)
    whole = CommandFrame(frame.direction, frame.offset, line + b"\r\n", len(line) + 2, None,
                         dialect, True)  # fmt: skip
    new_line = _msnp_frame(whole, names)[:-2]
    if not crlf:
        return new_line
    new_rest = names.text(_payload_secrets(names.cut(rest) if cut else rest, names, cut=True))
    words = new_line.split(b" ")
    if len(new_rest) != len(rest) and words[-1].isdigit():
        words[-1] = str(int(words[-1]) + len(new_rest) - len(rest)).encode()
        new_line = b" ".join(words)
    return new_line + crlf + new_rest


def _http_edits(half: _Half, names: Pseudonyms) -> None:
    data, at, edits = half.stream, 0, []
    while at < len(data):
        end = data.find(b"\r\n\r\n", at)
        if end < 0:
            break
        head = data[at : end + 4]
        length: int | None = None
        lines = []
        for line in head.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            key = name.strip().lower()
            if colon and key == b"content-length" and value.strip().isdigit():
                length = int(value.strip())
            if colon and key in HTTP_SECRET_HEADERS:
                line = name + b": " + names.secret(value.strip(), "cookie")
            elif colon and key in HTTP_AUTH_HEADERS:
                scheme, _, credentials = value.strip().partition(b" ")
                if credentials.strip() and not HTTP_PARAMS.search(credentials):
                    line = name + b": " + scheme + b" " + names.secret(credentials.strip(),
                                                                       "authorization")
            lines.append(line)
        new_head = _http_text(b"\r\n".join(lines), names)
        body_at = end + 4
        framing = _framing(head, length, data, body_at)
        if framing is None:  # the body is cut short: only its head is known
            edits.append((at, body_at, new_head))
            break
        body, after, chunk_tail = framing
        new_body = _http_body(head, body, names)
        if chunk_tail is not None:
            wire = data[body_at:after]
            if new_body != body:
                wire = b"%x\r\n" % len(new_body) + new_body + b"\r\n" + chunk_tail
        else:
            wire = new_body
            if length is not None and len(new_body) != length:
                new_head = re.sub(rb"(?im)^(content-length:\s*)\d+",
                                  b"\\g<1>%d" % len(new_body), new_head)  # fmt: skip
        edits.append((at, after, new_head + wire))
        at = after
    if (at < len(data) and not edits) or (edits and edits[-1][1] < len(data)):
        tail_start = edits[-1][1] if edits else 0
        edits.append((tail_start, len(data), names.text(data[tail_start:])))
    half.set_edits([e for e in edits if data[e[0] : e[1]] != e[2]])


CHUNK_SIZE: Final = re.compile(rb"([0-9A-Fa-f]+)[^\r\n]*\r\n")


def _framing(head: bytes, length: int | None, data: bytes, at: int
             ) -> tuple[bytes, int, bytes | None] | None:  # fmt: skip
    """The body of the message whose head is `head`, its body starting at `data[at]`:
    (body, where the message ends, for a chunked body its last chunk and trailers), or None
    when the capture holds only part of it. HTTP/1.1's rules: chunked, then Content-Length;
    a request without either has no body, and so has a 1xx, 204 or 304 answer; any other
    answer runs to the connection's end."""
    low = head.lower()
    response = head.startswith(b"HTTP/")
    status = head[9:12] if response else b""
    if re.search(rb"(?m)^transfer-encoding:[^\r\n]*chunked", low):
        body, pos = bytearray(), at
        while True:
            match = CHUNK_SIZE.match(data, pos)
            if match is None:
                return None
            size, pos = int(match.group(1), 16), match.end()
            if size == 0:
                close = data.find(b"\r\n", pos)
                while close > pos:  # trailer fields up to the empty line
                    pos, close = close + 2, data.find(b"\r\n", close + 2)
                if close < 0:
                    return None
                tail_start = match.start()
                return bytes(body), close + 2, data[tail_start : close + 2]
            if pos + size + 2 > len(data):
                return None
            body += data[pos : pos + size]
            pos += size + 2
    if length is not None:
        return (data[at : at + length], at + length, None) if at + length <= len(data) else None
    if not response or status[:1] == b"1" or status in (b"204", b"304"):
        return b"", at, None
    return data[at:], len(data), None


CONTENT_CODING: Final = re.compile(rb"(?im)^content-encoding:[ \t]*([^\r\n]*?)[ \t]*\r?$")


def _http_body(head: bytes, body: bytes, names: Pseudonyms) -> bytes:
    """A message's body with its secrets and addresses replaced. A gzip or deflate body is
    redacted inside and compressed again the same way (its compressed bytes hide nothing);
    one that does not decompress cannot be read, so none of it is kept."""
    coding = CONTENT_CODING.search(head)
    name = coding.group(1).strip().lower() if coding else b""
    if name in (b"gzip", b"x-gzip", b"deflate"):
        plain, problems = decode_body(body, name.decode())
        if problems:  # not a whole, readable stream: drop it rather than keep a secret
            return b""
        redacted = _plain_http_body(head, plain, names)
        if redacted == plain:
            return body
        if name == b"deflate":
            return zlib.compress(redacted)
        return gzip.compress(redacted, mtime=0)
    return _plain_http_body(head, body, names)


def _plain_http_body(head: bytes, body: bytes, names: Pseudonyms) -> bytes:
    if b"x-msn-messenger" in head.lower():  # MSNP through the HTTP gateway
        request = not head.startswith(b"HTTP/")
        return _msnp_bytes(body, Direction.C2S if request else Direction.S2C, names)
    for pattern in BODY_SECRETS:
        body = pattern.sub(lambda m: m["head"] + names.secret(m["value"], _kind(m)), body)
    return _http_text(body, names)


def _msnp_bytes(data: bytes, direction: Direction, names: Pseudonyms) -> bytes:
    """MSNP commands carried whole in one HTTP body, each redacted like on TCP."""
    dissector = MsnpDissector()
    dissector.feed(direction, data)
    out, at = [], 0
    for frame in dissector.drain():
        raw = getattr(frame, "raw", b"")
        if isinstance(frame, CommandFrame):
            out.append(_msnp_frame(frame, names))
        else:
            out.append(_other(frame, names, dissector.dialect))
        at = frame.offset + len(raw)
    out.append(names.text(data[at:]))
    return b"".join(out)


def _kind(match: re.Match[bytes]) -> str:
    """The parameter a `BODY_SECRETS` match names (its placeholder's label)."""
    name: bytes = match["name"]
    return name.decode().lower()


def _http_text(data: bytes, names: Pseudonyms) -> bytes:
    data = HTTP_PARAMS.sub(lambda m: m.group(1) + b"=" + names.secret(m.group(2), m.group(1)
                                                                     .decode().lower()), data)
    data = FROM_PP.sub(lambda m: m.group(1) + names.secret(m.group(2), "ticket"), data)
    return names.text(data)


def _plain_edits(half: _Half, names: Pseudonyms) -> None:
    new = names.text(half.stream)
    half.set_edits([] if new == half.stream else [(0, len(half.stream), new)])


# -- pass two: packets -------------------------------------------------------------------------


def _rewrite(link: int, data: bytes, router: _Router, missing: int = 0) -> bytes:
    """The packet `data` with its TCP payload redacted and its headers made to agree;
    `missing`: bytes of it the capture cut off, still counted in the lengths it declares."""
    seg = tcp_segment(link, data, Defragmenter())  # (a joined IPv6 datagram is atomic)
    where = ip_offset(link, data)
    if seg is None or where is None:
        return data
    halves, _ = router.route((seg.src, seg.sport, seg.dst, seg.dport), seg.flags)
    ip, version = where
    ihl = (data[ip] & 0x0F) * 4 if version == 4 else 40
    tcp = ip + ihl if version == 4 else _tcp_offset_v6(data, ip)
    doff = (data[tcp + 12] >> 4) * 4
    if doff < 20 or tcp + doff > len(data):  # a bogus TCP header: its bytes cannot be read
        return data[:tcp] + bytes(len(data) - tcp)  # as a stream, so none of them is kept
    key = (seg.src, seg.sport, seg.dst, seg.dport)
    half, other = halves.get(key), halves.get((seg.dst, seg.dport, seg.src, seg.sport))
    if half is None or half.base is None:
        return data
    if (not half.edits and (other is None or not other.edits) and half.end is None
            and not half.stray):  # fmt: skip
        return data
    header = bytearray(data[tcp : tcp + doff])
    seq = seg.seq
    payload = seg.payload
    if not seg.flags & 0x02:
        rel = (seg.seq - half.base) & MASK
        start, end = half.position(rel), half.position(rel + len(payload))
        payload = half.redacted(start, end) if payload else b""
        seq = (half.base + start) & MASK
        if seg.payload and (rel >= 1 << 31
                            or (half.end is not None and rel + len(seg.payload) > half.end)):
            half.cut += 1  # before the stream's start or past where it stops (`redacted`
            # keeps nothing there)
    ack = seg.ack
    if seg.flags & 0x10 and other is not None and other.base is not None:
        rel_ack = (seg.ack - other.base) & MASK
        if rel_ack < 1 << 31:
            ack = (other.base + other.position(rel_ack)) & MASK
    struct.pack_into("!II", header, 4, seq, ack)
    struct.pack_into("!H", header, 16, 0)
    tcp_len = len(header) + len(payload)
    if version == 4:
        pseudo = data[ip + 12 : ip + 20] + struct.pack("!BBH", 0, 6, tcp_len)
    else:
        pseudo = data[ip + 8 : ip + 40] + struct.pack("!IxxxB", tcp_len, 6)
    struct.pack_into("!H", header, 16, internet_checksum(pseudo + bytes(header) + payload))
    ip_head = bytearray(data[ip:tcp])
    datagram = len(ip_head) + tcp_len + missing
    if version == 4:
        struct.pack_into("!H", ip_head, 2, datagram)
        struct.pack_into("!H", ip_head, 10, 0)
        struct.pack_into("!H", ip_head, 10, internet_checksum(bytes(ip_head[:ihl])))
    else:
        struct.pack_into("!H", ip_head, 4, datagram - 40)
    return _link_length(link, data[:ip], datagram) + bytes(ip_head) + bytes(header) + payload


def _link_length(link: int, head: bytes, datagram: int) -> bytes:
    """The link-layer headers before an IP datagram now `datagram` bytes long: a PPPoE
    session header counts it (with its PPP protocol), so it is set too."""
    at = pppoe_length_at(link, head + b"\x45")  # (a byte of IP, for the header walk)
    if at is None:
        return head
    out = bytearray(head)
    struct.pack_into("!H", out, at, datagram + 2)
    return bytes(out)


def _tcp_offset_v6(data: bytes, ip: int) -> int:
    nxt, off = data[ip + 6], ip + 40
    while nxt in (0, 43, 44, 60) and off + 8 <= len(data):  # 44: an atomic fragment's
        nxt, off = data[off], off + (data[off + 1] + 1) * 8
    return off


# -- the command --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedactSummary:
    """What `msnsniff redact` did: packets read and rewritten, accounts and secrets replaced."""

    packets: int
    rewritten: int
    accounts: int
    secrets: int
    joined: int = 0  # IP fragments written as one packet with the rest of their datagram
    dropped: int = 0  # IP fragments of datagrams never completed: not written
    unsupported: int = 0  # packets of a link type msnsniff cannot read: not written
    damage: str | None = None  # where the input is damaged: the packets before it are written
    cut: int = 0  # packets before their stream or past a jump: written without their payload
    late: tuple[int, ...] = ()  # packets with bytes after their connection closed: their numbers
    late_bytes: int = 0  # and how many bytes they carried


def _until_damage(records: Iterator[Record], damage: list[str]) -> Iterator[Record]:
    """The packets before a damaged file's damage, which goes in `damage`: what comes
    before it is a capture that ended there, redacted as one (a cut frame as a whole)."""
    try:
        yield from records
    except MsnsniffError as exc:
        damage.append(str(exc))


def redact(src: Path, dst: BinaryIO, dst_name: str) -> RedactSummary:
    """Write the redacted copy of the capture at `src` to `dst`: of a damaged capture, the
    packets before the damage (`RedactSummary.damage` says where it is)."""
    from msnsniff.capture.pcap import packet_records
    from msnsniff.capture.write import PcapngWriter, PcapWriter

    router = _Router()
    first_link: int | None = None
    defrag = Defragmenter()
    damage: list[str] = []  # (both passes meet the same damage: the second's is dropped)
    for no, _ts, link, data in _until_damage(packet_records(src), damage):
        if link not in SUPPORTED_LINKS:
            continue  # not written (below): what they hold cannot be read, so not redacted
        first_link = link if first_link is None else first_link
        seg = tcp_segment(link, data, defrag)
        if seg is not None:
            key = (seg.src, seg.sport, seg.dst, seg.dport)
            conn, after = router.route(key, seg.flags)
            half = conn.setdefault(key, _Half())
            top = half.top
            half.add(no, seg.seq, seg.flags, seg.payload)
            if after and half.top > top:  # (not a retransmission of bytes it had)
                half.late.append((no, half.top - len(seg.payload), len(seg.payload)))
    names = Pseudonyms()
    halves = [half for conn in router.conns for half in conn.values()]
    for half in halves:
        half.build()
        names.know(half.stream)  # before any edit: a cut may come before the whole address
    done: set[int] = set()  # connections by their ports, as the pseudonyms are numbered:
    for _, i in sorted(((k[1], k[3], k[0], k[2], i), i)
                       for i, conn in enumerate(router.conns) for k in conn):  # fmt: skip
        if i in done:
            continue
        done.add(i)
        conn = router.conns[i]
        _edits_for(sorted(conn, key=lambda k: (k[1], k[3], k[0], k[2])), conn, names)
    if first_link is None:
        if damage:  # (damaged before its first packet: nothing to stand for it)
            raise MsnsniffError(damage[0])
        first_link = ETH  # a capture without packets (a quiet `sniff -w`): as empty a copy
    ng = dst_name.lower().endswith(".pcapng")  # (any case, as sniff -w and proxy -w read it)
    writer = (PcapngWriter if ng else PcapWriter)(dst, linktype=first_link)
    packets = rewritten = 0
    joiner = _FragmentJoiner()
    comments: dict[int, str] = {}  # packet comments (the proxy's notes): kept, redacted
    origlens: dict[int, int] = {}  # the wire lengths of packets the capture cut short
    unsupported = 0
    again = _Router(router.conns)
    for no, ts, link, data in _until_damage(packet_records(src, comments, origlens), []):
        # a packet the capture cut stays cut, its wire length (and the lengths its headers
        # declare) changed as its bytes were (a datagram put back together is whole); taken
        # here, so that packets passed over below leave nothing behind
        wire = origlens.pop(no, None) if origlens else None
        if link not in SUPPORTED_LINKS:  # (a pcapng interface of another link type)
            unsupported += 1
            comments.pop(no, None)
            continue
        if link != first_link and not isinstance(writer, PcapngWriter):
            raise MsnsniffError(f"{src}: packets of more than one link type ({first_link} and "
                                f"{link}) cannot be written to one pcap file (write a .pcapng)")
        whole, comment = joiner.add(link, data, comments.pop(no, None))
        if whole is None:
            continue  # a fragment: its datagram is written whole, once complete
        missing = 0 if wire is None or whole is not data else wire - len(data)
        new = _rewrite(link, whole, again, missing)
        packets += 1
        rewritten += new != data
        orig_len = None if not missing else len(new) + missing
        try:
            if isinstance(writer, PcapngWriter):  # one interface per link type
                text = None if comment is None else names.comment(comment)
                writer.write(ts, new, text, writer.interface(link), orig_len)
            else:
                writer.write(ts, new, None, orig_len)
        except MsnsniffError as exc:  # a time the output cannot hold: say which packet
            raise MsnsniffError(f"{src}: packet {no}: {exc}") from exc
    writer.flush()
    late = [(no, size) for half in halves for no, pos, size in half.late
            if half.end is None or pos < half.end]  # (past a jump: `cut` counts them)
    return RedactSummary(packets, rewritten, len(names.accounts), len(names.secrets),
                         joiner.joined, joiner.held, unsupported,
                         damage[0] if damage else None,
                         sum(half.cut for half in halves),
                         tuple(sorted(no for no, _ in late)), sum(size for _, size in late))


class _FragmentJoiner:
    """IP fragments of TCP, as one unfragmented packet each: a fragment's bytes cannot be
    redacted on their own (an address or a ticket may straddle two), so a datagram is
    written whole where its last fragment was, its first fragment's headers cleared of
    fragmentation (an IPv6 fragment header stays, as an atomic fragment: offset 0, no more).
    A datagram never completed is not written at all: its bytes could not be redacted. The
    fragments' packet comments go on the whole datagram, in order."""

    def __init__(self) -> None:
        self._defrag = Defragmenter()
        self._heads: dict[tuple[bytes, bytes, int], bytes] = {}  # first fragment's headers
        self._pending: dict[tuple[bytes, bytes, int], int] = {}  # fragments held
        self._comments: dict[tuple[bytes, bytes, int], list[str]] = {}  # theirs, held too
        self.joined = 0  # fragments written as part of a whole datagram
        self.dropped = 0  # fragments of datagrams never completed

    def add(self, link: int, data: bytes, comment: str | None = None
            ) -> tuple[bytes | None, str | None]:  # fmt: skip
        """The packet to write for `data` (itself, a whole datagram, or None: held) and the
        comment to write with it."""
        frag = fragment_of(link, data)
        if frag is None:
            return data, comment
        key, head, offset, more, piece = frag
        if offset == 0:
            self._heads[key] = _unfragmented(link, head)
        self._pending[key] = self._pending.get(key, 0) + 1
        if comment is not None:
            self._comments.setdefault(key, []).append(comment)
        payload = self._defrag.add(key, offset, more, piece)
        first = self._heads.get(key)
        if payload is None or first is None:
            return None, None
        del self._heads[key]
        self.joined += self._pending.pop(key)
        return _with_lengths(link, first + payload), "\n".join(self._comments.pop(key, ())) or None

    @property
    def held(self) -> int:
        """Fragments of datagrams not (yet) complete."""
        return sum(self._pending.values())


def _unfragmented(link: int, head: bytes) -> bytes:
    """A first fragment's headers as those of a whole datagram: IPv4 without the flags and
    offset (DF kept), IPv6 with its fragment header atomic (offset 0, no more fragments)."""
    where = ip_offset(link, head)
    assert where is not None  # it was read as an IP fragment
    ip, version = where
    out = bytearray(head)
    if version == 4:
        out[ip + 6] &= 0x40
        out[ip + 7] = 0
    else:
        out[-6:-4] = b"\x00\x00"
    return bytes(out)


def _with_lengths(link: int, packet: bytes) -> bytes:
    """The joined packet with its IP length fields (and IPv4 header checksum) set."""
    where = ip_offset(link, packet)
    assert where is not None
    ip, version = where
    out = bytearray(packet)
    if version == 4:
        ihl = (out[ip] & 0x0F) * 4
        struct.pack_into("!HH", out, ip + 2, len(out) - ip, 0)
        struct.pack_into("!H", out, ip + 10, 0)
        struct.pack_into("!H", out, ip + 10, internet_checksum(bytes(out[ip : ip + ihl])))
    else:
        struct.pack_into("!H", out, ip + 4, len(out) - ip - 40)
    return _link_length(link, bytes(out[:ip]), len(out) - ip) + bytes(out[ip:])


def _edits_for(pair: list[Key], halves: Mapping[Key, _Half], names: Pseudonyms) -> None:
    """Decide the connection's protocol and give each direction its edits."""
    ports = {pair[0][1], pair[0][3]}
    streams = [halves[k].stream for k in pair]
    if any(HTTP_START.match(s) for s in streams):  # HTTP first: "GET " looks like MSNP
        for k in pair:
            _http_edits(halves[k], names)
    elif ports & MSNP_PORTS or any(MSNP_START.match(s) for s in streams):
        client = _client(pair, halves)
        server = [k for k in pair if k != client]
        c2s = halves[client]
        s2c = halves[server[0]] if server else _Half()
        _msnp_edits(c2s, s2c, names)
    else:
        for k in pair:
            _plain_edits(halves[k], names)


def _client(pair: list[Key], halves: Mapping[Key, _Half]) -> Key:
    """The client's direction: the SYN's sender, else the one sending to an MSNP port, else
    the one that spoke first (an MSNP client always speaks first)."""
    for k in pair:
        if halves[k].opener:
            return k
    for k in pair:
        if k[3] in MSNP_PORTS and k[1] not in MSNP_PORTS:
            return k
    return min(pair, key=lambda k: _or_last(halves[k].first))


def _or_last(no: int | None) -> int:
    return 1 << 62 if no is None else no


def summary_text(summary: RedactSummary) -> str:
    """What a redaction did, in one line for stderr."""
    joined = ([f"{summary.joined} IP fragments written joined into whole packets"]
              if summary.joined else [])  # fmt: skip
    return "; ".join([f"redacted {summary.packets} packets ({summary.rewritten} rewritten): "
                      f"{summary.accounts} accounts pseudonymised, {summary.secrets} secrets "
                      "removed", *joined, *summary_notes(summary)])  # fmt: skip


def summary_notes(summary: RedactSummary) -> list[str]:
    """The bytes a redaction could not place as they were (left out, written without their
    payload, or past their connection's end), one clause each: `summary_text` ends with
    them, `export --redact` says them per capture."""
    notes = []
    if summary.dropped:
        notes.append(f"{summary.dropped} IP fragments of incomplete datagrams left out (their "
                     "bytes could not be redacted)")
    if summary.cut:
        notes.append(f"{summary.cut} packets before the start of their stream or after a "
                     "sequence number jump written without their payload (not read, so not "
                     "redacted)")
    if summary.late:
        notes.append(f"{len(summary.late)} packets carried {summary.late_bytes} bytes after "
                     f"both sides of their connection had closed ({_numbers(summary.late)}): "
                     "redacted as the rest of its stream, though readers do not decode them")
    if summary.unsupported:
        notes.append(f"{summary.unsupported} packets of unsupported link types left out (their "
                     "bytes could not be read, so not redacted)")
    return notes


def _numbers(packets: tuple[int, ...], shown: int = 5) -> str:
    """`packet 7`, `packets 7, 9 and 12`, `packets 7, 9, 12, 15, 20 and 3 more`."""
    if len(packets) == 1:
        return f"packet {packets[0]}"
    if len(packets) <= shown:
        return f"packets {', '.join(map(str, packets[:-1]))} and {packets[-1]}"
    return f"packets {', '.join(map(str, packets[:shown]))} and {len(packets) - shown} more"
