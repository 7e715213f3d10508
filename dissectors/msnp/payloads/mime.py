"""MIME-style text helpers: the header block, Content-Type parameters, `Name: value` lines.

MSG payloads are `Name: value` lines, a blank line, then the body. The wire uses CRLF; some
clients and hand-made transcripts use bare LF, which is accepted and reported. Every function
here is total: bad input becomes a problem in the `Findings`, never an exception.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final
from urllib.parse import unquote_to_bytes

from dissectors.msnp.payloads.model import Findings

MAX_HEADERS: Final = 256
"""Header lines read before the rest is treated as body (real payloads have about 25)."""

MAX_LINES: Final = 512
"""`Name: value` lines read from a body (invitations, notifications, SLP bodies)."""

_UNSAFE_CODECS: Final = frozenset({"punycode", "idna"})
"""Text codecs that are not character sets a message could declare (and can be slow)."""


@dataclass(frozen=True, slots=True)
class Mime:
    """A split MIME payload: headers in order (duplicates kept), Content-Type parts, body."""

    headers: tuple[tuple[str, str], ...]
    body: bytes
    content_type: str | None
    params: Mapping[str, str]
    charset: str | None

    def get(self, name: str) -> str | None:
        """The first header of that name, compared case-insensitively."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def body_text(self, findings: Findings) -> str:
        """The body as text for field decoding (lossy: undecodable bytes are replaced)."""
        return lenient_text(self.body, self.charset, findings)


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
    codec = text_codec(charset)
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
    data = unquote_to_bytes(raw.encode("utf-8", "surrogatepass"))
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
    if not sep or not name or any(c < 0x21 or c == 0x7F for c in name):
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


def split_mime(data: bytes, findings: Findings) -> Mime:
    """Headers, Content-Type and body of a MIME payload; problems go to `findings`."""
    headers, body = split_headers(data, findings)
    ctype_value = None
    for key, value in headers:
        if key.lower() == "content-type":
            ctype_value = value
            break
    if ctype_value is None:
        findings.problem("no Content-Type header")
    if headers and not any(k.lower() == "mime-version" for k, _ in headers):
        findings.problem("no MIME-Version header")
    media, params = parse_content_type(ctype_value, findings)
    charset = params.get("charset")
    if charset is not None and text_codec(charset) is None:
        findings.problem(f"unknown charset {charset!r}")
    return Mime(headers, body, media, MappingProxyType(params), charset)


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
