"""Captures of third-party MSNP software (../shared/captures-real): nothing malformed, nothing
unknown but the probes the scripted client sent on purpose, and the same bytes as tshark.

The files are read from the shared folder, never copied into the project; the tests skip
with the reason when it is absent.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from dissectors.msnp.decode import decode
from dissectors.msnp.frames import CommandFrame
from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from tests.helpers import real_capture

PCAPS = ["escargot_msnp2_msnp5_md5.pcap", "escargot_msnp8_session.pcap",
         "twisted_msnp8_vs_escargot.pcap"]  # fmt: skip

# What the scripted client of escargot_msnp8_session sent on purpose to probe the server
# (its transcript shows each): an unknown command, an invalid ack mode, an invalid status.
PROBES = {b"FOO 46 bar", b"MSG 11 Z 118", b"CHG 9 XYZ 0"}



def _records(path: Path) -> list[FrameRecord]:
    """The MSNP records (the captures' Passport HTTP flows are dissected as HTTP)."""
    records = CaptureSession(load_dissectors()).run(open_source(path))
    return [r for r in records if r.proto == "msnp"]


@pytest.mark.parametrize("name", PCAPS)
def test_no_malformed_frame_and_nothing_unknown_but_the_probes(name: str) -> None:
    records = _records(real_capture(name))
    frames = [r.frame for r in records if isinstance(r.frame, CommandFrame)]
    assert len(frames) == len(records) > 50  # nothing malformed, no gap
    for f in frames:
        if f.line in PROBES:
            assert decode(f).problems, f
            continue
        assert not f.unknown, f
        assert decode(f).problems == (), (f, decode(f).problems)
        payload = f.payload
        if payload is not None and payload.content_type is not None:
            assert payload.problems == (), (f, payload.problems)
    assert {f.line for f in frames if f.unknown} <= PROBES


@pytest.mark.parametrize("stem", ["escargot_msnp8_session", "escargot_msnp2_msnp5_md5"])
def test_pcap_and_the_clients_own_log_give_the_same_frames(stem: str) -> None:
    from_pcap = _records(real_capture(f"{stem}.pcap"))
    from_log = _records(real_capture(f"{stem}.transcript.txt"))

    def lines(records: list[FrameRecord]) -> Counter[tuple[str, bytes]]:
        return Counter(
            (r.frame.direction.value, r.frame.raw)
            for r in records
            if isinstance(r.frame, CommandFrame)
        )

    assert lines(from_pcap) == lines(from_log)
    assert sum(lines(from_pcap).values()) > 60


def _tshark_follow(path: Path) -> list[tuple[str, str, dict[str, tuple[int, str]]]]:
    """tshark's `-z follow,tcp,ascii` text: per stream (client, server, and per direction the
    byte count and the text without line breaks). Each chunk starts with its byte count, flush
    left for node 0 (the client) and after a tab for node 1; bytes that are not printable
    ASCII are shown as dots."""
    streams: list[tuple[str, str, dict[str, tuple[int, str]]]] = []
    current: dict[str, tuple[int, str]] = {}
    direction = "c2s"
    nodes: list[str] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if raw.startswith("Filter: tcp.stream"):
            current = {"c2s": (0, ""), "s2c": (0, "")}
            nodes = []
        elif raw.startswith("Node "):
            nodes.append(raw.split(": ", 1)[1])
            if len(nodes) == 2:
                streams.append((nodes[0], nodes[1], current))
        elif raw.startswith("==="):
            nodes = []  # the stream ended; headers of the next one follow
        elif not nodes:
            continue
        elif re.fullmatch(r"\t?\d+", raw):
            direction = "s2c" if raw.startswith("\t") else "c2s"
            count, text = current[direction]
            current[direction] = (count + int(raw), text)
        else:
            count, text = current[direction]
            current[direction] = (count, text + raw)
    return streams


def _shown(data: bytes) -> str:
    """Bytes as tshark's ascii follow shows them, without the line breaks."""
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data if b not in (10, 13))


def test_reassembled_streams_match_tsharks_follow_output() -> None:
    path = real_capture("twisted_msnp8_vs_escargot.pcap")
    follow = _tshark_follow(real_capture("twisted_msnp8_vs_escargot.streams.txt"))
    ours: dict[tuple[str, str], dict[str, bytes]] = defaultdict(lambda: defaultdict(bytes))
    for record in _records(path):
        key = (record.flow.client or "", record.flow.server or "")
        ours[key][record.frame.direction.value] += record.frame.raw
    compared = 0
    for client, server, lines in follow:
        if (client, server) not in ours:
            assert server.endswith((":443", ":8081")), (client, server)  # HTTP and TLS legs
            continue
        for d in ("c2s", "s2c"):
            count, text = lines[d]
            assert len(ours[client, server][d]) == count, (client, server, d)
            assert _shown(ours[client, server][d]) == text, (client, server, d)
        compared += 1
    assert compared == len(ours) >= 3
