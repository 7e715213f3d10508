"""`msnsniff export`: each format from the same analysis, many captures in parallel with the
same output as one at a time, and the README's DuckDB queries over the Parquet tables."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dissectors.msnp.frames import CommandFrame
from msnsniff.capture import StreamChunk
from msnsniff.capture.sources import open_source
from msnsniff.cli import main
from msnsniff.registry import load_dissectors
from msnsniff.session.capture_session import CaptureSession
from tests import helpers

CAPTURES = Path(__file__).parents[2] / "captures"
LISTS = CAPTURES / "server_list_changes.pcap"
CHAT = CAPTURES / "server_chat.pcap"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_is_the_read_schema_plus_capture_and_findings(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    assert run("export", str(LISTS), "-o", str(out))[0] == 0
    rows = jsonl(out)
    _, read_out, _ = run("read", "-T", "jsonl", str(LISTS))
    read_rows = [json.loads(line) for line in read_out.splitlines()]
    assert [{k: v for k, v in r.items() if k not in ("capture", "findings")} for r in rows] \
        == read_rows  # fmt: skip
    assert {r["capture"] for r in rows} == {str(LISTS)}
    _, expert_out, _ = run("expert", "-T", "json", str(LISTS))
    expected = Counter(json.loads(line)["frame"] for line in expert_out.splitlines()
                       if json.loads(line)["frame"] is not None)  # fmt: skip
    got = Counter(r["no"] for r in rows for _ in r["findings"])
    assert got == expected and got


def test_the_transcript_reads_back_as_the_same_frames(tmp_path: Path) -> None:
    out = tmp_path / "x.txt"
    assert run("export", str(CHAT), "-o", str(out))[0] == 0

    def frames(path: Path) -> list[tuple[str, bytes, bytes | None]]:
        session = CaptureSession(load_dissectors())
        return [(r.direction.value, r.frame.line, r.frame.payload_bytes)
                for r in session.run(open_source(path))
                if isinstance(r.frame, CommandFrame)]  # fmt: skip

    assert frames(out) == frames(CHAT)


def test_a_transcript_without_times_exports_to_one_that_reads_back_without_times(
    tmp_path: Path,
) -> None:
    """A docs-style transcript has no times (`read` shows `-`, no round trips): its export
    writes `-` for them, not 0.0, so the copy does not read back with every frame at
    1970-01-01 and every round trip 0.0 ms."""
    source = tmp_path / "seed.txt"
    source.write_text("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nC: SYN 2 0\nS: SYN 2 0\n")
    out = tmp_path / "x.txt"
    assert run("export", str(source), "-o", str(out))[0] == 0
    assert "0.000000" not in out.read_text()
    _, original, _ = run("read", "-T", "jsonl", str(source))
    _, copy, _ = run("read", "-T", "jsonl", str(out))
    keys = ("no", "ts", "dir", "cmd", "trid", "args", "request", "replies", "rtt")
    rows = [[{k: json.loads(line)[k] for k in keys} for line in text.splitlines()]
            for text in (original, copy)]  # fmt: skip
    assert rows[0] == rows[1] and rows[0][1]["ts"] is None and rows[0][1]["rtt"] is None


def test_a_transcript_closes_each_connection_where_it_closed(tmp_path: Path) -> None:
    """Seed 004's server closes its connections after `ADD 25 RL`, `REM 34 RL` and `REG 45
    30`: the export writes each `--- connection closed` there, not all at the end; and a
    connection the capture cut (it ended first) is left open, so the copy does not invent a
    close (`sessions --presence` would say the user went offline without OUT)."""
    seed = helpers.seed("004")
    out = tmp_path / "x.txt"
    assert run("export", str(seed), "-o", str(out))[0] == 0
    lines = out.read_text().splitlines()
    closes = [n for n, line in enumerate(lines) if " --- " in line]
    assert [lines[n - 1].split(">>> ")[-1] for n in closes] == [
        "ADD 25 RL user@msn.com user@msn.com", "REM 34 RL user@msn.com", "REG 45 30 NewName 0"]

    cut = tmp_path / "cut.pcap"  # the demo up to the 216 (frame 36): DS closed, NS cut
    cut.write_bytes((CAPTURES / "msnp8_demo.pcap").read_bytes()[:4200])
    copy = tmp_path / "cut.txt"
    assert run("export", str(cut), "-o", str(copy))[0] == 2  # (the damage is said)
    closed = [line for line in copy.read_text().splitlines() if " --- " in line]
    assert closed == ["1700000000.122000 cut-flow1 --- connection closed"]  # its FIN

    def presence(path: Path) -> list[str]:
        _, text, _ = run("sessions", "--presence", str(path))
        return [line for line in text.splitlines() if line.startswith("[")]

    assert presence(copy) == presence(cut) and presence(cut)


def test_a_transcript_of_several_captures_reads_back_as_each_of_them(tmp_path: Path) -> None:
    """`export A B A -o all.txt` read back as one capture: the second capture's logins were
    taken as the first's going on (alice's list version falling from 10 to 0 was a conflict
    and a gap), frame numbers ran on, and links and pairing crossed captures. Each capture's
    part starts with its `# msnsniff export of NAME` line, and a transcript marking several
    is read as those captures, each as its original reads: same frames, same lists, same
    findings (flows aside: a transcript's are `FILE#N`, as for one capture)."""
    demo = CAPTURES / "msnp8_demo.pcap"
    originals = [str(LISTS), str(demo), str(LISTS)]
    out = tmp_path / "all.txt"
    assert run("export", *originals, "-o", str(out))[0] == 0

    def flows_aside(text: str) -> str:
        return re.sub(r"flow \S+ +", "flow F ", text)

    status, one_by_one, err = run("contacts", *originals)
    assert status == 0 and one_by_one.count("== /") == 3
    assert run("contacts", str(out)) == (0, one_by_one, err)
    status, one_by_one, err = run("expert", *originals)
    assert status == 0 and one_by_one.count("== /") == 3
    status, read_back, read_err = run("expert", str(out))
    assert (status, flows_aside(read_back), read_err) == (0, flows_aside(one_by_one), err)
    rows = jsonl_of(out)
    assert [r["capture"] for r in rows] == [r["capture"] for r in
                                            map(json.loads, run("read", "-T", "jsonl",
                                                                *originals)[1].splitlines())]
    for name in dict.fromkeys(originals):
        mine = [(r["no"], r["dir"], r["cmd"], r["args"]) for r in rows if r["capture"] == name]
        theirs = [(r["no"], r["dir"], r["cmd"], r["args"]) for r in jsonl_of(Path(name))]
        assert mine == theirs * originals.count(name)
    # read whole (the TUI, replay), no connection runs on from one capture into the next
    flows: dict[str, set[str]] = {}
    for event in open_source(out):
        if isinstance(event, StreamChunk) and event.flow.label is not None:
            flows.setdefault(event.flow.label, set()).add(event.flow.id)
    assert all(len(ids) == 2 for label, ids in flows.items() if "server_list" in label)
    assert run("export", str(out), "-o", str(tmp_path / "again.txt"))[2].endswith(
        f"exported {len(rows)} frames of 3 captures to {tmp_path / 'again.txt'}\n")


def test_a_transcript_without_frames_still_reads_back(tmp_path: Path) -> None:
    """A filter that selects nothing (or a capture of HTTP only) exports a transcript of its
    header line alone; `read` refused it as "not a pcap, pcapng or transcript file" (exit 2)
    instead of reading back its zero frames."""
    for name, extra in (("none.txt", ["-Y", "msnp.error == 999"]), ("http.txt", [])):
        out = tmp_path / name
        source = CHAT if extra else CAPTURES / "http_fbrest.pcap"
        assert run("export", str(source), "-o", str(out), *extra)[0] == 0
        assert out.read_text().count("\n") == 1
        assert run("read", "-T", "jsonl", str(out)) == (0, "", "")


def test_a_transcript_of_a_capture_named_with_spaces_reads_back(tmp_path: Path) -> None:
    """The connection label was the file's stem, spaces and all, and the reader takes a
    label as one word: `my chat.pcap` exported a transcript that read back as no frames."""
    src = tmp_path / "my chat log.pcap"
    shutil.copy(CHAT, src)
    out = tmp_path / "x.txt"
    assert run("export", str(src), "-o", str(out))[0] == 0
    status, text, _ = run("read", "-T", "jsonl", str(out))
    assert status == 0 and len(text.splitlines()) == len(jsonl_of(CHAT)) > 0


def jsonl_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run("read", "-T", "jsonl", str(path))[1].splitlines()]


