"""The HTTP dissector's bounds: what it keeps, where it stops, and the sentence it reports.

Untrusted input never makes the dissector allocate past these: a head over `MAX_HEAD` is
malformed; a body keeps at most `MAX_BODY` bytes (the rest is counted, not stored); a
gzip/deflate body decompresses to at most `MAX_DECODED` bytes; `raw` keeps at most
`MAX_RAW` bytes of a message; a run of garbage is reported in pieces of at most `MAX_RUN`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

MAX_HEAD: Final = 16 * 1024  # start line + headers, bytes (h11's own default)
MAX_BODY: Final = 1 << 20  # body bytes kept per message
MAX_DECODED: Final = 4 << 20  # bytes a compressed body may inflate to
MAX_RAW: Final = 64 * 1024  # wire bytes of a message kept in `raw`
MAX_RUN: Final = 64 * 1024  # bytes of one malformed frame
MAX_LINE: Final = 8 * 1024  # a garbage "line" without LF is cut here while resynchronising
H11_BUFFER: Final = 1 << 30  # h11's incomplete-event bound: ours (MAX_HEAD) decides first

PROBLEMS: Final = MappingProxyType({
    "http.body_capped": "the body is {size} bytes; only the first {cap} are kept",
    "http.decoded_capped": "the {coding} body inflates past {cap} bytes; the rest is cut",
    "http.bad_encoding": "the {coding} body does not decode: {error}",
    "http.unknown_encoding": "content encoding {coding!r} is not decoded",
    "http.incomplete": "the connection ended before the message was complete",
    "http.no_host": "an HTTP/1.1 request without the Host header it must have (a server "
    "answers 400)",
    "http.cleartext_password": "the Authorization header carries the password in clear text "
    "({scheme})",
    "http.basic_auth": "Basic authorization: the password is only base64-encoded",
})
"""Problem code -> sentence template (a table, so each is tested and documented once)."""


def problem(code: str, **values: object) -> tuple[str, str]:
    """A (code, sentence) pair from `PROBLEMS`."""
    return code, PROBLEMS[code].format(**values)
