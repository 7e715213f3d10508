"""Transcript layouts: C:/S: with continuations, >>>/<<< with literal CRLF, timestamped logs."""

from __future__ import annotations

from dissectors.api import Direction
from dissectors.msnp.frames import CommandFrame, MalformedFrame
from msnsniff.capture import FlowEnd, SourceNote, StreamChunk
from msnsniff.capture.transcript import captures, looks_like_transcript, read_transcript
from msnsniff.registry import load_dissectors
from msnsniff.session.capture_session import CaptureSession

C2S, S2C = Direction.C2S, Direction.S2C


def chunks(text: str) -> list[StreamChunk]:
    return [e for e in read_transcript(text.splitlines(True), "t") if isinstance(e, StreamChunk)]


def test_cs_lines_with_continuation_and_payload_body() -> None:
    text = (
        "Some prose.\n"
        "C: VER 1 MSNP8 CVR0\n"
        "S: CVR 2 5.0.0537 5.0.0537 1.0.0863\n"
        ".. http://a.example/x.exe\n"
        ".. http://b.example\n"
        "S: MSG Hotmail Hotmail 31\n"
        "MIME-Version: 1.0\n"
        "Kid: 0\n"
        "\n"
        "C: SYN 8 14\n"
    )
    got = chunks(text)
    assert [(c.direction, c.data) for c in got] == [
        (C2S, b"VER 1 MSNP8 CVR0\r\n"),
        (S2C, b"CVR 2 5.0.0537 5.0.0537 1.0.0863 http://a.example/x.exe http://b.example\r\n"),
        (S2C, b"MSG Hotmail Hotmail 31\r\nMIME-Version: 1.0\r\nKid: 0\r\n\r\n"),
        (C2S, b"SYN 8 14\r\n"),
    ]
    assert [c.offset for c in got] == [0, 0, 74, 18]


def test_a_prefixed_line_that_is_no_command_is_traffic_and_reported_malformed() -> None:
    """Garbage after `C:` or `>>>` goes on the wire as it is (only prose without a prefix
    is skipped), so the dissector reports it with its offset instead of it vanishing."""
    text = "Prose.\nC: VER 1 MSNP8 CVR0\nC: @@garbage line\n>>> %% more\\r\\n\nC: SYN 2 0\n"
    assert [c.data for c in chunks(text)] == [
        b"VER 1 MSNP8 CVR0\r\n", b"@@garbage line\r\n", b"%% more\r\n", b"SYN 2 0\r\n"
    ]
    records = list(CaptureSession(load_dissectors()).run(read_transcript(text.splitlines(True))))
    malformed = [r.frame for r in records if isinstance(r.frame, MalformedFrame)]
    assert [(m.offset, m.raw) for m in malformed] == [(18, b"@@garbage line\r\n%% more\r\n")]
    assert malformed[0].reason.startswith("not an MSNP command line")
    last = records[-1].frame
    assert isinstance(last, CommandFrame) and last.cmd == "SYN"


def test_arrows_with_literal_crlf_remarks_and_server_close() -> None:
    text = (
        ">>> ADD 24 FL user@msn.com user@msn.com 15\\r\\n (nonexistent Group)\n"
        "<<< 224 24\\r\\n\n"
        ">>> ADD 25 RL user@msn.com user@msn.com\\r\\n\n"
        "<o> Server Closes Connection\n"
        ">>> REM 26 AL a@b\\r\\n\n"
    )
    events = list(read_transcript(text.splitlines(True), "t"))
    data = [(e.flow.id, e.data) for e in events if isinstance(e, StreamChunk)]
    assert data == [
        ("t#1", b"ADD 24 FL user@msn.com user@msn.com 15\r\n"),
        ("t#1", b"224 24\r\n"),
        ("t#1", b"ADD 25 RL user@msn.com user@msn.com\r\n"),
        ("t#2", b"REM 26 AL a@b\r\n"),
    ]
    ends = [(e.flow.id, e.reason) for e in events if isinstance(e, FlowEnd)]
    assert ends[0] == ("t#1", "server closed the connection")


