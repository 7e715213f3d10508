"""The side views (sessions, contacts, chat, stats) mounted in a tiny host app over the bundled
captures: what they show is what the analyzers (and `msnsniff sessions|contacts|chat|stats`)
say, and what they post (FilterRequested, FrameRequested) selects what it should."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, OptionList, Static

from msnsniff.capture import SourceNote
from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.chat_events import Message as ChatMessage
from msnsniff.session.contacts import ContactLists, ListChange, render_diff
from msnsniff.session.conversations import Conversations
from msnsniff.session.filter import compile_filter
from msnsniff.session.links import SessionLinks
from msnsniff.session.stats import PERCENTILES, Stats
from msnsniff.tui.messages import FilterRequested, FrameRequested
from msnsniff.tui.widgets import sessions as sessions_module
from msnsniff.tui.widgets.chat import ChatView, message_style
from msnsniff.tui.widgets.contacts import ContactsView, describe_change, render_lists
from msnsniff.tui.widgets.scroll import KeyScroll
from msnsniff.tui.widgets.sessions import NodeInfo, NodeKey, SessionsView, flow_filter
from msnsniff.tui.widgets.stats import StatsView, _ms, bar, command_filter, rtt_bar

CAPTURES = Path(__file__).resolve().parents[3] / "captures"
SIZE = (120, 40)
SnapCompare = Callable[..., bool]


@dataclass(frozen=True, slots=True)
class Analyzed:
    """Every analyzer a side view reads, run over one capture, and the capture's records."""

    links: SessionLinks
    lists: ContactLists
    conversations: Conversations
    stats: Stats
    records: tuple[FrameRecord, ...]


def analyze(name: str, *, stop_after: int | None = None) -> tuple[Analysis, Analyzed]:
    """Run the capture through the analyzers the views need (all of it, or `stop_after`
    source events, leaving the analysis open for the rest)."""
    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    links = analysis.add(lambda sink: SessionLinks(sink, keep=True))
    lists = analysis.add(lambda sink: ContactLists(sink, keep_history_for="all"))
    conversations = analysis.add(lambda sink: Conversations(sink, keep=True))
    stats = Stats.attach(analysis)
    records: list[FrameRecord] = []
    for n, event in enumerate(open_source(CAPTURES / name)):
        if stop_after is not None and n >= stop_after:
            break
        records += analysis.push(event)
    else:
        records += analysis.finish()
    return analysis, Analyzed(links, lists, conversations, stats, tuple(records))


@pytest.fixture(scope="module")
def capture() -> Callable[[str], Analyzed]:
    """`capture(name)`: the analyzed capture, made once per module."""
    made: dict[str, Analyzed] = {}

    def get(name: str) -> Analyzed:
        if name not in made:
            made[name] = analyze(name)[1]
        return made[name]

    return get


class Host(App[None]):
    """Mounts one view and keeps the requests it posts."""

    def __init__(self, view: Widget) -> None:
        super().__init__()
        self.animation_level = "none"
        self.view = view
        self.requests: list[Message] = []

    def compose(self) -> ComposeResult:
        yield self.view

    def on_filter_requested(self, message: FilterRequested) -> None:
        self.requests.append(message)

    def on_frame_requested(self, message: FrameRequested) -> None:
        self.requests.append(message)


def run(view: Widget, body: Callable[[Host, Pilot[None]], Awaitable[None]]) -> Host:
    """Mount `view` in a host app at SIZE, let `body` drive it, return the app."""
    app = Host(view)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await body(app, pilot)

    asyncio.run(main())
    return app


def screen_text(app: App[Any], widget: Widget | None = None) -> str:
    """The text on the screen (within `widget`'s region, when given)."""
    strips = app.screen._compositor.render_strips()
    if widget is None:
        return "\n".join(strip.text.rstrip() for strip in strips)
    r = widget.region
    return "\n".join(s.crop(r.x, r.right).text.rstrip() for s in strips[r.y : r.bottom])


def selected_frames(expression: str, records: tuple[FrameRecord, ...]) -> set[int]:
    display = compile_filter(expression)
    return {r.no for r in records if display.matches(r)}


def frames_of_flows(flows: set[str], records: tuple[FrameRecord, ...]) -> set[int]:
    return {r.no for r in records if r.flow.id in flows}


# -- messages -------------------------------------------------------------------------------


def test_messages_carry_read_only_data() -> None:
    assert FilterRequested('flow == "1"').expression == 'flow == "1"'
    assert FrameRequested(7).number == 7
    assert FilterRequested("x") == FilterRequested("x") != FilterRequested("y")
    with pytest.raises(AttributeError):
        FrameRequested(7).number = 8  # type: ignore[misc]  # read only: must raise


# -- sessions -------------------------------------------------------------------------------


def _labels(view: SessionsView) -> Iterator[tuple[NodeInfo, str]]:
    stack = list(view.session_tree.root.children)
    while stack:
        node = stack.pop(0)
        assert node.data is not None
        yield node.data, str(node.label)
        stack[:0] = list(node.children)


def test_sessions_tree_shows_logins_switchboards_and_participants(
    capture: Callable[[str], Analyzed],
) -> None:
    data = capture("server_chat.pcap")
    view = SessionsView(data.links)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        labels = dict(_labels(view))
        by_key = {info.key: label for info, label in labels.items()}
        assert by_key[("login", "1")].startswith("alice@example.com")
        assert "logged in" in by_key[("login", "1")]
        assert by_key[("ns", "1")].startswith("NS flow 1")
        assert "opened by XFR" in by_key[("sb", "63")]
        assert "session 15452542" in by_key[("sb", "63")]
        assert {k[2] for k in by_key if k[:2] == ("who", "63")} == {
            "alice@example.com", "bob@example.com", "carol@example.com",
        }  # fmt: skip
        assert "invited by alice@example.com (RNG)" in by_key[("sb", "73")]
        text = screen_text(app)
        assert "alice@example.com" in text and "SB flow 63" in text
        # the tree follows the analyzer: every login and switchboard it knows is a node
        logins = data.links.logins()
        assert [k for k in by_key if k[0] == "login"] == [("login", g.ns_flow.id) for g in logins]
        sbs = {("sb", sb.flow.id) for g in logins for sb in g.switchboards}
        assert sbs == {k for k in by_key if k[0] == "sb"}

    run(view, body)


