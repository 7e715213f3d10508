"""The TUI's main screen driven with Textual's Pilot over the bundled captures: loading,
selection and detail, jumping between request and reply, walking unanswered requests,
filters (and a bad one), folding keep-alives, search, bookmarks, help, tabs, live append."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import pytest
from textual import events
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static, TabbedContent, Tree

from dissectors.api import Direction, Frame
from dissectors.msnp.frames import CommandFrame, GapFrame
from msnsniff.capture import Flow, FlowEnd, SourceNote, StreamChunk
from msnsniff.capture.live import Backlog
from msnsniff.capture.sources import open_source
from msnsniff.session.describe import describe as describe_frame
from msnsniff.session.workspace import Workspace
from msnsniff.tui.app import SEARCH_PAUSE, UI_FIRST, MsnsniffApp
from msnsniff.tui.screens.help import HelpScreen
from msnsniff.tui.widgets.chat import ChatList, ChatView
from msnsniff.tui.widgets.contacts import ContactsView
from msnsniff.tui.widgets.detail import DetailView
from msnsniff.tui.widgets.stats import StatsView
from msnsniff.tui.widgets.stream import StreamView
from tests.helpers import read_frames
from tests.msnsniff.tui.test_side_views import screen_text

CAPTURES = Path(__file__).resolve().parents[3] / "captures"
SIZE = (120, 40)


def app_for(name: str) -> MsnsniffApp:
    return MsnsniffApp(Workspace(), source=CAPTURES / f"{name}.pcap")


def error_numbers(name: str) -> list[int]:
    """The frame numbers of a bundled capture's error replies (what `msnp.error` shows)."""
    return [n for n, f in enumerate(read_frames(CAPTURES / f"{name}.pcap"), 1)
            if isinstance(f, CommandFrame) and f.cmd.isdigit()]  # fmt: skip


async def loaded(app: MsnsniffApp, pilot: Pilot[int]) -> StreamView:
    for _ in range(1000):  # up to 20 s on a loaded machine; a few tenths usually
        if app.workspace.done:
            break
        await asyncio.sleep(0.02)
    await pilot.pause(0.3)
    return app.query_one(StreamView)


async def scanned(app: MsnsniffApp, pilot: Pilot[int]) -> None:
    """Wait until the filter pass has looked at every frame (a worker thread; slow on a
    loaded machine)."""
    for _ in range(1000):
        if not app.scanning and app.scanned >= app.workspace.index.count:
            break
        await asyncio.sleep(0.02)
    await pilot.pause(0.1)