def test_a_transcript_says_what_it_left_out(tmp_path: Path) -> None:
    """HTTP frames have no place in a transcript: the export said "exported 0 frames" of an
    HTTP capture and nothing else; it now counts them and names the formats that keep them."""
    out = tmp_path / "x.txt"
    status, _out, err = run("export", str(CAPTURES / "http_gateway.pcap"), "-o", str(out))
    assert status == 0
    assert err.splitlines() == [
        f"msnsniff: {CAPTURES / 'http_gateway.pcap'}: 70 HTTP frames left out (a transcript "
        "holds MSNP command lines only; .jsonl or .pcapng keep them)",
        f"msnsniff: exported 69 frames of 1 capture to {out}",
    ]
    assert "left out" not in run("export", str(CHAT), "-o", str(tmp_path / "y.txt"))[2]


def test_a_transcript_calls_the_tail_a_capture_joined_mid_way_partial(tmp_path: Path) -> None:
    """The first bytes of a connection the capture joined mid-way (no SYN) are a partial
    frame, not damage, for read, expert and stats; the transcript export counted it among
    "malformed or gap frames left out", as if the capture were damaged."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    src = tmp_path / "joined.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 40000), ("10.0.0.2", 1863))
        conv.joined()  # no open(): the capture starts mid-connection
        conv.send(1.0, False, b"lice@example.com 1\r\nNLN NLN bob@example.com Bob\r\n")
        conv.send(1.1, True, b"PNG\r\n")
    out = tmp_path / "x.txt"
    status, _, err = run("export", str(src), "-o", str(out))
    assert status == 0
    assert err.splitlines()[0] == (
        f"msnsniff: {src}: 1 partial (joined mid-way, not damage) frames left out (a transcript "
        "holds MSNP command lines only; .jsonl or .pcapng keep them)"
    )


def test_a_transcript_leaves_out_payloads_its_lines_cannot_hold(tmp_path: Path) -> None:
    """A payload with a CR or LF that ends no CRLF line (binary P2P data, a message typed
    with bare LFs) was written as it was: the reader ended lines there, so the frame read
    back cut short and the next one as garbage. Such frames are now left out and counted;
    every frame written reads back the same."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    text = b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\none\ntwo\rthree"
    p2p = (b"MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\n"
           b"P2P-Dest: b@x.com\r\n\r\n" + bytes(range(256)))  # fmt: skip
    src = tmp_path / "p2p.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1864))
        conv.open(1.0)
        conv.send(1.1, True, b"USR 1 a@x.com 123.456\r\n")
        conv.send(1.2, True, b"MSG 2 N %d\r\n%s" % (len(text), text))
        conv.send(1.3, True, b"MSG 3 D %d\r\n%s" % (len(p2p), p2p))
        conv.send(1.4, True, b"MSG 4 N 2\r\nab")
        conv.send(1.5, True, b"OUT\r\n")
    out = tmp_path / "x.txt"
    status, _, err = run("export", str(src), "-o", str(out))
    assert status == 0
    assert err.splitlines()[0].startswith(f"msnsniff: {src}: 2 MSNP frames left out (a CR or LF")

    def frames(path: Path) -> list[tuple[bytes, bytes | None]]:
        return [(r.frame.line, r.frame.payload_bytes) if isinstance(r.frame, CommandFrame)
                else (b"not a command", None)
                for r in CaptureSession(load_dissectors()).run(open_source(path))]  # fmt: skip

    assert frames(out) == [f for f in frames(src) if f[0][:5] not in (b"MSG 2", b"MSG 3")]


