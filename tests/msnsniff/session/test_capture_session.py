"""The capture session's choice of dissector for a flow, from the bytes the flow starts with."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dissectors.api import Direction, DissectorError
from dissectors.msnp.frames import CommandFrame, PartialFrame
from msnsniff.capture import Flow, SourceEvent, StreamChunk
from msnsniff.capture.write import PcapWriter, TcpConversation
from msnsniff.registry import load_dissectors
from msnsniff.session.capture_session import CaptureSession
from tests.helpers import read_frames
from tests.msnsniff.test_registry import _example_module

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 1863)


def _joined_mid_connection(path: Path, first: bytes) -> Path:
    """A capture that starts inside an established connection (no handshake): the server's
    first segment is `first` alone, then whole command lines in later segments."""
    fh = io.BytesIO()
    conv = TcpConversation(PcapWriter(fh), C, S)
    conv.joined()  # no SYN in the capture: sequence numbers already under way
    conv.send(1.0, False, first)
    conv.send(1.1, False, b"NLN NLN bob@example.com Bob 0\r\n")
    conv.send(1.2, True, b"PNG\r\n")
    conv.send(1.3, False, b"QNG\r\n")
    path.write_bytes(fh.getvalue())
    return path


@pytest.mark.parametrize(
    "first",
    [b"20Name 0\r\n", b"Content-Type: text/plain\r\n\r\nhi\r\n"],
    ids=["mid-line", "inside a payload"],
)
def test_a_capture_joined_mid_line_is_dissected_from_the_next_command(
    tmp_path: Path, first: bytes
) -> None:
    """The README: flows are matched "in a capture joined mid-line, on a later line". When
    the partial line came in a segment of its own, the flow was decided on that line alone,
    claimed by nobody and dropped: `read` printed nothing and exited 0."""
    frames = read_frames(_joined_mid_connection(tmp_path / "mid.pcap", first))
    assert isinstance(frames[0], PartialFrame) and frames[0].raw == first  # no SYN: not damage
    commands = [f.cmd for f in frames if isinstance(f, CommandFrame)]
    assert commands == ["NLN", "PNG", "QNG"]


@pytest.mark.parametrize("gap", [False, True], ids=["capture ends", "gap"])
def test_a_joined_capture_whose_first_bytes_never_reach_a_line_end_starts_partial(
    tmp_path: Path, gap: bool
) -> None:
    """A capture joined mid-connection whose server side is only `ample.com 1 Bob%20Smith`
    when the capture ends (or a gap comes): `read` showed it MALFORMED ("truncated", "cut
    by a capture gap"), an expert error, and `read --strict` stopped on it. No line end
    was seen, so nothing was judged: it is the PartialFrame a joined capture starts with."""
    tail = b"ample.com 1 Bob%20Smith"
    fh = io.BytesIO()
    conv = TcpConversation(PcapWriter(fh), C, S)
    conv.joined()
    conv.send(1.0, True, b"CHG 9 NLN 0\r\n")
    conv.send(1.1, False, tail)
    if gap:
        conv._seq[1] += 10  # 10 server bytes the capture never saw
        conv.send(1.2, False, b"NLN NLN bob@example.com Bob 0\r\n")
    path = tmp_path / "joined.pcap"
    path.write_bytes(fh.getvalue())
    frames = read_frames(path)
    partial = [f for f in frames if isinstance(f, PartialFrame)]
    assert [(f.offset, f.raw) for f in partial] == [(0, tail)]
    assert [type(f).__name__ for f in frames] == (
        ["CommandFrame", "PartialFrame", "GapFrame", "CommandFrame"]
        if gap else ["CommandFrame", "PartialFrame"]
    )


def test_a_flow_nobody_claims_is_still_dropped(tmp_path: Path) -> None:
    """Holding an unclaimed flow to ask again is bounded: binary bytes stay undissected."""
    fh = io.BytesIO()
    conv = TcpConversation(PcapWriter(fh), C, ("10.0.0.2", 443))
    conv.open(1.0)
    for i in range(8):
        conv.send(1.1 + i / 10, i % 2 == 0, bytes(range(256)) * 4)
    conv.close(2.0)
    path = tmp_path / "tls.pcap"
    path.write_bytes(fh.getvalue())
    assert read_frames(path) == []


def test_a_lost_first_segment_loses_nothing_after_it() -> None:
    """Found by a redact-then-read round trip: a connection whose first data segment the
    capture lost (its SYN seen) began with a gap, which decided the flow at once with no
    byte to sniff: every later byte was dropped, and no 'not dissected' count said so."""
    from dissectors.api import Direction
    from msnsniff.capture import Flow, FlowEnd, Gap, StreamChunk
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    flow = Flow("1", "10.0.0.1:3000", "10.0.0.2:1863", opened=True)
    c2s = Direction.C2S
    cvr = b"CVR 2 0x0409 win 4.10 i386 MSNMSGR 5.0 MSMSGS a@b.c\r\n"
    for first_end in (None, Direction.S2C):  # the server's side may end before anything
        session = CaptureSession(load_dissectors())
        events: list[SourceEvent] = [Gap(flow, c2s, 0, 18, 1.0)]
        if first_end is not None:
            events.append(FlowEnd(flow, first_end, 1.0, "fin"))
        events += [StreamChunk(flow, c2s, 18, cvr, 1.1), FlowEnd(flow, c2s, 1.2, "fin")]
        frames = [r.frame for r in session.run(iter(events))]
        assert [(type(f).__name__, f.offset) for f in frames] == [
            ("GapFrame", 0), ("CommandFrame", 18)], first_end
        assert isinstance(frames[1], CommandFrame) and frames[1].raw == cvr
        assert session.undissected_flows == 0


# -- a third-party dissector that fails costs its own connection only --------------------------

_TOY = Flow("1", "10.7.0.2:50007", "10.7.0.1:7007")
_MSNP = Flow("2", "10.0.0.1:40000", "10.0.0.2:1863")


def _plugin_events(toy_c2s: list[bytes]) -> list[SourceEvent]:
    """A TOYLINE connection (several client lines) interleaved with an MSNP one."""
    events: list[SourceEvent] = []
    offset = 0
    for i, data in enumerate(toy_c2s):
        events.append(StreamChunk(_TOY, Direction.C2S, offset, data, 1.0 + i))
        offset += len(data)
        events.append(StreamChunk(_MSNP, Direction.C2S, i * 5, b"PNG\r\n", 1.5 + i))
    return events


def _toy_subclass(**methods: Any) -> Any:
    base: Any = _example_module().ToyLineDissector
    return type("Broken", (base,), methods)


def _boom_on_bye(self: Any, direction: Direction, data: bytes) -> None:
    if data.startswith(b"BYE"):
        raise RuntimeError("plugin bug")
    _example_module().ToyLineDissector.feed(self, direction, data)


def _error_on_bye(self: Any, direction: Direction, data: bytes) -> None:
    if data.startswith(b"BYE"):
        raise DissectorError("not TOYLINE", offset=0, direction=direction)
    _example_module().ToyLineDissector.feed(self, direction, data)


def _garbage_drain(self: Any) -> list[Any]:
    frames = list(_example_module().ToyLineDissector.drain(self))
    return [*frames, "not a frame"] if any(f.verb == "SAY" for f in frames) else frames


def _text_raw_drain(self: Any) -> list[Any]:
    frames = list(_example_module().ToyLineDissector.drain(self))
    return [replace(f, raw=f.raw.decode()) if f.verb == "SAY" else f for f in frames]


@pytest.mark.parametrize(
    ("methods", "kept", "why", "after"),
    [
        ({"feed": _boom_on_bye}, ["HELO", "SAY"], "RuntimeError: plugin bug", b"SAY after\n"),
        ({"feed": _error_on_bye}, ["HELO", "SAY"], "DissectorError: not TOYLINE",
         b"SAY after\n"),
        ({"drain": _garbage_drain}, ["HELO", "SAY"], "TypeError: it gave str 'not a frame'",
         b"BYE\nSAY after\n"),
        ({"drain": _text_raw_drain}, ["HELO"], "whose raw is 'SAY x\\n', not bytes",
         b"BYE\nSAY after\n"),
    ],
    ids=["raises", "dissector-error", "not-a-frame", "raw-not-bytes"],
)
def test_a_failing_plugin_costs_its_own_connection_only(
    methods: dict[str, Any], kept: list[str], why: str, after: bytes
) -> None:
    """A plugin raising (anything, or `DissectorError` outside strict mode) or giving
    something that is not a Frame was a traceback that ended the whole read, every other
    connection's frames lost. Now its frames so far stand, a note names the dissector, the
    flow and the error, and the other connections are dissected to the end."""
    dissectors = {**load_dissectors(), "toyline": _toy_subclass(**methods)}
    session = CaptureSession(dissectors)
    events = _plugin_events([b"HELO a\n", b"SAY x\n", b"BYE\n", b"SAY after\n"])
    records = list(session.run(events))
    toy: list[Any] = [r.frame for r in records if r.proto == "toyline"]
    assert [f.verb for f in toy] == kept
    msnp: list[Any] = [r.frame for r in records if r.proto == "msnp"]
    assert [f.cmd for f in msnp] == ["PNG"] * 4
    assert [(n.location, n.fatal) for n in session.notes] == [("flow 1", False)]
    assert "the toyline dissector failed" in session.notes[0].message
    assert why in session.notes[0].message
    assert session.undissected_bytes == len(after)  # the bytes after the failure


def test_a_dissector_error_still_ends_a_strict_session() -> None:
    dissectors = {**load_dissectors(), "toyline": _toy_subclass(feed=_error_on_bye)}
    session = CaptureSession(dissectors, strict=True)
    with pytest.raises(DissectorError, match="not TOYLINE"):
        list(session.run(_plugin_events([b"HELO a\n", b"SAY x\n", b"BYE\n"])))


@pytest.mark.parametrize(
    ("answer", "says"),
    [(ZeroDivisionError("x"), "raised ZeroDivisionError"), (None, "answered None"),
     ("very sure", "answered 'very sure'"), (float("nan"), "answered nan")],
    ids=["raises", "none", "text", "nan"],
)  # fmt: skip
def test_a_sniff_that_fails_counts_as_no_confidence(answer: object, says: str) -> None:
    """A plugin's `sniff` that raised or answered a non-number crashed every read with a
    traceback, whatever the capture held (every flow asks every dissector)."""

    def sniff(cls: Any, first: bytes, direction: Direction, ports: Sequence[int]) -> Any:
        if isinstance(answer, Exception):
            raise answer
        return answer

    dissectors = {**load_dissectors(), "bad": _toy_subclass(sniff=classmethod(sniff))}
    session = CaptureSession(dissectors)
    records = list(session.run(_plugin_events([b"HELO a\n", b"SAY x\n"])))
    assert [r.proto for r in records] == ["msnp", "msnp"]  # (TOYLINE: nobody claims it)
    assert [n.location for n in session.notes] == ["the bad dissector"]  # said once
    assert says in session.notes[0].message


def test_a_sniff_above_one_does_not_outbid_a_sure_dissector() -> None:
    """Confidences are from 0 to 1: a plugin answering 5.0 to everything is taken as 1.0,
    so it does not take MSNP connections from the MSNP dissector."""

    def sniff(cls: Any, first: bytes, direction: Direction, ports: Sequence[int]) -> float:
        return 5.0

    dissectors = {**load_dissectors(), "greedy": _toy_subclass(sniff=classmethod(sniff))}
    msnp_dissector: Any = dissectors["msnp"]
    assert msnp_dissector.sniff(b"VER 1 MSNP8 CVR0\r\n", Direction.C2S, [1863]) == 1.0
    session = CaptureSession(dissectors)
    events = [StreamChunk(_MSNP, Direction.C2S, 0, b"VER 1 MSNP8 CVR0\r\n", 1.0)]
    assert [r.proto for r in session.run(events)] == ["msnp"]


def test_two_plugins_claiming_a_flow_alike_are_named() -> None:
    """Two dissectors answering the same confidence for a flow: the first registered read
    it and nothing said another could have (which one won depended on the order the
    plugins were found on sys.path). Now a note names both, once, and how to pick."""
    toy: Any = _example_module().ToyLineDissector
    twin = _toy_subclass()
    dissectors = {**load_dissectors(), "toyline": toy, "twin": twin}
    session = CaptureSession(dissectors)
    events = [*_plugin_events([b"HELO a\n", b"SAY x\n"]),
              StreamChunk(Flow("3", "10.7.0.3:50008", "10.7.0.1:7007"), Direction.C2S, 0,
                          b"HELO b\n", 9.0)]  # fmt: skip
    records = list(session.run(events))
    assert {r.proto for r in records if r.flow.id in ("1", "3")} == {"toyline"}
    assert [n.location for n in session.notes] == ["flow 1"]  # once, not for flow 3 too
    assert "the toyline and twin dissectors claim it alike (confidence 0.9)" in (
        session.notes[0].message)
    assert "--decode-as PORT=twin" in session.notes[0].message


def test_a_plugin_that_claims_a_connection_and_gives_nothing_is_named() -> None:
    """A plugin answering 1.0 to any bytes outbids MSNP off port 1863 (0.9), as the README
    says the highest wins; but then an MSNP capture printed nothing, exit 0, not a word on
    stderr: the connections had simply vanished. Now a note names the plugin that took
    each such connection, the dissector that claimed it too, and the --decode-as to use."""

    def sniff(cls: Any, first: bytes, direction: Direction, ports: Sequence[int]) -> float:
        return 1.0

    def drain(self: Any) -> list[Any]:  # it knows no MSNP: it gives nothing of it
        return []

    greedy = _toy_subclass(sniff=classmethod(sniff), drain=drain)
    session = CaptureSession({**load_dissectors(), "greedy": greedy})
    off_port = Flow("1", "10.0.0.1:40000", "10.0.0.2:7001")
    events = [StreamChunk(off_port, Direction.C2S, 0, b"VER 1 MSNP8 CVR0\r\n", 1.0)]
    assert list(session.run(events)) == []
    assert [(n.location, n.message) for n in session.notes] == [
        ("flow 1", "the greedy dissector claimed this connection and gave no frame of it "
                   "(msnp claimed it too, at 0.9: --decode-as PORT=msnp)"),
    ]


def test_a_plugin_giving_a_non_frame_in_strict_mode_is_named() -> None:
    """In strict mode frames are pulled with next_frame, and a non-Frame from a plugin
    failed an assert: the note said only 'AssertionError: ' (and with python -O the junk
    went on to the views). It is now named as drain's is."""

    def next_frame(self: Any) -> Any:
        frame = _example_module().ToyLineDissector.next_frame(self)
        return "junk" if getattr(frame, "verb", "") == "SAY" else frame

    session = CaptureSession({**load_dissectors(), "toyline": _toy_subclass(
        next_frame=next_frame)}, strict=True)  # fmt: skip
    records = list(session.run(_plugin_events([b"HELO a\n", b"SAY x\n", b"BYE\n"])))
    assert [r.frame.raw for r in records if r.proto == "toyline"] == [b"HELO a\n"]
    assert [n.message for n in session.notes] == [
        "the toyline dissector failed (TypeError: it gave str 'junk', not a "
        "dissectors.api.Frame); the rest of this connection is not dissected"]


def test_a_frame_the_end_of_the_capture_cuts_keeps_the_time_its_bytes_came() -> None:
    """A frame completed only by the end of the capture (a MSG cut short when the capture
    or a live sniff stopped) had no time at all (`-` in text, null in JSON): the end of a
    capture has no time, so the frame took none; it takes its direction's last time."""
    from dissectors.api import Direction
    from msnsniff.capture import Flow, StreamChunk
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    flow = Flow("1", "10.0.0.1:3000", "10.0.0.2:1863", opened=True)
    c2s, s2c = Direction.C2S, Direction.S2C
    ver = b"VER 1 MSNP8 CVR0\r\n"
    events: list[SourceEvent] = [
        StreamChunk(flow, c2s, 0, ver, 1.0),
        StreamChunk(flow, c2s, len(ver), b"MSG 2 A 100\r\nMIME-", 2.0),
        StreamChunk(flow, s2c, 0, b"VER 1 MSNP8\r\nCHL 0 123", 3.0),
    ]
    session = CaptureSession(load_dissectors())
    got = [(r.frame.direction, type(r.frame).__name__, r.ts) for r in session.run(iter(events))]
    assert got == [
        (c2s, "CommandFrame", 1.0), (s2c, "CommandFrame", 3.0),
        (c2s, "MalformedFrame", 2.0), (s2c, "MalformedFrame", 3.0),
    ]
