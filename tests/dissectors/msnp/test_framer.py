"""Framing: lines, payloads, TrIDs, resynchronisation, bounds, gaps, end of stream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dissectors.api import Direction
from dissectors.msnp import CommandFrame, ErrorFrame, GapFrame, MalformedFrame, MsnpDissector
from dissectors.msnp.decode import decode
from dissectors.msnp.framer import MAX_GARBAGE, MAX_LINE, MAX_PAYLOAD, native_command_frame
from dissectors.msnp.frames import MsnpFrame, PartialFrame, new_command_frame
from tests.helpers import C2S, S2C, cyclic_garbage, drain, one_way

PROFILE = (
    b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\r\n"
    b"LoginTime: 1726321960\r\n\r\n"
)


def test_two_commands_in_one_segment_and_payload() -> None:
    data = b"VER 1 MSNP8\r\nMSG Hotmail Hotmail %d\r\n%sSYN 8 15 1 1\r\n" % (
        len(PROFILE),
        PROFILE,
    )
    frames = one_way(data)
    assert [f.cmd for f in frames if isinstance(f, CommandFrame)] == ["VER", "MSG", "SYN"]
    msg = frames[1]
    assert isinstance(msg, CommandFrame)
    assert msg.trid is None and msg.args == ("Hotmail", "Hotmail", str(len(PROFILE)))
    assert msg.payload_bytes == PROFILE
    assert msg.offset == 13 and msg.header_len == 24 and len(msg.raw) == 24 + len(PROFILE)
    syn = frames[2]
    assert isinstance(syn, CommandFrame) and syn.trid == 8 and syn.args == ("15", "1", "1")


def test_split_inside_crlf_and_inside_payload() -> None:
    data = b"MSG Hotmail Hotmail %d\r\n%sCHL 0 123456\r\n" % (len(PROFILE), PROFILE)
    whole = one_way(data)
    at_crlf = data.index(b"\r\n") + 1
    for sizes in ([at_crlf], [at_crlf + 10, 3], [1] * 60):
        assert one_way(data, sizes=sizes) == whole
    assert [f.cmd for f in whole if isinstance(f, CommandFrame)] == ["MSG", "CHL"]


def test_trid_rules_per_direction_and_dialect() -> None:
    frames = one_way(
        b"VER 1 MSNP8\r\nLSG 0 Other%20Contacts 0\r\nLST a@b.c A%20B 11 0\r\nGTC A\r\n"
        b"GTC 12 125 N\r\nILN 0 NLN x@y.z X 28\r\nBPR 1201 a@b.c PHH\r\n"
    )
    cmds = [(f.cmd, f.trid, f.args) for f in frames if isinstance(f, CommandFrame)]
    assert cmds[1] == ("LSG", None, ("0", "Other%20Contacts", "0"))
    assert cmds[2] == ("LST", None, ("a@b.c", "A%20B", "11", "0"))
    assert cmds[3] == ("GTC", None, ("A",))
    assert cmds[4] == ("GTC", 12, ("125", "N"))
    assert cmds[5] == ("ILN", 0, ("NLN", "x@y.z", "X", "28"))
    assert cmds[6] == ("BPR", None, ("1201", "a@b.c", "PHH"))


def test_pre_msnp8_counted_lists_carry_trid() -> None:
    frames = one_way(b"VER 1 MSNP5\r\nLST 5 FL 1 0 0\r\nLSG 5 1 1 1 0 Other%20Contacts 0\r\n")
    lst, lsg = frames[1], frames[2]
    assert isinstance(lst, CommandFrame) and lst.trid == 5 and lst.args == ("FL", "1", "0", "0")
    assert isinstance(lsg, CommandFrame) and lsg.trid == 5


def test_error_reply() -> None:
    (frame,) = one_way(b"216 26\r\n")
    assert isinstance(frame, ErrorFrame)
    assert frame.code == 216 and frame.trid == 26 and frame.args == ()


def test_garbage_is_reported_and_decoding_resumes() -> None:
    data = b"CHL 0 1\r\n\x00\xffjunk here\r\nmore junk\r\nQNG 50\r\n"
    frames = one_way(data)
    assert isinstance(frames[1], MalformedFrame)
    assert frames[1].offset == 9
    assert frames[1].raw == b"\x00\xffjunk here\r\nmore junk\r\n"
    assert "not an MSNP command line" in frames[1].reason
    last = frames[2]
    assert isinstance(last, CommandFrame) and last.cmd == "QNG" and last.offset == 33


def test_capture_starting_mid_line_and_on_a_payload() -> None:
    data = b"ail.com 1 0\r\nClientPort: 5\r\n\r\nSYN 8 15 1 1\r\n"
    frames = one_way(data)
    assert isinstance(frames[0], MalformedFrame) and frames[0].offset == 0
    assert frames[0].raw == b"ail.com 1 0\r\nClientPort: 5\r\n\r\n"
    assert isinstance(frames[1], CommandFrame) and frames[1].cmd == "SYN"


def test_unknown_command_is_kept_and_flagged() -> None:
    (frame,) = one_way(b"ZZZ 4 hello world\r\n")
    assert isinstance(frame, CommandFrame)
    assert frame.unknown and frame.cmd == "ZZZ" and frame.trid == 4
    assert frame.args == ("hello", "world")


def test_command_in_the_wrong_direction_is_flagged_unknown() -> None:
    (frame,) = one_way(b"ILN 9 NLN a@b c\r\n", C2S)
    assert isinstance(frame, CommandFrame) and frame.unknown


def test_huge_declared_length_is_bounded() -> None:
    d = MsnpDissector()
    d.feed(S2C, b"MSG Hotmail Hotmail 2000000000\r\nQNG 5\r\n")
    frames = drain(d)
    assert isinstance(frames[0], MalformedFrame)
    assert "2000000000" in frames[0].reason and str(MAX_PAYLOAD) in frames[0].reason
    assert isinstance(frames[1], CommandFrame) and frames[1].cmd == "QNG"


def test_missing_payload_length() -> None:
    frames = one_way(b"MSG 4 N\r\nOUT\r\n", C2S)
    assert isinstance(frames[0], MalformedFrame) and "length" in frames[0].reason
    assert isinstance(frames[1], CommandFrame) and frames[1].cmd == "OUT"


def test_overlong_line_becomes_garbage() -> None:
    data = b"CHL 0 " + b"x" * (MAX_LINE + 10) + b"\r\nQNG 1\r\n"
    frames = one_way(data)
    assert isinstance(frames[0], MalformedFrame)
    assert sum(len(f.raw) for f in frames[:-1]) == len(data) - len(b"QNG 1\r\n")
    assert isinstance(frames[-1], CommandFrame) and frames[-1].cmd == "QNG"
    # it says why: the line is too long (it read "not an MSNP command line"), in any chunking
    assert frames[0].reason.startswith(f"no end of line within {MAX_LINE} bytes")
    assert one_way(data, sizes=[1000] * 20) == frames


def test_long_garbage_is_cut_at_fixed_places() -> None:
    data = b"\x01" * (MAX_GARBAGE * 2 + 100) + b"\r\nQNG 1\r\n"
    whole = one_way(data)
    assert [len(f.raw) for f in whole[:-1]] == [MAX_GARBAGE, MAX_GARBAGE, 102]
    assert one_way(data, sizes=[7000] * 20) == whole


def test_truncated_stream_reports_leftover() -> None:
    frames = one_way(b"QNG 1\r\nMSG Hotmail Hotmail 100\r\nabc")
    assert isinstance(frames[1], MalformedFrame)
    assert frames[1].reason.startswith("truncated") and frames[1].offset == 7


def test_gap_inside_payload_skips_exactly_to_the_frame_end() -> None:
    d = MsnpDissector()
    head = b"MSG Hotmail Hotmail 20\r\n0123"
    d.feed(S2C, head)
    d.gap(S2C, 6)  # bytes 4..9 of the payload are lost
    d.feed(S2C, b"ABCDEFGHIJQNG 7\r\n")
    frames = drain(d)
    assert isinstance(frames[0], MalformedFrame) and frames[0].raw == head
    assert isinstance(frames[1], GapFrame) and frames[1].offset == len(head)
    assert frames[1].length == 6
    assert isinstance(frames[2], MalformedFrame) and frames[2].raw == b"ABCDEFGHIJ"
    assert isinstance(frames[3], CommandFrame) and frames[3].cmd == "QNG"
    assert frames[3].offset == len(head) + 6 + 10


def test_gap_between_lines_keeps_both_sides() -> None:
    d = MsnpDissector()
    d.feed(S2C, b"QNG 1\r\n")
    d.gap(S2C, 20)
    d.feed(S2C, b"QNG 2\r\n")
    frames = drain(d)
    cmds = [f for f in frames if isinstance(f, CommandFrame)]
    assert [c.args for c in cmds] == [("1",), ("2",)]
    assert cmds[1].offset == 27
    assert any(isinstance(f, GapFrame) for f in frames)


def test_the_rest_of_a_line_a_gap_cut_says_so() -> None:
    """A gap that swallowed the start of a line leaves its tail: it was reported as 'not an
    MSNP command line', as if the peer had sent garbage, where the bytes after a gap inside
    a payload already say 'rest of a frame cut by a capture gap'."""
    d = MsnpDissector()
    d.feed(C2S, b"VER 1 MSNP8 CVR0\r\n")
    d.gap(C2S, 20)
    d.feed(C2S, b"L a@b.c\r\nCHG 3 NLN 0\r\n")
    frames = drain(d)
    tail = frames[2]
    assert isinstance(frames[1], GapFrame)
    assert isinstance(tail, MalformedFrame) and tail.raw == b"L a@b.c\r\n"
    assert tail.reason == "rest of a line cut by a capture gap; skipped to the next command"
    assert isinstance(frames[3], CommandFrame) and frames[3].cmd == "CHG"
    d.feed(C2S, b"\x16\x03\x01 not msnp\r\nPNG\r\n")  # garbage later on is still garbage
    later = drain(d)
    assert isinstance(later[0], MalformedFrame)
    assert later[0].reason == "not an MSNP command line; skipped to the next command"


def test_directions_come_out_in_feed_order() -> None:
    d = MsnpDissector()
    d.feed(C2S, b"VER 1 MSNP8 CVR0\r\n")
    d.feed(S2C, b"VER 1 MSNP8\r\n")
    frames = drain(d)
    assert [f.direction for f in frames] == [C2S, S2C]


def test_non_utf8_and_raw_utf8_nicknames_survive() -> None:
    frames = one_way(b"VER 1 MSNP8\r\nLST a@b.c J\xc3\xbcrgen 11 0\r\nLST c@d.e bad\xff\xfe 3\r\n")
    lst1, lst2 = frames[1], frames[2]
    assert isinstance(lst1, CommandFrame) and lst1.args[1] == "Jürgen"
    assert isinstance(lst2, CommandFrame)
    assert lst2.args[1].encode("utf-8", "surrogateescape") == b"bad\xff\xfe"


def test_framed_and_constructed_frames_agree_on_the_command_word() -> None:
    """The framer hands each frame its command word (one shared str per command); a frame
    built by its constructor (the TUI's index rebuilds them) reads the same word from its
    bytes, and the two are equal."""
    frames = one_way(b"NLN NLN a@b.c A 0\r\n911 5\r\nMSG Hotmail Hotmail 2\r\nhi")
    assert [f.cmd for f in frames if isinstance(f, CommandFrame)] == ["NLN", "911", "MSG"]
    for f in frames:
        assert isinstance(f, CommandFrame)
        again = type(f)(f.direction, f.offset, f.raw, f.header_len, f.payload_length,
                        f.dialect, f.dialect_inferred)  # fmt: skip
        assert again == f and again.cmd == f.cmd and again.args == f.args
    nln = frames[0]
    assert isinstance(nln, CommandFrame)
    other = one_way(b"NLN NLN c@d.e C 0\r\n")[0]
    assert isinstance(other, CommandFrame) and nln.cmd is other.cmd  # one shared str


def test_a_finished_flow_leaves_no_reference_cycle() -> None:
    """The framers call back into their dissector for VER and dialect clues; once both
    directions have ended and been read, they let go, so the flow is freed by refcounting."""
    got: list[str] = []

    def work() -> None:
        d = MsnpDissector()
        d.feed(C2S, b"VER 1 MSNP8 CVR0\r\n")
        d.feed(S2C, b"VER 1 MSNP8 CVR0\r\n")
        for direction in (C2S, S2C):
            d.feed(direction, b"")
        got.extend(f.cmd for f in d.drain() if isinstance(f, CommandFrame))

    assert cyclic_garbage(work) == []
    assert got == ["VER", "VER"]


def _chat_msg(trid: int, text: bytes) -> bytes:
    body = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + text
    return b"MSG %d N %d\r\n" % (trid, len(body)) + body


@given(st.integers(min_value=1, max_value=60), st.lists(st.integers(1, 90), min_size=1))
def test_after_a_gap_that_swallowed_a_msg_header_the_next_msg_is_found(
    cut: int, sizes: list[int]
) -> None:
    """A payload has no CRLF of its own, so the command after it is glued to its last bytes:
    when a gap took a MSG's header, the next MSG line is found mid-line (the flow stayed
    malformed while MSGs followed each other), whatever the chunking."""
    first = _chat_msg(2, b"hello there")
    rest = first[cut:] + _chat_msg(3, b"second") + _chat_msg(4, b"third") + b"ACK 9\r\n"

    def frames(chunks: list[bytes]) -> list[MsnpFrame]:
        d = MsnpDissector()
        d.feed(C2S, b"VER 1 MSNP8 CVR0\r\n")
        d.gap(C2S, cut)
        for chunk in chunks:
            d.feed(C2S, chunk)
        d.feed(C2S, b"")
        return drain(d)

    whole = frames([rest])
    commands = [f.line for f in whole if isinstance(f, CommandFrame)]
    heads = [m.split(b"\r\n")[0] for m in (_chat_msg(3, b"second"), _chat_msg(4, b"third"))]
    assert commands[-3:] == [*heads, b"ACK 9"]
    assert not [f for f in whole if isinstance(f, MalformedFrame) and b"MSG 3" in f.raw]
    pieces, at, i = [], 0, 0
    while at < len(rest):
        pieces.append(rest[at : at + sizes[i % len(sizes)]])
        at += sizes[i % len(sizes)]
        i += 1
    assert frames(pieces) == whole


def test_a_stream_joined_mid_way_starts_with_a_partial_frame_not_damage() -> None:
    """A capture without the connection's SYN starts wherever it joined: the first bytes up
    to the first line that parses are the tail of a frame it missed. Told so
    (`joined_midway`), the dissector reports them as a PartialFrame with their bytes, offset
    and reason; they were reported as malformed ("not an MSNP command line"), like damage,
    even in strict mode. Later garbage, and a stream not said to be joined, stay malformed."""
    data = b"lice@example.com 1\r\nNLN NLN bob@x Bob\r\njunk\r\nQNG\r\n"
    d = MsnpDissector(strict=True)
    d.joined_midway()
    d.feed(S2C, data[:7])
    d.feed(S2C, data[7:])
    first = d.next_frame()
    assert isinstance(first, PartialFrame)
    assert (first.offset, first.raw) == (0, b"lice@example.com 1\r\n")
    assert "capture began in the middle of the connection" in first.reason
    nln = d.next_frame()
    assert isinstance(nln, CommandFrame) and nln.cmd == "NLN"
    loose = MsnpDissector()
    loose.joined_midway()
    loose.feed(S2C, data)
    later = drain(loose)[2]
    assert type(later) is MalformedFrame and later.raw == b"junk\r\n"  # real damage
    plain = one_way(data)  # the start was seen (or not said): the same bytes are damage
    assert type(plain[0]) is MalformedFrame and "not an MSNP command line" in plain[0].reason
    clean = MsnpDissector()
    clean.joined_midway()
    clean.feed(C2S, b"CHG 9 NLN 0\r\n")
    assert [type(f) for f in drain(clean)] == [CommandFrame]  # joined at a line start


def _joined(chunks: list[bytes], gap_after: int | None = None) -> list[MsnpFrame]:
    """Frames of a server side the capture joined mid-way, fed in `chunks` (strict mode, so
    anything reported as damage raises), with a 10-byte gap after chunk `gap_after`."""
    d = MsnpDissector(strict=True)
    d.joined_midway()
    out: list[MsnpFrame] = []
    for i, chunk in enumerate(chunks):
        d.feed(S2C, chunk)
        out += drain(d)
        if i == gap_after:
            d.gap(S2C, 10)
            out += drain(d)
    d.feed(S2C, b"")
    return out + drain(d)


@given(st.lists(st.integers(1, 30), min_size=1, max_size=8))
def test_a_joined_stream_whose_first_bytes_end_or_meet_a_gap_before_a_line_end_is_partial(
    sizes: list[int],
) -> None:
    """The first bytes of a stream joined mid-way with no CRLF before the stream ended (or a
    gap came) were reported MALFORMED ("truncated" / "cut by a capture gap"): damage, an
    expert error, exit 3 under --strict. Their frame's start was never seen, as for a
    partial first line followed by a CRLF: they are a PartialFrame at offset 0, whatever
    the chunking."""
    tail = b"ample.com 1 Bob%20Smith"
    pieces, at = [], 0
    for size in sizes:
        if at < len(tail):
            pieces.append(tail[at : at + size])
            at += size
    if at < len(tail):
        pieces.append(tail[at:])
    ended = _joined(pieces)
    assert [type(f) for f in ended] == [PartialFrame]
    assert (ended[0].offset, ended[0].raw) == (0, tail)
    assert isinstance(ended[0], PartialFrame) and "ended before the end of this line" in (
        ended[0].reason
    )
    cut = _joined([*pieces, b"QNG 50\r\n"], gap_after=len(pieces) - 1)
    assert [type(f) for f in cut] == [PartialFrame, GapFrame, CommandFrame]
    assert (cut[0].offset, cut[0].raw) == (0, tail)
    assert isinstance(cut[0], PartialFrame) and "lost 10 bytes" in cut[0].reason


def test_only_a_joined_streams_first_bytes_without_a_line_end_are_partial() -> None:
    """Not said to be joined, the same bytes stay truncated; a first line that parsed (a
    MSG whose payload the end cut) stays truncated, and so do later cut lines; with no line
    end within MAX_LINE the first bytes are partial, not 'no end of line'."""
    tail = b"ample.com 1 Bob%20Smith"
    plain = one_way(tail)
    assert type(plain[0]) is MalformedFrame and plain[0].reason.startswith("truncated")
    loose = MsnpDissector()
    loose.joined_midway()
    loose.feed(S2C, b"MSG Hotmail Hotmail 50\r\nMIME")
    loose.feed(S2C, b"")
    assert [type(f) for f in drain(loose)] == [MalformedFrame]
    later = MsnpDissector()
    later.joined_midway()
    later.feed(S2C, b"QNG 50\r\nNLN NLN a@b")
    later.feed(S2C, b"")
    assert [type(f) for f in drain(later)] == [CommandFrame, MalformedFrame]
    long = _joined([b"x" * (MAX_LINE + 10), b"\r\nQNG 50\r\n"])
    assert [type(f) for f in long] == [PartialFrame, CommandFrame]
    assert long[0].raw == b"x" * (MAX_LINE + 10) + b"\r\n"


@pytest.mark.parametrize(
    "args",
    [
        (Direction.C2S, 0, b"USR 1 MD5 I a@b.c\r\n", 19, None, 8, False, "USR",
         (1, ("MD5", "I", "a@b.c"))),
        (Direction.S2C, 7_000_000_000, b"MSG a@b.c A 3\r\nhey", 16, 3, 12, True, "MSG",
         (None, ("a@b.c", "A", "3"))),
    ],
)  # fmt: skip
def test_the_native_frame_builder_makes_the_interpreted_frame(args: tuple[object, ...]) -> None:
    """`native_command_frame` (the hot loops' builder in the compiled build) fills every slot
    as `new_command_frame` (the pure-Python build's) does: equal, and the same in the fields
    equality skips (the command word, the cached split and the empty caches)."""
    ours, theirs = native_command_frame(*args), new_command_frame(*args)  # type: ignore[arg-type]
    assert type(ours) is CommandFrame
    assert ours == theirs
    slots = [name for cls in CommandFrame.__mro__ for name in getattr(cls, "__slots__", ())]
    assert {"direction", "raw", "cmd", "_split", "_payload"} <= set(slots)
    for name in slots:  # (a slot left unwritten would raise AttributeError here)
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.trid == theirs.trid and ours.args == theirs.args
    assert ours.payload_bytes == theirs.payload_bytes


def test_without_a_ver_msnp18_and_msnp16_shapes_infer_their_dialects() -> None:
    """An account written with its network (`1:name@host`) is MSNP18's alone; a client id
    with extended capabilities (`caps:ext`) MSNP16's and later. The frames after the clue
    are framed and decoded in that dialect."""
    after = b"NLN NLN 1:carol@example.com Carol 0:0\r\n"
    for line in (b"NLN NLN 1:bob@example.com Bob 0:0 0\r\n", b"FLN 1:bob@example.com 0:0\r\n",
                 b"UBX 1:bob@example.com 7\r\n<Data/>", b"ILN 4 NLN 1:bob@example.com Bob 0:0\r\n"):
        d = MsnpDissector()
        d.feed(S2C, line + after)
        frames = drain(d)
        assert isinstance(frames[1], CommandFrame)
        assert (frames[1].dialect, frames[1].dialect_inferred) == (18, True), line
        assert decode(frames[1]).fields["account"] == "carol@example.com"
        assert "network" in d.dialect_reason
    d = MsnpDissector()
    d.feed(C2S, b"CHG 3 NLN 2789003324:48 0\r\nPNG\r\n")
    png = drain(d)[1]
    assert isinstance(png, CommandFrame) and (png.dialect, png.dialect_inferred) == (16, True)


def test_a_pgd_page_msnp9_carries_its_payload() -> None:
    """PGD (MSNP9+, a page to a mobile device or a Web Watch) is followed by its XML
    payload: the framer takes it as the payload, not as a line of garbage."""
    d = MsnpDissector()
    body = b'<TEXT xml:space="preserve" enc="utf-8">hi</TEXT>'
    d.feed(C2S, b"VER 1 MSNP9\r\n")
    d.feed(S2C, b"VER 1 MSNP9\r\n")
    d.feed(C2S, b"PGD 2 bob@example.com 1 %d\r\n" % len(body) + body + b"PNG\r\n")
    frames = [f for f in drain(d) if f.direction is C2S]
    pgd, png = frames[1], frames[2]
    assert isinstance(pgd, CommandFrame) and not pgd.unknown
    assert pgd.payload is not None and pgd.payload.body == body
    assert decode(pgd).fields == {"account": "bob@example.com", "device": 1, "length": len(body)}
    assert isinstance(png, CommandFrame) and png.cmd == "PNG"


def test_a_clue_after_a_refused_ver_stays_within_the_versions_offered() -> None:
    """The client offered MSNP5 and MSNP4, the server answered `VER 1 0`, the client went on
    with an MD5 login (MSNP2-7): the frames after it were read as MSNP7, a version nobody
    offered. The server can only choose an offered version, so the clue narrows within them."""
    d = MsnpDissector()
    for direction, line in ((C2S, b"VER 1 MSNP5 MSNP4 CVR0"), (S2C, b"VER 1 0"),
                            (C2S, b"USR 2 MD5 I a@b.c"), (C2S, b"INF 3")):
        d.feed(direction, line + b"\r\n")
        drain(d)
    assert d.dialect == 5
    d.feed(C2S, b"SYN 4 0\r\n")
    syn = drain(d)[0]
    assert isinstance(syn, CommandFrame) and syn.dialect == 5


def test_the_line_that_tells_the_dialect_is_of_that_dialect() -> None:
    """The frame whose line decided the dialect kept the one it was framed in: the server's
    `VER 1 MSNP4` (chosen from the client's MSNP5 MSNP4) said MSNP5, the client's VER the
    default MSNP8, and an MD5 login in a capture without VER MSNP8 while the frames after it
    were MSNP7. Each is now of the dialect it tells, on the common path and on the general
    one (a gap parses what is buffered line by line)."""
    d = MsnpDissector()
    got = []
    for direction, line in ((C2S, b"VER 1 MSNP5 MSNP4 CVR0"), (S2C, b"VER 1 MSNP4"),
                            (C2S, b"INF 2")):
        d.feed(direction, line + b"\r\n")
        got += [(f.cmd, f.dialect, f.dialect_inferred) for f in drain(d)
                if isinstance(f, CommandFrame)]
    assert got == [("VER", 5, True), ("VER", 4, False), ("INF", 4, False)]
    for gap in (False, True):
        d = MsnpDissector()
        d.feed(C2S, b"USR 5 MD5 I a@b.c\r\n")
        if gap:
            d.gap(C2S, 10)
        usr = drain(d)[0]
        assert isinstance(usr, CommandFrame) and usr.cmd == "USR"
        assert (usr.dialect, usr.dialect_inferred) == (7, True)
        assert (usr.trid, decode(usr).fields["account"]) == (5, "a@b.c")


def test_a_clients_ver_is_a_proposal_not_the_dialect_until_the_server_answers() -> None:
    """`VER 1 MSNP8 MSNP7 MSNP6` answered `VER 1 MSNP7`: the client's line said MSNP8,
    not inferred, as though VER had fixed the connection in a dialect it never spoke (and a
    VER refused with `VER 1 0`, or never answered, left every later line "fixed" in the
    highest version offered, so expert judged them by it). The proposal is provisional: its
    highest version, inferred, until the server's VER fixes the dialect."""
    for answer, after in ((b"VER 1 MSNP7", (7, False)), (b"VER 1 0", (8, True)), (b"", (8, True))):
        d = MsnpDissector()
        got = []
        for direction, line in ((C2S, b"VER 1 MSNP8 MSNP7 MSNP6 CVR0"), (S2C, answer),
                                (C2S, b"INF 2")):
            if line:
                d.feed(direction, line + b"\r\n")
            got += [(f.cmd, f.dialect, f.dialect_inferred) for f in drain(d)
                    if isinstance(f, CommandFrame) and f.direction is C2S]
        assert got == [("VER", 8, True), ("INF", *after)]
        assert d.dialect_inferred is after[1]


def test_a_switchboard_with_endpoints_is_read_as_msnp16_not_msnp8() -> None:
    """A switchboard carries no VER, so its frames were all "MSNP8, inferred", an MSNP18
    login's too (stats counts them under the login's dialect). An account with its
    endpoint (`name;{guid}`: MSNP16's multiple points of presence) in the caller's USR, the
    answerer's ANS, an IRO or a JOI says MSNP16+; a switchboard without one stays MSNP8."""
    ep = "{0D2B6B1F-5B6E-4F5A-9A1C-2F3C4D5E6F70}"
    for first in (C2S, b"USR 1 a@b.c;" + ep.encode() + b" 1.2"), (
            C2S, b"ANS 1 a@b.c;" + ep.encode() + b" 1.2 99"), (
            S2C, b"JOI b@b.c;" + ep.encode() + b" B 0"), (
            S2C, b"IRO 1 1 1 b@b.c;" + ep.encode() + b" B 0"):  # fmt: skip
        d = MsnpDissector()
        d.feed(first[0], first[1] + b"\r\n")
        d.feed(C2S, b"CAL 2 c@b.c\r\n")
        got = [(f.cmd, f.dialect, f.dialect_inferred) for f in drain(d)
               if isinstance(f, CommandFrame)]  # fmt: skip
        assert [g[1:] for g in got] == [(16, True), (16, True)], got
        assert "endpoint" in d.dialect_reason
    d = MsnpDissector()
    d.feed(C2S, b"USR 1 a@b.c 1.2\r\nCAL 2 c@b.c\r\n")
    assert [(f.dialect, f.dialect_inferred) for f in drain(d)
            if isinstance(f, CommandFrame)] == [(8, True), (8, True)]  # fmt: skip


def test_only_lines_that_can_meet_a_clue_are_handed_to_the_dissector() -> None:
    """A switchboard never fixes its dialect, so every line of a clue's word would go to the
    dissector's observer: its ANS, IRO and JOI clues need an endpoint (`;{`), and lines
    without one are not handed over at all (they were, at about 10,000 instructions each,
    on every switchboard of an MSNP8 capture). The words whose clues need nothing (USR's
    login methods) still are."""
    from dissectors.msnp.dissector import _WATCH_ALL
    from dissectors.msnp.framer import DirectionFramer

    assert _WATCH_ALL[b"VER"] == b"" and _WATCH_ALL[b"USR"] == b""
    assert _WATCH_ALL[b"ANS"] == _WATCH_ALL[b"IRO"] == _WATCH_ALL[b"JOI"] == b";{"
    ep = b"{0D2B6B1F-5B6E-4F5A-9A1C-2F3C4D5E6F70}"
    for direction, lines, handed in (
        (S2C, [b"IRO 1 1 2 b@b.c Bob", b"JOI c@b.c Carol", b"IRO 1 2 2 d@b.c;" + ep + b" D",
               b"MSG b@b.c Bob 2\r\nhi"], ["IRO 1 2 2"]),
        (C2S, [b"ANS 1 a@b.c 1.2 99", b"USR 2 a@b.c 1.2", b"ANS 3 a@b.c;" + ep + b" 1.2 9"],
         ["USR 2 a@", "ANS 3 a@"]),
    ):  # fmt: skip
        seen: list[bytes] = []
        framer = DirectionFramer(direction, 8, None, dict(_WATCH_ALL))
        framer.on_line = lambda f: seen.append(f.raw)  # noqa: B023 (used within the loop)
        data = b"".join(line + b"\r\n" for line in lines)
        for at in range(0, len(data), 7):  # in pieces: the general path, then the batch one
            framer.feed(data[at : at + 7])
            framer.drain_into([])
        framer.feed(data)
        framer.drain_into([])
        assert [r.decode()[: len(h)] for r, h in zip(seen, handed * 2, strict=True)] == (
            handed * 2
        )


def test_without_a_ver_an_msnp14_presence_line_with_the_network_infers_msnp14() -> None:
    """MSNP14-17 put the network after the account in ILN and NLN. Without a VER nothing
    inferred it, so the connection stayed MSNP8 and the FLN after it read its network as
    client id 1 ("mobile device"). The shape is a clue now (MSNP8-13's has no number there,
    so its client id would be the nick)."""
    d = MsnpDissector()
    d.feed(S2C, b"NLN NLN bob@example.com 1 Bob 2789003324 %3Cmsnobj%2F%3E\r\n"
                b"FLN bob@example.com 1\r\n")
    nln, fln = drain(d)
    assert isinstance(nln, CommandFrame) and isinstance(fln, CommandFrame)
    assert (nln.dialect, nln.dialect_inferred) == (14, True) == (fln.dialect, True)
    assert decode(fln).fields == {"account": "bob@example.com", "network": 1}
    d = MsnpDissector()
    d.feed(S2C, b"ILN 9 AWY carol@example.com 1 Carol 2789003324:48\r\n")
    iln = drain(d)[0]
    assert isinstance(iln, CommandFrame) and iln.dialect == 14  # (MSNP16+: caps:ext)
    d = MsnpDissector()  # an MSNP8-13 line with a numeric nick is no such clue
    d.feed(S2C, b"NLN NLN bob@example.com 42 268435456 %3Cmsnobj%2F%3E\r\n")
    old = drain(d)[0]
    assert isinstance(old, CommandFrame) and old.dialect == 8


def test_without_a_ver_an_up_to_date_msnp8_syn_reply_is_no_msnp2_7_clue() -> None:
    """MSNP8-9 leave the counts out of a SYN reply when the client's list is up to date
    (`SYN 5 15` to `SYN 5 15`: MSNPiki's and NINA's SYN pages). Without a VER every reply
    without counts inferred MSNP2-7, so a client with a cached list read as MSNP7 from
    there on. Only a new version without counts is MSNP2-7's; with the request unseen, the
    reply says MSNP2-9."""
    def dialects(*lines: tuple[Direction, bytes]) -> list[int]:
        d = MsnpDissector()
        out = []
        for direction, line in lines:
            d.feed(direction, line + b"\r\n")
            out += [f.dialect for f in drain(d) if isinstance(f, CommandFrame)]
        return out

    assert dialects((C2S, b"SYN 5 15"), (S2C, b"SYN 5 15"), (C2S, b"PNG")) == [8, 8, 8]
    assert dialects((C2S, b"SYN 5 10"), (S2C, b"SYN 5 15"), (C2S, b"PNG")) == [8, 7, 7]
    assert dialects((S2C, b"SYN 5 15"), (C2S, b"PNG")) == [8, 8]