def _pcapng_packets(path: Path) -> list[tuple[bytes, str | None]]:
    """(packet bytes, comment) of each enhanced packet block."""
    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        kind, length = struct.unpack_from("<II", data, pos)
        if kind == 6:
            caplen = struct.unpack_from("<I", data, pos + 20)[0]
            packet = data[pos + 28 : pos + 28 + caplen]
            opt = pos + 28 + caplen + (-caplen % 4)
            comment = None
            while opt < pos + length - 4:
                code, size = struct.unpack_from("<HH", data, opt)
                if code == 0:
                    break
                if code == 1:
                    comment = data[opt + 4 : opt + 4 + size].decode()
                opt += 4 + size + (-size % 4)
            out.append((packet, comment))
        pos += length
    return out


def _two_link_pcapng(path: Path) -> None:
    """A pcapng with an Ethernet interface and a raw-IP one (as mergecap writes when joining
    captures of different link types), one MSNP connection on each."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    def block(kind: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        return struct.pack("<II", kind, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 65535)) + block(1, struct.pack("<HHI", 101, 0, 65535))
    clients = ((("10.0.0.1", 3000), 0), (("10.0.0.3", 3001), 14))  # raw IP: no Ethernet header
    for interface, (client, strip) in enumerate(clients):
        pcap = io.BytesIO()
        conv = TcpConversation(PcapWriter(pcap), client, ("10.0.0.2", 1863))
        conv.open(1.0 + interface)
        conv.send(1.1 + interface, True, b"VER 1 MSNP8 CVR0\r\n")
        conv.send(1.2 + interface, False, b"VER 1 MSNP8\r\n")
        conv.send(1.25 + interface, True, b"USR 2 TWN I alice@example.com\r\n")
        conv.close(1.3 + interface)
        data, pos = pcap.getvalue(), 24
        while pos < len(data):
            sec, usec, caplen, _ = struct.unpack_from("<IIII", data, pos)
            packet = data[pos + 16 + strip : pos + 16 + caplen]
            micros = sec * 1_000_000 + usec
            out += block(6, struct.pack("<IIIII", interface, micros >> 32, micros & 0xFFFFFFFF,
                                        len(packet), len(packet)) + packet)  # fmt: skip
            pos += 16 + caplen
    path.write_bytes(out)


def test_pcapng_of_a_capture_with_several_link_types_keeps_them_all(tmp_path: Path) -> None:
    """The export wrote one interface, of the first packet's link type, and silently left
    out every packet of another link type while still counting its frames as exported."""
    src, out = tmp_path / "mixed.pcapng", tmp_path / "x.pcapng"
    _two_link_pcapng(src)
    status, _, err = run("export", str(src), "-o", str(out))
    assert status == 0, err
    assert len(_pcapng_packets(out)) == len(_pcapng_packets(src)) == 18

    def lines(path: Path) -> list[tuple[str | None, bytes]]:
        return [(r.flow.client, r.frame.line) for r in
                CaptureSession(load_dissectors()).run(open_source(path))
                if isinstance(r.frame, CommandFrame)]  # fmt: skip

    assert lines(out) == lines(src) and len(lines(src)) == 6


def test_pcapng_keeps_the_ip_fragments_of_the_selected_flows(tmp_path: Path) -> None:
    """A fragment after the first has no TCP header, so the export could not tell its flow
    and left it out: the exported capture had gaps where `read` of the original had none.
    Every fragment of a datagram of a selected flow is now written; findings still land."""
    from msnsniff.capture.pcap import packet_records
    from tests.msnsniff.capture.test_pcap import pcap_bytes
    from tests.msnsniff.test_redact import _fragmented

    pieces, count, _ = _fragmented([data for _no, _ts, _link, data in packet_records(CHAT)])
    assert count > 10
    src = tmp_path / "fragmented.pcap"
    src.write_bytes(pcap_bytes(pieces))

    def frames(path: Path) -> list[tuple[str, bytes]]:
        return [(r.direction.value, r.frame.raw) for r in
                CaptureSession(load_dissectors()).run(open_source(path))]  # fmt: skip

    out = tmp_path / "x.pcapng"
    assert run("export", str(src), "-o", str(out))[0] == 0
    assert len(_pcapng_packets(out)) == len(pieces)
    assert frames(out) == frames(src) == frames(CHAT)
    one = tmp_path / "one.pcapng"  # one flow: its fragments and no other flow's
    assert run("export", str(src), "-o", str(one), "-Y", 'msnp.cmd == "CAL"')[0] == 0
    plain = tmp_path / "plain.pcapng"
    assert run("export", str(CHAT), "-o", str(plain), "-Y", 'msnp.cmd == "CAL"')[0] == 0
    assert frames(one) == frames(plain)
    assert [c for _, c in _pcapng_packets(one) if c] == [c for _, c in _pcapng_packets(plain) if c]


def test_pcapng_holds_the_selected_flows_with_findings_as_comments(tmp_path: Path) -> None:
    out = tmp_path / "x.pcapng"
    status, _, err = run("export", str(LISTS), "-o", str(out), "-Y", "msnp.cmd == \"ADG\"")
    assert status == 0, err
    packets = _pcapng_packets(out)
    comments = [c for _, c in packets if c]
    assert any("error 229" in c for c in comments), comments
    assert all(c.startswith("msnsniff ") for c in comments)
    # only alice's notification connection sends ADG: one flow, every packet of it
    exported = list(CaptureSession(load_dissectors()).run(open_source(out)))
    clients = {r.flow.client for r in exported}
    assert len(clients) == 1
    whole = [r for r in CaptureSession(load_dissectors()).run(open_source(LISTS))
             if r.flow.client in clients]  # fmt: skip
    assert [r.frame.raw for r in exported] == [r.frame.raw for r in whole]


def test_pcapng_of_msnp_through_the_http_gateway_holds_the_connections_that_carried_it(
    tmp_path: Path,
) -> None:
    """A filter selecting frames of a gateway session's MSNP selects the HTTP connections
    its bytes went through (a session uses several), and a finding about such a frame is a
    comment on the packet that carried it."""
    gateway = CAPTURES / "http_gateway.pcap"
    out = tmp_path / "gw.pcapng"
    status, _, err = run("export", str(gateway), "-o", str(out), "-Y", 'msnp.cmd == "ADD"')
    assert status == 0, err
    comments = [c for _, c in _pcapng_packets(out) if c]
    assert any("error 215" in c for c in comments), comments
    exported = list(CaptureSession(load_dissectors()).run(open_source(out)))
    adds = [r for r in exported if isinstance(r.frame, CommandFrame) and r.frame.cmd == "ADD"]
    whole = [r for r in CaptureSession(load_dissectors()).run(open_source(gateway))
             if isinstance(r.frame, CommandFrame) and r.frame.cmd == "ADD"]  # fmt: skip
    assert whole and [r.frame.raw for r in adds] == [r.frame.raw for r in whole]
    assert len({r.flow.id for r in exported if r.proto == "http"}) > 1



def test_the_summary_counts_one_frame_in_the_singular(tmp_path: Path) -> None:
    """'exported 1 frames' (found by the export review)."""
    out = tmp_path / "one.jsonl"
    demo = CHAT.parent / "msnp8_demo.pcap"
    status, _, err = run("export", str(demo), "-o", str(out),
                         "-Y", 'msnp.cmd == "CVR" and dir == s2c and flow == "1"')  # fmt: skip
    assert status == 0 and len(out.read_text().splitlines()) == 1
    assert err == f"msnsniff: exported 1 frame of 1 capture to {out}\n"

def test_pcapng_of_a_filter_that_selects_nothing_is_an_empty_capture(tmp_path: Path) -> None:
    out = tmp_path / "none.pcapng"
    status, _, err = run("export", str(CHAT), "-o", str(out), "-Y", "msnp.error == 999")
    assert status == 0 and "exported 0 frames" in err
    assert _pcapng_packets(out) == []
    status, printed, err = run("read", str(out))
    assert (status, printed, err) == (0, "", "")


def test_many_captures_in_parallel_give_the_same_output(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "b").mkdir(parents=True)
    for src, dest in ((LISTS, corpus / "a.pcap"), (CHAT, corpus / "b" / "c.pcap"),
                      (CAPTURES / "server_md5_logins.pcap", corpus / "b" / "d.pcap")):
        shutil.copy(src, dest)
    (corpus / "notes.txt").write_text("not a capture\n")
    for fmt in ("jsonl", "txt", "pcapng"):
        one, many = tmp_path / f"one.{fmt}", tmp_path / f"many.{fmt}"
        assert run("export", str(corpus), "-o", str(one), "-j", "1")[0] == 0
        assert run("export", str(corpus), "-o", str(many), "-j", "3")[0] == 0
        assert one.read_bytes() == many.read_bytes(), fmt
    rows = jsonl(tmp_path / "one.jsonl")
    assert [c for c in dict.fromkeys(r["capture"] for r in rows)] == [
        str(corpus / "a.pcap"), str(corpus / "b" / "c.pcap"), str(corpus / "b" / "d.pcap")]


def test_redacted_export_names_nobody(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    assert run("export", str(CHAT), "-o", str(out), "--redact")[0] == 0
    text = out.read_text()
    assert "@example.com" not in text and "@example.invalid" in text


def test_redacted_export_of_a_corpus_leaves_out_only_what_it_cannot_redact(
    tmp_path: Path,
) -> None:  # fmt: skip
    """One capture `redact` refuses (a transcript) stopped `export --redact` of a whole
    corpus: nothing was written. That capture is now left out, said on stderr (exit 2), and
    every other capture is exported, redacted; of a damaged capture, the packets before the
    damage (redacted as a capture that ended there), the damage said in `read`'s words."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    data = CHAT.read_bytes()
    (corpus / "a.pcap").write_bytes(data[: len(data) - 7])  # damaged: into the last record
    shutil.copy(LISTS, corpus / "b.pcap")
    (corpus / "c.txt").write_text("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\n")
    plain = tmp_path / "plain.jsonl"
    assert run("export", "--redact", str(corpus / "b.pcap"), "-o", str(plain))[0] == 0
    cut = tmp_path / "cut.jsonl"
    assert run("export", "--redact", str(corpus / "a.pcap"), "-o", str(cut))[0] == 2
    damage = run("read", "-T", "none", str(corpus / "a.pcap"))[2].splitlines()
    assert len(damage) == 1 and "truncated record: " in damage[0]
    assert len(jsonl(cut)) > 50
    for kind in (".jsonl", ".txt", ".pcapng"):
        out = tmp_path / f"x{kind}"
        status, _, err = run("export", "--redact", str(corpus), "-o", str(out))
        assert status == 2, err
        assert out.exists(), kind
        lines = err.splitlines()
        assert len(lines) == 3 and lines[0] == damage[0]
        assert str(corpus / "c.txt") in lines[1] and "left out" in lines[1]
        total = len(jsonl(cut)) + len(jsonl(plain))
        assert lines[2] == f"msnsniff: exported {total} frames of 3 captures to {out}"
    assert [r["capture"] for r in jsonl(tmp_path / "x.jsonl")] == (
        [str(corpus / "a.pcap")] * len(jsonl(cut)) + [str(corpus / "b.pcap")] * len(jsonl(plain)))
    assert b"@example.com" not in (tmp_path / "x.jsonl").read_bytes()


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    status, _, err = run("export", str(CHAT), "-o", str(tmp_path / "x.csv"))
    assert status == 2 and ".jsonl, .txt, .pcapng, .parquet" in err


