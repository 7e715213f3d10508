"""The msnsniff TUI: the stream of frames, their detail, sessions, lists, chats and stats.

Theory of operation: the app owns a `Workspace` (frame index and analyzers). A file is read
by a thread worker while the first screen is already up; a live session (`proxy --tui`,
`sniff --tui`) pushes events into a bounded `Backlog` (as plain `sniff` does: bytes it
cannot take reach the workspace as gaps, and the status line counts them) that a thread
worker drains; a live source that stops by itself (`sniff --tui` whose interface vanished)
says so (`source_stopped`), and the worker finishes the session once it has drained the
source's last events (every connection's end), as the end of a file does. Twice a second a
timer tells the stream how many frames exist now, moves the progress bar, extends a filtered
view with the new frames (a thread worker), shows the selected frame's detail again if its
pairing or findings changed and draws the rows again if a request went unanswered (live),
and refreshes the side views under the workspace's lock. A side view's request (filter or
jump) is answered as it is made, within its key; the keys typed behind it that reached the
view are handed on to the stream, which holds them until its new rows are shown. The app's
priority keys (`/`, `z`, the tabs' digits, Tab, `?`, F1) typed while a side view or the
stream has the keys wait their turn there like any other key, so they act after the keys
typed before them: after a request, on the stream it shows; after the stream's moves, not
before them on the rows a fold gives (`_waits_its_turn`); held by the stream, in their turn
among its held keys. A key whose binding moves the keys away
from the widget it was handed to (Escape, `n` in a side view) hands on the keys typed
behind it in the same way.
The app never parses: frames come from the index, facts from analyzers.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, ClassVar, Final

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import HorizontalScroll, ScrollableContainer, Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.keys import _character_to_key
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import (
    Footer,
    Header,
    Input,
    ProgressBar,
    Static,
    TabbedContent,
    TabPane,
    Tabs,
)
from textual.worker import Worker, get_current_worker

from dissectors.msnp.frames import CommandFrame
from msnsniff.capture import SourceEvent
from msnsniff.capture.live import Backlog
from msnsniff.capture.sources import Capture
from msnsniff.errors import MsnsniffError
from msnsniff.session.describe import describe
from msnsniff.session.filter import DisplayFilter
from msnsniff.session.workspace import Workspace
from msnsniff.tui.keys import HoldsKeys, run_binding
from msnsniff.tui.messages import FilterRequested, FrameRequested
from msnsniff.tui.screens.help import HelpScreen
from msnsniff.tui.widgets.chat import ChatView
from msnsniff.tui.widgets.contacts import ContactsView
from msnsniff.tui.widgets.detail import DetailView
from msnsniff.tui.widgets.filterbar import FilterBar, FilterInput
from msnsniff.tui.widgets.scroll import KeyScroll
from msnsniff.tui.widgets.sessions import SessionsView
from msnsniff.tui.widgets.stats import CommandTable, StatsView
from msnsniff.tui.widgets.stream import StreamView, noise
from msnsniff.tui.widgets.textbox import TextBox

TICK = 0.25  # seconds between refreshes of counts, progress, filters and side views
SCAN_BATCH = 20_000  # matches a filter worker collects between two updates of the view
FIRST_BATCH = 200  # ... except the first screenful, shown as soon as it is found
GC_FREEZE_EVERY = 8_192  # source events between two gc.freeze() while loading
UI_FIRST = 0.12  # seconds after a key, click or scroll for which the workers stand aside
SEARCH_PAUSE = 0.3  # seconds without typing after which the search box searches
SEARCH_YIELD_EVERY = 256  # rows a search looks at between two checks for keys and cancels
KEYS_KEPT = 64  # keys typed ahead whose first widget is remembered (a fast paste is more)


def _freeze() -> None:
    """Collect everything the collector still walks (what was made since the last freeze:
    a few thousand events' objects and the UI's), then move the survivors out of its reach:
    later full collections skip the index's and analyzers' millions of objects, so each
    stays short, and no garbage is frozen with them (it would never be freed)."""
    gc.collect()
    gc.freeze()


def _escape_then(event: events.Key) -> events.Key | None:
    """The key that followed Escape when `event` is alt plus a printable key (how the
    terminal's bytes of Escape then the key, read together, are parsed), else None."""
    modifier, _, rest = event.key.partition("+")
    char = event.character
    if modifier != "alt" or "+" in rest.removeprefix("shift+") or not char:
        return None
    return events.Key(_character_to_key(char), char) if char.isprintable() else None


# containers that only scroll: a tab's keys go to its first list, table or tree before them
SCROLL_ONLY = (ScrollableContainer, VerticalScroll, HorizontalScroll, KeyScroll)
SIDE_VIEWS = (SessionsView, ContactsView, ChatView, StatsView)
# where the app's priority keys wait for the keys typed before them (`_waits_its_turn`)
IN_TURN_VIEWS = (*SIDE_VIEWS, StreamView)
_USER_INPUT = (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)


ERRORS_FILTER: Final = "msnp.error or msnp.malformed or http.malformed"
"""The palette's 'Show only errors': error replies, malformed bytes and capture gaps."""

TYPED_ACTIONS: Final = frozenset({"focus_filter", "search", "tab", "toggle_noise", "help"})
"""Actions of keys that are text in an input (`check_action`)."""

MAIN_SCREEN_ACTIONS: Final = TYPED_ACTIONS | {"help_key"}
"""Priority actions that do nothing over the help (`check_action`)."""

IN_TURN_ACTIONS: Final = MAIN_SCREEN_ACTIONS | {"focus_next", "focus_previous"}
"""Priority actions that, typed while a side view or the stream has the keys, wait for the
keys typed before them there (`_waits_its_turn`); Ctrl-C still quits at once."""


class MsnsniffApp(App[int]):
    """One capture, or one live session, in a terminal."""

    CSS_PATH = "app.tcss"
    TITLE = "msnsniff"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        # as in a shell (sniff's and proxy's Ctrl-C ends them cleanly); in a box it copies
        Binding("ctrl+c", "interrupt", "Quit", show=False, priority=True),
        # priority (see below): the keys typed right behind it go to the help (`? q` fast quit)
        Binding("question_mark", "help", "Help", priority=True),
        Binding("f1", "help_key", "Help", show=False, priority=True),  # in a box too
        # priority: handled as the key arrives, so the keys typed right after it already go
        # to the box it opens (not when `f` or `/` come back up from the focused widget, by
        # when the next keys have gone to the stream); off while an input has the keys
        Binding("f", "focus_filter", "Filter", priority=True),
        Binding("slash", "search", "Search", priority=True),
        Binding("n", "search_next(1)", "Next match", show=False),
        Binding("N", "search_next(-1)", "Previous match", show=False),
        # priority too: the fold's pass holds the stream's keys from `z` on (on the stream and
        # in a side view, `z` first waits for the keys typed before it: `_waits_its_turn`)
        Binding("z", "toggle_noise", "Fold PNG/QNG", priority=True),
        Binding("x", "toggle_hex", "Hex dump", show=False),  # the detail pane's, from anywhere
        # priority too: the keys typed right behind a tab's key go to the tab it opens
        Binding("1", "tab('stream')", "Stream", show=False, priority=True),
        Binding("2", "tab('sessions')", "Sessions", show=False, priority=True),
        Binding("3", "tab('contacts')", "Contacts", show=False, priority=True),
        Binding("4", "tab('chat')", "Chat", show=False, priority=True),
        Binding("5", "tab('stats')", "Stats", show=False, priority=True),
        Binding("escape", "focus_stream", "Back to the stream", show=False),
        # priority too (the screen's are not): the focus moves as Tab arrives, so the keys
        # typed behind it go to the widget it moved to (`Tab End` fast: End moved the stream)
        Binding("tab", "focus_next", "Next pane", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous pane", show=False, priority=True),
    ]

    def __init__(
        self, workspace: Workspace, *, source: Path | Capture | None = None,
        live: Callable[[MsnsniffApp], Coroutine[Any, Any, None]] | None = None,
        title: str = "", display: str = "", backlog: Backlog | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.workspace = workspace
        self._first_filter = display  # applied once mounted (`-Y`)
        self.source = source
        self.live = live
        # a live source's events on their way to the workspace: bounded, so a flood that
        # outruns the decoding costs gaps (counted in the status line), not memory
        self.events = Backlog() if backlog is None else backlog
        self.sub_title = title or (source.name if isinstance(source, Capture)
                                   else str(source) if source else "live")  # fmt: skip
        self.display_filter: DisplayFilter | None = None
        self.filter_text = ""
        self.fold_noise = False
        # frames the current row filter has looked at: every frame while there is none (no
        # filter, no fold: the stream shows them all, nothing is left to look at)
        self.scanned = 0
        self._scan_generation = 0
        self._scan_worker: Worker[None] | None = None
        self.search_text = ""
        self._search_generation = 0
        self._search_worker: Worker[None] | None = None
        self._search_timer: Timer | None = None
        self.wanted_frame: int | None = None  # a side view's jump, selected once it is shown
        self._side_seen = -1
        self._waiting_tab: str | None = None  # a tab shown with nothing in it (`action_tab`)
        self._revision_seen = 0  # the index's `revision` the stream's rows were drawn at
        self._stopping = threading.Event()
        self._ui_first_until = 0.0  # time.monotonic() until which the workers wait
        # the last keys from the terminal and the widget each was handed to (`on_key`)
        self._key_targets: deque[tuple[events.Key, Widget]] = deque(maxlen=KEYS_KEPT)
        # the keys typed behind a side view's request, handed to that view before it (`answer`)
        self._typed_behind: list[events.Key] = []
        # priority keys handed to a side view to act in their turn (`_waits_its_turn`)
        self._in_turn: deque[events.Key] = deque(maxlen=KEYS_KEPT)
        # keys handed on and posted to the app again, in order: the keys typed meanwhile
        # wait behind them (`hand_on`)
        self._handing_on: deque[events.Key] = deque()
        self.failure: MsnsniffError | None = None  # why the live source could not start
        # why the live source stopped by itself (its interface vanished): the status line
        # says it for as long as the app runs
        self.live_stopped: str | None = None

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="stream", id="tabs"):
            with TabPane("Stream", id="stream"), Vertical():
                yield FilterBar()
                yield TextBox(placeholder="search the frame descriptions (Enter: next, "
                            "Escape: close)", id="search")  # fmt: skip
                yield StreamView(self.workspace, id="stream-view")
                yield DetailView(self.workspace, id="detail")
            ws = self.workspace
            with TabPane("Sessions", id="sessions"):
                yield self._pending("logins")
                yield SessionsView(ws.links, carried_by=ws.carried_by, id="sessions-view")
            with TabPane("Contacts", id="contacts"):
                yield self._pending("contact lists")
                yield ContactsView(ws.lists, id="contacts-view")
            with TabPane("Chat", id="chat"):
                yield self._pending("conversations")
                yield ChatView(ws.conversations, expand=ws.conversation,
                               carried_by=ws.carried_by, id="chat-view")
            with TabPane("Stats", id="stats"):
                yield self._pending("statistics")
                yield StatsView(ws.stats, web=ws.web_stats, id="stats-view")
        yield ProgressBar(id="loading", show_eta=False)
        yield Static("", id="status")
        yield Footer()

    def _pending(self, what: str) -> Static:
        """What a side tab says while the file is indexed: its view is filled only then, and
        would say there is nothing in the capture."""
        return Static(f"still indexing the capture: the {what} are shown when it is done "
                      "(the stream can be used meanwhile)", classes="pending")  # fmt: skip

    def _show_side_views(self, shown: bool) -> None:
        """Show the side views, or (while a file is indexed) what they are waiting for."""
        for pending in self.query(".pending"):
            pending.display = not shown
        for view in self._side_views():
            view.display = shown

    def _side_views(self) -> tuple[SessionsView, ContactsView, ChatView, StatsView]:
        return (self.query_one(SessionsView), self.query_one(ContactsView),
                self.query_one(ChatView), self.query_one(StatsView))  # fmt: skip

    @property
    def stream(self) -> StreamView:
        return self.query_one("#stream-view", StreamView)

    def on_mount(self) -> None:
        # the loader thread and the UI share the GIL: switch often so keys stay quick
        sys.setswitchinterval(0.001)
        self.stream.focus()
        self.stream.follow = self.live is not None
        self._show_side_views(self.source is None)
        if self._first_filter:
            self.apply_filter(self._first_filter)
        if self.source is not None:
            _freeze()  # start-up's objects (modules, the app) are never garbage: out of reach
            self.load_file(self.source)
        if self.live is not None:
            self.consume_live()
            self.run_worker(self.live(self), exclusive=False, group="live")
        self.set_interval(TICK, self.tick)
        self.tick()

    # --- loading ----------------------------------------------------------------------------

    @work(thread=True, group="load")
    def load_file(self, path: Path | Capture) -> None:
        worker = get_current_worker()

        def cancelled() -> bool:  # asked before each event: a key first, then the next event
            self.yield_to_ui()
            return worker.is_cancelled

        # the index's objects live as long as the app: freezing them spares the UI the long
        # pauses of full garbage collections over millions of objects
        self.workspace.load(path, cancelled=cancelled,
                            every=(GC_FREEZE_EVERY, _freeze))  # fmt: skip
        _freeze()  # and the last events' objects: full collections then walk the UI's only

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and self._handing_on:
            if event is self._handing_on[0]:
                self._handing_on.popleft()  # a key handed on, in its turn
            elif not any(event is key for key in self._handing_on):
                self.hand_on([event])  # typed while keys typed before it are handed on
                return
            else:  # (a key handed on that came out of turn: once only, now)
                self._handing_on = deque(k for k in self._handing_on if k is not event)
        after = _escape_then(event) if isinstance(event, events.Key) else None
        if after is not None and not event.is_forwarded:
            # Escape and a key typed within the terminal's escape delay read as alt+key: no
            # view binds one, so it is what was typed, the two keys, each in its turn
            await self.on_event(events.Key("escape", "\x1b"))
            await self.on_event(after)
            return
        if isinstance(event, _USER_INPUT) and not event.is_forwarded:
            self._ui_first_until = time.monotonic() + UI_FIRST
        if isinstance(event, events.Key) and not event.is_forwarded and self.screen_stack \
                and self.focused:  # (no screen: typed ahead of `q`, the app is closing)
            self._key_targets.append((event, self.focused))  # where super() hands it
            if self._waits_its_turn(event.key):
                self._in_turn.append(event)
                self.focused._forward_event(event)  # behind the keys typed before it
                return
        await super().on_event(event)

    def _waits_its_turn(self, key: str) -> bool:
        """`key` is one of the app's priority keys (IN_TURN_ACTIONS) that would act now,
        and a side view or the stream has the keys: it is handed to the view like an
        ordinary key and acts when it comes back up to the app (`on_key`), after the keys
        typed before it, or in its turn among the keys the stream holds for new rows
        (`StreamView._run_held`). Acting as it arrives, it came before a request those keys
        make (`2` Enter `3` typed fast ended on the stream Enter showed, not on Contacts;
        Enter `z` in Contacts with a filter on cleared the filter: the fold's pass had
        emptied the rows, so the jump could not find its frame), and `z` began holding the
        stream's keys before the moves typed before it had reached the stream (`j j z` on
        frame 43 moved through the folded rows to 47: typed slowly, 43 stays selected). In
        the boxes and the detail pane they still act as they arrive (no request or hold to
        wait for there), and the keys typed behind them go where they put the keys."""
        bindings = self._bindings.key_to_bindings.get(key)
        if not bindings or not any(b.priority and b.action.partition("(")[0] in IN_TURN_ACTIONS
                                   and self.check_action(b.action.partition("(")[0], ())
                                   for b in bindings):  # fmt: skip
            return False
        focused = self.focused
        return focused is not None and not isinstance(focused, Input) and any(
            isinstance(node, IN_TURN_VIEWS) for node in focused.ancestors_with_self)

    async def on_key(self, event: events.Key) -> None:
        """A key coming back up from the widget it was handed to, after a priority key typed
        just behind it (`/`, `f`) moved the focus away: Textual would look for its binding
        from the new focus (the box just opened) and drop it. Look from the widget that had
        the focus when the key came, as it would have then: `down/` typed fast in the
        Sessions tree moves its cursor, then searches. A key whose own binding moves the
        focus away (Escape, `n` in a side view) hands on the keys typed behind it to where
        the focus is now (`_hand_on_keys_behind`)."""
        target = next((w for e, w in self._key_targets if e is event), None)
        if not self.screen_stack:
            return  # typed ahead of `q`: the app is closing, its screen is gone
        behind = next((i for i, e in enumerate(self._typed_behind) if e is event), None)
        if behind is not None:
            # typed behind a side view's request, handed to the view before the request
            # moved the keys: it goes where they are now, as a key just typed (the app's
            # priority keys first, then the focus: the stream holds it for its new rows),
            # as a box hands on the keys typed behind its Enter (`TextBox`)
            del self._typed_behind[behind]
            event.prevent_default()
            self.hand_on([event])
            return
        in_turn = next((i for i, e in enumerate(self._in_turn) if e is event), None)
        if isinstance(target, HoldsKeys) and target.hold(event):
            # behind a key of that widget's that waits (a page key before its list is laid
            # out): it runs after it, in its turn (priority keys too: `_waits_its_turn`)
            event.prevent_default()
            if in_turn is not None:
                del self._in_turn[in_turn]
            return
        if in_turn is not None:
            # a priority key whose turn came (`_waits_its_turn`): it acts now, as it would
            # have as it arrived, and the keys typed behind it, handed to the same widget,
            # go where it puts the keys, as those typed behind a request do
            del self._in_turn[in_turn]
            event.prevent_default()
            self._hand_on_keys_behind(event, target)
            await self._check_bindings(event.key, priority=True)
            return
        if target is not None and (not target.is_attached
                                   or target.screen not in self.screen_stack):  # fmt: skip
            # handed to a widget gone since, or to a screen closed since (typed behind the
            # help's `q`): it goes where the keys are now, as a key just typed (App._on_key
            # would run the focused stream's binding at once, even while it holds its keys)
            event.prevent_default()
            self.hand_on([event])
            return
        if target is None:
            return  # the usual way: App._on_key finds the binding through the focus
        event.prevent_default()
        if target is not self.focused:
            await run_binding(target, event.key)  # not through the focus it has now
            return
        # the usual way (App._on_key: the binding through the focus); if it moved the keys
        # away from `target` (Escape, `n` in a side view), the keys typed behind it, handed
        # to `target`, go where they are now, as behind a request (they were run from
        # `target` when they came back: lost, or moving a pane no longer shown)
        await App._on_key(self, event)
        if self.screen_stack and self.focused is not target:
            self._hand_on_keys_behind(event, target, keep=True)

    def _hand_on_keys_behind(self, event: events.Key, target: Widget | None, *,
                             keep: bool = False) -> None:  # fmt: skip
        """The keys typed behind `event` and handed to `target` (they come back up after
        it) are posted again when they do, as keys just typed (`on_key`); `keep` adds them
        to those a request being answered already hands on (`answer`)."""
        later = list(self._key_targets)
        start = next((i for i, (e, _) in enumerate(later) if e is event), len(later))
        behind = [e for e, w in later[start + 1 :] if w is target]
        if not keep:
            self._typed_behind = behind
            return
        self._typed_behind += [e for e in behind
                               if not any(e is b for b in self._typed_behind)]  # fmt: skip

    def hand_on(self, keys: Iterable[events.Key]) -> None:
        """Post `keys` to the app again as keys just typed (handed to a widget that gave the
        keys away before it ran them), in order. The keys that reach the app until they
        have come round wait behind them, posted again too (`on_event`): a key typed during
        the few milliseconds of the round came first (`/ab` held at start-up for the first
        rows, `c` typed meanwhile: the search box read "cab")."""
        for key in keys:
            again = events.Key(key.key, key.character)
            self._handing_on.append(again)
            self.post_message(again)

    def yield_to_ui(self) -> None:
        """In a worker thread: wait while the user's last key, click or scroll is answered.
        Threads share the GIL, so a loader and a filter pass would each take as much of it as
        the UI thread; standing aside for a moment keeps every key quick."""
        while time.monotonic() < self._ui_first_until and not self._stopping.is_set():
            time.sleep(0.002)

    @work(thread=True, group="live")
    def consume_live(self) -> None:
        """Drain the live events into the workspace until the app stops; once the source
        stopped by itself (`source_stopped`) and its last events are in, finish the
        session, as the end of a file does."""
        while not self._stopping.is_set():
            stopped = self.live_stopped is not None  # (before `get`: nothing comes after)
            event = self.events.get(0.2)
            if event is not None:
                self.workspace.push(event)
            elif stopped and not self.workspace.done:
                self.workspace.finish()

    def source_stopped(self, why: str) -> None:
        """The live source stopped by itself (a capture whose interface vanished), having
        queued its last events (every connection's end): the status line says `why` from
        now on, and the session is finished once those events are decoded, so the requests
        left open settle ("(no reply)") at once, not when the user quits."""
        self.live_stopped = why

    def push_event(self, event: SourceEvent) -> None:
        """For live sources: queue one capture event (thread-safe), or count its bytes as
        not decoded when the backlog is full (see `Backlog`)."""
        self.events.put(event)

    def on_unmount(self) -> None:
        self._stopping.set()

    # --- the periodic refresh --------------------------------------------------------------

    def tick(self) -> None:
        ws = self.workspace
        stream = next(self.query("#stream-view").results(StreamView), None)
        bar = next(self.query("#loading").results(ProgressBar), None)
        status = next(self.query("#status").results(Static), None)
        detail = next(self.query("#detail").results(DetailView), None)
        if stream is None or bar is None or status is None or detail is None:
            return  # the app is closing: its widgets are being removed, one by one
        detail.refresh_analysis()  # live: the selected frame's reply or a finding came
        if ws.index.revision != self._revision_seen:  # live: a shown request went unanswered
            self._revision_seen = ws.index.revision
            stream.refresh()
        if stream.rows is None:
            self.scanned = ws.index.count  # (every frame is shown: see `_restart_rows`)
            stream.grew()
        elif self.scanned < ws.index.count and not self.scanning:
            self._scan_worker = self._scan(self._scan_generation)
        if self.source is not None and not ws.done:
            bar.update(total=100, progress=ws.progress * 100)
        else:
            bar.add_class("-done")
        self._status(stream, status)
        if ws.index.count != self._side_seen and (ws.done or self.live is not None):
            first = self._side_seen < 0
            self._side_seen = ws.index.count
            self._refresh_side_views()
            if first:
                self._show_side_views(True)
            self._keys_to_shown_tab()
            if first and self.source is not None:
                _freeze()  # the side views just built one object per session and chat

    def _status(self, stream: StreamView, status: Static) -> None:
        ws = self.workspace
        parts = [f"{ws.index.count:,} frames"]
        if not ws.done and self.source is not None:
            parts.append(f"indexing {ws.progress:.0%}")
        if stream.rows is not None:
            parts.append(f"{len(stream.rows):,} shown")
        shown_filter = len(parts) if self.filter_text else None
        if self.filter_text:
            parts.append(f"filter: {self.filter_text}")
        if self.fold_noise:
            parts.append("PNG/QNG folded")
        if self.live_stopped is not None:  # (instead of "following": nothing more comes)
            parts.append(self.live_stopped)
        elif stream.follow and self.live is not None:
            parts.append("following")
        if self.searching:
            parts.append(f"searching {self.search_text!r}")
        if self.events.dropped_chunks:  # (a live source that outran the decoding)
            parts.append(f"{self.events.dropped_bytes:,} bytes not decoded (fell behind)")
        parts += ws.notes[-1:]
        over = cell_len("  |  ".join(parts)) - status.size.width
        if over > 0 and shown_filter is not None:
            # one line: a long filter (the bar shows it whole) is cut short, so what follows
            # it (the fold, a search, a damaged file's damage) is not wrapped off the line
            part = parts[shown_filter]
            parts[shown_filter] = set_cell_size(part, max(len("filter: "),
                                                          cell_len(part) - over - 1)) + "…"
        # plain text: a filter, a search or a note is no markup (`msnp.nick contains "[/c]"`,
        # an MSN Plus! colour code, ended the app with a MarkupError; "[b]" vanished); wider
        # still, it ends in "…" (app.tcss: one line, not wrapped out of sight)
        status.update(Text("  |  ".join(parts)))

    def _refresh_side_views(self) -> None:
        """Each side view re-reads its analyzer, between two pushes of the loader."""
        with self.workspace.lock:
            for view in self._side_views():
                view.refresh_from()

    # --- filtering ----------------------------------------------------------------------------

    def _restart_rows(self) -> None:
        """The filter or the fold changed: rescan from the first frame. The keys that reach
        the stream meanwhile wait for the first rows of the new list (`hold_keys`)."""
        self._scan_generation += 1
        self.scanned = 0
        self.stream.hold_keys()
        if self.display_filter is None and not self.fold_noise:
            self.scanned = self.workspace.index.count  # every frame shown: no pass to run
            self.stream.set_rows(None)
            self._select_wanted(done=True)
            self.stream.release_keys()
            return
        self.stream.replace_rows(array("I"), keep=self.wanted_frame)
        if self._scan_worker is not None:
            self._scan_worker.cancel()  # its results carry an old generation: ignored
        self._scan_worker = self._scan(self._scan_generation, self.stream.kept)

    @property
    def scanning(self) -> bool:
        """A filter pass is under way (its worker has not finished)."""
        return self._scan_worker is not None and not self._scan_worker.is_finished

    @work(thread=True, group="scan")
    def _scan(self, generation: int, kept: int | None = None) -> None:
        """Extend the shown rows with the frames from `scanned` on that pass. The rows up to
        frame `kept` (the one selected before the rows were replaced) are shown as soon as
        the pass has looked at it, not at the next batch, and the held keys run once a
        screenful after it is shown too (FIRST_BATCH rows, or all): they move from it."""
        worker = get_current_worker()
        index = self.workspace.index
        display, fold = self.display_filter, self.fold_noise
        start, end = self.scanned, index.count
        found = array("I")
        flush_at = FIRST_BATCH  # the first matches show at once, then in batches
        first = start + 1
        for stop in (kept, end) if kept is not None and start < kept < end else (end,):
            for number in range(first, stop + 1):
                self.yield_to_ui()
                if worker.is_cancelled or generation != self._scan_generation:
                    return
                record = index.record(number, cache=False)  # the rows on screen keep the cache
                frame = record.frame
                if fold and isinstance(frame, CommandFrame) and noise(frame.cmd):
                    continue
                if display is not None:
                    pairing = index.pairing(number)
                    if not display.matches(record, None if pairing is None
                                           else pairing.extra()):  # fmt: skip
                        continue
                found.append(number)
                if len(found) >= flush_at:
                    self.call_from_thread(self._extend_rows, generation, found, number)
                    found = array("I")
                    flush_at = SCAN_BATCH
            self.call_from_thread(self._extend_rows, generation, found, stop, stop == end)
            found = array("I")
            first = stop + 1
            flush_at = FIRST_BATCH

    def _extend_rows(self, generation: int, found: array[int], upto: int,
                     release: bool = True) -> None:  # fmt: skip
        stream = self.stream
        if generation != self._scan_generation or stream.rows is None:
            return
        self.scanned = upto
        done = upto >= self.workspace.index.count
        stream.add_rows(found, upto, done=done)
        self._select_wanted(done=done)
        if release:  # the first rows (or all, or none) and the selection are shown
            stream.release_keys()

    def _select_wanted(self, *, done: bool) -> None:
        """Select the frame a side view asked for once the rows show it; when the pass is
        `done` without it (the fold hides it), say so and forget it."""
        wanted = self.wanted_frame
        if wanted is None:
            return
        if self.stream.select_frame(wanted):
            self.stream.follow = False
            self.wanted_frame = None
        elif done:
            self.wanted_frame = None
            self.notify(f"frame {wanted} is hidden by the PNG/QNG fold", severity="warning")

    def on_filter_bar_applied(self, message: FilterBar.Applied) -> None:
        """Start the new rows' pass. The keys were given to the stream when the filter was
        asked for (Enter in the bar, a side view's request), not now, a turn later: a box or
        a tab opened by a key typed since keeps them (`f` behind Enter in Sessions)."""
        self.display_filter = message.display
        self.filter_text = message.text
        if message.text:
            self.wanted_frame = None  # a filter of the user's own: no jump is waiting
        self._restart_rows()

    def _box_has_keys(self) -> bool:
        """The search box or the filter bar has the keys: `/` (or `f` where the view does
        not bind it) typed right after a key that asks for a filter or a frame (Enter in
        Contacts) opened it as it arrived, before the request was made: what is typed after
        it goes there, not to the stream the request shows."""
        return isinstance(self.focused, Input)

    def _show_stream(self) -> None:
        """Show the stream for a side view's request; the keys go to it now (the keys typed
        behind the request are on their way: see `action_tab`) unless a box has them
        (`_box_has_keys`)."""
        self.query_one("#tabs", TabbedContent).active = "stream"
        if not self._box_has_keys():
            self.stream.screen.set_focus(self.stream)

    def apply_filter(self, text: str) -> None:
        """Set the filter bar's text and apply it (used by the side views and the palette).
        The keys that reach the stream from now on wait for its new rows: the bar's `Applied`
        starts their pass a turn later, as for Enter in the bar (`action_keys_to_stream`);
        if the bar had them (the palette opened from it), the stream has them now."""
        bar = self.query_one(FilterBar)
        bar.set_text(text)
        self.stream.hold_keys()
        if not bar.apply(text):
            self.stream.release_keys()  # (no pass comes to release them)
        elif self.stream.screen.focused is self.query_one("#filter-input", Input):
            self.stream.screen.set_focus(self.stream)

    def action_toggle_noise(self) -> None:
        self.fold_noise = not self.fold_noise
        self._restart_rows()

    # --- selection, search and navigation --------------------------------------------------------

    def on_stream_view_selected(self, message: StreamView.Selected) -> None:
        self.query_one(DetailView).show(message.number)

    def answer(self, sender: Widget, request: FilterRequested | FrameRequested) -> None:
        """A side view's request, answered as it is made (`messages.request`), within the key
        that made it. The keys handed to the view's widgets that have not come back up to the
        app yet were typed behind that key (those typed before it came back first): they are
        handed on to where the answer puts the keys (`on_key`), in their order."""
        self._typed_behind = [e for e, w in self._key_targets
                              if sender in w.ancestors_with_self]  # fmt: skip
        if isinstance(request, FilterRequested):
            self.on_filter_requested(request)
        else:
            self.on_frame_requested(request)

    def on_filter_requested(self, message: FilterRequested) -> None:
        """A side view asked for the stream filtered to its node."""
        self.apply_filter(message.expression)
        self._show_stream()

    def on_frame_requested(self, message: FrameRequested) -> None:
        """A side view asked to see one frame."""
        self._show_stream()
        self.wanted_frame = None
        if self.stream.select_frame(message.number):
            self.stream.follow = False
            return
        # the filter hides it: clear the filter; the frame is selected when the rows are back
        # (at once for every frame, after the fold's pass otherwise: the pass keeps it, and
        # the keys typed behind the request move from it)
        self.stream.follow = False  # (a view following the live tail would keep following)
        self.wanted_frame = message.number
        self.apply_filter("")

    def action_tab(self, tab: str) -> None:
        """Show a tab and put the keys in it (the stream, else the tab's first list, table or
        tree, before any container that only scrolls, so that the keys the footer shows for
        it work at once: focus left on the hidden stream would move its cursor unseen). The
        focus is set now, not when `focus()` would: the keys typed right behind the tab's key
        are on their way (`2j` fast moved the hidden stream, not the Sessions tree)."""
        self.query_one("#tabs", TabbedContent).active = tab
        if tab == "stream":
            self.stream.screen.set_focus(self.stream)
            return
        target = self._tab_target(tab)
        self._waiting_tab = tab if target is None else None
        if target is None:  # the tab bar, whose arrows go to the other tabs, until the view
            target = self._tab_bar()  # shows something (`_keys_to_shown_tab`)
        target.screen.set_focus(target)

    def _tab_target(self, tab: str) -> Widget | None:
        """Where a tab's keys go: its first list, table or tree shown, else the first widget
        shown that takes keys; None when it shows none. Widgets shown only (the focus chain):
        a view with nothing to show (or still waiting for the index) hides its tree or list
        behind a note, and keys given to it went nowhere the user could see."""
        pane = self.query_one(f"#{tab}", TabPane)
        focusable = [w for w in self.screen.focus_chain if pane in w.ancestors]
        return next((w for w in focusable if type(w) not in SCROLL_ONLY),
                    next(iter(focusable), None))  # fmt: skip

    def _tab_bar(self) -> Widget:
        return self.query_one("#tabs", TabbedContent).query_one(Tabs)

    def _keys_to_shown_tab(self) -> None:
        """The side views were refreshed: a tab opened while it showed nothing (a big file
        still indexed, a live capture before its first login) gave the keys to the tab bar;
        once it shows its list or tree they go there, unless the user has moved them."""
        tab, self._waiting_tab = self._waiting_tab, None
        if tab is None or self.focused is not self._tab_bar() \
                or self.query_one("#tabs", TabbedContent).active != tab:
            return
        target = self._tab_target(tab)
        if target is None:
            self._waiting_tab = tab  # (still nothing: keep waiting)
            return
        target.screen.set_focus(target)

    def action_toggle_hex(self) -> None:
        """`x` from the stream too, not only with the detail pane focused: show or hide the
        hex dump (hidden, the fields tree takes its width)."""
        self.query_one(DetailView).action_toggle_hex()

    async def action_interrupt(self) -> None:
        """Ctrl-C quits, as in the shell the TUI was started from (Textual would only say
        which key quits); in the filter bar or the search box it copies, as Textual has it."""
        if isinstance(self.focused, Input):
            self.focused.action_copy()
        else:
            await self.action_quit()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`f`, `/`, `z`, `?` and the tabs' digits are text while an input (the filter, the
        search) has the keys, and they are the view's own where it binds them (Sessions' and
        Chat's `f`): these are priority bindings, which would otherwise take the key before the
        view sees it. Over the help (or any screen above the main one) they and F1 do nothing:
        they would put the keys in a box under it, or a help over the help, and Escape or q
        would no longer close it (the help's own `?` and F1 close it)."""
        if action not in MAIN_SCREEN_ACTIONS:
            return True
        if self.screen is not self.screen_stack[0]:
            return False
        if action not in TYPED_ACTIONS:
            return True
        return not (isinstance(self.focused, Input) or self._bound_below(action))

    def _bound_below(self, action: str) -> bool:
        """The focused widget or one of its containers binds a key of the app's `action`."""
        keys = {key for b in self.BINDINGS
                if isinstance(b, Binding) and b.action.partition("(")[0] == action
                for key in b.key.split(",")}  # fmt: skip
        node: DOMNode | None = self.focused
        while node is not None and node is not self.screen:
            if any(key in node._bindings.key_to_bindings for key in keys):
                return True
            node = node.parent
        return False

    def action_focus_filter(self) -> None:
        self.query_one("#tabs", TabbedContent).active = "stream"
        self.screen.set_focus(self.query_one("#filter-input", Input))  # now: see BINDINGS

    def action_focus_stream(self) -> None:
        """Escape: close the search box, put the filter in force back in the filter bar (text
        typed there and not applied is dropped, its error too), and give the keys to the
        stream, now (the keys typed behind Escape are on their way: see `action_search`)."""
        self.query_one(FilterBar).revert()
        search = self.query_one("#search", Input)
        search.remove_class("-shown")
        search.display = False  # as `action_search` set it, or the box stayed on screen
        self._stop_search_timer()  # a search typed but not run yet is called off (`n` runs it)
        self.stream.screen.set_focus(self.stream)

    def action_keys_to_stream(self) -> None:
        """A filter applied in the bar: the keys go to the stream at once (`FilterInput`), and
        wait there for the filtered rows (the bar's `Applied` starts their pass only when the
        app handles it, by when the keys typed behind Enter may have reached the stream)."""
        self.stream.hold_keys()
        self.stream.screen.set_focus(self.stream)

    def action_search(self) -> None:
        """Open the search box with the keys in it at once: the keys typed right after `/`
        are already on their way, and the focus `focus()` sets only later would give them to
        the stream (`/zzq` typed fast folded the stream twice and quit)."""
        self.query_one("#tabs", TabbedContent).active = "stream"
        search = self.query_one("#search", Input)
        search.add_class("-shown")
        search.display = True  # now, not when the class's style is next applied
        self.screen.set_focus(search)

    def on_input_changed(self, event: Input.Changed) -> None:
        """Typing searches once it pauses for SEARCH_PAUSE, not at every key."""
        if event.input.id == "search":
            self.search_text = event.value
            self._stop_search_timer()
            if event.value and event.input.has_class("-shown"):  # (not once Escape closed it)
                self._search_timer = self.set_timer(SEARCH_PAUSE, self._search_typed)
            else:
                self._search_generation += 1  # an empty box: a search under way is moot

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter: the text typed last if it is not searched yet, else the next match."""
        if event.input.id == "search" and self.search_text:
            pending = self._stop_search_timer()
            self._search(1, from_current=pending)

    def _stop_search_timer(self) -> bool:
        """Stop the typing pause's timer; True when it had not fired yet."""
        timer, self._search_timer = self._search_timer, None
        if timer is None:
            return False
        timer.stop()
        return True

    def action_search_next(self, step: int) -> None:
        """`n` / `N`: the next / previous match; before any search, only say so (opening the
        search box would take the keys typed next). From a side view they show the stream
        first, with the keys in it, as `/` does: the match is selected where it is seen
        (they moved the hidden stream's cursor, and nothing changed on screen)."""
        if not self.search_text:
            self.notify("no search yet: / searches", severity="information")
            return
        if self.query_one("#tabs", TabbedContent).active != "stream":
            self.action_tab("stream")
        self._search(step)

    @property
    def searching(self) -> bool:
        """A search is under way (its worker has not finished)."""
        return self._search_worker is not None and not self._search_worker.is_finished

    def _search_typed(self) -> None:
        """The typing paused: search (the timer has fired, so Enter now means the next
        match), unless the app is closing and its stream is gone."""
        self._search_timer = None
        if next(self.query("#stream-view").results(StreamView), None) is not None:
            self._search(1, from_current=True)

    def _search(self, step: int, from_current: bool = False) -> None:
        """Look for the next row (`step` 1) or the previous one (-1) whose description
        contains the search text, in a worker: describing every row of a big capture takes
        seconds, which the keys must not wait for. A new search replaces the one under way."""
        self._search_generation += 1
        if self._search_worker is not None:
            self._search_worker.cancel()
        stream = self.stream
        start = stream.cursor if from_current else stream.cursor + step
        self._search_worker = self._search_rows(
            self._search_generation, self.search_text, stream.rows, stream.row_count, start,
            step)  # fmt: skip

    @work(thread=True, group="search")
    def _search_rows(self, generation: int, text: str, rows: array[int] | None, count: int,
                     start: int, step: int) -> None:  # fmt: skip
        """From row `start` on, by `step`, up to the `count` rows of that moment (`rows` only
        grows in place while shown; another filter brings another array)."""
        worker = get_current_worker()
        index = self.workspace.index
        wanted = text.lower()
        row = start
        while 0 <= row < count:
            if (row - start) % SEARCH_YIELD_EVERY == 0:
                self.yield_to_ui()
                if worker.is_cancelled or generation != self._search_generation:
                    return
            number = row + 1 if rows is None else rows[row]
            frame = index.record(number, cache=False).frame  # the rows on screen keep the cache
            if wanted in describe(frame).lower():
                self.call_from_thread(self._search_found, generation, number)
                return
            row += step
        self.call_from_thread(self._search_missed, generation, text, step)

    def _search_found(self, generation: int, number: int) -> None:
        if generation == self._search_generation and self.stream.select_frame(number):
            self.stream.follow = False

    def _search_missed(self, generation: int, text: str, step: int) -> None:
        if generation == self._search_generation:
            self.notify(f"no {'later' if step > 0 else 'earlier'} frame matches {text!r}",
                        severity="warning", markup=False)  # fmt: skip

    def action_help_key(self) -> None:
        """F1: the help, from a box too (where `?` is text)."""
        self.action_help()

    def action_help(self) -> None:
        # Textual's palette key is no binding of the app's: said here, or the help that
        # lists every key leaves out the one the footer shows
        palette = Binding(self.COMMAND_PALETTE_BINDING, "command_palette", "Command palette")
        sections: list[tuple[str, Iterable[BindingType]]] = [
            ("Everywhere", [*self.BINDINGS, palette]), ("Stream", StreamView.BINDINGS),
            ("Filter bar", [*FilterInput.BINDINGS, *TextBox.BINDINGS]),
            ("Detail", DetailView.BINDINGS), ("Sessions", SessionsView.BINDINGS),
            ("Contacts", ContactsView.BINDINGS), ("Chat", ChatView.BINDINGS),
            ("Stats", [*StatsView.BINDINGS, *CommandTable.BINDINGS[1:]]),  # (its Enter: the view's)
        ]  # fmt: skip
        self.push_screen(HelpScreen(sections))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Show only errors", "Filter to error replies and malformed frames",
                            lambda: self.apply_filter(ERRORS_FILTER))
        yield SystemCommand("Clear the filter", "Show every frame", lambda: self.apply_filter(""))
        yield SystemCommand("Fold keep-alives", "Hide or show PNG/QNG", self.action_toggle_noise)
        for tab in ("stream", "sessions", "contacts", "chat", "stats"):
            yield SystemCommand(f"Open {tab}", f"Switch to the {tab} tab",
                                lambda t=tab: self.action_tab(t))
        yield SystemCommand("Help: every key", "List the keys of every view", self.action_help)
