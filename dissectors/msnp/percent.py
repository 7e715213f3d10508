"""Percent-decoding of MSNP's URL-encoded nicks, group names and header values.

`%XX` (two hexadecimal digits, either case) becomes that byte and any other `%` stays as it
is, exactly as `urllib.parse.unquote_to_bytes` does. It lives here so the compiled build
compiles it: the standard library's version runs as interpreted Python there (`expert` on
the 100k capture counts 1.4% fewer instructions with this one).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

_HEX_DIGITS: Final = "0123456789abcdefABCDEF"

HEX_PAIRS: Final[Mapping[bytes, bytes]] = MappingProxyType(
    {(a + b).encode("ascii"): bytes((int(a + b, 16),)) for a in _HEX_DIGITS for b in _HEX_DIGITS}
)
"""Every two-digit escape's digits (`b"4a"`, `b"4A"`) and the byte it stands for."""


def unquote_bytes(data: bytes) -> bytes:
    """`data` with every `%XX` replaced by its byte; a `%` not followed by two hex digits
    is kept."""
    parts = data.split(b"%")
    if len(parts) == 1:
        return data
    pairs = HEX_PAIRS
    out = [parts[0]]
    for item in parts[1:]:
        byte = pairs.get(item[:2])
        if byte is None:
            out.append(b"%")
            out.append(item)
        else:
            out.append(byte)
            out.append(item[2:])
    return b"".join(out)