README_QUERIES = {
    "commands": """
        SELECT cmd, count(*) AS n
        FROM read_parquet('OUT/frames/*/*.parquet', hive_partitioning = true)
        GROUP BY cmd ORDER BY n DESC, cmd""",
    "errors": """
        SELECT f.capture, f.cmd AS code, f.error_name, r.cmd AS request
        FROM read_parquet('OUT/frames/*/*.parquet', hive_partitioning = true) f
        JOIN read_parquet('OUT/frames/*/*.parquet', hive_partitioning = true) r
          ON r.capture = f.capture AND r.no = f.request
        WHERE f.error_code IS NOT NULL ORDER BY f.capture, f.no""",
    "damage": """
        SELECT capture, no, flow, malformed
        FROM read_parquet('OUT/frames/*/*.parquet', hive_partitioning = true)
        WHERE malformed IS NOT NULL AND NOT partial ORDER BY capture, no""",
    "slowest": """
        SELECT capture, cmd, max(rtt) AS worst
        FROM read_parquet('OUT/transactions/*/*.parquet', hive_partitioning = true)
        GROUP BY capture, cmd ORDER BY worst DESC LIMIT 5""",
}  # fmt: skip


def test_parquet_tables_answer_the_readme_queries(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    out = tmp_path / "corpus.parquet"
    status, _, err = run("export", str(LISTS), str(CHAT), "-o", str(out))
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "findings", "frames", "list_changes", "transactions"]
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    con = duckdb.connect()

    def query(name: str) -> list[tuple[Any, ...]]:
        sql = README_QUERIES[name]
        assert " ".join(sql.split()) in " ".join(readme.split()), f"README lacks {name}"
        # (the test's copy is wrapped differently; the words must be the README's)
        return list(con.execute(sql.replace("OUT", str(out))).fetchall())

    counts = dict((cmd, n) for cmd, n in query("commands"))
    expected: Counter[str] = Counter()
    for path in (LISTS, CHAT):
        for r in CaptureSession(load_dissectors()).run(open_source(path)):
            if isinstance(r.frame, CommandFrame):
                expected[r.frame.cmd] += 1
    assert counts == dict(expected)
    errors = query("errors")
    name = str(LISTS)  # the partition value: the path as given (percent-encoded on disk)
    assert (name, "229", "ERR_GROUP_NAME_TOO_LONG", "ADG") in errors
    assert query("damage") == []  # the server's own captures are whole
    assert query("slowest")
    changes = con.execute("SELECT kind, count(*) FROM "
                          f"read_parquet('{out}/list_changes/*/*.parquet') GROUP BY kind"
                          ).fetchall()  # fmt: skip
    assert dict(changes).get("add", 0) >= 3
    con.close()


