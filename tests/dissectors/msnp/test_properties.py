"""Hypothesis properties of the MSNP dissector: any bytes, any chunking."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissectors.api import Direction
from dissectors.msnp import CommandFrame, MsnpDissector
from dissectors.msnp.frames import GapFrame, MsnpFrame
from tests.helpers import drain

LINES = st.sampled_from(
    [
        b"VER 1 MSNP8 CVR0\r\n",
        b"VER 1 MSNP8\r\n",
        b"USR 7 OK example@hotmail.com example%20user 1 0\r\n",
        b"LST anotheruser@hotmail.com another%20user 11 0\r\n",
        b"LSG 0 Other%20Contacts 0\r\n",
        b"ADD 23 FL 1201 myname_123@hotmail.com myname_123@hotmail.com 1\r\n",
        b"216 26\r\n",
        b"CHL 0 29409134351025259292\r\n",
        b"QRY 10 msmsgs@msnmsgr.com 32\r\n8f2f5a91b72102cd28355e9fc9000d6e",
        b"MSG Hotmail Hotmail 27\r\nMIME-Version: 1.0\r\n\r\nhello!",
        b"MSG 4 N 5\r\nMSG 5",
        b"NLN NLN a@b.c A 28\r\n",
        b"PNG\r\n",
        b"OUT\r\n",
        b"\r\n",
        b"garbage \xff\x00\r\n",
        b"ZZZ 1 unknown\r\n",
        b"MSG 9 A 99999999999\r\n",
    ]
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return [p for p in pieces if p]


def run(chunks: list[tuple[Direction, bytes]]) -> list[MsnpFrame]:
    d = MsnpDissector()
    frames: list[MsnpFrame] = []
    for direction, data in chunks:
        d.feed(direction, data)
        frames += drain(d)
    for direction in Direction:
        d.feed(direction, b"")
    return frames + drain(d)


def per_direction(frames: list[MsnpFrame], direction: Direction) -> list[MsnpFrame]:
    return [f for f in frames if f.direction is direction]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=40))
def test_any_bytes_any_chunking_same_frames_and_tiling(data: bytes, cuts: list[int]) -> None:
    whole = run([(Direction.S2C, data)])
    pieces = run([(Direction.S2C, p) for p in split(data, cuts)])
    assert pieces == whole
    assert b"".join(f.raw for f in whole if not isinstance(f, GapFrame)) == data


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(list(Direction)), LINES), max_size=40),
    st.lists(st.integers(min_value=0), max_size=30),
)
def test_protocol_like_streams_any_chunking(
    lines: list[tuple[Direction, bytes]], cuts: list[int]
) -> None:
    streams = {d: b"".join(line for dd, line in lines if dd is d) for d in Direction}
    whole = run([(d, streams[d]) for d in Direction])
    chunked: list[tuple[Direction, bytes]] = []
    for d in Direction:
        chunked += [(d, p) for p in split(streams[d], cuts)]
    pieces = run(chunked)
    for d in Direction:
        assert per_direction(pieces, d) == per_direction(whole, d)
        assert b"".join(f.raw for f in per_direction(whole, d)) == streams[d]


# Lines a server may send (QRY with a payload and MSG with an ack mode are client lines).
SERVER_LINES = LINES.filter(
    lambda x: not x.startswith((b"garbage", b"MSG 9 A", b"QRY 10 ", b"MSG 4 N"))
)


@settings(max_examples=200)
@given(st.lists(SERVER_LINES, max_size=30))
def test_well_formed_lines_never_become_malformed(lines: list[bytes]) -> None:
    frames = run([(Direction.S2C, b"".join(lines))])
    commands = [f for f in frames if isinstance(f, CommandFrame)]
    blank = lines.count(b"\r\n")
    assert len(frames) - len(commands) <= blank
    for f in commands:  # decoding never raises, and every server line has a known form
        assert "args" not in f.fields or f.unknown
        if f.payload_length is not None:
            assert f.payload is not None
