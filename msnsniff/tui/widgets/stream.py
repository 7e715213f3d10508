"""The stream: one line per frame, drawn only for the rows on screen.

Theory of operation: the view keeps a cursor (a row), the rows (frame numbers: every frame,
or those a filter and the noise fold let through, computed by the app in a worker) and
renders each visible line on demand from the workspace's index with the Line API, so a
million frames cost nothing until they are looked at. The selected frame's request and
replies are highlighted; keys jump between them, walk the unanswered requests and orphan
replies (the transaction findings), bookmarks and search hits. In live mode the view
follows the tail while the cursor is on the last row. While the app replaces the rows (a
new filter or fold, whose pass runs in a worker: `replace_rows`, then `add_rows`), the frame
that was selected stays selected once the pass reaches it, or, hidden now, the nearest shown
frame before it; the keys that reach the view meanwhile are held and run in order once the
first rows of the new list are shown and that frame is placed (`hold_keys`, `release_keys`).
The app's priority keys typed on the view wait their turn here too (the app's
`_waits_its_turn`): held, they act in their turn, and if one moves the keys elsewhere (`/`,
a tab), the keys held behind it go there.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from dissectors.api import Direction
from msnsniff.session.describe import describe
from msnsniff.session.workspace import Workspace
from msnsniff.tui.keys import hand_on, run_binding

C2S_STYLE = Style(color="cyan")
S2C_STYLE = Style(color="green")
PROBLEM_STYLE = Style(color="red", bold=True)
FINDING_STYLE = Style(color="yellow")
CURSOR_STYLE = Style(reverse=True)
PAIR_STYLE = Style(bgcolor="grey23", bold=True)
DIM = Style(dim=True)
FLOW_WIDTH = 8
"""Columns of the flow id (a packet number, `ns#2`; longer ids are cut: `short_flow`)."""
NO_TIME_BELOW = 60
"""A stream narrower than this leaves the time column out: the frame's description is what
a line is read for, and at 40 columns the columns before it left it 6 characters."""


class StreamView(ScrollView, can_focus=True):
    """Every frame of the workspace (or the rows given), one line each."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "go_to(0)", "First frame", show=False),
        Binding("end,G", "go_to(-1)", "Last frame (follow live)", show=False),
        Binding("p", "pair", "Request/reply"),
        Binding("u", "unanswered", "Next unanswered/orphan"),
        Binding("U", "unanswered(-1)", "Previous unanswered/orphan", show=False),
        Binding("m", "bookmark", "Bookmark"),
        Binding("apostrophe", "next_bookmark", "Next bookmark", show=False),
        Binding("e", "next_problem", "Next error", show=False),
        Binding("E", "next_problem(-1)", "Previous error", show=False),
    ]

    class Selected(Message):
        """The cursor moved to another frame."""

        def __init__(self, number: int | None) -> None:
            super().__init__()
            self.number = number

    def __init__(self, workspace: Workspace, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.workspace = workspace
        self.rows: array[int] | None = None  # None: every frame, in order
        self.cursor = 0
        self.follow = False
        self.bookmarks: set[int] = set()
        self._pair_walk: int | None = None
        self._announced: int | None = None
        self._held: list[events.Key] | None = None  # keys waiting for the rows (None: none)
        # a held key moved the keys away: the keys still coming here follow them (`on_key`)
        self._handing_on = False
        self._holds = 0  # holds begun: a release meant for an older one is moot
        self._kept: int | None = None  # selected before the rows were replaced, to select again

    # --- rows -----------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return self.workspace.index.count if self.rows is None else len(self.rows)

    def number_at(self, row: int) -> int | None:
        if not 0 <= row < self.row_count:
            return None
        return row + 1 if self.rows is None else self.rows[row]

    def row_of(self, number: int) -> int | None:
        """The row showing frame `number`, or None when the rows leave it out."""
        if self.rows is None:
            return number - 1 if 1 <= number <= self.workspace.index.count else None
        lo, hi = 0, len(self.rows)  # rows are in frame order
        while lo < hi:
            mid = (lo + hi) // 2
            if self.rows[mid] < number:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self.rows) and self.rows[lo] == number else None

    @property
    def selected(self) -> int | None:
        return self.number_at(self.cursor)

    def set_rows(self, rows: array[int] | None) -> None:
        """Show these frames (None: all); the selected frame stays selected if shown (while
        a pass is under way, the frame selected before it: `replace_rows`)."""
        keep = self.selected if self._kept is None else self._kept
        self.rows = rows
        row = self.row_of(keep) if keep is not None else None
        if row is not None:
            self._kept = None
        self.cursor = row if row is not None else min(self.cursor, max(0, self.row_count - 1))
        self.grew()
        self._scroll_to_cursor()
        if self._kept is None:  # (else the detail keeps showing the frame the pass looks for)
            self._announce()

    def replace_rows(self, rows: array[int], keep: int | None = None) -> None:
        """A new filter or fold: show `rows`, the first of a pass that `add_rows` extends,
        and select the frame selected now again once the pass reaches it, as Wireshark keeps
        the selected packet when the view changes (emptied first, the rows had put the cursor
        back on the first row). A pass replaced before it got there keeps looking for the
        same frame; a view following the live tail keeps following it. `keep` is another
        frame to select instead (a side view's jump to a frame the old rows hid): the keys
        held meanwhile then move from it."""
        if keep is not None:
            self._kept = keep
        elif self._kept is None and not self.follow:
            self._kept = self.selected
        self.set_rows(rows)

    def add_rows(self, found: Sequence[int], upto: int, *, done: bool) -> None:
        """The pass found these frames, having looked at every frame up to `upto` (all of
        them when `done`); once past the frame `replace_rows` kept without finding it (hidden
        now), select the nearest shown frame before it, or the first row when none is before
        it (once there is one, or the pass is done without any)."""
        rows = self.rows
        if rows is None:
            return
        rows.extend(found)  # in place: the rows only ever grow within a pass
        self.set_rows(rows)
        kept = self._kept
        if kept is not None and upto >= kept and (rows or done):
            self._kept = None
            self.cursor = max(0, bisect_left(rows, kept) - 1)
            self._scroll_to_cursor()
            self.refresh()
            self._announce()

    @property
    def kept(self) -> int | None:
        """The frame selected before the rows were replaced, while the pass has not placed
        it again (None once it has, or when nothing was kept)."""
        return self._kept

    def grew(self) -> None:
        """More frames (or rows) arrived: resize, and follow the tail when asked to."""
        count = self.row_count
        self.virtual_size = Size(self.size.width, count)
        if self.follow and count:
            self.cursor = count - 1
            self._scroll_to_cursor()
            self._announce()
        elif self._announced is None and count and self._kept is None:
            self._announce()
        self.refresh()

    # --- keys typed ahead of new rows ----------------------------------------------------

    def hold_keys(self) -> None:
        """The rows are being replaced: the keys that reach the view from now on wait for
        `release_keys` (`f msnp.error` Enter `jj` typed fast moved through the old rows or,
        with the new ones still empty, did nothing)."""
        self._holds += 1
        self._handing_on = False
        if self._held is None:
            self._held = []

    def release_keys(self) -> None:
        """The new rows are shown: run the held keys, in the view's turn, after the keys
        already on their way to it (held too, in the order they came); not before the frame
        selected before the rows were replaced is placed again (`j` moves from it)."""
        if self._held is not None and self._kept is None:
            self.call_later(self._run_held, self._holds)

    async def on_key(self, event: events.Key) -> None:
        """Hold a key handed here by the app; one a box handed on (`TextBox`) goes up to the
        app first, which tries its priority keys (`/`, `f`) and hands it here again. Once a
        held key moved the keys elsewhere (`_run_held`), a key handed here before it did
        (typed behind the held keys, it reached the view as they were run) follows them,
        in its turn: it came back up from here to be run on the view, or, handed on by
        the app, came after the keys typed since (`/ab` at start-up, with `c` typed as
        the held keys were handed on, searched "cab")."""
        if not event.is_forwarded:
            return
        if self._held is not None:
            event.stop()
            event.prevent_default()
            self._held.append(event)
        elif self._handing_on and self.app.focused is not self:
            event.stop()
            event.prevent_default()
            hand_on(self, [event])

    def on_focus(self) -> None:
        self._handing_on = False  # the keys come here again

    async def _run_held(self, hold: int) -> None:
        if hold != self._holds or self._held is None:
            return  # the rows were replaced again since: that pass releases them
        held, self._held = self._held, None
        for i, event in enumerate(held):
            focused = self.app.focused
            # the app's priority keys that waited their turn here (`z`, `/`, a tab's digit,
            # Tab, `?`) act now, in their turn
            await run_binding(self, event.key, priority=True)
            if self._held is not None:  # that key replaced the rows again (`z`)
                self._held[:0] = held[i + 1 :]
                return
            if self.app.focused is not focused:
                # that key moved the keys (`/` opened the search box, a tab's digit): the
                # keys held behind it go there, as keys just typed, ahead of those typed
                # since (`hand_on`); so do the keys still on their way here (`on_key`)
                self._handing_on = True
                hand_on(self, held[i + 1 :])
                return

    # --- drawing --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        row = self.scroll_offset.y + y
        number = self.number_at(row)
        width = self.size.width
        if number is None:
            return Strip.blank(width)
        return Strip(self._segments(number, row == self.cursor), width).crop(0, width)

    def _segments(self, number: int, is_cursor: bool) -> list[Segment]:
        index = self.workspace.index
        frame = index.frame(number)
        first = index.ts(1) if index.count else None
        ts = index.ts(number)
        when = "" if ts is None or first is None else f"{ts - first:11.6f}"
        flow = index.flow(number).id
        if len(flow) > FLOW_WIDTH:  # (a transcript's NAME#N: rare, and only drawn rows)
            flow = short_flow(flow)
        c2s = frame.direction is Direction.C2S
        arrow = "→" if c2s else "←"
        text = describe(frame)
        pairing = index.pairing(number)
        if pairing is not None and pairing.rtt is not None:
            text += f"  ({pairing.rtt * 1000:.1f} ms)"
        elif pairing is not None and pairing.replies == ():
            text += "  (no reply)"
        findings = index.findings.get(number)
        # a finding and a bookmark each have a column: a marked finding shows both
        mark = ("!" if findings else " ") + ("*" if number in self.bookmarks else " ")
        base = PROBLEM_STYLE if index.is_problem(number) else (C2S_STYLE if c2s else S2C_STYLE)
        if number in self._pair_numbers():
            base = base + PAIR_STYLE
        if is_cursor:
            base = base + CURSOR_STYLE
        head = Style(dim=not is_cursor) + (CURSOR_STYLE if is_cursor else Style())
        timed = self.size.width >= NO_TIME_BELOW
        segments = [
            Segment(f"{number:>7} ", head),
            *([Segment(f"{when:>11} ", head)] if timed else []),
            Segment(f"{flow:>{FLOW_WIDTH}} ", head),
            Segment(f"{arrow} ", base),
            Segment(mark + " ", FINDING_STYLE + (CURSOR_STYLE if is_cursor else Style())),
        ]
        # (the width the rows are seen in: the scrollbar's columns are not)
        room = self.scrollable_content_region.width - sum(s.cell_length for s in segments)
        if cell_len(text) > room > 0:  # cut short: said with "…", as Wireshark's list does
            text = set_cell_size(text, room - 1) + "…"
        segments.append(Segment(text + " " * max(0, room - cell_len(text)), base))
        return segments

    def _pair_numbers(self) -> Sequence[int]:
        number = self.selected
        if number is None:
            return ()
        pairing = self.workspace.index.pairing(number)
        if pairing is None:
            return ()
        if pairing.request is not None:
            return (pairing.request,)
        return pairing.replies or ()

    # --- moving ---------------------------------------------------------------------------

    def _scroll_to_cursor(self) -> None:
        """Scroll just enough to show the cursor's row, at once and whether or not the
        scrollbar is up yet. Textual defers a scroll to the next refresh, leaving the offset
        read here stale, and drops one while its scrollbar is hidden (shown only at the next
        layout): the rows emptied for a new filter or the fold, then its rows with the
        cursor on the last while following, left the view at the top, the cursor off
        screen."""
        height = max(1, self.scrollable_content_region.height)
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True, force=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True,
                           force=True)  # fmt: skip

    def _announce(self) -> None:
        number = self.selected
        self._announced = number
        self.post_message(self.Selected(number))

    def move_to_row(self, row: int) -> None:
        self._kept = None  # a move of the user's or a view's own: the pass selects nothing
        count = self.row_count
        if not count:
            return
        self.cursor = max(0, min(count - 1, row))
        self.follow = self.cursor == count - 1 and self.follow
        self._pair_walk = None  # a move of its own ends a walk through the replies
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def select_frame(self, number: int) -> bool:
        """Put the cursor on frame `number`; False when the rows do not show it."""
        row = self.row_of(number)
        if row is None:
            return False
        self.move_to_row(row)
        return True

    def action_move(self, step: int) -> None:
        self.follow = False
        self.move_to_row(self.cursor + step)

    def action_page(self, step: int) -> None:
        self.follow = False
        self.move_to_row(self.cursor + step * max(1, self.size.height - 1))

    def action_go_to(self, row: int) -> None:
        if row < 0:
            self.follow = True
            self.move_to_row(self.row_count - 1)
        else:
            self.follow = False
            self.move_to_row(row)

    def action_pair(self) -> None:
        """A request jumps to its first reply, and each press again to the next one, then
        back to the request; a reply reached otherwise jumps to its request."""
        number = self.selected
        index = self.workspace.index
        pairing = index.pairing(number) if number is not None else None
        walking = self._pair_walk  # the request whose replies `p` is walking, if any
        if number is None or pairing is None or not (pairing.request or pairing.replies):
            self.notify("this frame has no request or reply", severity="warning")
            return
        if walking is None and pairing.request is not None:
            self._pair_jump(pairing.request, None)
            return
        request = walking if walking is not None else number
        walked = index.pairing(request)
        replies = [n for n in (walked.replies or () if walked is not None else ())
                   if self.row_of(n) is not None]  # fmt: skip
        later = [n for n in replies if n > number] if walking is not None else replies
        if not replies:
            self.notify(f"the replies to frame {request} are hidden by the filter",
                        severity="warning")  # fmt: skip
        elif later:
            self._pair_jump(later[0], request)
        else:
            self._pair_jump(request, None)

    def _pair_jump(self, target: int, walking: int | None) -> None:
        """Select `target`; `walking` is the request whose replies the next `p` goes on with."""
        if not self.select_frame(target):
            self.notify(f"frame {target} is hidden by the filter", severity="warning")
            return
        self._pair_walk = walking

    def _walk(self, wanted: set[int] | list[int], step: int, what: str) -> None:
        here = self.selected or 0
        candidates = sorted(n for n in wanted if self.row_of(n) is not None)
        later = [n for n in candidates if (n > here if step > 0 else n < here)]
        if not later:
            self.notify(f"no more {what}", severity="information")
            return
        self.follow = False
        self.select_frame(later[0] if step > 0 else later[-1])

    def action_unanswered(self, step: int = 1) -> None:
        """Requests never answered, replies to unknown TrIDs: the transaction findings (an
        HTTP request's too: HTTP exchanges pair as MSNP ones do)."""
        index = self.workspace.index
        wanted = {n for n, fs in index.findings.items()
                  if any(f.code.startswith("trid.") or f.code == "http.unanswered" for f in fs)}
        self._walk(wanted, step, "unanswered requests or orphan replies")

    def action_next_problem(self, step: int = 1) -> None:
        """The next (`step` 1) or previous (-1) error reply, malformed frame or finding, as
        `u`/`U` walk the unanswered requests and `n`/`N` the search."""
        index = self.workspace.index
        here = self.selected or 0
        rows = range(self.cursor + 1, self.row_count) if step > 0 else range(self.cursor - 1,
                                                                              -1, -1)  # fmt: skip
        for row in rows:
            number = self.number_at(row)
            if number is not None and (index.is_problem(number) or number in index.findings):
                self.follow = False
                self.move_to_row(row)
                return
        where = "after" if step > 0 else "before"
        self.notify(f"no error or finding {where} frame {here}", severity="information")

    def action_bookmark(self) -> None:
        number = self.selected
        if number is None:
            return
        self.bookmarks ^= {number}
        self.refresh()

    def action_next_bookmark(self) -> None:
        """The next bookmark, and after the last the first again (no key goes back)."""
        shown = sorted(n for n in self.bookmarks if self.row_of(n) is not None)
        if not shown:
            self.notify("no bookmarks shown" if self.bookmarks else "no bookmarks: m sets one",
                        severity="information")  # fmt: skip
            return
        here = self.selected or 0
        later = [n for n in shown if n > here]
        if not later:
            self.notify("after the last bookmark: back to the first", severity="information")
        self.follow = False
        self.select_frame(later[0] if later else shown[0])

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self.row_count)
        self._scroll_to_cursor()

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", None)
        if isinstance(y, int):
            self.follow = False
            self.move_to_row(self.scroll_offset.y + y)


def short_flow(flow_id: str) -> str:
    """A flow id cut to FLOW_WIDTH: the start of its name and its connection number, as in
    `escar…#1` (a transcript's `escargot_msnp8_session.transcript.txt#1`; its last eight
    characters, `pt.txt#1`, named no flow a filter or the Sessions tree know)."""
    name, hash_, number = flow_id.rpartition("#")
    tail = hash_ + number if name and len(number) < FLOW_WIDTH - 2 else ""
    return flow_id[: FLOW_WIDTH - 1 - len(tail)] + "…" + tail


def noise(command: str) -> bool:
    """Keep-alives folded away with `z`."""
    return command in ("PNG", "QNG")