def test_parquet_parts_of_every_capture_share_one_schema(tmp_path: Path) -> None:
    """DuckDB takes a column's type from the first part it reads: a capture with only HTTP
    frames, or without an error reply, must not write its empty columns as type null, or
    every query over the corpus fails. HTTP frames fill cmd and args as in JSON Lines."""
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    out = tmp_path / "corpus.parquet"
    captures = [CAPTURES / "http_fbrest.pcap", CAPTURES / "server_login_msnp8.pcap", CHAT]
    status, _, err = run("export", *map(str, captures), "-o", str(out))
    assert status == 0, err
    con = duckdb.connect()
    for name, sql in README_QUERIES.items():  # each runs; all but "damage" find rows
        rows = con.execute(sql.replace("OUT", str(out))).fetchall()
        assert bool(rows) is (name != "damage"), name
    posts = con.execute(f"SELECT count(*), min(args[1]), min(content_type) FROM read_parquet("
                        f"'{out}/frames/*/*.parquet') WHERE cmd = 'POST'").fetchone()
    assert posts == (11, "/restserver.php", "application/x-www-form-urlencoded")
    for table in ("frames", "transactions", "list_changes", "findings"):
        schemas = {str(con.execute(f"DESCRIBE SELECT * FROM read_parquet('{part}')").fetchall())
                   for part in (out / table).glob("*/*.parquet")}  # fmt: skip
        assert len(schemas) == 1, table
    # an HTTP exchange is a transaction too (the table held MSNP's only): the REST calls
    exchanges = con.execute(
        f"SELECT proto, cmd, count(*), count(rtt), count(trid) FROM read_parquet('{out}/"
        "transactions/*/*.parquet') GROUP BY proto, cmd ORDER BY proto, cmd").fetchall()
    assert ("http", "POST", 11, 11, 0) in exchanges
    assert {p for p, *_ in exchanges} == {"http", "msnp"}
    con.close()


