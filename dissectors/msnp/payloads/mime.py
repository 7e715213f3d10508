"""MIME-style text helpers: the header block, Content-Type parameters, `Name: value` lines.

MSG payloads are `Name: value` lines, a blank line, then the body. The wire uses CRLF; some
clients and hand-made transcripts use bare LF, which is accepted and reported. Every function
here is total: bad input becomes a problem in the `Findings`, never an exception.

A conversation repeats its header block in every message, so plain CRLF blocks are parsed
once into an immutable `HeaderBlock` and remembered (`parse_block`, a bounded cache); other
blocks take the general line reader, `split_headers`.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from dissectors.msnp.payloads.findings import Findings, KeepingFindings
from dissectors.msnp.percent import unquote_bytes

MAX_HEADERS: Final = 256
"""Header lines read before the rest is treated as body (real payloads have about 25)."""

MAX_LINES: Final = 512
"""`Name: value` lines read from a body (invitations, notifications, SLP bodies)."""

_UNSAFE_CODECS: Final = frozenset({"punycode", "idna"})
"""Text codecs that are not character sets a message could declare (and can be slow)."""

MAX_CACHED_BLOCK: Final = 1024
"""Header blocks up to this many bytes are parsed once and remembered (they repeat a lot:
a conversation's typing notifications and messages share theirs)."""

_BAD_NAME: Final = re.compile(r"[\x00-\x20\x7f]")
_BAD_NAME_BYTES: Final = re.compile(rb"[\x00-\x20\x7f]")
"""Characters a header name may not contain (controls, space, DEL)."""
_TICKET_RE: Final = re.compile(r"(?:^|[&?;,\s])t=[^&\s]{16,}")
"""A Passport ticket (`t=...&p=...`) inside a header or body value."""
_NO_PARAMS: Final[Mapping[str, str]] = MappingProxyType({})
_NO_TYPES: Final[frozenset[str]] = frozenset()


def looks_like_ticket(value: str) -> bool:
    """True for a value carrying a Passport ticket (`t=...`, usually with `&p=...`)."""
    return "t=" in value and _TICKET_RE.search(value) is not None


def text_codec(charset: str | None) -> str | None:
    """The Python codec for a declared charset (UTF-8 when none), or None if unusable."""
    name = (charset or "utf-8").strip().strip('"').strip()
    if not name or len(name) > 40:
        return None
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _UNSAFE_CODECS:
        return None
    return info.name


def strict_text(data: bytes, charset: str | None) -> str | None:
    """`data` decoded with the charset (UTF-8 by default); None when it does not decode."""
    codec = "utf-8" if charset is None else text_codec(charset)
    if codec is None:
        return None
    try:
        return data.decode(codec)
    except (UnicodeError, ValueError):
        return None


def lenient_text(data: bytes, charset: str | None, findings: Findings) -> str:
    """`data` decoded for field parsing: replacement characters instead of errors."""
    codec = text_codec(charset) or "utf-8"
    try:
        return data.decode(codec, "replace")
    except (UnicodeError, ValueError, LookupError):  # pragma: no cover - codecs are text codecs
        findings.problem(f"body does not decode as {codec}")
        return data.decode("utf-8", "replace")


def url_decode(raw: str) -> tuple[str, bool]:
    """Percent-decode as UTF-8: (text, valid UTF-8). Never raises."""
    data = unquote_bytes(raw.encode("utf-8", "surrogatepass"))
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), False


