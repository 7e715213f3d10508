"""Hypothesis properties of the HTTP dissector: any chunking, any garbage."""

from __future__ import annotations

import contextlib
import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissectors.api import Direction, DissectorError
from dissectors.http.frames import HttpFrame, HttpMalformed, HttpMessage
from tests.dissectors.http.helpers import http_frames

C2S, S2C = Direction.C2S, Direction.S2C
_Z = gzip.compress(b'{"ok": 1}')

REQUESTS = st.sampled_from([
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST /interface/xmlrpc HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: 44\r\n\r\n"
    b"<methodCall><methodName>x</methodName>\r\n</m>",
    b"POST /gateway/gateway.dll?SessionID=1.2 HTTP/1.1\r\nHost: g\r\n"
    b"Content-Type: application/x-msn-messenger\r\nContent-Length: 5\r\n\r\nPNG\r\n",
    b"POST /restserver.php HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"7\r\nmethod=\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\r\n",
    b"garbage \xff\x00\r\n",
    b"GET /broken HTTP/1.1\r\nBad Header\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\nabc",
])  # fmt: skip
RESPONSES = st.sampled_from([
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
    + b"%x\r\n" % len(_Z) + _Z + b"\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-MSN-Messenger: SessionID=1.3; GW-IP=1.2.3.4\r\nContent-Length: 5"
    b"\r\n\r\nQNG\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\x00\x01\x02 junk\n",
    b"HTTP/1.0 200 OK\r\n\r\nuntil the end",
])  # fmt: skip


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return [p for p in pieces if p]


def run(c2s: list[bytes], s2c: list[bytes]) -> list[HttpFrame]:
    return http_frames([(C2S, p) for p in c2s] + [(S2C, p) for p in s2c])


def _tiles(frames: list[HttpFrame], direction: Direction) -> None:
    end = 0
    for f in frames:
        if f.direction is direction:
            assert f.offset >= end
            end = f.offset + (f.length if isinstance(f, HttpMessage | HttpMalformed) else 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(REQUESTS, max_size=6),
    st.lists(RESPONSES, max_size=6),
    st.lists(st.integers(0, 5000), max_size=12),
    st.lists(st.integers(0, 5000), max_size=12),
)
def test_any_chunking_yields_the_same_frames(
    reqs: list[bytes], resps: list[bytes], cuts_a: list[int], cuts_b: list[int]
) -> None:
    c2s, s2c = b"".join(reqs), b"".join(resps)
    whole = run([c2s], [s2c])
    pieces = run(split(c2s, cuts_a), split(s2c, cuts_b))
    bytewise = run([c2s[i : i + 1] for i in range(len(c2s))],
                   [s2c[i : i + 1] for i in range(len(s2c))])  # fmt: skip
    for direction in Direction:
        one = [f for f in whole if f.direction is direction]
        assert [f for f in pieces if f.direction is direction] == one
        assert [f for f in bytewise if f.direction is direction] == one
        _tiles(whole, direction)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.binary(max_size=3000), st.lists(st.integers(0, 3000)))
def test_garbage_never_raises_but_the_dissectors_own(a: bytes, b: bytes, cuts: list[int]) -> None:
    frames = run(split(a, cuts), split(b, cuts))
    for d in Direction:
        _tiles(frames, d)
    with contextlib.suppress(DissectorError):
        http_frames([(C2S, p) for p in split(a, cuts)] + [(S2C, b)], strict=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(REQUESTS, st.binary(max_size=40)), max_size=8),
       st.lists(st.one_of(RESPONSES, st.binary(max_size=40)), max_size=8),
       st.lists(st.integers(0, 3000), max_size=10))
def test_garbage_mixed_with_http_is_chunking_independent(
    reqs: list[bytes], resps: list[bytes], cuts: list[int]
) -> None:
    c2s, s2c = b"".join(reqs), b"".join(resps)
    whole = run([c2s], [s2c])
    pieces = run(split(c2s, cuts), split(s2c, cuts))
    for direction in Direction:
        assert [f for f in pieces if f.direction is direction] == [
            f for f in whole if f.direction is direction]  # fmt: skip