def test_bytes_that_are_not_utf8_export_as_escapes(tmp_path: Path) -> None:
    """A line with bytes that are not UTF-8 (a damaged capture, a legacy client) exports as
    valid UTF-8 with those bytes spelled \\xNN, as `read -T jsonl` prints them; Parquet too."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    src = tmp_path / "latin1.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, False, b"NLN NLN a@b.c Ren\xe9e 0\r\nFLN a@b.c\r\n")
    out = tmp_path / "x.jsonl"
    status, _, err = run("export", str(src), "-o", str(out))
    assert status == 0, err
    rows = jsonl(out)  # read_text: valid UTF-8 or UnicodeDecodeError
    assert rows[0]["args"][2] == "Ren\\xe9e"
    _, read_out, _ = run("read", "-T", "jsonl", str(src))
    assert json.loads(read_out.splitlines()[0])["args"] == rows[0]["args"]
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = tmp_path / "x.parquet"
    status, _, err = run("export", str(src), "-o", str(table))
    assert status == 0, err
    frames = pq.read_table(table / "frames").to_pylist()
    assert frames[0]["args"][2] == "Ren\\xe9e"


def test_a_damaged_capture_exports_what_came_before_and_says_so_once(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    data = CHAT.read_bytes()
    cut.write_bytes(data[: len(data) - 7])  # into the last record
    out = tmp_path / "x.jsonl"
    status, _, err = run("export", str(cut), "-o", str(out))
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 2 and "truncated record" in lines[0] and str(cut) in lines[0]
    whole = tmp_path / "whole.jsonl"
    assert run("export", str(CHAT), "-o", str(whole))[0] == 0
    assert len(jsonl(out)) >= len(jsonl(whole)) - 1 and len(jsonl(out)) > 10
    status, _, err = run("export", str(tmp_path / "missing.pcap"), "-o", str(out))
    assert status == 2 and err.splitlines() == [
        f"msnsniff: {tmp_path / 'missing.pcap'}: cannot read: No such file or directory",
        f"msnsniff: exported 0 frames of 1 capture to {out}",
    ]


def test_a_damaged_capture_exports_as_pcapng_the_packets_before_the_damage(
    tmp_path: Path,
) -> None:  # fmt: skip
    """The packet pass of a .pcapng export let the damage escape: `export good.pcap
    cut.pcap -o X.pcapng` wrote no file at all (the good capture lost too) and no summary.
    Now the packets before the damage are written, the damage is said once (in `read`'s
    words) and the exit status is 2, as for the other formats."""
    cut = tmp_path / "cut.pcap"
    data = CHAT.read_bytes()
    cut.write_bytes(data[:3010])  # inside the data of record 24
    _, cut_frames, _ = run("read", "-T", "jsonl", str(cut))
    out = tmp_path / "x.pcapng"
    status, _, err = run("export", "-j", "1", str(LISTS), str(cut), "-o", str(out))
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"msnsniff: {cut}: truncated record: ")
    assert "(record " in lines[0] and "byte offset " in lines[0]
    _, whole, _ = run("read", "-T", "jsonl", str(LISTS))
    back = run("read", "-T", "jsonl", str(out))[1].splitlines()
    assert len(back) == len(whole.splitlines()) + len(cut_frames.splitlines())
    assert lines[1] == f"msnsniff: exported {len(back)} frames of 2 captures to {out}"


def test_parquet_malformed_is_the_jsonl_reason_and_not_an_http_status_text(
    tmp_path: Path,
) -> None:
    """The `malformed` column holds what JSON Lines' `malformed.reason` holds: null for a
    well-formed frame. An HTTP response's status text ("OK") is not a reason it is malformed."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from msnsniff.capture.write import PcapWriter, TcpConversation

    src = tmp_path / "bad.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.open(1.0)
        conv.send(1.1, False, b"VER 1 MSNP8 CVR0\r\n\x00\x01garbage\r\nPNG\r\n")
    captures = [CAPTURES / "http_fbrest.pcap", src]
    table, lines = tmp_path / "x.parquet", tmp_path / "x.jsonl"
    for out in (table, lines):
        status, _, err = run("export", *map(str, captures), "-o", str(out))
        assert status == 0, err
    expected = {(row["capture"], row["no"]):
                (row["malformed"] or {}).get("reason") for row in jsonl(lines)}  # fmt: skip
    got = {(row["capture"], row["no"]): row["malformed"]
           for row in pq.read_table(table / "frames").to_pylist()}  # fmt: skip
    assert got == expected
    assert sum(reason is not None for reason in got.values()) == 1


def test_parquet_partial_tells_a_capture_joined_mid_line_from_damage(tmp_path: Path) -> None:
    """A capture without the connection's SYN starts with the tail of a line: JSON Lines
    marks it `malformed.partial`, no damage. The Parquet `malformed` column held its reason
    with nothing to tell it from real damage: `partial` is true for it, false for damage
    (malformed bytes, gaps) and null where `malformed` is."""
    duckdb = pytest.importorskip("duckdb")
    from msnsniff.capture.write import PcapWriter, TcpConversation

    src = tmp_path / "late.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.joined()  # no SYN in the capture: it joined the connection under way
        conv.send(1.1, False, b"lice@example.com 1\r\nNLN NLN bob@x.com Bob 0\r\n")
        conv.send(1.2, False, b"garbage\r\nQNG\r\n")
    table, lines = tmp_path / "x.parquet", tmp_path / "x.jsonl"
    for out in (table, lines):
        status, _, err = run("export", str(src), "-o", str(out))
        assert status == 0, err
    expected = {row["no"]: None if row["malformed"] is None
                else bool(row["malformed"].get("partial")) for row in jsonl(lines)}  # fmt: skip
    assert expected == {1: True, 2: None, 3: False, 4: None}
    frames = f"read_parquet('{table}/frames/*/*.parquet', hive_partitioning = true)"
    con = duckdb.connect()
    got = dict(con.execute(f"SELECT no, partial FROM {frames}").fetchall())
    assert got == expected
    damage = con.execute(f"SELECT no, malformed FROM {frames} WHERE malformed IS NOT NULL "
                         "AND NOT partial").fetchall()  # fmt: skip
    assert damage == [(3, "not an MSNP command line; skipped to the next command")]


