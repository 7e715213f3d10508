"""The TUI's workspace: every analyzer over one capture, each finding once, the same
statistics as `msnsniff stats`, and the index holding every frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.conversations import Conversations
from msnsniff.session.stats import Stats
from msnsniff.session.workspace import Workspace
from tests.helpers import read_frames

CAPTURES = Path(__file__).resolve().parents[3] / "captures"


@pytest.mark.parametrize("name", ["server_list_changes", "server_chat", "msnp8_demo"])
def test_workspace_findings_once_and_stats_as_the_stats_command(name: str) -> None:
    path = CAPTURES / f"{name}.pcap"
    ws = Workspace()
    ws.load(path)
    assert ws.done and ws.index.count == len(read_frames(path))
    for number, findings in ws.index.findings.items():
        codes = [(f.code, f.message) for f in findings]
        assert len(codes) == len(set(codes)), f"frame {number}: {codes}"
    alone = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    stats = Stats.attach(alone)
    for event in open_source(path):
        alone.push(event)
    alone.finish()
    assert ws.stats.to_json() == stats.to_json()


def test_the_unanswered_request_is_reported_once() -> None:
    ws = Workspace()
    ws.load(CAPTURES / "server_list_changes.pcap")
    unanswered = [f for fs in ws.index.findings.values() for f in fs
                  if f.code == "trid.unanswered"]  # fmt: skip
    assert len(unanswered) == 1 and unanswered[0].message.startswith("ADD 99")


@pytest.mark.parametrize("name", ["server_chat", "msnp8_demo", "http_gateway"])
def test_conversations_are_summaries_whose_events_replay_from_the_index(name: str) -> None:
    """The workspace keeps each conversation without its events; `conversation()` replays
    the index's frames of that switchboard and gets what a reducer keeping events kept."""
    path = CAPTURES / f"{name}.pcap"
    ws = Workspace()
    ws.load(path)
    alone = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    full = alone.add(lambda sink: Conversations(sink, keep=True))
    for event in open_source(path):
        alone.push(event)
    alone.finish()
    expected = full.conversations()
    summaries = ws.conversations.conversations()
    assert expected and [c.flow.id for c in summaries] == [c.flow.id for c in expected]
    for summary, want in zip(summaries, expected, strict=True):
        assert summary.events == ()
        assert (summary.event_count, summary.message_count) == (
            len(want.events), len(want.messages))
        assert summary.participants == want.participants
        assert summary.last_frame == want.last_frame >= summary.first_frame
        assert ws.conversation(summary) == want
    assert sum(len(c.messages) for c in expected) > 0


def test_frames_of_a_connection() -> None:
    ws = Workspace()
    ws.load(CAPTURES / "server_chat.pcap")
    index = ws.index
    flows = {index.flow(no).id for no in range(1, index.count + 1)}
    assert len(flows) > 2
    for flow in flows:
        want = [no for no in range(1, index.count + 1) if index.flow(no).id == flow]
        assert index.frames_of(flow) == want
        assert index.frames_of(flow, want[1], want[-2]) == want[1:-1]
    assert index.frames_of("no such flow") == []


@pytest.mark.parametrize(
    "name", ["server_list_changes", "server_chat", "msnp8_demo", "http_gateway", "http_xmlrpc"]
)
def test_live_requests_pair_as_in_the_file_once_settled(name: str) -> None:
    """Live (`proxy --tui`, `sniff --tui`) a request is indexed as it comes, before its
    replies; one never answered kept 'not known' (no pairing: no '(no reply)' on its row)
    after its transaction settled, where reading the file says it had none. Once settled
    (its connection ended, the capture ended, the timeout), a live request's replies are
    those of the file."""
    path = CAPTURES / f"{name}.pcap"
    offline = Workspace()
    offline.load(path)
    live = Workspace(live=True)
    for event in open_source(path):
        live.push(event)
    live.finish()
    count = offline.index.count
    assert live.index.count == count
    want = {no: offline.index.replies_of(no) for no in range(1, count + 1)}
    assert {no: live.index.replies_of(no) for no in range(1, count + 1)} == want
    if name == "server_list_changes":
        assert want[86] == ()  # ADD 99 RL: the server closed instead of answering