def test_selecting_a_node_filters_to_exactly_its_frames(
    capture: Callable[[str], Analyzed],
) -> None:
    data = capture("server_chat.pcap")
    view = SessionsView(data.links)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        tree = view.session_tree
        tree.focus()
        for _ in range(tree.last_line + 1):  # walk down to alice's switchboard, by keyboard
            node = tree.cursor_node
            if node is not None and node.data is not None and node.data.key == ("sb", "63"):
                break
            await pilot.press("down")
        await pilot.press("enter")
        await pilot.press("f")  # the whole login the cursor is in: alice's NS and switchboard
        await pilot.pause()

    app = run(view, body)
    sb, login = app.requests
    assert isinstance(sb, FilterRequested) and isinstance(login, FilterRequested)
    assert sb.expression == 'flow == "63"'
    assert login.expression == 'flow in {"1", "63"}'
    want = frames_of_flows({"63"}, data.records)
    assert len(want) == 20  # `msnsniff stats`: flow 63 carried 20 frames
    assert selected_frames(sb.expression, data.records) == want
    assert selected_frames(login.expression, data.records) == frames_of_flows(
        {"1", "63"}, data.records
    )


def test_a_gateway_connection_filters_to_its_msnp_and_the_http_that_carried_it(
    capture: Callable[[str], Analyzed],
) -> None:
    """Enter on a login through the HTTP gateway (NS flow `1/gw1`) showed the logical flow
    only: the POSTs and answers that carried it were left out. Now the HTTP connection
    that opened it comes with it: every frame of both, the HTTP ones included."""
    data = capture("http_gateway.pcap")
    view = SessionsView(data.links)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        tree = view.session_tree
        tree.focus()
        for _ in range(tree.last_line + 1):
            node = tree.cursor_node
            if node is not None and node.data is not None and node.data.key == ("ns", "1/gw1"):
                break
            await pilot.press("down")
        await pilot.press("enter")
        await pilot.pause()

    app = run(view, body)
    (ns,) = app.requests
    assert isinstance(ns, FilterRequested)
    assert ns.expression == 'flow in {"1/gw1", "1"}'
    shown = selected_frames(ns.expression, data.records)
    assert shown == frames_of_flows({"1/gw1", "1"}, data.records)
    http = {r.no for r in data.records if r.flow.id == "1" and r.proto == "http"}
    assert {1, 2, 5, 7} <= http <= shown  # the open, its answer, the first send and answer
    assert {3, 4, 6, 8} <= shown  # VER, CVR, as before
    # a connection that is no gateway one is left as it was
    assert flow_filter(["63"]) == 'flow == "63"'
    assert flow_filter(["50/gw1", "63"]) == 'flow in {"50/gw1", "50", "63"}'


def test_a_gateway_session_that_moved_to_another_connection_brings_it_too() -> None:
    """The session opened on HTTP connection 1 goes on on connection 9 under renewed
    SessionIDs: Enter on its NS node showed connection 1's POSTs and answers only (the poll
    and sends on 9 were left out). Now every connection that carried it comes with it."""
    from dissectors.api import Direction
    from msnsniff.capture import Flow, StreamChunk
    from msnsniff.session.workspace import Workspace
    from tests.msnsniff.session.test_tunnels import answer, post

    one = Flow("1", "10.0.0.2:4000", "10.0.0.1:80")
    two = Flow("9", "10.0.0.2:4001", "10.0.0.1:80")
    c2s, s2c = Direction.C2S, Direction.S2C
    sent = [(one, c2s, post("Action=open&Server=NS&IP=10.0.0.5", b"VER 1 MSNP8 CVR0\r\n")),
            (one, s2c, answer("SessionID=7.1", b"VER 1 MSNP8\r\n")),
            (two, c2s, post("SessionID=7.1", b"USR 2 TWN I a@b.c\r\n")),
            (two, s2c, answer("SessionID=7.2", b"USR 2 TWN S lc=1033,id=507\r\n"))]
    ws = Workspace()
    for n, (flow, direction, data) in enumerate(sent):
        ws.push(StreamChunk(flow, direction, 0, data, 1.0 + n / 10))
    ws.finish()
    records = tuple(ws.index.record(n) for n in range(1, ws.index.count + 1))
    view = SessionsView(ws.links, carried_by=ws.carried_by)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        tree = view.session_tree
        tree.focus()
        for _ in range(tree.last_line + 1):
            node = tree.cursor_node
            if node is not None and node.data is not None and node.data.key == ("ns", "1/gw1"):
                break
            await pilot.press("down")
        await pilot.press("enter")
        await pilot.pause()

    app = run(view, body)
    assert app.requests == [FilterRequested('flow in {"1/gw1", "1", "9"}')]
    assert selected_frames('flow in {"1/gw1", "1", "9"}', records) == {r.no for r in records}
    assert {r.flow.id for r in records if r.proto == "http"} == {"1", "9"}
    assert ws.carried_by("9") == [] and ws.carried_by("1") == []


def test_dispatch_connections_and_a_click(capture: Callable[[str], Analyzed]) -> None:
    data = capture("msnp8_demo.pcap")
    view = SessionsView(data.links)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        by_key = {info.key: (info, label) for info, label in _labels(view)}
        info, label = by_key[("login", "13")]
        assert label.startswith("alice@example.com") and info.flows == ("1", "13", "52")
        assert by_key[("ds", "1")][1].startswith("DS flow 1")
        await pilot.click(view.session_tree, offset=(6, 0))  # the login's label, first line
        await pilot.pause()

    app = run(view, body)
    assert app.requests == [FilterRequested(flow_filter(["1", "13", "52"]))]
    assert selected_frames(flow_filter(["1", "13", "52"]), data.records) == {
        r.no for r in data.records
    }