def split_headers(data: bytes, findings: Findings) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """Split `Name: value` lines from the body at the first blank line.

    Accepts CRLF and bare-LF line ends (a problem is reported for LF). Without a blank line
    every line is a header and the body is empty (also a problem).
    """
    headers: list[tuple[str, str]] = []
    pos = 0
    lf_only_at: int | None = None
    end = len(data)
    while pos < end:
        if len(headers) >= MAX_HEADERS:
            findings.problem(f"more than {MAX_HEADERS} header lines; the rest is read as body")
            return tuple(headers), data[pos:]
        nl = data.find(b"\n", pos)
        if nl < 0:
            line, nxt = data[pos:], end
            findings.problem(f"header block ends at byte offset {pos} without a line end")
        else:
            line, nxt = data[pos:nl], nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            elif lf_only_at is None:
                lf_only_at = nl
        if not line and nl >= 0:
            if lf_only_at is not None:
                findings.problem(f"header lines end with LF only (not CRLF), first at {lf_only_at}")
            return tuple(headers), data[nxt:]
        pair = header_line(line)
        if pair is None:
            findings.problem(f"bad header line at byte offset {pos}: {_preview(line)}")
        else:
            headers.append(pair)
        pos = nxt
    if lf_only_at is not None:
        findings.problem(f"header lines end with LF only (not CRLF), first at {lf_only_at}")
    findings.problem("no blank line after the headers (payload has no body)")
    return tuple(headers), b""


def header_line(line: bytes) -> tuple[str, str] | None:
    """One `Name: value` line as text, or None when it has no name or no colon."""
    name, sep, value = line.partition(b":")
    name = name.strip(b" \t")
    if not sep or not name or _BAD_NAME_BYTES.search(name) is not None:
        return None
    return (
        name.decode("utf-8", "replace"),
        value.strip(b" \t\r").decode("utf-8", "replace"),
    )


def _preview(line: bytes, limit: int = 40) -> str:
    text = repr(line[:limit])
    return text + ("..." if len(line) > limit else "")


def parse_content_type(value: str | None, findings: Findings) -> tuple[str | None, dict[str, str]]:
    """`type/subtype; name=value; ...` as (lower-cased media type, parameters)."""
    if value is None:
        return None, {}
    media, *rest = value.split(";")
    media = media.strip().lower()
    params: dict[str, str] = {}
    for part in rest:
        key, sep, val = part.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if not sep:
            findings.problem(f"Content-Type parameter without a value: {key!r}")
            continue
        params.setdefault(key, val.strip().strip('"'))
    if "/" not in media:
        findings.problem(f"Content-Type is not a media type: {value!r}")
    return media or None, params


@dataclass(frozen=True, slots=True)
class HeaderBlock:
    """A parsed header block: the headers and what is derived from them alone.

    `index` maps lower-case names to their first value; `tickets` names the headers whose
    values carry a Passport ticket, in header order; `problems` are the block's own problems
    (set only for cached blocks, which replay them).
    """

    headers: tuple[tuple[str, str], ...]
    index: Mapping[str, str]
    content_type: str | None
    params: Mapping[str, str]
    charset: str | None
    tickets: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()


NO_HEADERS: Final = HeaderBlock((), _NO_PARAMS, None, _NO_PARAMS, None)
"""The header block of a payload that has none (XML, text, QRY)."""


