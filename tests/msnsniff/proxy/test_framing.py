"""The forwarding path's splitter and rewriter: any bytes, any chunking, nothing lost."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from dissectors.api import Direction
from msnsniff.proxy.framing import FrameSplitter, Raw, RewriteScanner, WireFrame
from msnsniff.proxy.rewrite import rewrite

S2C = Direction.S2C

FRAMES = st.lists(st.one_of(
    st.sampled_from([
        b"CHG 5 NLN 0", b"ILN 9 NLN a@b.c Nick 28", b"XFR 3 NS 10.0.0.5:1863 0 1.2.3.4:1863",
        b"RNG 11752013 10.0.0.1:1865 CKI 849102291.520491 a@b.c Nick", b"QNG 50",
    ]),
    st.binary(max_size=60).map(lambda b: b"MSG Hotmail Hotmail %d\r\n" % len(b) + b),
    st.binary(max_size=40).map(lambda b: b"NOT %d\r\n" % len(b) + b),
), max_size=12)  # fmt: skip


def _stream(frames: list[bytes]) -> bytes:
    return b"".join(f if b"\r\n" in f else f + b"\r\n" for f in frames)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _run(data: bytes, cuts: list[int]) -> tuple[bytes, list[WireFrame | Raw]]:
    splitter = FrameSplitter(S2C, max_line=256, max_payload=4096)
    pieces = [p for chunk in _chunks(data, cuts) for p in splitter.feed(chunk)]
    out = b"".join(p.raw if isinstance(p, WireFrame) else p.data for p in pieces)
    return out + splitter.pending(), pieces


@settings(max_examples=300)
@given(FRAMES, st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_valid_streams_frame_the_same_under_any_chunking(
    frames: list[bytes], cuts: list[int]
) -> None:
    data = _stream(frames)
    out, pieces = _run(data, cuts)
    whole, whole_pieces = _run(data, [])
    assert out == data == whole
    assert pieces == whole_pieces
    assert all(isinstance(p, WireFrame) for p in pieces)
    assert len(pieces) == len(frames)


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_any_bytes_go_out_exactly_once_in_order(data: bytes, cuts: list[int]) -> None:
    out, _ = _run(data, cuts)
    assert out == data


def test_a_bad_payload_length_switches_to_pass_through() -> None:
    splitter = FrameSplitter(S2C)
    got = splitter.feed(b"CHG 5 NLN 0\r\nMSG Hotmail Hotmail xx\r\nrest")
    assert got[0] == WireFrame(b"CHG 5 NLN 0")
    assert isinstance(got[1], Raw) and got[1].data == b"MSG Hotmail Hotmail xx\r\nrest"
    assert splitter.passthrough and "payload length" in splitter.reason
    assert splitter.feed(b"more") == [Raw(b"more")]


def test_rewrites_touch_only_the_address() -> None:
    mapped = lambda kind, real: f"127.0.0.1:{4000 if kind == 'ns' else 5000}"  # noqa: E731
    xfr = rewrite(WireFrame(b"XFR 3 NS 10.0.0.5:1863 0 10.0.0.1:1863"), mapped)
    assert xfr is not None and xfr.line == b"XFR 3 NS 127.0.0.1:4000 0 10.0.0.1:1863"
    sb = rewrite(WireFrame(b"XFR 8 SB 10.0.0.9:1865 CKI 17262740.1050826919.32308"), mapped)
    assert sb is not None and sb.line == b"XFR 8 SB 127.0.0.1:5000 CKI 17262740.1050826919.32308"
    rng = rewrite(WireFrame(b"RNG 1175 10.0.0.9:1865 CKI 8491.5204 a@b.c A%20B"), mapped)
    assert rng is not None and rng.line == b"RNG 1175 127.0.0.1:5000 CKI 8491.5204 a@b.c A%20B"
    assert (rng.kind, rng.original) == ("sb", "10.0.0.9:1865")
    assert rewrite(WireFrame(b"XFR 8 SB"), mapped) is None  # the client's request
    assert rewrite(WireFrame(b"CHG 5 NLN 0"), mapped) is None


def _scan(data: bytes, cuts: list[int], rewrite_line: Callable[[bytes], bytes | None]) -> bytes:
    scanner = RewriteScanner(S2C, rewrite_line, max_line=256, max_payload=4096)
    return b"".join(scanner.feed(c) for c in _chunks(data, cuts)) + scanner.pending()


def _upper_xfr(line: bytes) -> bytes | None:
    return line.replace(b"10.0.0", b"127.0.0") if line.startswith(b"XFR") else None


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_the_scanner_passes_any_bytes_exactly(data: bytes, cuts: list[int]) -> None:
    assert _scan(data, cuts, lambda line: None) == data


@settings(max_examples=300)
@given(FRAMES, st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_the_scanner_rewrites_like_the_splitter(frames: list[bytes], cuts: list[int]) -> None:
    data = _stream(frames)
    expected = b"".join(
        (_upper_xfr(f.line) or f.line) + b"\r\n" + f.payload if isinstance(f, WireFrame)
        else f.data for f in FrameSplitter(S2C, max_line=256, max_payload=4096).feed(data)
    )  # fmt: skip
    assert _scan(data, cuts, _upper_xfr) == expected


ODD_LINES = st.lists(st.one_of(
    st.builds(
        lambda cmd, gap, words, tail: cmd + gap + b" ".join(words) + tail,
        st.sampled_from([b"MSG", b"NOT", b"QRY", b"CHG", b"XFR", b"911", b"MSGX", b" MSG", b"ms"]),
        st.sampled_from([b" ", b"  ", b"\t", b"", b" \t"]),
        st.lists(st.sampled_from([b"a@b.c", b"Nick", b"0", b"7", b"12", b"x1", b""]), max_size=3),
        st.sampled_from([b"", b" ", b"\t", b" 5", b"\t5", b" 0"]),
    ),
    st.binary(max_size=12).map(lambda b: b"MSG a b %d\r\n" % len(b) + b),
    st.just(b"XFR 3 NS 10.0.0.5:1863 0 1.2.3.4:1863"),  # rewritten only while framing holds
), max_size=10)  # fmt: skip


@settings(max_examples=500)
@given(ODD_LINES, st.lists(st.integers(min_value=0, max_value=10_000), max_size=20))
def test_the_scanners_quick_length_reading_agrees_with_the_splitter(
    frames: list[bytes], cuts: list[int]
) -> None:
    """Odd spacing, tabs, trailing blanks, error digits, near-miss command words: the
    scanner's shortcut for a payload line's length frames exactly as the splitter does."""
    data = _stream(frames)
    splitter = FrameSplitter(S2C, max_line=256, max_payload=4096)
    expected = b"".join(
        (_upper_xfr(f.line) or f.line) + b"\r\n" + f.payload if isinstance(f, WireFrame)
        else f.data for f in splitter.feed(data)
    ) + splitter.pending()  # fmt: skip
    assert _scan(data, cuts, _upper_xfr) == expected