def test_timestamped_log_with_labels_and_body_lines() -> None:
    text = (
        "  0.002 NS-alice   >>> VER 1 MSNP8 CVR0\n"
        "  0.003 NS-bob     >>> VER 1 MSNP8 CVR0\n"
        "  0.075 NS-alice   <<< MSG Hotmail Hotmail 21\n"
        "            | MIME-Version: 1.0\n"
        "            | \n"
        "  0.889 NS-alice   --- connection closed by peer\n"
    )
    events = list(read_transcript(text.splitlines(True), "t"))
    got = [(e.flow.label, e.ts, e.data) for e in events if isinstance(e, StreamChunk)]
    assert got == [
        ("NS-alice", 0.002, b"VER 1 MSNP8 CVR0\r\n"),
        ("NS-bob", 0.003, b"VER 1 MSNP8 CVR0\r\n"),
        ("NS-alice", 0.075, b"MSG Hotmail Hotmail 21\r\nMIME-Version: 1.0\r\n\r\n"),
    ]
    ends = [e for e in events if isinstance(e, FlowEnd) and e.flow.label == "NS-alice"]
    assert ends[0].reason == "connection closed by peer" and ends[0].ts == 0.889


def test_short_payload_is_noted() -> None:
    """A length wrong in the middle (the next traffic line ends the body): a note, no damage."""
    events = list(read_transcript(["S: MSG Hotmail Hotmail 100\n", "abc\n", "C: OUT\n"], "t"))
    notes = [e for e in events if isinstance(e, SourceNote)]
    assert len(notes) == 1
    assert notes[0].location == "t:1" and "declares 100" in notes[0].message


def test_client_ver_after_traffic_starts_a_new_connection() -> None:
    got = chunks("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nC: VER 4 MSNP8 CVR0\n")
    assert [c.flow.id for c in got] == ["t#1", "t#1", "t#2"]


def test_detection() -> None:
    assert looks_like_transcript(b"intro\nC: VER 1 MSNP8 CVR0\n")
    assert looks_like_transcript(b">>> ADD 18 AL a@b a@b\\r\\n\n")
    assert not looks_like_transcript(b"just some text\nwith lines\n")


def test_capture_markers_split_an_export_of_several_captures() -> None:
    """`# msnsniff export of NAME` starts each capture of an export of several: `captures`
    names them, `section=N` reads the Nth alone (connections numbered afresh), and read
    whole a marker ends the connections before it, so the same label after it (both
    captures had a flow 1) is a new connection, not the first one going on."""
    from msnsniff.capture.transcript import captures

    text = ("# msnsniff export of a.pcap\n"
            "1.0 x-flow1 >>> VER 1 MSNP8 CVR0\n"
            "# msnsniff export of b.pcap\n"
            "2.0 x-flow1 >>> SYN 2 0\n"
            "2.1 x-flow1 <<< SYN 2 0 0 0\n")  # fmt: skip
    lines = text.splitlines(True)
    assert captures(lines) == ["a.pcap", "b.pcap"]
    whole = list(read_transcript(lines, "t"))
    assert [(c.flow.id, c.data) for c in whole if isinstance(c, StreamChunk)] == [
        ("t#1", b"VER 1 MSNP8 CVR0\r\n"), ("t#2", b"SYN 2 0\r\n"), ("t#2", b"SYN 2 0 0 0\r\n")]
    ends = [e for e in whole if isinstance(e, FlowEnd)]
    assert [e.flow.id for e in ends[:2]] == ["t#1", "t#1"]  # before b.pcap's first line
    assert whole.index(ends[0]) < 2
    second = [c for c in read_transcript(lines, "t", section=2) if isinstance(c, StreamChunk)]
    assert [(c.flow.id, c.offset, c.data) for c in second] == [
        ("t#1", 0, b"SYN 2 0\r\n"), ("t#1", 0, b"SYN 2 0 0 0\r\n")]
    first = [c for c in read_transcript(lines, "t", section=1) if isinstance(c, StreamChunk)]
    assert [c.data for c in first] == [b"VER 1 MSNP8 CVR0\r\n"]
    assert captures(lines[1:2]) == []  # no marker: one capture, read as before