@dataclass(frozen=True, slots=True)
class Mime:
    """A split MIME payload: the header block, the body, and the body as text.

    `text` is the body strictly decoded with the charset: None when it does not decode, or
    when it was not decoded because the content type is binary.
    """

    block: HeaderBlock
    body: bytes
    text: str | None = None

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Headers in order, duplicates kept."""
        return self.block.headers

    @property
    def content_type(self) -> str | None:
        """The lower-case media type, without parameters."""
        return self.block.content_type

    @property
    def params(self) -> Mapping[str, str]:
        """Content-Type parameters by lower-case name."""
        return self.block.params

    @property
    def charset(self) -> str | None:
        """The Content-Type charset parameter as written, if any."""
        return self.block.charset

    def get(self, name: str) -> str | None:
        """The first header of that name, compared case-insensitively."""
        return self.block.index.get(name.lower())

    def body_text(self, findings: Findings) -> str:
        """The body as text for field decoding (lossy: undecodable bytes are replaced)."""
        if self.text is not None:  # the strict decoding, which lenient decoding would repeat
            return self.text
        return lenient_text(self.body, self.block.charset, findings)


def analyze_headers(headers: tuple[tuple[str, str], ...], findings: Findings) -> HeaderBlock:
    """Index the headers and read Content-Type; problems go to `findings`."""
    index: dict[str, str] = {}
    for key, value in reversed(headers):  # so the first of a repeated name wins
        index[key.lower()] = value
    ctype_value = index.get("content-type")
    if ctype_value is None:
        findings.problem("no Content-Type header")
    if headers and "mime-version" not in index:
        findings.problem("no MIME-Version header")
    media, params = parse_content_type(ctype_value, findings)
    charset = params.get("charset")
    if charset is not None and text_codec(charset) is None:
        findings.problem(f"unknown charset {charset!r}")
    return HeaderBlock(
        headers,
        MappingProxyType(index),
        media,
        MappingProxyType(params) if params else _NO_PARAMS,
        charset,
        tuple(key for key, value in headers if looks_like_ticket(value)),
    )


def _crlf_lines(block: bytes) -> list[tuple[str, str]] | None:
    """The lines of an ASCII CRLF header block as `(name, value)`, or None if any is bad."""
    pairs: list[tuple[str, str]] = []
    for line in block.decode("ascii").split("\r\n"):
        name, sep, value = line.partition(":")
        name = name.strip(" \t")
        if not sep or not name or _BAD_NAME.search(name) is not None:
            return None
        pairs.append((name, value.strip(" \t\r")))
    return pairs


@lru_cache(maxsize=2048)
def parse_block(block: bytes) -> HeaderBlock | None:
    """A header block (the bytes before the first CRLF CRLF), parsed once and remembered.

    None unless the block is plain: it does not start with CRLF, every LF in it follows a CR,
    and it has too few lines to reach `MAX_HEADERS`. Other blocks take the general path.
    """
    lfs = block.count(b"\n")
    if lfs >= MAX_HEADERS - 1 or lfs != block.count(b"\r\n") or block.startswith(b"\r\n"):
        return None
    pairs = _crlf_lines(block) if block.isascii() else None
    sink = KeepingFindings()
    if pairs is None:  # the general reader reports bad lines and decodes non-ASCII bytes
        pairs = list(split_headers(block + b"\r\n\r\n", sink)[0])
    info = analyze_headers(tuple(pairs), sink)
    return replace(info, problems=tuple(sink.problems)) if sink.problems else info


def split_mime(data: bytes, findings: Findings, binary_types: frozenset[str] = _NO_TYPES) -> Mime:
    """Headers, Content-Type and body of a MIME payload; problems go to `findings`.

    The body is also strictly decoded as text unless its content type is in `binary_types`.
    """
    end = data.find(b"\r\n\r\n", 0, MAX_CACHED_BLOCK + 4)
    block = parse_block(data[:end]) if end > 0 else None
    if block is None:
        headers, body = split_headers(data, findings)
        block = analyze_headers(headers, findings)
    else:
        for problem in block.problems:
            findings.problem(problem)
        body = data[end + 4 :]
    if block.content_type in binary_types:
        return Mime(block, body)
    return Mime(block, body, strict_text(body, block.charset))


def key_values(text: str, findings: Findings, where: str) -> list[tuple[str, str]]:
    """`Name: value` lines of a text body (CRLF or LF; blank lines and trailing NULs skipped)."""
    pairs: list[tuple[str, str]] = []
    lines = text.rstrip("\x00").splitlines()
    if len(lines) > MAX_LINES:
        findings.problem(f"{where}: more than {MAX_LINES} lines; the rest is ignored")
        lines = lines[:MAX_LINES]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            findings.problem(f"{where}: line {number} is not 'Name: value': {line[:40]!r}")
            continue
        pairs.append((name.strip(), value.strip()))
    return pairs


def first_of(pairs: list[tuple[str, str]], findings: Findings, where: str) -> dict[str, str]:
    """Pairs as a dict keeping the first of each name; repeats are reported."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            findings.problem(f"{where}: {name} appears more than once (first kept)")
            continue
        out[name] = value
    return out