def recorded_notes(app: MsnsniffApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The messages `app.notify` shows from now on, in order."""
    notes: list[str] = []
    notify = app.notify

    def note(message: str, **kwargs: Any) -> None:
        notes.append(message)
        notify(message, **kwargs)

    monkeypatch.setattr(app, "notify", note)
    return notes


async def searched(app: MsnsniffApp, pilot: Pilot[int]) -> None:
    """Wait for the typing pause, then until the search worker has finished."""
    await asyncio.sleep(SEARCH_PAUSE + 0.1)
    for _ in range(1000):
        if not app.searching:
            break
        await asyncio.sleep(0.02)
    await pilot.pause(0.1)


KEY_NAMES: Final = {"/": "slash", " ": "space", '"': "quotation_mark", "=": "equals_sign",
                    ".": "full_stop"}  # fmt: skip


def post_keys(app: MsnsniffApp, *typed: str) -> None:
    """Keys posted at once, as one terminal read gives them (`pilot.press` waits for each):
    a key by its name, with its character when it is one."""
    for key in typed:
        app.post_message(events.Key(KEY_NAMES.get(key, key), key if len(key) == 1 else None))


async def until(pilot: Pilot[int], done: Callable[[], bool], seconds: float = 20.0) -> None:
    """Wait until `done()` holds (a few tenths usually; longer on a loaded machine, where a
    fixed pause ended some of the fast-typing tests before the keys had acted), or give up
    after `seconds` and let the test's own assertions say what did not happen."""
    for _ in range(int(seconds / 0.05)):
        if done():
            break
        await pilot.pause(0.05)
    await pilot.pause(0.1)


def _selects(stream: StreamView, number: int) -> bool:
    """Whether the stream has frame `number` selected (for `until`)."""
    return stream.selected == number


async def settled(app: MsnsniffApp, pilot: Pilot[int]) -> None:
    """Wait until the keys posted have acted and every frame has been looked at."""
    await pilot.pause(0.2)
    await scanned(app, pilot)
    await pilot.pause(0.2)


def test_loading_selection_detail_and_pairs() -> None:
    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            total = len(read_frames(CAPTURES / "server_list_changes.pcap"))
            assert stream.row_count == total == app.workspace.index.count
            assert str(total) in str(app.query_one("#status").render())
            assert stream.selected == 1
            await pilot.press("down", "down")
            assert stream.selected == 3
            assert app.query_one(DetailView).number == 3
            # the first error reply: 'p' goes to its request, 'p' again to the reply
            first_error = next(n for n in app.workspace.index.numbers()
                               if app.workspace.index.is_problem(n))
            stream.select_frame(first_error)
            await pilot.press("p")
            request = app.workspace.index.request_of(first_error)
            assert request is not None and stream.selected == request
            await pilot.press("p")
            assert stream.selected == first_error
            await pilot.press("end")
            assert stream.selected == total

    asyncio.run(main())


def test_p_walks_every_reply_of_a_request_then_returns_to_it() -> None:
    """The demo's SYN (#17) has ten replies: `p` visits each in turn, then the request; from
    a reply reached with the arrows, `p` goes to its request."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            pairing = app.workspace.index.pairing(17)
            assert pairing is not None and pairing.replies == tuple(range(18, 28))
            stream.select_frame(17)
            visited = []
            for _ in range(12):
                await pilot.press("p")
                visited.append(stream.selected)
            assert visited == [*range(18, 28), 17, 18]
            await pilot.press("p", "down")  # on #20 by an arrow: the walk is over
            assert stream.selected == 20
            await pilot.press("p")
            assert stream.selected == 17

    asyncio.run(main())


def test_a_jump_from_chat_or_contacts_clears_a_filter_that_hides_the_frame() -> None:
    """Chat's `g` and Contacts' Enter with a filter hiding their frame: the filter is
    cleared and, once the rows are back, that frame is selected and shown in the detail
    (with the fold on, after the fold's pass)."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            detail = app.query_one(DetailView)
            await pilot.press("f", *'flow == "13"', "enter")
            await scanned(app, pilot)
            assert stream.rows is not None and 52 not in stream.rows
            await pilot.press("4")
            chat = app.query_one(ChatView).selected
            assert chat is not None and chat.first_frame == 52
            await pilot.press("g")
            await pilot.pause(0.2)
            assert stream.rows is None and app.filter_text == ""
            assert stream.selected == detail.number == 52
            # Contacts, the fold on: the rows come back from a worker's pass
            await pilot.press("z", "f", *'flow == "52"', "enter")
            await scanned(app, pilot)
            await pilot.press("3", "end")
            change = app.query_one(ContactsView).selected_change
            assert change is not None and change.frame < 52
            await pilot.press("enter")
            await scanned(app, pilot)
            assert stream.rows is not None and change.frame in stream.rows
            assert app.filter_text == "" and app.fold_noise
            assert stream.selected == detail.number == change.frame

    asyncio.run(main())


def tree_labels(tree: Tree[None]) -> list[str]:
    """Every node's label of a tree, expanded or not."""
    out: list[str] = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        out.append(str(node.label))
        stack.extend(node.children)
    return out


def test_the_fields_tree_writes_values_as_words() -> None:
    """Short lists on one line as words, long items a line each, nothing as (none): not
    Python's ['MSNP8', 'CVR0'] and None."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            stream.select_frame(1)  # VER 1 MSNP8 CVR0
            await pilot.pause(0.2)
            labels = tree_labels(app.query_one("#fields", Tree))
            assert "versions: MSNP8, CVR0" in labels
            assert not [label for label in labels if "['" in label or ": None" in label]

    asyncio.run(main())


def test_a_payload_without_mime_headers_is_named_as_read_names_it() -> None:
    """QRY's payload has no MIME headers: the detail said "no content type" where `read`'s
    line says "challenge answer"; both now name it the same way."""
    from msnsniff.output import record_to_text

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            stream.select_frame(42)  # QRY 15 msmsgs@msnmsgr.com 32
            await pilot.pause(0.2)
            labels = tree_labels(app.query_one("#fields", Tree))
            assert "payload: 32 bytes, challenge answer" in labels
            line = record_to_text(app.workspace.index.record(42))
            assert "[32 bytes, challenge answer]" in line

    asyncio.run(main())


def test_the_decoded_payload_is_a_branch_of_fields_not_a_python_dict() -> None:
    """A payload's decoded fields (the profile's LoginTime, MSPAuth, ...) are a branch with a
    leaf each, as the MSNP fields are: they were one leaf, `decoded: {'LoginTime': ...`, the
    mapping as Python writes it, cut at the pane's edge."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            stream.select_frame(15)  # MSG Hotmail Hotmail ... text/x-msmsgsprofile
            await pilot.pause(0.2)
            labels = tree_labels(app.query_one("#fields", Tree))
            assert "decoded" in labels
            assert "PreferredEmail: alice@example.com" in labels
            assert not [label for label in labels if "{'" in label]

    asyncio.run(main())


def test_E_walks_the_errors_and_findings_backwards(monkeypatch: pytest.MonkeyPatch) -> None:
    """`e` walks to the next error, malformed frame or finding; `E` did nothing, where `U`
    and `N` go back through the unanswered requests and the search. It goes back."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        notes = recorded_notes(app, monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            index = app.workspace.index
            marked = [n for n in range(1, index.count + 1)
                      if index.is_problem(n) or n in index.findings]  # fmt: skip
            assert len(marked) >= 3
            await pilot.press("G")
            walked = []
            for _ in marked:
                await pilot.press("E")
                walked.append(stream.selected)
            assert walked == marked[::-1]
            await pilot.press("E")
            assert stream.selected == marked[0]
            assert notes[-1] == f"no error or finding before frame {marked[0]}"

    asyncio.run(main())


def test_a_filter_wider_than_the_status_line_is_cut_short_and_the_rest_still_shows() -> None:
    """At 80 columns a long filter filled the one-line status line and what came after it
    (the fold, following, the search, a damaged file's damage) was wrapped off it, with no
    sign: the filter (in the bar above too) is cut short with "…", the rest is shown."""

    async def main() -> None:
        app = app_for("server_chat")
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(app, pilot)
            wide = " or ".join(f'msnp.cmd == "{c}"' for c in ("MSG", "USR", "CAL", "JOI"))
            app.apply_filter(wide)
            await scanned(app, pilot)
            await pilot.press("z")
            await scanned(app, pilot)
            await pilot.pause(0.5)  # a tick: the status line is drawn again
            status = app.query_one("#status", Static)
            line = screen_text(app, status)
            assert "\n" not in line
            assert line.startswith("96 frames  |  ") and "shown  |  filter: msnp.cmd" in line
            assert line.endswith("…  |  PNG/QNG folded"), line
            assert len(line) <= 80

    asyncio.run(main())


def test_a_damage_note_wider_than_the_status_line_ends_in_an_ellipsis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A truncated file's damage, at 80 columns, was cut after "... 63 bytes announced, 43"
    as if that were all of it (the record and offset, and that more was said, lost): the
    status line ends in "…" where it is cut (the whole is said again on quitting)."""
    monkeypatch.chdir(tmp_path)  # the note starts with the path given: a short one here
    damaged = Path("cut.pcap")
    damaged.write_bytes((CAPTURES / "server_chat.pcap").read_bytes()[:5000])

    async def main() -> None:
        app = MsnsniffApp(Workspace(), source=damaged)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(app, pilot)
            await pilot.pause(0.5)  # a tick: the status line is drawn again
            line = screen_text(app, app.query_one("#status", Static))
            assert line.startswith("27 frames  |  ") and "truncated record" in line, line
            assert line.endswith("…") and len(line) <= 80, line

    asyncio.run(main())


def test_brackets_in_a_filter_or_a_search_are_text_not_markup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MSN Plus! colour codes are brackets: `msnp.nick contains "[/c]"` ended the app with
    a MarkupError (the status line read the filter as markup), "[b]" and "[red]" vanished
    from it, and a search for "[/c]" ended the app when it said nothing matched."""

    async def main() -> None:
        app = app_for("server_chat")
        notes = recorded_notes(app, monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            app.apply_filter('msnp.nick contains "[/c]" or msnp.cmd == "[b]"')
            await scanned(app, pilot)
            await pilot.pause(0.5)  # a tick: the status line is drawn again
            status = str(app.query_one("#status", Static).render())
            assert 'filter: msnp.nick contains "[/c]" or msnp.cmd == "[b]"' in status
            await pilot.press("slash", *"[/c]", "enter")
            await searched(app, pilot)
            await pilot.pause(0.3)
            assert notes == ["no later frame matches '[/c]'"]
            assert app.is_running

    asyncio.run(main())


def test_x_hides_the_hex_dump_from_the_stream_too() -> None:
    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            stream.select_frame(4)
            await pilot.pause(0.1)
            hexes = app.query_one("#hex-scroll")
            assert app.focused is stream and hexes.display
            await pilot.press("x")
            await pilot.pause(0.1)
            assert not hexes.display and app.focused is stream
            await pilot.press("x")
            await pilot.pause(0.1)
            assert hexes.display

    asyncio.run(main())


def test_at_80_columns_the_fields_tree_has_half_the_width() -> None:
    """At 80x24 the hex dump is 8 bytes a line beside a tree with half the width (it had 2
    columns); `x` hides the dump and the tree takes the whole width."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=(80, 24)) as pilot:
            stream = await loaded(app, pilot)
            stream.select_frame(4)  # CVR 2 5.0.0540 5.0.0540 1.0.0863 http://download...
            await pilot.pause(0.2)
            detail = app.query_one(DetailView)
            tree, hexes = app.query_one("#fields"), app.query_one("#hex-scroll")
            assert detail.size.width == 80 and tree.size.width >= 38
            assert "line: CVR 2 5.0.0540" in screen_text(app, tree)
            dump = screen_text(app, hexes)
            assert "0008  30 2e 30 35 34 30 20 35  0.0540 5" in dump  # whole lines
            tree.focus()
            await pilot.press("x")
            await pilot.pause(0.1)
            assert tree.size.width == 80 and not hexes.display
            assert "http://download.example.com/msn.exe" in screen_text(app, tree)
            await pilot.press("x")
            await pilot.pause(0.1)
            assert hexes.display and 38 <= tree.size.width < 80

    asyncio.run(main())


def test_at_40_columns_the_detail_shows_the_tree_or_with_x_the_dump() -> None:
    """At 40x12 the narrow dump (41 columns) took the whole pane and left the fields tree
    none: no field of any frame could be read. Below 80 columns the pane shows one of the
    two: the tree, and `x` the dump in its place (the keys with it), then the tree again."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=(40, 12)) as pilot:
            stream = await loaded(app, pilot)
            stream.select_frame(4)  # CVR 2 5.0.0540 5.0.0540 1.0.0863 http://download...
            await pilot.pause(0.2)
            tree, hexes = app.query_one("#fields"), app.query_one("#hex-scroll")
            assert tree.size.width == 40 and not hexes.display
            assert "Frame 4" in screen_text(app, tree)
            tree.focus()
            await pilot.press("x")
            await pilot.pause(0.1)
            assert not tree.display and hexes.display and hexes.size.width == 40
            assert "0000  43 56 52 20 32 20 35 2e  CVR 2 5." in screen_text(app, hexes)
            assert app.focused is hexes  # the hidden tree does not keep the keys
            await pilot.press("x")
            await pilot.pause(0.1)
            assert tree.display and not hexes.display and tree.size.width == 40
            assert app.focused is tree

    asyncio.run(main())


@pytest.mark.parametrize("size", [(40, 12), (80, 24)])
def test_the_contacts_account_picker_leaves_the_timeline_room(size: tuple[int, int]) -> None:
    """At 40x12 the bordered account picker wrapped the account over two lines and the A/B
    marks wrapped beside it: the bar took four lines and pushed the timeline off. Under 60
    columns the picker has no border and the marks are short: one line. At 80x24 the
    picker keeps its border, the marks their words."""

    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=size) as pilot:
            await loaded(app, pilot)
            await pilot.press("3")
            await pilot.pause(0.2)
            view = app.query_one(ContactsView)
            bar = view.query_one("#contacts-bar")
            timeline = view.query_one("#contacts-timeline", DataTable)
            text = screen_text(app, view)
            assert view.account == "bob@example.com"
            if size[0] < 60:
                assert bar.size.height == 1, text
                assert text.splitlines()[0].startswith("bob@example.com"), text
                assert "A v0 #12 B v2 #81" in text, text
            else:
                assert bar.size.height == 3, text
                assert "A v0 #12 (first)" in text and "B v2 #81 (cursor)" in text, text
            # the timeline's header and at least one change are on screen, within the view
            assert timeline.region.height >= 2 and timeline.region.bottom <= view.region.bottom
            assert "frame  version  change" in text, text
            assert "SYN: the lists" in text or "RL alice@" in text, text

    asyncio.run(main())


def test_a_narrow_stream_leaves_the_time_out_for_the_description() -> None:
    """At 40 columns the number, time, flow and marks took 34 and left each frame's
    description 6 ("VER 1 "): under 60 the time column is left out; from 60 on it is there."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=(40, 12)) as pilot:
            stream = await loaded(app, pilot)
            first = screen_text(app, stream).splitlines()[0]
            # (the last column of the 38 left beside the scrollbar is the "…" of a cut row)
            assert "VER 1 MSNP8 CVR…" in first and "0.000000" not in first, first
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.2)
            first = screen_text(app, stream).splitlines()[0]
            assert "0.000000" in first and "VER 1 MSNP8 CVR0" in first, first

    asyncio.run(main())


def test_a_transcripts_long_flow_id_keeps_its_name_and_number(tmp_path: Path) -> None:
    """A transcript's flows are NAME#N: the stream's 8-column flow column showed their last
    eight characters, `me.txt#1` for `a_long_transcript_name.txt#1`, a name no filter, no
    Sessions node and no detail pane uses. It shows the name's start and the number."""
    transcript = tmp_path / "a_long_transcript_name.txt"
    transcript.write_text("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\n")

    async def main() -> None:
        app = MsnsniffApp(Workspace(), source=transcript)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            first = screen_text(app, stream).splitlines()[0]
            assert " a_lon…#1 → " in first, first

    asyncio.run(main())


def test_search_waits_for_typing_runs_in_a_worker_and_says_no_match_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Typing `zzq` searches once, after the pause, describing the rows in a worker thread
    (the UI thread froze for 1.5 s a key on 66,814 frames), and says 'no match' once (it
    said so at every key); Enter searches at once, again the next match, `N` backwards."""
    threads: set[threading.Thread] = set()

    def describe(frame: Frame) -> str:
        threads.add(threading.current_thread())
        return describe_frame(frame)

    monkeypatch.setattr("msnsniff.tui.app.describe", describe)

    async def main() -> None:
        app = app_for("msnp8_demo")
        notes = recorded_notes(app, monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            await pilot.press("slash", *"zzq")
            await searched(app, pilot)
            assert threads and threading.main_thread() not in threads
            assert notes == ["no later frame matches 'zzq'"]
            await pilot.press(*["backspace"] * 3, *"LST", "enter")
            await searched(app, pilot)
            assert stream.selected == 24
            await pilot.press("enter")
            await searched(app, pilot)
            assert stream.selected == 26
            await pilot.press("escape", "N")
            await searched(app, pilot)
            assert stream.selected == 24
            assert notes == ["no later frame matches 'zzq'"]

    asyncio.run(main())


def test_enter_in_the_stats_tab_filters_at_once() -> None:
    """`5` puts the keys in the client → server table (they went to the scroll container,
    where Enter, 'Filter to command' in the footer, did nothing until Tab)."""

    async def main() -> None:
        app = app_for("server_chat")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            await pilot.press("5")
            stats = app.query_one(StatsView)
            assert app.focused is app.query_one("#stats-c2s")
            cmd = stats.command_rows("c2s")[0][0]
            await pilot.press("enter")
            await scanned(app, pilot)
            assert app.query_one("#tabs", TabbedContent).active == "stream"
            assert cmd in app.filter_text and stream.rows
            for number in stream.rows:
                frame = app.workspace.index.frame(number)
                assert isinstance(frame, CommandFrame) and frame.cmd == cmd

    asyncio.run(main())


def test_help_shows_the_bracket_keys_as_brackets() -> None:
    """Contacts' and Chat's `[` and `]` read as `[` and `]` in the help (they read
    left_square_bracket and right_square_bracket)."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=(120, 100)) as pilot:
            await loaded(app, pilot)
            await pilot.press("question_mark")
            await pilot.pause(0.2)
            lines = [" ".join(line.split()) for line in screen_text(app).splitlines()]
            for line in ("[ Previous account", "] Next account", "[ Previous conversation",
                         "] Next conversation"):  # fmt: skip
                assert any(line in shown for shown in lines), line
            assert "square_bracket" not in screen_text(app)
            # the footer's ^p palette is a key of the help's too
            assert any("ctrl+p Command palette" in shown for shown in lines)

    asyncio.run(main())


def test_the_help_fits_an_80_column_terminal() -> None:
    """At 80x24 the help's box (90 columns) ran off the screen: its right edge and scrollbar
    were not shown and the mouse line lost the word at its end ("click a" / "tree node")."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(app, pilot)
            await pilot.press("question_mark", "end")
            await pilot.pause(0.3)
            body = app.screen.query_one("#help-body")
            assert body.region.x >= 0 and body.region.right <= 80
            shown = " ".join(screen_text(app, body).replace("█", " ").split())
            assert "click a tree node to select it" in shown, shown

    asyncio.run(main())


def test_n_before_any_search_says_so_and_keeps_the_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`n` with no search yet says so; the keys after it still move the stream (it opened
    the search box, which took them)."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        notes = recorded_notes(app, monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            await pilot.press("n", "j", "j", "N")
            assert notes == ["no search yet: / searches"] * 2
            assert stream.selected == 3 and app.focused is stream
            assert not app.query_one("#search").has_class("-shown")

    asyncio.run(main())


def test_n_in_a_side_view_shows_the_match_in_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`n` / `N` ("Everywhere" in the help) pressed in Sessions, Contacts, Chat or Stats
    moved the hidden stream's cursor: nothing changed on screen, and the stream was found
    elsewhere on coming back. They show the stream, with the keys in it, and select the
    match there, as `/` and `f` open the stream; with no search yet they only say so."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        notes = recorded_notes(app, monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            tabs = app.query_one("#tabs", TabbedContent)
            await pilot.press("2", "n")
            assert notes == ["no search yet: / searches"] and tabs.active == "sessions"
            await pilot.press("1", "slash", *"BYE", "enter", "escape")
            await searched(app, pilot)
            assert stream.selected == 62
            for tab, start, key in (("2", "home", "n"), ("3", "end", "N"), ("4", "home", "n"),
                                    ("5", "end", "N")):  # fmt: skip
                await pilot.press("1", start, tab)
                assert stream.selected != 62 and tabs.active != "stream"
                await pilot.press(key)
                await searched(app, pilot)
                assert tabs.active == "stream" and stream.has_focus, (tab, key)
                assert stream.selected == 62, (tab, key)

    asyncio.run(main())


def test_keys_typed_fast_after_slash_or_f_go_to_the_box_it_opens() -> None:
    """A fast typist (or `tmux send-keys '/zzq'`): every key is queued before the first is
    handled. They belonged to the search box, but went to the stream: `z` folded it and
    `q` quit. In a box, `/` and `f` are text."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            post_keys(app, *"/zzq")
            await pilot.pause(0.2)
            assert app.is_running and not app.fold_noise
            assert app.query_one("#search", Input).value == "zzq"
            await pilot.press("escape")
            post_keys(app, *'f/msnp.cmd == "ADD"')
            await pilot.pause(0.2)
            assert app.query_one("#filter-input", Input).value == '/msnp.cmd == "ADD"'
            await pilot.press("escape", "slash", "f")  # the old text is selected: replaced
            assert app.query_one("#search", Input).value == "f"
            assert app.focused is app.query_one("#search", Input)
            await pilot.press("q")  # text too: quitting takes Escape first
            assert app.is_running

    asyncio.run(main())


def test_a_starting_filter_given_with_y_is_applied() -> None:
    """`tui -Y F FILE` (and `proxy --tui -Y F`) open with F in the bar, applied: `-Y` used
    to be refused by `tui` and ignored by `proxy --tui`."""
    async def main() -> None:
        app = MsnsniffApp(Workspace(), source=CAPTURES / "server_list_changes.pcap",
                          display="msnp.error")  # fmt: skip
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            await scanned(app, pilot)
            errors = error_numbers("server_list_changes")
            assert errors and stream.rows is not None and list(stream.rows) == errors
            assert app.query_one("#filter-input", Input).value == "msnp.error"

    asyncio.run(main())


def test_filter_bad_filter_fold_and_unanswered() -> None:
    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            errors = error_numbers("server_list_changes")
            await pilot.press("f")
            await pilot.press(*"msnp.error", "enter")
            await scanned(app, pilot)
            assert stream.rows is not None and list(stream.rows) == errors
            await pilot.press("f")
            app.query_one("#filter-input", Input).value = ""
            await pilot.press(*"msnp.cmd ==", "enter")
            await pilot.pause(0.2)
            error = screen_text(app, app.query_one("#filter-error", Static))
            assert "^" in error  # the caret under the column
            assert stream.rows is not None and list(stream.rows) == errors  # unchanged
            app.apply_filter("")
            await pilot.pause(0.2)
            assert stream.rows is None
            # the unanswered ADD 99 RL (the server closed instead of answering)
            stream.select_frame(1)
            await pilot.press("u")
            frame = app.workspace.index.frame(stream.selected or 0)
            assert isinstance(frame, CommandFrame) and frame.line.startswith(b"ADD 99 RL")

    asyncio.run(main())


def test_up_and_down_in_the_filter_bar_recall_the_filters_applied() -> None:
    """Up in the filter bar brings back the filters applied before (the last first, each
    once), Down the later ones and, past the last, the text that was being typed, as a
    shell's history and Wireshark's recent filters: Up did nothing, and a filter used an
    hour ago had to be typed again."""

    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            box = app.query_one("#filter-input", Input)
            await pilot.press("f", *"msnp.error", "enter")
            await scanned(app, pilot)
            await pilot.press("f", "ctrl+u", *"flow == 1", "enter")
            await scanned(app, pilot)
            await pilot.press("f", "ctrl+u", *"msnp.error", "enter")  # again: once, last
            await scanned(app, pilot)
            await pilot.press("f", "ctrl+u", *"msnp.cm")
            await pilot.press("up")
            assert box.value == "msnp.error"
            await pilot.press("up")
            assert box.value == "flow == 1"
            await pilot.press("up")  # the oldest: it stays
            assert box.value == "flow == 1"
            await pilot.press("down")
            assert box.value == "msnp.error"
            await pilot.press("down")  # past the last: what was being typed
            assert box.value == "msnp.cm"
            await pilot.press("up", "up", "enter")
            await scanned(app, pilot)
            assert app.filter_text == "flow == 1"
            assert stream.rows is not None and len(stream.rows) > 0

    asyncio.run(main())


def test_the_empty_filter_bars_hint_is_whole_at_80_columns() -> None:
    """At 80 columns the empty bar's hint stopped at "(Enter applies," with no sign that
    "empty clears)" followed; it fits now, and names the history Up brings back."""

    async def main() -> None:
        app = app_for("server_chat")
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(app, pilot)
            hint = screen_text(app, app.query_one("#filter-input", Input)).strip()
            assert hint.endswith("(Enter applies, empty clears, ↑ earlier ones)"), hint
            assert hint.startswith("filter, e.g. msnp.error == 216"), hint

    asyncio.run(main())


def test_escape_from_the_filter_bar_shows_the_filter_in_force() -> None:
    """A mistake (or an edit not applied) typed in the bar and left with Escape: the bar
    shows the filter that is applied again, the error goes, and the rows are unchanged."""

    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            errors = error_numbers("server_list_changes")
            box = app.query_one("#filter-input", Input)
            error = app.query_one("#filter-error", Static)
            await pilot.press("f", *"msnp.error", "enter")
            await scanned(app, pilot)
            await pilot.press("f", "ctrl+u", *"msnp.cmd ==", "enter")
            await pilot.pause(0.2)
            assert "^" in screen_text(app, error)
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert box.value == "msnp.error"
            assert str(error.render()) == ""
            assert app.focused is stream
            assert stream.rows is not None and list(stream.rows) == errors
            # an edit left unapplied goes too; with no filter the bar is empty again
            app.apply_filter("")
            await scanned(app, pilot)
            await pilot.press("f", *"msnp.cmd", "escape")
            await pilot.pause(0.1)
            assert box.value == ""
            assert stream.rows is None

    asyncio.run(main())


@pytest.mark.parametrize("when", ["as the held keys are run", "as they are released"])
def test_keys_typed_while_held_keys_are_handed_on_come_after_them(
    when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`/ab` typed at start-up, held by the stream until the starting filter's first rows:
    `/` opens the search box and the `a b` held behind it are handed on to it. `c d` typed
    during that hand-on came first ("cdab": `a b` were posted to the app behind them), and
    `c d` that had reached the stream as it released its keys were run on the stream, not
    typed into the box ("ab"). Now the box reads "abcd" either way."""
    app = MsnsniffApp(Workspace(), source=CAPTURES / "server_chat.pcap", display="msnp")
    typed: list[bool] = []

    def type_cd() -> None:
        if not typed:
            typed.append(True)
            post_keys(app, "c", "d")

    if when == "as the held keys are run":
        run_held = StreamView._run_held

        async def running(self: StreamView, hold: int) -> None:
            type_cd()
            await run_held(self, hold)

        monkeypatch.setattr(StreamView, "_run_held", running)
    else:
        release = StreamView.release_keys

        def releasing(self: StreamView) -> None:
            release(self)
            if self._held is not None:
                type_cd()

        monkeypatch.setattr(StreamView, "release_keys", releasing)

    async def main() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            post_keys(app, "/", "a", "b")
            search = app.query_one("#search", Input)
            await until(pilot, lambda: len(search.value) >= 4)
            assert typed
            assert search.value == "abcd"
            assert app.focused is search

    asyncio.run(main())


def test_fold_search_bookmarks_help_and_tabs() -> None:
    async def main() -> None:
        app = app_for("server_login_msnp8")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            frames = read_frames(CAPTURES / "server_login_msnp8.pcap")
            keepalives = [n for n, f in enumerate(frames, 1)
                          if isinstance(f, CommandFrame) and f.cmd in ("PNG", "QNG")]
            assert keepalives
            await pilot.press("z")
            await scanned(app, pilot)
            assert stream.rows is not None
            assert len(stream.rows) == len(frames) - len(keepalives)
            assert not set(stream.rows) & set(keepalives)
            await pilot.press("z")
            await pilot.pause(0.2)
            await pilot.press("slash", *"QRY")
            await searched(app, pilot)
            frame = app.workspace.index.frame(stream.selected or 0)
            assert isinstance(frame, CommandFrame) and frame.cmd == "QRY"
            await pilot.press("escape")
            here = stream.selected
            await pilot.press("m", "home", "apostrophe")
            assert stream.selected == here
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            for key, tab in (("2", "sessions"), ("3", "contacts"), ("4", "chat"),
                             ("5", "stats"), ("1", "stream")):
                await pilot.press(key)
                assert app.query_one("#tabs", TabbedContent).active == tab
                focused = app.focused  # the keys go to the tab shown, not the hidden stream
                assert focused is not None and focused in app.screen.focus_chain
                if tab == "chat":  # no chats in this capture: to the tab bar, not a hidden list
                    assert type(focused).__name__ == "ContentTabs"
                else:
                    assert tab in {w.id for w in focused.ancestors_with_self}

    asyncio.run(main())


def test_live_frames_append_and_the_view_follows() -> None:
    events = list(open_source(CAPTURES / "server_chat.pcap"))

    async def feed(app: MsnsniffApp) -> None:
        for event in events:
            app.push_event(event)
            await asyncio.sleep(0)

    async def main() -> None:
        app = MsnsniffApp(Workspace(live=True), live=feed, title="test")
        expected = len(read_frames(CAPTURES / "server_chat.pcap"))
        async with app.run_test(size=SIZE) as pilot:
            stream = app.query_one(StreamView)
            for _ in range(1000):
                if app.workspace.index.count >= expected:
                    break
                await asyncio.sleep(0.02)
            await pilot.pause(0.6)
            assert app.workspace.index.count == expected  # live: every frame, at once
            assert stream.follow and stream.selected == stream.row_count == expected
            await pilot.press("up")
            assert not stream.follow

    asyncio.run(main())


def test_a_view_following_the_tail_shows_its_last_row_after_a_new_filter_or_fold() -> None:
    """Following the tail (End, or live), a new filter, the fold or a side view's filter
    selected the last row but left the view scrolled to the top: the selected frame was off
    screen (found live through `proxy --tui`: Enter in Sessions). The scroll for the
    emptied rows was deferred to the next refresh, so the one for the new last row was
    judged from the old offset and skipped, then the deferred one ran. The view scrolls at
    once: the selected row is on screen."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            for keys in (("z",), ("z",), ("f", *"msnp", "enter"), ("2", "enter")):
                await pilot.press("end", *keys)
                await pilot.pause(0.2)
                await scanned(app, pilot)
                top, height = stream.scroll_offset.y, stream.scrollable_content_region.height
                assert stream.follow and stream.cursor == stream.row_count - 1, keys
                assert top <= stream.cursor < top + height, keys

    asyncio.run(main())


def test_a_live_source_that_outruns_the_decoding_is_bounded_and_the_status_line_says_so(
) -> None:  # fmt: skip
    """`sniff --tui` queued every captured event for the decoder without bound, so a flood
    grew memory for as long as it lasted. The app's live queue is now the `Backlog` plain
    `sniff` has: a capture thread much faster than the decoding keeps it within its bound,
    the bytes it could not take become gaps in the stream, and the status line says how many
    bytes were not decoded."""
    flows = [Flow(str(n), f"10.0.0.1:{3000 + n}", "10.0.0.9:1863") for n in (1, 2)]
    backlog = Backlog(max_events=50, max_bytes=4000)
    peak = 0

    def capture() -> None:  # the capture thread: 4,000 segments as fast as it can
        nonlocal peak
        offsets = dict.fromkeys(flows, 0)
        for i in range(4000):
            flow = flows[i % 2]
            data = b"VER 1 MSNP8 CVR0\r\n" if i < 2 else b"PNG\r\n" * (1 + i % 20)
            backlog.put(StreamChunk(flow, Direction.C2S, offsets[flow], data, float(i)))
            offsets[flow] += len(data)
            peak = max(peak, backlog.queued_bytes)
        for flow in flows:
            backlog.put(FlowEnd(flow, Direction.C2S, 4000.0, "FIN"))
        backlog.put(SourceNote("the flood is over", "test"))  # (in order, always queued)

    async def live(app: MsnsniffApp) -> None:
        producer = threading.Thread(target=capture)
        producer.start()
        while producer.is_alive():
            await asyncio.sleep(0.02)

    async def main() -> None:
        app = MsnsniffApp(Workspace(live=True), live=live, title="lo", backlog=backlog)
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(1500):
                if app.workspace.notes:
                    break
                await asyncio.sleep(0.02)
            await pilot.pause(0.6)
            assert app.workspace.notes == ["test: the flood is over"]
            status = str(app.query_one("#status", Static).render())
            assert f"{backlog.dropped_bytes:,} bytes not decoded" in status, status
            index = app.workspace.index
            gaps = [f for f in map(index.frame, index.numbers()) if isinstance(f, GapFrame)]
        assert backlog.dropped_chunks > 0 and peak <= 4000
        assert gaps and sum(g.length for g in gaps) == backlog.dropped_bytes

    asyncio.run(main())


def test_the_chat_tab_shows_a_conversation_replayed_from_the_index() -> None:
    """The workspace keeps conversations as summaries: the chat tab's log still holds the
    messages, typing and joins of the one it shows, and of the next one."""

    async def main() -> None:
        app = app_for("server_chat")
        async with app.run_test(size=SIZE) as pilot:
            for _ in range(1000):
                if app.workspace.done:
                    break
                await asyncio.sleep(0.02)
            await pilot.pause(0.4)
            await pilot.press("4")
            await pilot.pause(0.2)
            log = app.query_one("#chat-log", Static)
            shown = app.query_one(ChatView).selected
            assert shown is not None and shown.events == ()
            assert shown.message_count == len(app.workspace.conversation(shown).messages) > 0
            text = screen_text(app, log)
            for line in ("hello both", "hi alice", "alice@example.com is typing"):
                assert line in text
            app.query_one(ChatView).action_step(1)
            await pilot.pause(0.2)
            after = app.query_one(ChatView).selected
            assert after is not None and after.flow.id != shown.flow.id
            assert f"flow {after.flow.id}" in screen_text(app, log)
            assert "bob@example.com hi alice" in " ".join(screen_text(app, log).split())

    asyncio.run(main())



def test_workers_stand_aside_after_a_key() -> None:
    """A key marks the moment until which the loader and filter passes wait (they share the
    GIL with the UI thread); `yield_to_ui` returns once it has passed."""

    async def main() -> None:
        app = app_for("server_chat")
        async with app.run_test(size=SIZE) as pilot:
            before = time.monotonic()
            await pilot.press("down")
            until = app._ui_first_until
            assert before < until <= time.monotonic() + UI_FIRST
            await asyncio.to_thread(app.yield_to_ui)
            assert time.monotonic() >= until

    asyncio.run(main())


def test_a_refresh_while_the_app_closes_does_nothing() -> None:
    """At exit Textual removes the widgets one by one while the refresh timer still runs: a
    tick that finds the status bar gone (the stream view still there) returns quietly."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            await app.query_one("#status").remove()
            app.tick()
            assert app.query_one(StreamView).row_count == app.workspace.index.count > 0

    asyncio.run(main())


def test_the_palette_commands_apply_filters_the_language_accepts() -> None:
    """'Show only errors' in the command palette applied `msnp.error or malformed`, which
    the filter language refuses (the field is `msnp.malformed`): the stream stayed whole
    under an error message. Each palette filter compiles and selects what it says."""

    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            commands = {c.title: c for c in app.get_system_commands(app.screen)}
            commands["Show only errors"].callback()
            await scanned(app, pilot)
            assert str(app.query_one("#filter-error").render()) == ""
            index = app.workspace.index
            errors = [n for n in index.numbers() if index.is_problem(n)]
            assert errors and stream.rows is not None and list(stream.rows) == errors
            commands["Clear the filter"].callback()
            await pilot.pause(0.2)
            assert stream.rows is None and app.filter_text == ""

    asyncio.run(main())


def test_f_in_sessions_and_chat_filters_to_the_login_or_conversation() -> None:
    """Sessions' and Chat's own `f` (filter to the login, to the conversation; the footer
    and the help say so) opened the display filter instead: the app's `f` is a priority
    binding, so it took the key before the view saw it. Where the view has its own `f`,
    the view's is the one that runs; elsewhere `f` still opens the filter."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            tabs = app.query_one("#tabs")
            await pilot.press("2", "f")
            await pilot.pause(0.2)
            assert tabs.active == "stream"  # type: ignore[attr-defined]
            assert app.filter_text == 'flow in {"1", "13", "52"}'  # DS, NS and SB of alice
            assert app.focused is app.stream
            await pilot.press("4", "f")
            await pilot.pause(0.2)
            assert app.filter_text == 'flow == "52"'
            await pilot.press("3", "f")  # Contacts has no `f` of its own
            assert app.query_one("#filter-input", Input).has_focus

    asyncio.run(main())


def test_a_row_wider_than_the_stream_ends_in_an_ellipsis() -> None:
    """At 80 columns `CVR 2 5.0.0540 5.0.0540 1.0.0863 http://down` was the row's end, cut
    with no sign that the line (and its round trip) went on: a row cut short ends in "…",
    as Wireshark's packet list does; a row that fits is drawn as it was."""

    async def main() -> None:
        app = app_for("server_chat")
        async with app.run_test(size=(80, 24)) as pilot:
            stream = await loaded(app, pilot)
            width = stream.scrollable_content_region.width  # (the scrollbar's are not seen)
            rows = [stream.render_line(y).text for y in range(4)]
            cvr, ver = rows[3], rows[1]  # frames 4 (a long CVR reply) and 2
            assert len(cvr) == width and cvr.endswith("…"), cvr
            assert cvr.startswith("      4 ") and "CVR 2 5.0.0540" in cvr
            assert ver.rstrip().endswith("VER 1 MSNP8  (0.0 ms)") and "…" not in ver

    asyncio.run(main())


def test_a_bookmark_shows_on_a_frame_with_a_finding_too() -> None:
    """The mark column held one sign, and `!` (a finding) won over `*` (a bookmark): `m`
    on a frame with a finding, the ones most worth marking, changed nothing on screen.
    Each has its own column now."""

    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            flagged = min(app.workspace.index.findings)
            plain = next(n for n in app.workspace.index.numbers()
                         if n > flagged and n not in app.workspace.index.findings)  # fmt: skip

            def line(number: int) -> str:
                return "".join(s.text for s in stream._segments(number, False))

            assert line(flagged).split()[4] == "!"
            for number in (flagged, plain):
                stream.select_frame(number)
                await pilot.press("m")
            assert line(flagged).split()[4] == "!*"
            assert line(plain).split()[4] == "*"
            await pilot.press("m")  # again: the bookmark goes
            assert "*" not in line(plain).split()[4]

    asyncio.run(main())


def test_next_bookmark_wraps_to_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """`'` only looked after the cursor and there is no key for the previous bookmark: from
    below the last one it said "no more bookmarks" with two set above. After the last it
    goes round to the first, and says so; with none set it says that."""

    async def main() -> None:
        app = app_for("server_list_changes")
        notes = recorded_notes(app, monkeypatch)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            await pilot.press("apostrophe")
            assert notes == ["no bookmarks: m sets one"]
            for number in (5, 9):
                stream.select_frame(number)
                await pilot.press("m")
            await pilot.press("end", "apostrophe")
            assert stream.selected == 5
            assert notes[-1] == "after the last bookmark: back to the first"
            await pilot.press("apostrophe")
            assert stream.selected == 9
            await pilot.press("apostrophe")
            assert stream.selected == 5

    asyncio.run(main())


def test_a_stream_key_typed_just_before_slash_or_f_still_moves_the_stream() -> None:
    """`g/` typed fast (both keys queued before the first is handled): `/` takes the focus at
    once, so `g`, already handed to the stream, found the search box's keys when it was
    handled and was dropped: the search then ran from the last frame, not the first."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            await pilot.press("end")
            app.post_message(events.Key("g", "g"))  # at once, as a terminal read gives them
            app.post_message(events.Key("slash", "/"))
            await pilot.pause(0.2)
            assert stream.selected == 1
            assert app.query_one("#search", Input).has_focus
            assert app.query_one("#search", Input).value == ""
            await pilot.press("escape")
            app.post_message(events.Key("j", "j"))
            app.post_message(events.Key("m", "m"))
            app.post_message(events.Key("f", "f"))
            await pilot.pause(0.2)
            assert stream.selected == 2 and stream.bookmarks == {2}
            assert app.query_one("#filter-input", Input).has_focus

    asyncio.run(main())


def test_side_tabs_say_indexing_until_the_file_is_read() -> None:
    """The side views are filled once the file is indexed (a minute for the 1M capture);
    until then they said 'no logins in this capture', 'no conversations in this capture'...
    of a capture full of them. They say the capture is still being indexed."""

    async def main() -> None:
        app = app_for("server_chat")
        release = threading.Event()
        load = app.workspace.load

        def slow_load(*args: Any, **kwargs: Any) -> None:
            release.wait(20)
            load(*args, **kwargs)

        app.workspace.load = slow_load  # type: ignore[method-assign]
        async with app.run_test(size=SIZE) as pilot:
            for key in ("2", "3", "4", "5"):
                await pilot.press(key)
                await pilot.pause(0.1)
                text = screen_text(app)
                assert "in this capture" not in text, key
                assert "still indexing the capture" in text, key
            release.set()
            await loaded(app, pilot)
            await pilot.press("2")
            await pilot.pause(0.2)
            text = screen_text(app)
            assert "still indexing" not in text and "alice@example.com" in text

    asyncio.run(main())


def test_a_side_view_key_typed_just_before_slash_or_f_still_moves_it() -> None:
    """`down/` typed fast in the Sessions tree, `up f` in the Contacts timeline: the key was
    handed to the tree or table, then `/` or `f` took the focus at once, and when the key
    came back up to the app its binding was looked for from the box just opened: the cursor
    never moved. It is looked for from the widget the key was handed to."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            await pilot.press("2")
            await pilot.pause(0.2)
            tree = app.query_one("#sessions-tree", Tree)
            assert app.focused is tree and tree.cursor_line == 0
            app.post_message(events.Key("down", None))  # at once, as a terminal read gives
            app.post_message(events.Key("slash", "/"))
            await pilot.pause(0.3)
            assert tree.cursor_line == 1
            assert app.query_one("#search", Input).has_focus
            await pilot.press("escape", "3")
            await pilot.pause(0.2)
            timeline = app.query_one("#contacts-timeline")
            assert app.focused is timeline
            row = timeline.cursor_row  # type: ignore[attr-defined]
            app.post_message(events.Key("up", None))
            app.post_message(events.Key("f", "f"))
            await pilot.pause(0.3)
            assert timeline.cursor_row == row - 1  # type: ignore[attr-defined]
            assert app.query_one("#filter-input", Input).has_focus

    asyncio.run(main())


def test_a_box_opened_right_after_a_side_view_request_keeps_the_keys() -> None:
    """`Enter/NL` typed fast in Sessions: Enter filters the stream to the login, `/` opens
    the search and NL is typed in it; the filter, applied after, gave the keys to the stream,
    so what was typed next moved the stream instead of searching. The box keeps them; Enter
    in the filter bar itself still gives them to the stream."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            await pilot.press("2")
            await pilot.pause(0.2)
            for key, char in (("enter", None), ("slash", "/"), ("N", "N"), ("L", "L")):
                app.post_message(events.Key(key, char))  # at once, as a terminal read gives
            search = app.query_one("#search", Input)
            await until(pilot, lambda: search.value == "NL")
            assert app.filter_text == 'flow in {"1", "13", "52"}'
            assert app.focused is search and search.value == "NL"
            await pilot.press("escape", "f", *'flow == "13"', "enter")
            await pilot.pause(0.2)
            assert app.filter_text == 'flow == "13"' and app.stream.has_focus

    asyncio.run(main())


def test_a_long_finding_is_read_whole_at_120_columns() -> None:
    """A finding was a line of the fields tree, which has about 40 columns beside the hex
    dump at 120: 'note: error 201 ERR_INVALID_PARAMETER refuses ADD 7 (frame 35): An argument
    was refu' and the rest off the edge (findings run to 250 characters). The frame's
    findings are shown whole, wrapped over the pane's width above the tree; a frame with
    none shows no such strip."""

    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            index = app.workspace.index
            number = max(index.findings, key=lambda n: len(index.findings[n][0].message))
            finding = index.findings[number][0]
            assert len(finding.message) > 200
            stream.select_frame(number)
            await pilot.pause(0.2)
            strip = app.query_one("#findings")
            shown = " ".join(screen_text(app, strip).split())
            assert f"{finding.severity.name.lower()}: {finding.message}" in shown
            assert strip.size.width > 110
            stream.select_frame(next(n for n in index.numbers() if n not in index.findings))
            await pilot.pause(0.2)
            assert not strip.display

    asyncio.run(main())


def test_editing_keys_typed_fast_in_a_box_keep_their_place() -> None:
    """Textual's Input inserts a character as it comes but runs Backspace, Home, ctrl+u...
    only once the key is back up at the app, after the characters typed behind it: `abc`
    Backspace `d` typed fast gave `abc`, `bc` Home `a` gave `bca`, ctrl+u `xyz` an empty
    box. The filter bar and the search box run their editing keys in order."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)

            async def typed(*keys: str) -> str:
                for key in keys:  # at once, as a terminal read gives them
                    char = key if len(key) == 1 else None
                    app.post_message(events.Key(key, char))
                await pilot.pause(0.3)
                assert isinstance(app.focused, Input)
                return app.focused.value

            assert await typed("f", "a", "b", "c", "backspace", "d") == "abd"
            assert await typed("ctrl+u", "x", "y", "z") == "xyz"
            assert await typed("ctrl+u", "b", "c", "home", "a") == "abc"
            await pilot.press("escape")
            assert await typed("slash", "n", "l", "n", "ctrl+w", "N", "L", "N") == "NLN"

    asyncio.run(main())


def test_keys_typed_fast_each_scroll_the_help() -> None:
    """Ten Downs typed at once (a held key, tmux send-keys) scrolled the help one line:
    Textual scrolls a container after the next refresh, from where the last scroll asked to
    end, so every key before that refresh started from the same place. Each key scrolls now
    (`KeyScroll`, also the detail's, the chat log's, the lists' and the stats' containers)."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(app, pilot)
            await pilot.press("question_mark")
            await pilot.pause(0.3)
            body = app.screen.query_one("#help-body")
            assert app.focused is body and body.max_scroll_y > 30
            post_keys(app, *["down"] * 10)
            await pilot.pause(0.3)
            assert body.scroll_y == 10
            page = body.scrollable_content_region.height
            post_keys(app, "pagedown", "pagedown", "up")
            await pilot.pause(0.3)
            assert body.scroll_y == min(body.max_scroll_y, 10 + 2 * page) - 1
            post_keys(app, "end", "up", "up")
            await pilot.pause(0.3)
            assert body.scroll_y == body.max_scroll_y - 2
            post_keys(app, "home", "down")
            await pilot.pause(0.3)
            assert body.scroll_y == 1

    asyncio.run(main())


def test_page_keys_in_the_chat_list_before_its_layout_do_not_end_the_app() -> None:
    """`4` PageUp typed fast (tmux send-keys -t a 4 PageUp) ended the app with a KeyError
    from Textual's OptionList, which pages by its options' lines and had not counted them
    yet (the tab's key shows the list and gives it the keys at once); in a terminal a few
    rows high, where the list has no height, every PageUp or PageDown did. The keys wait
    for the layout; with no height there is no page to move by."""

    async def main(size: tuple[int, int], keys: list[str]) -> int | None:
        app = app_for("server_chat")
        async with app.run_test(size=size) as pilot:
            await loaded(app, pilot)
            post_keys(app, *keys)
            await pilot.pause(0.3)
            olist = app.query_one("#chat-list", OptionList)
            assert app.focused is olist
            return olist.highlighted

    assert asyncio.run(main((40, 6), ["4", "pagedown", "pageup"])) is not None
    assert asyncio.run(main(SIZE, ["4", "pagedown"])) == 2  # the last of the 3
    assert asyncio.run(main(SIZE, ["4", "end", "pageup"])) == 0


@pytest.mark.parametrize("keys, row", [(["pagedown", "up"], 1), (["pagedown", "home"], 0)])
def test_keys_behind_a_page_key_waiting_for_the_chat_list_s_layout_wait_with_it(
    keys: list[str], row: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`4` PageDown Up typed fast: when the list was not laid out yet, PageDown waited for
    the layout and the Up ran first (from the first conversation, wrapping to the last,
    which PageDown then kept): the list ended on the last of the three, not the one
    before it; PageDown Home ended on the last, not the first. The keys behind a waiting
    page key now wait with it. The list is made to wait here as it does when the keys
    come before a refresh (a timing a test cannot choose)."""
    unlaid: list[bool] = []
    region = ChatList.scrollable_content_region
    page = ChatList._page

    def waiting_region(self: ChatList) -> Region:
        return Region() if unlaid else region.fget(self)  # type: ignore[attr-defined]

    def first_page_waits(self: ChatList, direction: int) -> None:
        monkeypatch.setattr(ChatList, "_page", page)
        unlaid.append(True)  # only while the first page key looks at the layout
        try:
            page(self, direction)
        finally:
            unlaid.clear()

    monkeypatch.setattr(ChatList, "scrollable_content_region", property(waiting_region))
    monkeypatch.setattr(ChatList, "_page", first_page_waits)

    async def main() -> None:
        app = app_for("server_chat")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            olist = app.query_one("#chat-list", OptionList)
            post_keys(app, "4", *keys)
            await until(pilot, lambda: olist.highlighted == row)
            assert olist.highlighted == row

    asyncio.run(main())


def test_f_or_slash_over_the_help_leave_it_closable() -> None:
    """`f` or `/` with the help open (both priority keys) put the keys in the filter bar or
    the search box under the help: Escape and q then went to that hidden box, typed there,
    and the help could not be closed (only ctrl+q got out). Over the help they do nothing;
    Escape closes it and `f` then opens the filter bar."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            for key in ("f", "slash"):
                await pilot.press("question_mark")
                await pilot.pause(0.1)
                assert isinstance(app.screen, HelpScreen)
                await pilot.press(key, "escape")
                await pilot.pause(0.2)
                assert not isinstance(app.screen, HelpScreen), key
                assert app.focused is app.stream
            await pilot.press("f")
            assert app.query_one("#filter-input", Input).has_focus
            assert app.query_one("#filter-input", Input).value == ""

    asyncio.run(main())


def test_a_key_typed_just_after_a_tab_key_goes_to_that_tab() -> None:
    """`2` Down typed fast: Down was handed to the stream, which still had the focus (the
    tab's `2` ran only when it came back up to the app and `focus()` came later still), so
    the hidden stream moved and the Sessions tree did not; `1` Down moved the hidden tree.
    The tab keys take the focus as they arrive; in a box they are still text."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            tree = app.query_one("#sessions-tree", Tree)
            assert stream.selected == 1 and tree.cursor_line == 0
            for key, char in (("2", "2"), ("down", None)):
                app.post_message(events.Key(key, char))  # at once, as a terminal read gives
            for _ in range(500):  # until Down has moved something (10 s on a loaded machine)
                if tree.cursor_line != 0 or stream.selected != 1:
                    break
                await asyncio.sleep(0.02)
            await pilot.pause(0.1)
            assert app.focused is tree and tree.cursor_line == 1 and stream.selected == 1
            for key, char in (("1", "1"), ("down", None)):
                app.post_message(events.Key(key, char))
            for _ in range(500):
                if tree.cursor_line != 1 or stream.selected != 1:
                    break
                await asyncio.sleep(0.02)
            await pilot.pause(0.1)
            assert stream.selected == 2 and tree.cursor_line == 1
            await pilot.press("f", *"msnp.error == 215")
            assert app.query_one("#filter-input", Input).value == "msnp.error == 215"
            assert app.query_one("#tabs", TabbedContent).active == "stream"

    asyncio.run(main())


def test_the_footer_names_enter_in_sessions_contacts_and_stats() -> None:
    """Enter filters to the node (Sessions), jumps to the frame (Contacts), filters to the
    command (Stats), as the README and the help say, but the footer never said so: the
    focused tree's or table's own Enter ('Select', not shown) hid the view's. The footer
    shows each view's Enter."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            for tab, what in (("2", "Filter to node"), ("3", "Jump to frame"),
                              ("5", "Filter to command")):  # fmt: skip
                await pilot.press(tab)
                await pilot.pause(0.2)
                enter = app.screen.active_bindings["enter"].binding
                assert enter.show and enter.description == what, tab
                assert f"⏎ {what}" in screen_text(app).splitlines()[-1], tab

    asyncio.run(main())


def test_keys_typed_just_after_enter_in_the_filter_bar_go_to_the_stream() -> None:
    """`f msnp.error` Enter `G` typed fast: G was handed to the filter bar before its Enter
    had applied the filter and given the keys to the stream, so the bar read 'msnp.errorG'
    (not the filter applied) and the stream never went to its end. Enter gives the keys to
    the stream at once, and the box hands on the keys that reached it behind Enter; a bad
    filter keeps them in the bar."""

    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            errors = error_numbers("server_list_changes")
            names = {".": "full_stop"}
            for key in ("f", *"msnp.error", "enter", "G"):  # at once, as a terminal read
                app.post_message(events.Key(names.get(key, key), key if len(key) == 1 else None))
            await scanned(app, pilot)
            await pilot.pause(0.2)
            assert app.query_one("#filter-input", Input).value == "msnp.error"
            assert app.filter_text == "msnp.error" and app.focused is stream
            assert stream.follow and stream.selected == errors[-1]
            await pilot.press("f", *"msnp.cmd ==", "enter", "j")  # replaces the old text
            await pilot.pause(0.2)
            box = app.query_one("#filter-input", Input)
            assert box.value == "msnp.cmd ==j" and box.has_focus
            assert "^" in screen_text(app, app.query_one("#filter-error", Static))

    asyncio.run(main())


def test_ctrl_c_quits_as_in_a_shell_but_copies_in_a_box() -> None:
    """`sniff --tui` and `proxy --tui` are started from a shell, where Ctrl-C ends them
    cleanly (the issue's words for sniff); Textual only said 'press q to quit'. In the
    filter bar or the search box Ctrl-C still copies, as Textual has it."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            await pilot.press("slash", "a", "ctrl+c")
            await pilot.pause(0.1)
            assert app.is_running and app.query_one("#search", Input).has_focus
            await pilot.press("escape", "ctrl+c")
            await pilot.pause(0.2)
            assert not app.is_running

    asyncio.run(main())


def test_keys_typed_ahead_of_a_new_filter_act_on_its_rows() -> None:
    """`f msnp.error` Enter `jj` typed fast (`tmux send-keys`): the two `j` reached the
    stream before the filter's pass had shown a row (the rows are emptied when a pass starts)
    and were lost, the cursor left on the first error; with the old rows still up they would
    have moved through those. The stream holds the keys typed while its rows are replaced
    and runs them, in order, once the first rows of the new list are shown. The fold (`z`)
    does the same: it takes effect as it arrives (as `f` and `/` do), or the keys behind it
    had already gone by when its pass began. A key that opens a box meanwhile still opens
    it at once."""

    async def main() -> None:
        app = app_for("server_list_changes")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            errors = error_numbers("server_list_changes")
            post_keys(app, "f", *"msnp.error", "enter", "j", "down", "j")
            await scanned(app, pilot)
            await pilot.pause(0.2)
            assert app.filter_text == "msnp.error" and app.focused is stream
            assert stream.selected == app.query_one(DetailView).number == errors[3]
            post_keys(app, "f", "ctrl+u", "enter", "end", "z", "up", "m", "slash")
            await scanned(app, pilot)
            await pilot.pause(0.2)
            assert app.fold_noise and app.filter_text == "" and stream.rows is not None
            assert stream.bookmarks == {stream.rows[-2]} and stream.selected == stream.rows[-2]
            assert app.query_one("#search", Input).has_focus
            await pilot.press("escape", "z")
            await pilot.pause(0.2)
            assert not app.fold_noise and stream.rows is None
            post_keys(app, "home", "z", "j", "m")  # `z` typed to the stream, not through a box
            await scanned(app, pilot)
            await pilot.pause(0.2)
            assert app.fold_noise and stream.rows is not None
            assert stream.selected == stream.rows[1] and stream.rows[1] in stream.bookmarks

    asyncio.run(main())


def test_escape_typed_ahead_in_a_box_closes_it_in_its_turn() -> None:
    """`f msnp` Escape Down Down typed fast (`tmux send-keys`): the Downs reached the filter
    bar before Escape, handed to it first, had come back up to the app and given the keys to
    the stream, so they were lost; `/abc` Escape `z`: the z was typed into the search box.
    Escape then z within the terminal's escape delay even comes as one key, alt+z, which
    typed a z and lost the Escape. Escape in a box now takes effect as it reaches it (the
    keys behind it go to the stream), alt+<key> counts as Escape then the key (no view binds
    an alt key), and the search box closed with Escape is no longer left on screen."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            search = app.query_one("#search", Input)
            for key in ("slash", "a", "b", "c", "escape", "z"):  # at once, as a terminal read
                app.post_message(events.Key(key, key if len(key) == 1 else None))
            for _ in range(250):  # z goes a long way round (stream, app, box, stream, app)
                if app.fold_noise:
                    break
                await asyncio.sleep(0.02)
            await scanned(app, pilot)
            assert search.value == "abc" and app.fold_noise and app.focused is stream
            assert not search.display and search.region.height == 0
            for key in ("f", "m", "s", "escape", "down", "down"):
                app.post_message(events.Key(key, key if len(key) == 1 else None))
            await pilot.pause(0.3)
            # (Escape shows the filter in force again: none, not the "ms" typed)
            assert app.query_one("#filter-input", Input).value == ""
            assert app.focused is stream and stream.selected == stream.number_at(2)
            for key, char in (("slash", None), ("x", "x"), ("alt+z", "z"), ("alt+j", "j")):
                app.post_message(events.Key(key, char))
            for _ in range(250):  # each key goes a long way round (box, stream, app...)
                if stream.selected == 4:
                    break
                await asyncio.sleep(0.02)
            await pilot.pause(0.1)
            assert search.value == "x" and not search.display
            assert not app.fold_noise and app.focused is stream and stream.selected == 4
            # Escape before the typing pause calls the search off: it no longer jumps from
            # where the keys behind Escape went (`winnt` is in frame 3); `n` still runs it
            for key in ("slash", *"winnt", "escape", "home"):
                app.post_message(events.Key(key, key if len(key) == 1 else None))
            await searched(app, pilot)
            assert stream.selected == 1 and app.focused is stream
            await pilot.press("n")
            await searched(app, pilot)
            assert stream.selected == 3

    asyncio.run(main())


def test_at_80x24_the_findings_leave_room_for_the_stream_and_the_fields() -> None:
    """80x24, the smallest common terminal, frame 13 of the XML-RPC capture (three findings,
    four lines at 80 columns): the findings strip took four lines of the seven the detail
    pane has, leaving the fields tree three, and cut the last finding with no way to read
    it. The strip now takes at most a third of the pane (two lines here, with no rule under
    it) and scrolls, by wheel or keys (Tab reaches it)."""

    async def main() -> None:
        app = app_for("http_xmlrpc")
        async with app.run_test(size=(80, 24)) as pilot:
            stream = await loaded(app, pilot)
            index = app.workspace.index
            assert len(index.findings[13]) == 3
            stream.select_frame(13)
            await pilot.pause(0.3)
            strip = app.query_one("#findings")
            tree = app.query_one("#fields", Tree)
            assert strip.display and strip.size.height <= 2 and stream.size.height >= 9
            assert tree.size.height >= 5
            last = index.findings[13][-1].message
            assert last not in " ".join(screen_text(app, strip).split())
            assert strip.max_scroll_y > 0
            strip.focus()
            await pilot.press("end")
            for _ in range(50):  # (the scroll is animated: slower on a loaded machine)
                if last in " ".join(screen_text(app, strip).split()):
                    break
                await pilot.pause(0.1)
            assert last in " ".join(screen_text(app, strip).split())
            await pilot.press("shift+tab")
            stream.select_frame(7)  # another frame: its findings from their first line
            for _ in range(50):
                if strip.scroll_y == 0:
                    break
                await pilot.pause(0.1)
            assert strip.scroll_y == 0

    asyncio.run(main())


def test_live_the_detail_follows_the_selected_frames_reply_and_findings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Live (`sniff --tui`, `proxy --tui`): request ADD 7 (frame 35) selected before its reply
    came; the reply arrived and the detail still said nothing of it (no replies, no round
    trip) until another frame was selected; ADD 99 RL (frame 86) never learned it went
    unanswered. The detail is shown again when the selected frame's pairing or findings
    change, keeping the focus and the fields tree's cursor, and not for records that change
    nothing about it."""
    events = iter(open_source(CAPTURES / "server_list_changes.pcap"))

    async def main() -> None:
        app = MsnsniffApp(Workspace(live=True), title="fed in steps")
        ws = app.workspace

        def push_until(count: int) -> None:
            for event in events:
                ws.push(event)
                if ws.index.count >= count:
                    return

        async def ticked() -> None:
            await asyncio.sleep(0.6)  # two ticks
            await pilot.pause(0.1)

        async with app.run_test(size=SIZE) as pilot:
            stream, detail = app.stream, app.query_one(DetailView)
            tree = app.query_one("#fields", Tree)
            push_until(35)
            await ticked()
            assert stream.select_frame(35)
            await pilot.press("tab")  # past the hidden findings strip, to the fields tree
            await pilot.press("down", "down")
            assert app.focused is tree and tree.cursor_line == 2
            assert not any("replies" in label for label in tree_labels(tree))
            shows: list[int | None] = []
            show = detail.show

            def counted(number: int | None) -> None:
                shows.append(number)
                show(number)

            monkeypatch.setattr(detail, "show", counted)
            push_until(36)
            await ticked()
            labels = tree_labels(tree)
            assert "replies: #36" in labels and any("round trip" in x for x in labels)
            assert app.focused is tree and tree.cursor_line == 2 and stream.selected == 35
            assert shows == [35]
            push_until(85)  # other frames: nothing about frame 35 changes
            await ticked()
            assert shows == [35]
            push_until(86)
            await ticked()
            assert stream.select_frame(86)
            await pilot.pause(0.1)
            strip = app.query_one("#findings")
            said = " ".join(screen_text(app, strip).split())
            assert "reverse list" in said and "never answered" not in said
            for event in events:
                ws.push(event)
            ws.finish()
            await ticked()
            assert "ADD 99 was never answered" in " ".join(screen_text(app, strip).split())

    asyncio.run(main())


def test_a_new_filter_or_fold_keeps_the_selected_frame() -> None:
    """`f msnp.error` Enter `j`, then `z`: the fold's pass emptied the rows before filling
    them, so the cursor went back to the first error (34) from the selected 36; a new filter
    did the same. As in Wireshark, the selected frame stays selected when the view changes,
    or, hidden now, the nearest shown frame before it (the first row when none is before);
    the keys typed behind the change move from there."""

    async def main() -> None:
        app = app_for("msnp8_demo")  # errors 34, 36, 38; PNG 44, QNG 45
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            detail = app.query_one(DetailView)
            post_keys(app, "f", *"msnp.error", "enter", "j")
            await settled(app, pilot)
            assert stream.selected == 36
            post_keys(app, "z")
            await settled(app, pilot)
            assert app.fold_noise and stream.selected == detail.number == 36
            post_keys(app, "z", "j")  # a key typed behind the fold moves from the kept frame
            await settled(app, pilot)
            assert not app.fold_noise and stream.selected == detail.number == 38
            post_keys(app, "z", "f", "ctrl+u", "enter")  # the filter cleared, the fold still on
            await settled(app, pilot)
            assert app.fold_noise and app.filter_text == "" and stream.rows is not None
            assert stream.selected == detail.number == 38
            post_keys(app, "z")
            await settled(app, pilot)
            assert stream.rows is None and stream.select_frame(45)
            post_keys(app, "z")  # QNG 45 and PNG 44 are hidden: the nearest shown before them
            await settled(app, pilot)
            assert stream.selected == detail.number == 43
            post_keys(app, "f", *"msnp.error", "enter", "k")  # 38 is the error before 43
            await settled(app, pilot)
            assert stream.selected == detail.number == 36
            post_keys(app, "f", "ctrl+u", "enter", "z")
            await settled(app, pilot)
            assert stream.rows is None and stream.select_frame(5)
            post_keys(app, "f", *"msnp.error", "enter")  # no error before frame 5: the first row
            await settled(app, pilot)
            assert stream.selected == detail.number == 34

    asyncio.run(main())


def test_keys_typed_just_after_tab_or_help_go_where_the_key_moved_the_focus() -> None:
    """`tmux send-keys Tab End`: Tab's move of the focus ran only when Tab came back up from
    the stream, by when End had been handed to the stream too, so the stream jumped to its
    last frame and the fields tree did not move; shift+tab likewise, and `?` (`? q` typed
    fast quit the app instead of closing the help). These keys now take effect as they
    arrive, so the keys behind them go where they moved the focus."""

    def keys(app: MsnsniffApp, *typed: str) -> None:
        for key in typed:  # at once, as a terminal read gives them
            app.post_message(events.Key(key, None))

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            tree = app.query_one("#fields", Tree)
            assert stream.select_frame(5) and stream.has_focus
            await pilot.pause(0.2)
            keys(app, "tab", "end")
            await pilot.pause(0.3)
            assert app.focused is tree and stream.selected == 5
            assert tree.cursor_line == tree.last_line > 0
            keys(app, "shift+tab", "down")  # back to the stream (the findings strip is hidden)
            await pilot.pause(0.3)
            assert stream.has_focus and stream.selected == 6
            keys(app, "tab", "shift+tab", "down")  # there and back before Down
            await pilot.pause(0.3)
            assert stream.has_focus and stream.selected == 7
            for typed in (("question_mark", "?"), ("j", "j")), (("q", "q"),):
                for key, char in typed:  # `? j`: j went to the stream under the help
                    app.post_message(events.Key(key, char))
                await pilot.pause(0.3)
                assert stream.selected == 7  # `? q`: q quit the app instead of the help
            assert app.is_running and not isinstance(app.screen, HelpScreen)
            await pilot.press("f", "question_mark")  # text in a box; F1 opens the help there
            assert app.query_one("#filter-input", Input).value == "?"
            await pilot.press("f1")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("f1")
            assert not isinstance(app.screen, HelpScreen)

    asyncio.run(main())


def test_live_a_request_never_answered_says_no_reply_once_settled() -> None:
    """Live, ADD 99 RL (frame 86 of server_list_changes) was indexed before it settled and
    its row never said '(no reply)', as it does when the file is read, even after the
    server closed the connection without answering. Once the connection's end settles it,
    the row says so, in a filtered view too (no new frame comes to draw the rows again)."""
    events = iter(open_source(CAPTURES / "server_list_changes.pcap"))

    async def main() -> None:
        app = MsnsniffApp(Workspace(live=True), title="fed in steps")
        ws = app.workspace

        async def ticked() -> None:
            await asyncio.sleep(0.6)  # two ticks
            await pilot.pause(0.1)

        def row(number: int) -> str:
            line = next((x for x in screen_text(app, stream).splitlines()
                         if x.split()[:1] == [str(number)]), "")  # fmt: skip
            assert line, f"frame {number} is not on screen"
            return line

        async with app.run_test(size=SIZE) as pilot:
            stream = app.stream
            for event in events:
                ws.push(event)
                if ws.index.count >= 86:
                    break
            app.apply_filter('msnp.cmd == "ADD"')
            await scanned(app, pilot)
            await ticked()
            assert "ADD RL" in row(86) and "(no reply)" not in row(86)
            assert "ms)" in row(35)  # ADD 7, answered: its round trip
            for _ in range(2):  # the NS connection's FINs, each way: no frame
                ws.push(next(events))
            assert ws.index.count == 86
            await ticked()
            assert "(no reply)" in row(86) and "(no reply)" not in row(35)

    asyncio.run(main())


def test_keys_typed_just_after_a_side_view_request_act_on_the_stream(
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """`2` Enter `j` typed fast: Enter in Sessions filtered the stream, but its request was
    a message handled a turn later, by when j had been handed to the Sessions tree: it was
    lost for the stream (Down moved the tree's cursor instead). Likewise Enter in Contacts
    and Stats, f and g in Chat. The request is answered as it is made, and the keys typed
    behind it go, in order, to the stream and its new rows (`f` behind it opens the filter
    bar); a jump to a frame the filter hides under the fold moves them from that frame."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            tree = app.query_one("#sessions-tree", Tree)
            cases = [  # tab, keys, the filter, the frame selected after
                ("2", ("enter", "j"), 'flow in {"1", "13", "52"}', 2),
                ("2", ("enter", "down", "down", "k"), 'flow in {"1", "13", "52"}', 2),
                ("3", ("enter", "j"), "", 50),  # the last change, frame 49
                ("5", ("enter", "j"), 'msnp.cmd == "USR" and dir == c2s', 11),
                ("4", ("f", "j"), 'flow == "52"', 53),
                ("4", ("g", "j", "j"), "", 54),
            ]
            for tab, typed, expression, selected in cases:
                app.apply_filter("")
                await settled(app, pilot)
                await pilot.press("home", tab)
                await pilot.pause(0.2)
                post_keys(app, *typed)
                await settled(app, pilot)
                await until(pilot, functools.partial(_selects, stream, selected))
                assert app.query_one("#tabs", TabbedContent).active == "stream", typed
                assert app.filter_text == expression and stream.has_focus, typed
                assert stream.selected == app.query_one(DetailView).number == selected, typed
                assert tree.cursor_line == 0, typed  # nothing went to the Sessions tree
            post_keys(app, "2", "enter", "f", *"msnp", "enter")  # f behind Enter: the filter bar
            await settled(app, pilot)
            assert app.filter_text == "msnp" and stream.has_focus
            post_keys(app, "z", "f", *"frame.number == 5", "enter")  # fold, and hide frame 49
            await settled(app, pilot)
            assert stream.rows is not None and list(stream.rows) == [5]
            # Contacts: the filter is cleared to show 49; the held j runs once a screenful
            # past the frame the pass keeps is shown (one row here, as in a big capture)
            monkeypatch.setattr("msnsniff.tui.app.FIRST_BATCH", 1)
            post_keys(app, "3", "enter", "j")
            await settled(app, pilot)
            assert app.filter_text == "" and app.fold_noise and stream.selected == 50
            post_keys(app, "f", *"msnp", "enter", "2", "down")  # the filter's pass began after 2:
            await settled(app, pilot)  # it left the keys in the tab 2 opened
            assert app.filter_text == "msnp" and app.focused is tree and tree.cursor_line == 1

    asyncio.run(main())


def test_keys_typed_just_after_escape_or_n_in_a_pane_go_to_the_stream() -> None:
    """`2` Escape `j` typed fast: Escape gave the keys back to the stream, but only when it
    came back up to the app, by when j had been handed to the Sessions tree: j was lost
    (Down moved the hidden tree instead); the same behind Escape in the fields tree, and
    behind `n` in Contacts (which shows the stream). The keys typed behind a key that
    moved the keys away from the widget they were handed to go where it moved them."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            tree = app.query_one("#sessions-tree", Tree)
            await pilot.press("slash", *"BYE", "enter", "escape")
            await searched(app, pilot)
            assert stream.selected == 62
            cases = [  # what puts the keys in the pane, the keys, the frame selected after
                (("home", "2"), ("escape", "j"), 2),
                (("home", "2"), ("escape", "down", "down"), 3),
                (("home", "tab"), ("escape", "j", "j"), 3),  # from the fields tree
            ]
            for before, typed, selected in cases:
                await pilot.press(*before)
                await pilot.pause(0.2)
                post_keys(app, *typed)
                await searched(app, pilot)
                assert stream.has_focus and stream.selected == selected, typed
                assert tree.cursor_line == 0, typed  # nothing went to the Sessions tree
            timeline = app.query_one("#contacts-timeline", DataTable)
            await pilot.press("3")
            row = timeline.cursor_row
            post_keys(app, "n", "up")  # (the search runs in a worker: the keys do not wait for it)
            await searched(app, pilot)
            assert stream.has_focus and stream.selected in (61, 62)
            assert timeline.cursor_row == row  # up went to the stream, not the hidden timeline

    asyncio.run(main())


def test_scanned_counts_every_frame_when_the_stream_shows_them_all() -> None:
    """`scanned` stayed 0 while no filter or fold applied (no pass runs then), so a wait for
    "every frame looked at" never ended with the filter cleared. Every frame is shown then:
    it counts them all, before any filter and once one is cleared."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            await pilot.pause(0.6)  # a tick
            count = app.workspace.index.count
            assert app.stream.rows is None and app.scanned == count
            app.apply_filter("msnp")
            await scanned(app, pilot)
            assert app.stream.rows is not None and app.scanned == count
            app.apply_filter("")
            await pilot.pause(0.1)
            assert app.stream.rows is None and app.scanned == count

    asyncio.run(main())


def test_priority_keys_typed_just_after_a_side_view_request_act_after_it() -> None:
    """`2` Enter `3` typed fast ended on the stream, not on Contacts; Enter `z` in Contacts
    with a filter on cleared it: the app's priority keys (`/`, `z`, the digits, Tab, `?`,
    F1) acted as they arrived, before the Enter typed ahead of them had made its request
    (the fold's pass had emptied the rows, so the jump did not find its frame and cleared
    the filter to show it). They wait their turn while a side view has the keys, and act
    after the request, on the stream it shows; with no request they act as before."""

    def keys(app: MsnsniffApp, *typed: tuple[str, str | None]) -> None:
        for key, char in typed:  # at once, as a terminal read gives them
            app.post_message(events.Key(key, char))

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            tabs = app.query_one("#tabs", TabbedContent)
            tree = app.query_one("#sessions-tree", Tree)
            enter = ("enter", None)

            async def start(filter_text: str, tab: str) -> None:
                app.apply_filter(filter_text)
                await settled(app, pilot)
                await pilot.press("home", tab)
                await pilot.pause(0.2)

            await start("msnp", "3")  # the last change, frame 49, is shown under `msnp`
            keys(app, enter, ("z", "z"), ("j", "j"))
            await settled(app, pilot)
            assert app.filter_text == "msnp" and app.fold_noise and stream.selected == 50
            await pilot.press("z")  # unfold
            await start("", "2")
            keys(app, enter, ("3", "3"), ("end", None))
            await settled(app, pilot)
            assert app.filter_text == 'flow in {"1", "13", "52"}' and tabs.active == "contacts"
            timeline = app.query_one("#contacts-timeline")
            assert app.focused is timeline and timeline.cursor_row > 0  # type: ignore[attr-defined]
            await start("", "2")
            keys(app, enter, ("tab", None))
            await settled(app, pilot)
            assert tabs.active == "stream" and app.focused is app.query_one("#fields")
            await start("", "2")
            keys(app, enter, ("slash", "/"), ("N", "N"), ("L", "L"))
            await settled(app, pilot)
            search = app.query_one("#search", Input)
            assert app.filter_text == 'flow in {"1", "13", "52"}'
            assert app.focused is search and search.value == "NL"
            await pilot.press("escape")
            await start("", "2")
            keys(app, enter, ("question_mark", "?"), ("q", "q"), ("j", "j"))
            await settled(app, pilot)
            assert not isinstance(app.screen, HelpScreen) and app.is_running
            assert tabs.active == "stream" and stream.has_focus and stream.selected == 2
            await start("", "2")  # no request: `z` still folds, the keys behind it stay here
            keys(app, ("down", None), ("z", "z"), ("down", None))
            await settled(app, pilot)
            assert app.fold_noise and tree.has_focus and tree.cursor_line == 2
            keys(app, ("question_mark", "?"), ("q", "q"))
            await settled(app, pilot)
            assert not isinstance(app.screen, HelpScreen) and app.is_running
            assert tree.has_focus

    asyncio.run(main())


def test_stream_keys_typed_just_before_z_or_slash_act_before_it() -> None:
    """`j j z` typed fast on frame 43: `z` (a priority key) folded the PNG/QNG as it
    arrived and started holding the stream's keys, so the two j still on their way to the
    stream were held and moved through the folded rows (47, where typed slowly the fold
    selects 43 again: 45, a QNG, is hidden, and 44, a PNG); `j z j` gave 47 for 46,
    `z j z j` 45 for 47. The app's
    priority keys typed while the stream has the keys now wait their turn there, as in a side
    view: keys act in the order typed. `/` held behind a fold still opens the search box,
    with the keys typed behind it in the box."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            cases = [  # the keys, at once, then the fold and the frame selected, as typed slowly
                (("j", "j", "z"), True, 43),
                (("j", "z", "j"), True, 46),
                (("z", "j", "z", "j"), False, 47),
            ]
            for typed, folded, selected in cases:
                stream.select_frame(43)
                await pilot.pause(0.2)
                for key in typed:  # at once, as a terminal read gives them
                    app.post_message(events.Key(key, key))
                for _ in range(3):  # each fold's pass, then the keys it held
                    await scanned(app, pilot)
                    await pilot.pause(0.2)
                assert (app.fold_noise, stream.selected) == (folded, selected), typed
                if app.fold_noise:
                    await pilot.press("z")
                    await scanned(app, pilot)
            search = app.query_one("#search", Input)
            stream.select_frame(43)
            await pilot.pause(0.2)
            for key in ("z", "j", "slash", "a"):
                app.post_message(events.Key(key, key if len(key) == 1 else None))
            for _ in range(250):  # the box opens once the fold's rows are shown
                if search.value == "a":
                    break
                await asyncio.sleep(0.02)
            await scanned(app, pilot)
            assert app.fold_noise and search.value == "a" and app.focused is search

    asyncio.run(main())


def test_a_tab_with_nothing_to_show_gives_the_keys_to_the_tab_bar() -> None:
    """An XML-RPC capture has no logins, contacts or chats: each of those views hides its
    tree or list behind a note. `2` gave the keys to the hidden tree anyway: the footer
    offered its keys (Enter, e, c), which did nothing, and Tab left it for the tab bar,
    never to come back. The keys go to the tab bar, whose arrows open the other tabs."""

    async def main() -> None:
        app = app_for("http_xmlrpc")
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(app, pilot)
            tabs = app.query_one("#tabs", TabbedContent)
            for key, tab in (("2", "sessions"), ("3", "contacts"), ("4", "chat")):
                await pilot.press(key)
                await pilot.pause(0.1)
                assert tabs.active == tab
                focused = app.focused
                assert focused is not None and focused in app.screen.focus_chain, key
                assert type(focused).__name__ == "ContentTabs", key
                assert "Filter to node" not in screen_text(app).splitlines()[-1]
            await pilot.press("right")
            await pilot.pause(0.1)
            assert tabs.active == "stats"
            await pilot.press("2", "escape")
            assert tabs.active == "stream" and app.focused is app.query_one(StreamView)

    asyncio.run(main())


def test_a_filter_wider_than_the_bar_keeps_the_caret_under_its_mistake() -> None:
    """At 80 columns a long filter's error wrapped: the caret stood at column 74 of the
    line under a filter whose mistake had wrapped to the next line. The line is cut to the
    bar's width around the mistake, the caret under it."""

    async def main() -> None:
        app = app_for("msnp8_demo")
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(app, pilot)
            for text, wrong in zip((
                'msnp.cmd == ADD and dir == c2s and msnp.account == "bob@example.com" and '
                "msnp.lsit == FL",
                'msnp.account == "bob@example.com" and msnp.list == FL and dir == c2s and '
                'msnp.cmd == ADD and msnp.nick contains "Bob" and msnp.trd > 3',
                "msnp.cmd == ADD and (dir == c2s",
            ), ("msnp.lsit", "msnp.trd", "end"), strict=True):
                await pilot.press("f", "ctrl+u", *text, "enter")
                await pilot.pause(0.2)
                error = app.query_one("#filter-error", Static)
                shown = screen_text(app, error).splitlines()
                line, caret = shown[0], shown[1]
                assert len(line) <= 80 and caret.lstrip().startswith("^"), shown
                column = caret.index("^")
                if wrong == "end":
                    assert column == len(line)
                else:
                    assert line[column:].startswith(wrong), shown

    asyncio.run(main())


def test_a_tab_opened_before_it_had_anything_gives_the_keys_to_it_once_it_does() -> None:
    """Sessions opened in a live capture before the first login (or in a big file still
    being indexed) shows a note and gives the keys to the tab bar; when the login comes and
    the tree is shown the keys go to it, as if the tab had been opened then. Keys the user
    moved since stay where they are."""
    events = list(open_source(CAPTURES / "server_chat.pcap"))
    go = asyncio.Event()

    async def feed(app: MsnsniffApp) -> None:
        await go.wait()
        for event in events:
            app.push_event(event)
            await asyncio.sleep(0)

    async def main() -> None:
        app = MsnsniffApp(Workspace(live=True), live=feed, title="test")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            await pilot.press("2")
            await pilot.pause(0.1)
            assert type(app.focused).__name__ == "ContentTabs"
            go.set()
            for _ in range(500):
                if app.focused is not None and app.focused.id == "sessions-tree":
                    break
                await asyncio.sleep(0.02)
            assert app.focused is not None and app.focused.id == "sessions-tree"
            expected = len(read_frames(CAPTURES / "server_chat.pcap"))
            for _ in range(1000):  # (every frame in before the app closes)
                if app.workspace.index.count >= expected:
                    break
                await asyncio.sleep(0.02)
            await pilot.pause(0.3)

    asyncio.run(main())