def test_a_big_tree_fills_a_login_when_it_is_opened(
    capture: Callable[[str], Analyzed], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past LAZY_FROM nodes the logins start closed and empty; opening one adds exactly the
    nodes (and labels) the small tree shows for it, and a refresh keeps them."""
    data = capture("server_chat.pcap")
    whole = SessionsView(data.links)
    full: dict[NodeKey, str] = {}

    async def everything(app: Host, pilot: Pilot[None]) -> None:
        full.update((info.key, label) for info, label in _labels(whole))

    run(whole, everything)
    monkeypatch.setattr(sessions_module, "LAZY_FROM", 3)
    view = SessionsView(data.links)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        tops = view.session_tree.root.children
        assert [n.data.key for n in tops if n.data] == [k for k in full if k[0] == "login"]
        assert all(not n.is_expanded and not n.children for n in tops)
        assert "SB flow 63" not in screen_text(app)
        view.session_tree.focus()
        await pilot.press("space")  # open the login under the cursor: alice's
        await pilot.pause()
        alice = tops[0]
        assert alice.is_expanded and alice.children
        shown = dict(_labels(view))
        want = {k: v for k, v in full.items() if k[0] != "login" and k[1] in {"1", "63"}}
        assert {i.key: label for i, label in shown.items() if i.key[0] != "login"} == want
        assert "SB flow 63" in screen_text(app)
        view.refresh_from(data.links)  # rebuilt: what was open stays open and filled
        await pilot.pause()
        assert view.session_tree.root.children[0].children
        await pilot.press("e")  # expand all: every login is filled
        await pilot.pause()
        assert {i.key: label for i, label in _labels(view)} == full

    run(view, body)


def test_sessions_follow_a_live_capture_and_say_when_empty() -> None:
    analysis, data = analyze("msnp8_demo.pcap", stop_after=0)
    view = SessionsView(data.links)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        assert "no logins in this capture" in screen_text(app)
        events = iter(open_source(CAPTURES / "msnp8_demo.pcap"))
        for event in events:  # up to the switchboard's first frame
            if any(r.flow.id == "52" for r in analysis.push(event)):
                break
        view.refresh_from()  # the login is still open: a snapshot with its switchboard
        await pilot.pause()
        keys = {info.key for info, _ in _labels(view)}
        assert {("login", "13"), ("ds", "1"), ("sb", "52")} <= keys
        assert "(open)" in screen_text(app)
        for event in events:
            analysis.push(event)
        analysis.finish()
        view.refresh_from()
        await pilot.pause()
        assert "(open)" not in screen_text(app)
        assert "no logins in this capture" not in screen_text(app)

    run(view, body)


def test_a_live_login_shows_its_first_switchboard_opened() -> None:
    """Live, a login's NS connection arrives before its switchboards: it was a leaf, and
    when its first switchboard came the rebuilt tree kept it closed (it was known and not
    expanded), so every login after the first showed `▶ NS` with its switchboards hidden.
    A node that could not be opened before opens when it gets children; one the user
    closed stays closed."""
    analysis, data = analyze("msnp8_demo.pcap", stop_after=0)
    view = SessionsView(data.links)
    events = iter(open_source(CAPTURES / "msnp8_demo.pcap"))

    def push_until(frame: int) -> None:
        for event in events:
            if any(r.no >= frame for r in analysis.push(event)):
                return

    def node(key: NodeKey) -> Any:
        stack = list(view.session_tree.root.children)
        while stack:
            n = stack.pop()
            if n.data is not None and n.data.key == key:
                return n
            stack += n.children
        raise AssertionError(f"no node {key}")

    async def body(app: Host, pilot: Pilot[None]) -> None:
        push_until(20)  # alice logged in on NS flow 13, no switchboard yet
        view.refresh_from()
        await pilot.pause()
        assert not node(("ns", "13")).allow_expand
        push_until(52)  # her switchboard's first frame
        view.refresh_from()
        await pilot.pause()
        assert node(("ns", "13")).is_expanded
        assert "bob@example.com" not in screen_text(app)  # not joined yet
        node(("ns", "13")).collapse()
        for event in events:
            analysis.push(event)
        analysis.finish()
        view.refresh_from()
        await pilot.pause()
        assert not node(("ns", "13")).is_expanded  # closed by the user: stays closed

    run(view, body)


def test_switchboards_no_login_claims_are_listed_apart() -> None:
    """Without alice's notification connection (a capture that started late) her
    switchboard's cookie was never handed out: it is unlinked, with the reason."""
    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    links = analysis.add(lambda sink: SessionLinks(sink, keep=True))
    late = (e for e in open_source(CAPTURES / "server_chat.pcap")
            if isinstance(e, SourceNote) or e.flow.id != "1")  # fmt: skip
    for _ in analysis.run(late):
        pass
    assert [sb.flow.id for sb in links.unlinked()] == ["63"]
    view = SessionsView(links)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        by_key = {info.key: label for info, label in _labels(view)}
        assert by_key[("unlinked",)].startswith("unlinked switchboards")
        assert "unlinked" in by_key[("sb", "63")]
        assert "was never given out" in by_key[("why", "63")]
        tree = view.session_tree
        tree.focus()
        group = next(n for n in tree.root.children if n.data and n.data.key == ("unlinked",))
        tree.move_cursor(group)
        await pilot.press("enter")

    app = run(view, body)
    assert app.requests == [FilterRequested('flow == "63"')]


# -- contacts -------------------------------------------------------------------------------


def _contacts_in(text: str) -> set[str]:
    """The accounts in a lists pane's rows (its first line names the account shown)."""
    return {word for line in text.splitlines()[1:] for word in line.split() if "@" in word}


def test_contacts_at_a_version_list_exactly_that_versions_contacts(
    capture: Callable[[str], Analyzed],
) -> None:
    data = capture("msnp8_demo.pcap")
    view = ContactsView(data.lists)
    state = data.lists.history("alice@example.com").state_at(14)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        assert view.account == "alice@example.com"
        view.show_version(14)
        await pilot.pause()
        text = screen_text(app, view.query_one("#contacts-state", Static))
        expected = set().union(*state.lists.values())
        assert _contacts_in(text) == expected
        # `msnsniff contacts --at-version 14 captures/msnp8_demo.pcap`
        assert expected == {"bob@example.com", "carol@example.com", "dave@example.com"}
        rows = {line.split()[0]: line.split() for line in text.splitlines() if "@" in line}
        assert rows["bob@example.com"][1:5] == ["Bob", "●", "●", "·"]  # on FL and AL, not BL
        assert rows["carol@example.com"][1:6] == ["Carol", "★", "●", "·", "●"]  # FL BL
        assert "Other" in rows["carol@example.com"]  # group 0
        assert "FL 2" in text and "AL 2" in text and "BL 1" in text and "RL 3" in text
        assert "list version 14" in text and "complete" in text
        assert "Alice 🎉" in text and "GTC A" in text and "BLP AL" in text
        assert "PHH 01632 960000" in text and "Friends" in text

    run(view, body)


def test_contacts_timeline_jump_and_diff(capture: Callable[[str], Analyzed]) -> None:
    data = capture("server_list_changes.pcap")
    view = ContactsView(data.lists)
    history = data.lists.history("alice@example.com")

    async def body(app: Host, pilot: Pilot[None]) -> None:
        assert view.account == "bob@example.com"  # the first account the capture showed
        table = view.query_one("#contacts-timeline", DataTable)
        table.focus()
        await pilot.press("right_square_bracket")  # the next account
        assert view.account == "alice@example.com"
        frames = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        # `msnsniff contacts captures/server_list_changes.pcap`: alice's changes by frame
        assert frames == ["29", "40", "46", "48", "64", "68", "70", "76", "78", "80", "83"]
        assert frames == [str(c.frame) for c in history.timeline()]
        await pilot.press("home", "a")
        table.move_cursor(row=3)
        await pilot.press("enter")
        change = view.selected_change
        assert change is not None and change.version == 3 and change.frame == 48
        state = screen_text(app, view.query_one("#contacts-state", Static))
        assert _contacts_in(state) == set().union(*history.state_at(3).lists.values())
        assert "Friends" in state
        await pilot.press("end", "b")  # B: version 10; the diff tab shows
        await pilot.pause()
        diff = screen_text(app, view.query_one("#contacts-diff", Static))
        assert "version 0 → 10" in diff
        want = history.diff(0, 10)
        # bob was added to the FL and left it again with his last group (REM 26 FL 9 bob 1)
        assert set(want.added) == {"AL"} and want.settings["BLP"] == ("AL", "BL")
        for line in ("+ AL bob@example.com", "~ BLP: AL → BL",
                     "~ GTC: A → N", "~ nickname of alice@example.com: 'Alice' → 'Alice W'"):
            assert line in diff  # fmt: skip
        assert "FL bob@example.com" not in diff

    app = run(view, body)
    assert app.requests == [FrameRequested(48)]


def test_next_account_with_a_single_account_keeps_the_marks_and_cursor(
    capture: Callable[[str], Analyzed], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`]` or `[` in a capture with one account (the usual case) showed that account again:
    its A/B marks were dropped and the cursor jumped to the last change. They change
    nothing now, and say why."""
    data = capture("msnp8_demo.pcap")
    assert data.lists.accounts == ["alice@example.com"]
    view = ContactsView(data.lists)
    notes: list[str] = []

    async def body(app: Host, pilot: Pilot[None]) -> None:
        monkeypatch.setattr(app, "notify", lambda message, **_: notes.append(message))
        table = view.query_one("#contacts-timeline", DataTable)
        table.focus()
        await pilot.press("home", "a", "down", "down", "b", "up")
        marks = screen_text(app, view.query_one("#contacts-marks", Static))
        assert "A v12 #18 (marked)" in marks and "B v14 #40 (marked)" in marks
        for key in ("right_square_bracket", "left_square_bracket"):
            await pilot.press(key)
            await pilot.pause()
            assert view.account == "alice@example.com"
            assert screen_text(app, view.query_one("#contacts-marks", Static)) == marks
            assert table.cursor_row == 1
        assert notes == ["alice@example.com is the only account in this capture"] * 2

    run(view, body)


def test_contacts_diff_shows_nicknames_as_the_cli_does(
    capture: Callable[[str], Analyzed],
) -> None:
    """erin@example.com is new at version 15 of the demo's lists: her nickname goes on her +
    line, in the TUI as in `msnsniff contacts --diff 12..15` (it said `None → 'Erin'`)."""
    data = capture("msnp8_demo.pcap")
    view = ContactsView(data.lists)
    cli = render_diff(data.lists.history("alice@example.com").diff(12, 15))
    assert "+ RL erin@example.com 'Erin'" in cli and "nickname of erin" not in cli

    async def body(app: Host, pilot: Pilot[None]) -> None:
        assert view.account == "alice@example.com"
        view.query_one("#contacts-timeline", DataTable).focus()
        await pilot.press("home", "a", "end", "b")
        await pilot.pause()
        diff = screen_text(app, view.query_one("#contacts-diff", Static))
        assert "version 12 → 15" in diff
        assert "+ RL erin@example.com 'Erin'" in diff
        assert "~ nickname of alice@example.com: 'Alice' → 'Alice 🎉'" in diff
        assert "None" not in diff and "nickname of erin" not in diff

    run(view, body)


def test_contacts_timeline_is_as_wide_as_its_changes_up_to_half(
    capture: Callable[[str], Analyzed],
) -> None:
    """On a 160-column screen the demo's longest change is shown whole (the timeline was 58
    columns and cut it at 'Ali'); the timeline takes at most half the width."""
    view = ContactsView(capture("msnp8_demo.pcap").lists)

    async def main() -> None:
        app = Host(view)
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause()
            timeline = view.query_one("#contacts-timeline", DataTable)
            assert "~ nickname of alice@example.com: 'Alice 🎉'" in screen_text(app, timeline)
            assert 58 < timeline.size.width <= 80

    asyncio.run(main())


# -- chat -----------------------------------------------------------------------------------


def test_chat_shows_the_messages_in_order(capture: Callable[[str], Analyzed]) -> None:
    data = capture("server_chat.pcap")
    view = ChatView(data.conversations)
    alice = next(c for c in data.conversations.conversations() if c.flow.id == "63")
    texts = [m.text for m in alice.messages]
    # `msnsniff chat captures/server_chat.pcap`, alice's switchboard
    assert texts == ["hello both", "hi alice", "hey", "anyone there?"]

    async def body(app: Host, pilot: Pilot[None]) -> None:
        olist = view.query_one("#chat-list", OptionList)
        olist.focus()
        for _ in range(olist.option_count):
            selected = view.selected
            if selected is not None and selected.flow.id == "63":
                break
            await pilot.press("down")
        await pilot.pause()
        log = screen_text(app, view.query_one("#chat-log", Static))
        where = [log.index(text) for text in texts]
        assert where == sorted(where)
        assert "alice@example.com is typing" in log
        assert "✗ not delivered" in log[where[-1] :]
        assert "Comic Sans MS" in log and "#ff0000" in log
        await pilot.press("f", "g")

    app = run(view, body)
    assert app.requests == [FilterRequested('flow == "63"'), FrameRequested(alice.first_frame)]
    assert selected_frames('flow == "63"', data.records) == frames_of_flows({"63"}, data.records)


def test_a_gateway_chat_that_moved_to_another_connection_filters_to_both() -> None:
    """A switchboard through the gateway whose session goes on on a second HTTP connection:
    `f` in Chats filtered to the first connection's POSTs only, as the sessions view did."""
    from dissectors.api import Direction
    from msnsniff.capture import Flow, StreamChunk
    from msnsniff.session.workspace import Workspace
    from tests.msnsniff.session.test_tunnels import answer, post

    one = Flow("1", "10.0.0.2:4000", "10.0.0.1:80")
    two = Flow("9", "10.0.0.2:4001", "10.0.0.1:80")
    c2s, s2c = Direction.C2S, Direction.S2C
    text = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhello"
    sent = [(one, c2s, post("Action=open&Server=SB&IP=10.0.0.6", b"USR 1 a@b.c 1.2\r\n")),
            (one, s2c, answer("SessionID=8.1", b"USR 1 OK a@b.c A\r\n")),
            (two, c2s, post("SessionID=8.1", b"CAL 2 b@c.d\r\n")),
            (two, s2c, answer("SessionID=8.2", b"CAL 2 RINGING 117\r\nJOI b@c.d B\r\n")),
            (two, c2s, post("SessionID=8.2", b"MSG 3 N %d\r\n" % len(text) + text)),
            (two, s2c, answer("SessionID=8.3", b""))]
    ws = Workspace()
    offsets: dict[tuple[str, Direction], int] = {}
    for n, (flow, direction, data) in enumerate(sent):
        at = offsets.get((flow.id, direction), 0)
        ws.push(StreamChunk(flow, direction, at, data, 1.0 + n / 10))
        offsets[flow.id, direction] = at + len(data)
    ws.finish()
    view = ChatView(ws.conversations, expand=ws.conversation, carried_by=ws.carried_by)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        view.query_one("#chat-list", OptionList).focus()
        await pilot.pause()
        assert view.selected is not None and view.selected.flow.id == "1/gw1"
        await pilot.press("f")

    app = run(view, body)
    assert app.requests == [FilterRequested('flow in {"1/gw1", "1", "9"}')]


def test_chat_at_80_columns_puts_the_sender_on_the_texts_line(
    capture: Callable[[str], Analyzed],
) -> None:
    """At 80x24 the senders' column (as wide as the longest account) left each line's text
    19 columns: "calls nobody@example.co" / "m: invalid" / "username (208)". In a pane too
    narrow for it, the sender starts the text's line; where there is room, it keeps its
    column."""
    data = capture("server_chat.pcap")

    async def main(width: int) -> list[str]:
        view = ChatView(data.conversations)
        app = Host(view)
        async with app.run_test(size=(width, 40)) as pilot:
            await pilot.pause()
            assert view.selected is not None and view.selected.flow.id == "63"
            log = screen_text(app, view.query_one("#chat-log", Static))
        return [" ".join(line.split()) for line in log.splitlines()]

    narrow = asyncio.run(main(80))
    assert any("nobody@example.com: invalid" in line for line in narrow), narrow
    assert any(line.endswith(" → alice@example.com joined") for line in narrow), narrow
    wide = asyncio.run(main(160))
    assert any(line.endswith(" alice@example.com calls nobody@example.com: invalid username "
                             "(208)") for line in wide), wide  # fmt: skip


def test_a_live_conversation_follows_its_end() -> None:
    """Live (sniff --tui, 40 messages in one switchboard), the chat log kept the place it
    had when the conversation was shown: the messages after the pane's last line came in
    unseen. A log at its end (or that fitted) follows the new messages; another
    conversation starts at its beginning."""
    analysis, data = analyze("server_chat.pcap", stop_after=0)
    view = ChatView(data.conversations)
    events = iter(open_source(CAPTURES / "server_chat.pcap"))

    async def main() -> None:
        app = Host(view)
        async with app.run_test(size=(120, 8)) as pilot:
            for event in events:  # up to alice's switchboard login, before any call
                if any(r.no >= 55 for r in analysis.push(event)):
                    break
            view.refresh_from()
            await pilot.pause()
            scroll = view.query_one("#chat-scroll", KeyScroll)
            assert view.selected is not None and view.selected.flow.id == "63"
            assert scroll.max_scroll_y == 0  # it all fits
            for event in events:
                analysis.push(event)
            analysis.finish()
            view.refresh_from()
            await pilot.pause(0.2)
            assert scroll.max_scroll_y > 0 and scroll.scroll_y == scroll.max_scroll_y
            assert "alice@example.com left" in screen_text(app, view)
            view.query_one("#chat-list", OptionList).focus()
            await pilot.press("right_square_bracket")
            await pilot.pause(0.2)
            assert view.selected is not None and view.selected.flow.id != "63"
            assert scroll.scroll_y == 0

    asyncio.run(main())


def test_chat_formats_and_invitations(capture: Callable[[str], Analyzed]) -> None:
    data = capture("msnp8_demo.pcap")
    view = ChatView(data.conversations)
    (conversation,) = data.conversations.conversations()
    hello = conversation.messages[0]
    assert isinstance(hello, ChatMessage)
    style = message_style(hello)  # MSG X-MMS-IM-Format: FN=Comic Sans MS; EF=B; CO=ff0000
    assert style.color is not None and style.color.name == "#0000ff" and style.bold

    async def body(app: Host, pilot: Pilot[None]) -> None:
        log = " ".join(screen_text(app, view.query_one("#chat-log", Static)).split())
        assert "bob@example.com offers the file holiday.jpg (183,342 bytes)" in log
        assert "Hello Bob! How are you?" in log
        await pilot.press("t")  # fonts hidden
        await pilot.pause()
        assert "Comic Sans MS" not in screen_text(app, view.query_one("#chat-log", Static))

    run(view, body)


# -- stats ----------------------------------------------------------------------------------


def test_bars_are_drawn_to_an_eighth() -> None:
    assert bar(8, 8, 4) == "████"
    assert bar(1, 8, 1) == "▏"
    assert bar(3, 8, 2) == "▊"
    assert bar(0, 8, 4) == "" and bar(1, 0, 4) == ""


def test_a_short_round_trip_is_drawn_in_the_p50_shade() -> None:
    """A round trip far below the scale's longest got its one cell from p99 (`░`), as if
    only its slowest tail showed, while a slightly longer one with the same spread was `█`:
    the first cell belongs to p50, and each shade starts where the one before ends."""
    assert rtt_bar(0.029, 0.029, 0.029, 4.3, 40).plain == "█"
    assert rtt_bar(0.134, 0.134, 0.134, 4.3, 40).plain == "█"
    assert rtt_bar(0.035, 0.168, 0.168, 4.3, 40).plain == "█▓"
    assert rtt_bar(0.01, 0.01, 4.3, 4.3, 40).plain == "█" + "░" * 39
    assert rtt_bar(1.0, 2.0, 4.0, 4.0, 40).plain == "█" * 10 + "▓" * 10 + "░" * 20
    assert rtt_bar(0, 0, 0.001, 4.3, 40).plain == "░"  # same-instant replies, one slow
    assert rtt_bar(0, 0, 0, 4.3, 40).plain == ""


def test_stats_show_the_top_command_and_filter_to_it(
    capture: Callable[[str], Analyzed],
) -> None:
    data = capture("server_chat.pcap")
    view = StatsView(data.stats)
    (direction, _, top), count = data.stats.commands.most_common(1)[0]
    # `msnsniff stats captures/server_chat.pcap`: MSG s2c, 13 frames, is the busiest
    assert (top, direction, count) == ("MSG", "s2c", 13)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        table = view.query_one(f"#stats-{direction}", DataTable)
        first = table.get_row_at(0)
        assert str(first[0]) == "MSG" and str(first[1]) == "13"
        assert str(first[2]) == "█" * 28  # the longest bar
        text = screen_text(app)
        assert "96 frames on 6 connections" in text
        assert "Round-trip time per request command" in text
        table.focus()
        await pilot.press("enter")

    app = run(view, body)
    assert app.requests == [FilterRequested(command_filter("MSG", "s2c"))]
    assert len(selected_frames(command_filter("MSG", "s2c"), data.records)) == 13


def test_stats_ordered_by_name_show_the_same_busiest_commands(
    capture: Callable[[str], Analyzed],
) -> None:
    """`o` (order by name) showed the first twelve commands by name, not the twelve busiest
    by name: MSG, the busiest of server_chat's server table (13 frames), was gone from it.
    The same commands are shown, in the other order."""
    data = capture("server_chat.pcap")
    view = StatsView(data.stats)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        table = view.query_one("#stats-s2c", DataTable)
        by_count = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert by_count[0] == "MSG" and len(by_count) == 12
        table.focus()
        await pilot.press("o")
        await pilot.pause()
        by_name = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert by_name == sorted(by_count)

    run(view, body)


def test_stats_keep_the_command_under_the_cursor_when_ordered_anew(
    capture: Callable[[str], Analyzed],
) -> None:
    """`o` kept the cursor's row number, not its command: on MSG (the third client command
    by count), `o` put it on CHG, and Enter then filtered the stream to CHG. The command
    stays under the cursor, whatever its row now."""
    data = capture("server_chat.pcap")
    view = StatsView(data.stats)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        table = view.query_one("#stats-c2s", DataTable)
        table.focus()
        await pilot.press("down", "down")
        assert str(table.get_row_at(table.cursor_row)[0]) == "MSG"
        await pilot.press("o")
        await pilot.pause()
        assert str(table.get_row_at(table.cursor_row)[0]) == "MSG"
        await pilot.press("enter")

    app = run(view, body)
    assert app.requests == [FilterRequested(command_filter("MSG", "c2s"))]


def test_stats_at_80_columns_keep_their_figures_and_the_bars_their_scale(
    capture: Callable[[str], Analyzed],
) -> None:
    """At 80 columns (a terminal's default) the bars kept the width they have at 120: the
    command tables scrolled sideways with their longest bars cut at the border, so 3 and
    4 frames drew the same bar; the round-trip table cut its figures ("4.2…" for 4.299
    ms), the connections chart its frame counts. The bars take the width left beside the
    figures, each chart on one scale."""
    data = capture("server_list_changes.pcap")
    view = StatsView(data.stats)
    rtt = data.stats.rtt

    async def main() -> None:
        app = Host(view)
        async with app.run_test(size=(80, 90)) as pilot:
            await pilot.pause()
            for direction in ("c2s", "s2c"):
                table = view.query_one(f"#stats-{direction}", DataTable)
                rows = [table.get_row_at(i) for i in range(table.row_count)]
                counts = [int(str(row[1]).replace(",", "")) for row in rows]
                width = len(str(rows[0][2]))  # the busiest command's bar is the longest
                assert 8 <= width <= 28 and table.max_scroll_x == 0, direction
                assert [str(row[2]) for row in rows] == [bar(n, counts[0], width)
                                                         for n in counts]  # fmt: skip
            text = screen_text(app)
            assert "…" not in text
            for cmd, h in rtt.items():
                figures = [_ms(h.percentile(p)) for p in PERCENTILES] + [_ms(h.high)]
                line = next(line for line in text.splitlines() if line.startswith(f" {cmd} "))
                assert line.split()[-4:] == figures, cmd

    asyncio.run(main())


def test_stats_keys_reach_what_is_below_the_command_tables(
    capture: Callable[[str], Analyzed],
) -> None:
    """At 80x24 (12 rows here: the view's share) the keys go to the client's command
    table, and Down, PageDown and End only moved its cursor: past the last command they did
    nothing, so the round trips and the busiest connections below could not be read
    without a mouse (in an HTTP capture, whose tables are empty, no key scrolled at all).
    Past the last command the keys scroll the page on; Up past the first comes back up,
    and the cursor's row stays on screen."""
    data = capture("server_chat.pcap")
    view = StatsView(data.stats)

    async def main() -> None:
        app = Host(view)
        async with app.run_test(size=(80, 12)) as pilot:
            await pilot.pause()
            table = view.query_one("#stats-c2s", DataTable)
            scroll = view.query_one(KeyScroll)
            table.focus()
            await pilot.pause()
            for _ in range(table.row_count - 1):
                await pilot.press("down")
            assert table.cursor_row == table.row_count - 1 and scroll.scroll_y > 0
            assert "XFR" in screen_text(app)  # the last command, on screen
            await pilot.press("pagedown", "pagedown", "pagedown")
            await pilot.pause()
            assert scroll.scroll_y == scroll.max_scroll_y > 0
            assert "Busiest connections" in screen_text(app)
            await pilot.press("home")
            await pilot.pause()
            assert table.cursor_row == 0 and scroll.scroll_y == 0
            await pilot.press("end")
            await pilot.pause()
            assert scroll.scroll_y == scroll.max_scroll_y
            for _ in range(60):
                await pilot.press("up")
            await pilot.pause()
            assert table.cursor_row == 0 and scroll.scroll_y == 0

    asyncio.run(main())


def test_stats_at_40_columns_keep_every_command_and_figure(
    capture: Callable[[str], Analyzed],
) -> None:
    """At 40 columns the two command tables side by side had 16 columns each: the client's
    frame counts were cut off ("command  frame", "USR" with no count), and the round-trip
    table cut every command to "A…", "C…", so no figure could be told to its command. Under
    60 columns the tables are one above the other and the round trips closer together."""
    data = capture("server_chat.pcap")
    view = StatsView(data.stats)

    async def main() -> None:
        app = Host(view)
        async with app.run_test(size=(40, 90)) as pilot:
            await pilot.pause()
            for direction in ("c2s", "s2c"):
                table = view.query_one(f"#stats-{direction}", DataTable)
                assert table.max_scroll_x == 0 and table.size.width >= 36, direction
            text = screen_text(app)
            lines = [" ".join(line.split()) for line in text.splitlines()]
            assert "│ USR 7 " in " ".join(lines) and "│ MSG 13 " in " ".join(lines)
            for cmd, h in data.stats.rtt.items():
                figures = [_ms(h.percentile(p)) for p in PERCENTILES] + [_ms(h.high)]
                line = next((line for line in lines if line.startswith(f"{cmd} ")), cmd)
                assert line.split()[-4:] == figures, line

    asyncio.run(main())


def test_contacts_at_40_columns_show_the_changes_above_the_lists(
    capture: Callable[[str], Analyzed],
) -> None:
    """At 40 columns the timeline (at most half the view, beside the lists) showed frames
    and versions only: its change column had no room at all. Under 60 columns the timeline
    takes the width and the lists go under it."""
    data = capture("server_list_changes.pcap")
    view = ContactsView(data.lists)

    async def main() -> None:
        app = Host(view)
        async with app.run_test(size=(40, 40)) as pilot:
            await pilot.pause()
            view.select_account("alice@example.com")
            await pilot.pause()
            table = view.query_one("#contacts-timeline", DataTable)
            assert table.size.width >= 36
            text = screen_text(app, view)
            assert "+ FL bob@example" in text and "~ GTC N" in text, text
            assert "list version 10" in text  # the lists, under it

    asyncio.run(main())


@pytest.mark.parametrize("width", [38, 100])
def test_the_lists_table_keeps_every_list_s_marks_at_any_width(
    width: int, capture: Callable[[str], Analyzed]
) -> None:
    """At 80 columns the lists have half the pane: the one table of contact, nickname,
    marks and groups was squeezed evenly, its marks' headers cut to "…" and the last
    list's column and the groups' off the edge, so no mark could be told to its list.
    Where the row does not fit, the nickname and the groups now go under the contact."""
    history = capture("msnp8_demo.pcap").lists.history("alice@example.com")
    state = history.state_at_frame(history.timeline()[-1].frame)
    console = Console(width=width, record=True, color_system=None)
    console.print(render_lists(state))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    head = next(line for line in lines if line.startswith("contact ") and "FL" in line)
    assert head.split() == (["contact", "FL", "AL", "BL", "RL"] if width < 80 else
                            ["contact", "nickname", "FL", "AL", "BL", "RL", "groups"])
    assert all(len(line) <= width for line in lines)
    carol = next(i for i, line in enumerate(lines) if line.startswith("carol@example.com"))
    if width < 80:
        assert lines[carol].split() == ["carol@example.com", "●", "·", "●", "●"]
        assert lines[carol + 1].strip() == "Carol ★"
        assert lines[carol + 2].strip() == "Other Contacts"
    else:
        assert lines[carol].split() == ["carol@example.com", "Carol", "★", "●", "·", "●",
                                         "●", "Other", "Contacts"]  # fmt: skip


def test_the_timeline_names_one_list_an_lst_sent_whole() -> None:
    """An MSNP2-7 `LST trid RL` replaces the one list: its row says so, not a PRP change."""
    change = ListChange("a@b.c", "t#1", 8, "list_sync", 3, 3, list="RL", request=7)
    assert describe_change(change).plain == "LST: the RL sent whole"
    groups = ListChange("a@b.c", "t#1", 8, "groups_sync", 3, 3, request=7)
    assert describe_change(groups).plain == "LSG: the groups sent whole"


def test_empty_captures_say_so() -> None:
    _, data = analyze("server_chat.pcap", stop_after=0)
    views = (SessionsView(data.links), ContactsView(data.lists), ChatView(data.conversations),
             StatsView(data.stats))  # fmt: skip

    async def body(app: Host, pilot: Pilot[None]) -> None:
        said = [screen_text(app, view) for view in views]
        assert "no logins in this capture" in said[0]
        assert "no contact-list traffic in this capture" in said[1]
        assert "no conversations in this capture" in said[2]
        assert "no MSNP frames in this capture" in said[3]

    run(Vertical(*views), body)


# -- live ---------------------------------------------------------------------------------


def test_views_follow_a_live_capture() -> None:
    analysis, data = analyze("msnp8_demo.pcap", stop_after=0)
    contacts, chat, stats = (ContactsView(data.lists), ChatView(data.conversations),
                             StatsView(data.stats))  # fmt: skip
    events = iter(open_source(CAPTURES / "msnp8_demo.pcap"))

    def refresh() -> None:
        for view in (contacts, chat, stats):
            view.refresh_from()

    def push_until(frame: int) -> None:
        """Feed the capture up to (and including) frame number `frame`."""
        for event in events:
            if any(r.no >= frame for r in analysis.push(event)):
                return

    async def body(app: Host, pilot: Pilot[None]) -> None:
        push_until(45)  # before erin adds alice (frame 49) and before any switchboard
        refresh()
        await pilot.pause()
        timeline = contacts.query_one("#contacts-timeline", DataTable)
        assert timeline.row_count == 3  # SYN, ADD AL dave, REA
        assert contacts.selected_change is not None and contacts.selected_change.frame == 40
        assert "no conversations in this capture" in screen_text(app, chat)
        frames = sum(f.frames for f in data.stats.flows.values())
        assert frames >= 45 and f"{frames} frames on 2 connections" in screen_text(app, stats)
        push_until(57)  # alice is typing in the switchboard, nothing said yet
        refresh()
        await pilot.pause()
        assert timeline.row_count == 4  # the cursor was on the last row: it follows
        assert contacts.selected_change is not None and contacts.selected_change.frame == 49
        log = screen_text(app, chat.query_one("#chat-log", Static))
        assert "is typing" in log and "Hello Bob!" not in log
        for event in events:
            analysis.push(event)
        analysis.finish()
        refresh()
        refresh()  # nothing new: nothing to do
        await pilot.pause()
        log = screen_text(app, chat.query_one("#chat-log", Static))
        assert "Hello Bob!" in log and "Fine, thanks." in log
        assert "63 frames on 3 connections" in screen_text(app, stats)

    run(Vertical(contacts, chat, stats), body)


# -- snapshots ------------------------------------------------------------------------------


def test_snapshot_sessions(snap_compare: SnapCompare, capture: Callable[[str], Analyzed]) -> None:
    app = Host(SessionsView(capture("server_chat.pcap").links))
    assert snap_compare(app, terminal_size=SIZE, press=["down", "down"])


def test_snapshot_contacts(snap_compare: SnapCompare, capture: Callable[[str], Analyzed]) -> None:
    app = Host(ContactsView(capture("msnp8_demo.pcap").lists))
    assert snap_compare(app, terminal_size=SIZE, press=["up", "a", "end"])


def test_snapshot_chat(snap_compare: SnapCompare, capture: Callable[[str], Analyzed]) -> None:
    app = Host(ChatView(capture("msnp8_demo.pcap").conversations))
    assert snap_compare(app, terminal_size=SIZE)


def test_snapshot_stats(snap_compare: SnapCompare, capture: Callable[[str], Analyzed]) -> None:
    app = Host(StatsView(capture("server_chat.pcap").stats))
    assert snap_compare(app, terminal_size=SIZE)


def test_an_account_without_list_traffic_yet_shows_no_other_accounts_lists() -> None:
    """A login with no SYN yet (live, between USR OK and SYN; or a client that never syncs,
    like `msnsniff send`) is an account with an empty timeline: selecting it left the
    previous account's lists and A/B marks on screen, as if they were its own. It says it
    has none; its SYN, once it comes, shows its lists."""
    analysis, data = analyze("server_chat.pcap", stop_after=0)
    view = ContactsView(data.lists)
    events = iter(open_source(CAPTURES / "server_chat.pcap"))

    async def body(app: Host, pilot: Pilot[None]) -> None:
        for event in events:  # up to bob's login, before his SYN
            analysis.push(event)
            if len(data.lists.accounts) == 2:
                break
        bob = data.lists.accounts[1]
        assert bob == "bob@example.com" and not data.lists.history(bob).timeline()
        view.refresh_from()
        await pilot.pause()
        assert "alice@example.com  list version" in screen_text(app, view)
        view.select_account(bob)
        await pilot.pause()
        text = screen_text(app, view)
        assert "alice@example.com" not in text and "v0 #" not in text
        assert "bob@example.com  no SYN or list change seen for this account" in text
        for event in events:
            analysis.push(event)
        analysis.finish()
        view.refresh_from()
        await pilot.pause()
        assert "bob@example.com  list version" in screen_text(app, view)

    run(view, body)


def test_stats_of_an_http_capture_do_not_say_no_request_was_answered() -> None:
    """captures/http_xmlrpc.pcap: 15 POSTs, each answered 200. The command tables and the
    round trips count MSNP commands only, and said '0 frames' under 'client → server' and
    'no request was answered'. They say MSNP."""
    _, data = analyze("http_xmlrpc.pcap")
    view = StatsView(data.stats)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        text = screen_text(app, view)
        assert "30 frames on 1 connection" in text
        assert "no request was answered" not in text
        assert "Round-trip times: no MSNP request was answered" in text
        assert text.count("0 MSNP frames") == 2

    run(view, body)


def test_stats_of_a_capture_joined_mid_line_count_the_partial_frame_apart(
    tmp_path: Path,
) -> None:
    """A capture without the connection's SYN starts with the tail of a line, then real
    garbage: `msnsniff stats` says '1 malformed, 0 gaps, 1 partial'; the view said '1
    malformed   0 gaps' and nothing of the partial frame, which the analyzer counts apart."""
    from msnsniff.capture.write import PcapWriter, TcpConversation

    src = tmp_path / "late.pcap"
    with src.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 1863))
        conv.joined()  # no SYN in the capture: it joined the connection under way
        conv.send(1.1, False, b"lice@example.com 1\r\nNLN NLN bob@x.com Bob 0\r\n")
        conv.send(1.2, False, b"garbage\r\nQNG\r\n")
    analysis = Analysis(CaptureSession(load_dissectors()), keep_findings=False)
    stats = Stats.attach(analysis)
    list(analysis.run(open_source(src)))
    assert (stats.malformed, stats.gaps, stats.partial) == (1, 0, 1)
    view = StatsView(stats)

    async def body(app: Host, pilot: Pilot[None]) -> None:
        text = screen_text(app, view)
        assert ("4 frames on 1 connection   1 malformed   0 gaps   1 partial (joined mid-way)"
                in text)  # fmt: skip

    run(view, body)