def test_a_payload_cut_by_the_end_of_the_file_is_fatal() -> None:
    lines = ["C: VER 1 MSNP8 CVR0\n", "S: MSG Hotmail Hotmail 100\n", "MIME-Version: 1.0\n"]
    events = list(read_transcript(lines, "t"))
    notes = [e for e in events if isinstance(e, SourceNote)]
    assert [(n.location, n.fatal) for n in notes] == [("t:2", True)]
    assert "ends at line 3 inside the payload of MSG: 19 of its 100" in notes[0].message
    # everything before the damage is still there, the cut frame's bytes too
    assert [c.data for c in chunks("".join(lines))] == [
        b"VER 1 MSNP8 CVR0\r\n", b"MSG Hotmail Hotmail 100\r\nMIME-Version: 1.0\r\n"]


def test_a_log_payload_cut_by_the_end_of_the_file_is_fatal() -> None:
    lines = ["  0.1 NS-a   <<< MSG Hotmail Hotmail 100\n", "        | MIME-Version: 1.0"]
    notes = [e for e in read_transcript(lines, "t") if isinstance(e, SourceNote)]
    assert [(n.location, n.fatal) for n in notes] == [("t:1", True)]


def test_a_short_payload_before_the_next_capture_is_no_truncation() -> None:
    text = ["# msnsniff export of a\n", "S: MSG Hotmail Hotmail 100\n", "abc\n",
            "# msnsniff export of b\n", "C: OUT\n"]  # fmt: skip
    for section in (None, 1):
        notes = [e for e in read_transcript(text, "t", section) if isinstance(e, SourceNote)]
        assert [(n.location, n.fatal) for n in notes] == [("t:2", False)]


def test_a_byte_order_mark_before_the_first_line_is_not_part_of_it() -> None:
    """A transcript saved by a Windows editor starts with a UTF-8 byte order mark: its first
    line (`\\ufeffC: VER ...`) matched no layout and was dropped without a word, the login's
    VER with it, and a file of one such line was not recognised as a transcript at all."""
    text = "\ufeffC: VER 1 MSNP8 CVR0\r\nS: VER 1 MSNP8\r\n"
    assert [c.data for c in chunks(text)] == [b"VER 1 MSNP8 CVR0\r\n", b"VER 1 MSNP8\r\n"]
    assert looks_like_transcript("\ufeffC: VER 1 MSNP8 CVR0\r\n".encode())
    marked = ["\ufeff# msnsniff export of a.pcap\n", "C: OUT\n", "# msnsniff export of b\n"]
    assert captures(marked) == ["a.pcap", "b"]


def test_an_msnp13_error_reply_takes_its_payload_from_the_lines_after_it() -> None:
    """From MSNP13 an error reply `NNN TrID LEN` carries a payload, as the framer reads it;
    before MSNP13 (by the connection's VER) the same line has none."""
    text = (
        "C: VER 1 MSNP13\nS: VER 1 MSNP13\nC: ADL 2 3\nabc\nS: 241 2 5\n<ml/>\nS: OUT OTH\n"
    )
    assert [c.data for c in chunks(text)][-2:] == [b"241 2 5\r\n<ml/>", b"OUT OTH\r\n"]
    records = list(CaptureSession(load_dissectors()).run(read_transcript(text.splitlines(True))))
    assert not any(isinstance(r.frame, MalformedFrame) for r in records)
    old = "C: VER 1 MSNP8\nS: VER 1 MSNP8\nS: 911 2 5\nprose, not a payload\nS: OUT OTH\n"
    assert [c.data for c in chunks(old)][-2:] == [b"911 2 5\r\n", b"OUT OTH\r\n"]


def test_an_indented_transcript_reads_as_the_same_traffic() -> None:
    """A transcript pasted from a Markdown code block or an indented quote (four spaces, a
    tab) is traffic too: the traffic lines, their `..` continuations, `<o>` and the payload's
    body lines lose the indentation the traffic line has, and a body line's own spaces
    beyond it are kept."""
    plain = (
        "C: VER 1 MSNP8 CVR0\n"
        "S: CVR 2 5.0.0537 5.0.0537 1.0.0863\n"
        ".. http://a.example/x.exe\n"
        "S: MSG Hotmail Hotmail 33\n"
        "MIME-Version: 1.0\n"
        "  Kid: 0\n"
        "\n"
        ">>> ADD 25 RL user@msn.com user@msn.com\\r\\n\n"
        "<o> Server Closes Connection\n"
        ">>> REM 26 AL a@b\\r\\n\n"
    )
    expected = [(c.flow.id, c.direction, c.offset, c.data) for c in chunks(plain)]
    assert expected[2][3] == b"MSG Hotmail Hotmail 33\r\nMIME-Version: 1.0\r\n  Kid: 0\r\n\r\n"
    for indent in ("    ", "\t"):
        text = "Prose.\n" + "".join(indent + line for line in plain.splitlines(True))
        assert looks_like_transcript(text.encode())
        assert [(c.flow.id, c.direction, c.offset, c.data) for c in chunks(text)] == expected