def test_parquet_transactions_have_the_replies_jsonl_has(tmp_path: Path) -> None:
    """`transactions.replies` left out the JOI a ringing CAL led to, which JSON Lines'
    `replies` (and `read`) count among the CAL's replies: the two exports disagreed."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table, lines = tmp_path / "x.parquet", tmp_path / "x.jsonl"
    for out in (table, lines):
        assert run("export", str(CHAT), "-o", str(out))[0] == 0
    expected = {row["no"]: row["replies"] for row in jsonl(lines) if row["replies"]}
    got = {row["request"]: row["replies"] for row in pq.read_table(table / "transactions")
           .to_pylist() if row["replies"]}  # fmt: skip
    assert got == expected
    rows = {row["no"]: row for row in jsonl(lines)}
    assert any(rows[no]["cmd"] == "CAL" and rows[r[-1]]["cmd"] == "JOI" for no, r in got.items())


def test_parquet_captures_whose_partition_names_collide_are_all_read(tmp_path: Path) -> None:
    """`a_b/c.pcap` and `a/b_c.pcap` (or one capture named twice) make the same partition
    name; the second was moved inside the first (`capture=X/capture=X/`), where the README's
    `TABLE/*/*.parquet` queries never look: its rows were silently missing. Each capture now
    gets a partition of its own (`capture=X-2`)."""
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    (tmp_path / "a_b").mkdir()
    (tmp_path / "a").mkdir()
    shutil.copy(CHAT, tmp_path / "a_b" / "c.pcap")
    shutil.copy(LISTS, tmp_path / "a" / "b_c.pcap")
    out = tmp_path / "x.parquet"
    named = [tmp_path / "a_b" / "c.pcap", tmp_path / "a" / "b_c.pcap", CHAT, CHAT]
    status, _, err = run("export", *map(str, named), "-o", str(out))
    assert status == 0, err
    con = duckdb.connect()
    for table in ("frames", "transactions", "list_changes", "findings"):
        parts = sorted(p.relative_to(out / table) for p in (out / table).rglob("*.parquet"))
        assert len(parts) == 4 and all(len(p.parts) == 2 for p in parts), (table, parts)
    rows = con.execute(f"SELECT count(*), count(DISTINCT capture) FROM read_parquet("
                       f"'{out}/frames/*/*.parquet', hive_partitioning = true)").fetchone()
    expected = sum(len(jsonl_of(p)) for p in (CHAT, LISTS, CHAT, CHAT))
    assert rows == (expected, 4)


def test_pcapng_keeps_the_packet_comments_of_the_capture(tmp_path: Path) -> None:
    """The proxy's notes on its `-w` recording (a rewritten XFR, a script's reply, a script's
    error) are pcapng packet comments; `export -o X.pcapng`, filtered or not, wrote each
    packet with only the export's own findings, so they were lost. They are now kept on the
    packets they belong to, the findings added after them (an export of an export does not
    repeat a finding)."""
    from tests.msnsniff.proxy.harness import record_with_notes

    src = record_with_notes(tmp_path)
    original = _pcapng_packets(src)
    notes = {p: c for p, c in original if c}
    assert any("script changed PNG" in c for c in notes.values()), notes
    assert any("rewrote 127.0.0.1:" in c for c in notes.values()), notes
    out = tmp_path / "all.pcapng"
    assert run("export", str(src), "-o", str(out))[0] == 0
    exported = _pcapng_packets(out)
    assert [p for p, _ in exported] == [p for p, _ in original]
    for packet, comment in exported:
        if packet in notes:
            assert comment is not None and comment.startswith(notes[packet]), comment
        else:
            assert comment is None or comment.startswith("msnsniff "), comment
    again = tmp_path / "again.pcapng"
    assert run("export", str(out), "-o", str(again))[0] == 0
    assert _pcapng_packets(again) == exported
    # a filter keeps the packets of the flows it selects, and their comments with them
    png = tmp_path / "png.pcapng"
    assert run("export", str(src), "-o", str(png), "-Y", 'msnp.cmd == "PNG"')[0] == 0
    kept = [c for _, c in _pcapng_packets(png) if c]
    assert any("script changed PNG" in c for c in kept), kept
    assert not any("in XFR" in c and "main#" in c for c in kept), kept  # the DS flow: out


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_transcript_among_the_captures_of_a_pcapng_export_is_left_out_alone(
    tmp_path: Path, jobs: str
) -> None:
    """A transcript has no packets for a .pcapng: it stopped the whole export, so the other
    captures' packets were thrown away and no file was written. It is now left out alone,
    said (exit 2, as for any capture not exported whole), and the others are written."""
    text = tmp_path / "t.txt"
    text.write_text("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\n")
    target = tmp_path / "out.pcapng"
    status, _, err = run("export", "-j", jobs, str(text), str(CHAT), "-o", str(target))
    assert status == 2
    assert f"msnsniff: {text}: a transcript has no packets to export as pcapng; left out" in err
    assert err.endswith(f"msnsniff: exported 96 frames of 2 captures to {target}\n")
    status, out, _ = run("read", "-T", "jsonl", str(target))
    assert status == 0 and len(out.splitlines()) == 96  # the chat capture's frames
    alone = tmp_path / "alone.pcapng"
    assert run("export", str(text), "-o", str(alone))[0] == 2
    assert run("read", "-T", "none", str(alone))[0] == 0  # a valid, empty pcapng


def test_parquet_capture_column_is_the_name_given_as_in_json_lines(tmp_path: Path) -> None:
    """Parquet's `capture` (the hive partition) held a cleaned-up name (`sub_a_b_c.pcap`)
    where JSON Lines has the path given (`sub/a b=c.pcap`), so the two exports of one
    corpus did not join on it. The partition value is now percent-encoded, as Hive and Spark
    write one, and DuckDB and pyarrow read back the name as given."""
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    (tmp_path / "sub").mkdir()
    given = tmp_path / "sub" / "a b=c%é.pcap"
    shutil.copy(CHAT, given)
    table, lines = tmp_path / "x.parquet", tmp_path / "x.jsonl"
    for out in (table, lines):
        assert run("export", str(given), "-o", str(out))[0] == 0
    assert {row["capture"] for row in jsonl(lines)} == {str(given)}
    for name in ("frames", "transactions", "list_changes", "findings"):
        assert set(pq.read_table(table / name).column("capture").to_pylist()) <= {str(given)}
    assert set(pq.read_table(table / "frames").column("capture").to_pylist()) == {str(given)}
    rows = duckdb.connect().execute(f"SELECT DISTINCT capture FROM read_parquet("
                                    f"'{table}/frames/*/*.parquet', hive_partitioning = true)")
    assert rows.fetchall() == [(str(given),)]


def test_parquet_capture_too_long_for_a_directory_keeps_its_end(tmp_path: Path) -> None:
    """A deep path, percent-encoded, can pass a directory name's 255 bytes: its partition
    then keeps the end of the name (the file's own) after `...`, rather than failing."""
    pytest.importorskip("pyarrow")
    deep = tmp_path.joinpath(*["d" * 30] * 8)
    deep.mkdir(parents=True)
    shutil.copy(CHAT, deep / "chat.pcap")
    out = tmp_path / "x.parquet"
    status, _, err = run("export", str(deep / "chat.pcap"), "-o", str(out))
    assert status == 0, err
    (part,) = (out / "frames").iterdir()
    assert part.name.startswith("capture=...") and part.name.endswith("%2Fchat.pcap")
    assert len(part.name.encode()) <= 255


def test_pcapng_export_keeps_the_original_length_of_packets_the_capture_cut(
    tmp_path: Path,
) -> None:
    """`export -o X.pcapng` wrote each packet's original length as its captured one, so
    the packets a snapshot length had cut read as whole in the export (Wireshark, and
    `read`'s note on cut packets, saw none)."""
    from msnsniff.capture.pcap import packet_records
    from tests.msnsniff.test_redact import _cut_copy

    src, out = tmp_path / "cut.pcap", tmp_path / "x.pcapng"
    _cut_copy(CAPTURES / "msnp8_demo.pcap", src, 120)
    assert run("export", str(src), "-o", str(out))[0] == 0
    wanted: dict[int, int] = {}
    sizes = [len(data) for no, _, _, data in packet_records(src, None, wanted) if no in wanted]
    got: dict[int, int] = {}
    exported = [len(data) for no, _, _, data in packet_records(out, None, got) if no in got]
    assert sorted(got.values()) == sorted(wanted.values()) and len(got) == 12
    assert sorted(exported) == sorted(sizes)
    status, _, err = run("read", "-T", "none", str(out))
    assert status == 0 and "12 packets cut short by the capture" in err


def test_export_redact_names_the_capture_in_notes_about_the_file(tmp_path: Path) -> None:
    """`export --redact` reads a redacted copy in a temporary directory, and its notes about
    the file named that copy ("/tmp/msnsniff-redact-x/redacted.pcapng: 12 packets cut
    short..."), a file the user never gave and that is gone; they name the capture now."""
    from tests.msnsniff.test_redact import _cut_copy

    src = tmp_path / "cut.pcap"
    _cut_copy(CAPTURES / "msnp8_demo.pcap", src, 120)
    status, _, err = run("export", "--redact", str(src), "-o", str(tmp_path / "x.jsonl"))
    assert status == 0, err
    assert f"msnsniff: {src}: 12 packets cut short by the capture" in err
    assert "redacted.pcapng" not in err


@pytest.mark.parametrize("name", ["X.JSONL", "X.TXT", "X.PCAPNG", "X.Parquet"])
def test_the_format_is_read_from_an_extension_in_any_case(tmp_path: Path, name: str) -> None:
    """`export -o X.JSONL` was refused ("say the format by OUT's extension"), though
    `sniff -w`, `proxy -w` and a directory's captures read extensions in any case."""
    if name.lower().endswith(".parquet"):
        pytest.importorskip("pyarrow")
    out = tmp_path / name
    status, _, err = run("export", str(CHAT), "-o", str(out))
    assert status == 0, err
    assert out.exists() and f"to {out}" in err
    if name.endswith(".PCAPNG"):
        assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"


@pytest.mark.parametrize(("name", "make", "expected"), [
    ("d.jsonl", Path.mkdir, "is a directory: name a file for OUT"),
    ("f.parquet", lambda p: p.write_text("mine"), "not a directory (a Parquet export is a "
                                                 "directory of tables): name another OUT"),
], ids=["a directory for a file format", "a file for parquet"])  # fmt: skip
def test_an_out_of_the_wrong_kind_is_refused_before_the_work_and_leaves_nothing(
    tmp_path: Path, name: str, make: Any, expected: str
) -> None:
    """`-o d.jsonl` where d.jsonl is a directory exported everything, then failed naming
    its temporary file ("d.jsonl.partial: Is a directory") and left that file, the whole
    export, beside it; `-o f.parquet` on a file said only "Not a directory". Both are
    refused at once, in words naming OUT, and nothing is left behind."""
    out = tmp_path / name
    make(out)
    before = sorted(tmp_path.iterdir())
    status, _, err = run("export", str(CHAT), "-o", str(out))
    assert (status, err) == (2, f"msnsniff: {out}: {expected}\n")
    assert sorted(tmp_path.iterdir()) == before
    if out.is_file():
        assert out.read_text() == "mine"


@pytest.mark.parametrize(("out_name", "redact"), [("x.pcapng", False), ("x.jsonl", True),
                                                  ("x.pcapng", True)])  # fmt: skip
def test_a_file_that_is_no_capture_is_said_by_name_and_the_others_are_exported(
    tmp_path: Path, out_name: str, redact: bool
) -> None:
    """Among the captures, a file that is none (a notes file in the directory): `-o
    X.pcapng` stopped the whole export with an unnamed "not a pcap, pcapng or transcript
    file" and wrote nothing; `--redact` said it without the file's name. Each now names
    the file, leaves it out and exports the others, as `-o X.jsonl` already did."""
    notes = tmp_path / "notes.txt"
    notes.write_text("C->S: VER 1 MSNP8\n")
    out = tmp_path / out_name
    status, _, err = run("export", *(["--redact"] if redact else []), str(notes), str(CHAT),
                         "-o", str(out))  # fmt: skip
    assert status == 2
    assert err.startswith(f"msnsniff: {notes}: not a pcap, pcapng or transcript file"), err
    assert err.endswith(f"exported 96 frames of 2 captures to {out}\n"), err
    assert len(jsonl_of(out) if out_name.endswith(".pcapng") else jsonl(out)) == 96
