"""Reassembly and framing checked exactly against the benchmark generator's ground truth.

The shared generator writes a capture of many interleaved MSNP8 sessions with split,
retransmitted and swapped segments, plus a sidecar of every frame the applications wrote.
Every complete frame must come out of `msnsniff read`, in order, per flow and direction,
with nothing malformed except the one frame per direction that the capture's end cuts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from dissectors.msnp.frames import CommandFrame, GapFrame, MalformedFrame
from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.capture_session import CaptureSession
from tests.conftest import Generate

Key = tuple[str, str, str]  # client, server, direction


def _truth(path: Path) -> tuple[dict[Key, list[list[tuple[str, int | None]]]], int]:
    """Per (client, server, dir): one list of complete frames per connection, in order;
    and the number of frames cut by the capture end."""
    flows: dict[int, tuple[str, str]] = {}
    per_flow: dict[tuple[int, str], list[tuple[str, int | None]]] = defaultdict(list)
    cut = 0
    with path.open() as fh:
        for line in fh:
            rec = json.loads(line)
            if rec["type"] == "flow":
                flows[rec["flow"]] = (rec["client"], rec["server"])
            elif rec["type"] == "frame":
                if rec["complete"]:
                    per_flow[rec["flow"], rec["dir"]].append((rec["line"], rec["payload_len"]))
                else:
                    cut += 1
    out: dict[Key, list[list[tuple[str, int | None]]]] = defaultdict(list)
    for fid in sorted(flows):
        client, server = flows[fid]
        for d in ("c2s", "s2c"):
            out[client, server, d].append(per_flow.get((fid, d), []))
    return out, cut


def _ours(pcap: Path) -> tuple[dict[Key, list[list[tuple[str, int | None]]]], list[str]]:
    session = CaptureSession(load_dissectors())
    by_flow: dict[tuple[str, str], list[tuple[str, int | None]]] = defaultdict(list)
    order: dict[str, Key] = {}
    problems: list[str] = []
    for record in session.run(open_source(pcap)):
        frame = record.frame
        d = frame.direction.value
        key = (record.flow.client or "?", record.flow.server or "?", d)
        order.setdefault(f"{record.flow.id}/{d}", key)
        if isinstance(frame, CommandFrame):
            line = frame.line.decode("utf-8", "backslashreplace")
            by_flow[record.flow.id, d].append((line, frame.payload_length))
        elif isinstance(frame, GapFrame | MalformedFrame):
            problems.append(f"{record.flow.id} {d} {frame.offset}: {frame.reason}")
    out: dict[Key, list[list[tuple[str, int | None]]]] = defaultdict(list)
    for fid_d, key in order.items():
        fid, _, d = fid_d.partition("/")
        out[key].append(by_flow[fid, d])
    return out, problems


@pytest.mark.parametrize(
    ("packets", "seed", "extra"),
    [
        (20_000, 1, ()),
        (8_000, 7, ("--retrans-rate", "0.05", "--ooo-rate", "0.05", "--split-rate", "0.3")),
    ],
)
def test_every_frame_the_applications_wrote_comes_out_in_order(
    generated: Generate, packets: int, seed: int, extra: tuple[str, ...]
) -> None:
    pcap, truth_path = generated(packets, seed, *extra)
    truth, cut = _truth(truth_path)
    ours, problems = _ours(pcap)
    assert {k for k, c in ours.items() if any(c)} == {k for k, c in truth.items() if any(c)}
    for key, conns in truth.items():
        got = [c for c in ours.get(key, []) if c]
        want = [c for c in conns if c]
        assert got == want, key
    assert sum(len(c) for conns in truth.values() for c in conns) > packets // 4
    # only frames cut by the end of the capture may be reported, as truncated
    assert len(problems) <= cut
    assert all("truncated" in p for p in problems), problems