def test_arrow_payload_lines_with_literal_crlf_are_the_bytes_they_spell() -> None:
    """Documents in the `>>>` layout write a payload's lines with `\\r\\n` too (and its last
    line, which ends the payload, without): those are CRLFs, not four characters, so the
    MIME headers and body read as sent; a C:/S: payload line keeps its text as it is."""
    text = (
        ">>> MSG 4 N 68\\r\\n\n"
        "MIME-Version: 1.0\\r\\n\n"
        "Content-Type: text/plain; charset=UTF-8\\r\\n\n"
        "\\r\\n\n"
        "Hi bob\n"
        "\n"
        "<<< NAK 4\\r\\n\n"
    )
    assert [c.data for c in chunks(text)] == [
        b"MSG 4 N 68\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        b"Hi bob",
        b"NAK 4\r\n",
    ]
    events = list(read_transcript(text.splitlines(True), "t"))
    assert not [e for e in events if isinstance(e, SourceNote)]
    plain = "S: MSG Hotmail Hotmail 12\nBody: a\\r\\nb\n"
    assert chunks(plain)[0].data == b"MSG Hotmail Hotmail 12\r\nBody: a\\r\\nb"


def test_a_switchboard_login_after_traffic_starts_a_new_connection() -> None:
    """Documents go on from the notification server to the switchboard in one transcript:
    the client's `USR TrID account cookie` and `ANS` open a switchboard connection, as VER
    opens the others, so the switchboard is its own flow, linked to the login by its
    cookie; the NS `USR` steps (MD5, TWN) stay on their connection."""
    got = chunks(
        "C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nC: USR 2 TWN I a@example.com\n"
        "S: USR 2 TWN S lc=1033\nC: USR 3 TWN S t=x\nS: USR 3 OK a@example.com A 1 0\n"
        "C: XFR 4 SB\nS: XFR 4 SB 10.0.0.9:1863 CKI 1.2.3\n"
        "C: USR 1 a@example.com 1.2.3\nS: USR 1 OK a@example.com A\nC: OUT\n"
        "C: ANS 1 a@example.com 4.5.6 11752013\nS: ANS 1 OK\n"
    )
    assert [c.flow.id for c in got] == ["t#1"] * 8 + ["t#2"] * 3 + ["t#3"] * 2
    assert [c.offset for c in got[8:]] == [0, 0, 27, 0, 0]


def test_a_payload_written_after_its_lines_spelled_crlf_is_its_end_not_a_remark() -> None:
    """`>>> QRY 1049 msmsgs@msnmsgr.com 32\\r\\n8f2f...` (how protocol pages write a payload
    on the command's line): the payload's last part has no CRLF to spell, so the text after
    the last `\\r\\n` is the payload when it makes up the declared length; otherwise it is
    a remark, as after any other line."""
    answer = "8f2f5a91b72102cd28355e9fc9000d6e"
    text = (
        f">>> QRY 1049 msmsgs@msnmsgr.com 32\\r\\n{answer}\n"
        "<<< QRY 1049\\r\\n\n"
        ">>> MSG 4 N 68\\r\\nMIME-Version: 1.0\\r\\nContent-Type: text/plain; charset=UTF-8"
        "\\r\\n\\r\\nHi bob\n"
        ">>> ADD 24 FL user@msn.com user@msn.com 15\\r\\n (nonexistent Group)\n"
    )
    assert [c.data for c in chunks(text)] == [
        f"QRY 1049 msmsgs@msnmsgr.com 32\r\n{answer}".encode(),
        b"QRY 1049\r\n",
        b"MSG 4 N 68\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n"
        b"Hi bob",
        b"ADD 24 FL user@msn.com user@msn.com 15\r\n",
    ]
    events = list(read_transcript(text.splitlines(True), "t"))
    assert not [e for e in events if isinstance(e, SourceNote)]
