"""The chat view: every switchboard conversation, and the selected one as a chat log.

What `msnsniff chat` prints, as one would have seen it in the client: each message in the
sender's font colour and effects (bold, italic...), the font named beside it; joins, leaves,
typing and nudges as dim lines; file invitations with the file's name and size; messages
the switchboard could not deliver marked. Live, a conversation whose log is scrolled to its
end follows the messages as they come. All facts come from `Conversations` (its
`Message.color` is already "#rrggbb": the wire's BGR was turned around there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from msnsniff.session.analysis import clock
from msnsniff.session.chat_events import (
    Called,
    ChatEvent,
    Conversation,
    Invitation,
    Joined,
    Left,
    Message,
    Nudge,
    OtherMessage,
    P2PChunk,
    Typing,
)
from msnsniff.session.conversations import Conversations
from msnsniff.tui.keys import run_in_turn
from msnsniff.tui.messages import FilterRequested, FrameRequested, request
from msnsniff.tui.widgets.scroll import KeyScroll
from msnsniff.tui.widgets.sessions import flow_filter

SENDER_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")
"""Sender names are coloured by their order of appearance in the conversation."""
EFFECTS = {"bold": "bold", "italic": "italic", "underline": "underline",
           "strikethrough": "strike"}  # fmt: skip
"""Message.effects word -> Rich style."""
MIN_LUMINANCE = 0.18
"""Font colours darker than this would vanish on a dark terminal: drawn on a light ground."""
LIGHT_GROUND = "grey85"


def _luminance(colour: str) -> float:
    """Relative luminance (0 black .. 1 white) of "#rrggbb"."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _valid_colour(colour: str | None) -> str | None:
    if colour is None or len(colour) != 7 or colour[0] != "#":
        return None
    try:
        int(colour[1:], 16)
    except ValueError:
        return None
    return colour.lower()


def message_style(message: Message) -> Style:
    """The Rich style of a message's text from its IM format (colour, effects)."""
    style = Style()
    colour = _valid_colour(message.color)
    if colour is not None:
        dark = _luminance(colour) < MIN_LUMINANCE
        style += Style(color=colour, bgcolor=LIGHT_GROUND if dark else None)
    for effect in message.effects:
        name = EFFECTS.get(effect.lower())
        if name is not None:
            style += Style.parse(name)
    return style


def _format_tag(message: Message) -> Text:
    """The message's format, dim, with a swatch of its colour."""
    tag = Text()
    parts = [p for p in (message.font, *message.effects) if p]
    colour = _valid_colour(message.color)
    if not parts and colour is None:
        return tag
    tag.append("  ")
    if colour is not None:
        dark = _luminance(colour) < MIN_LUMINANCE
        tag.append("■", Style(color=colour, bgcolor=LIGHT_GROUND if dark else None))
        tag.append(" ")
    tag.append(" · ".join([*parts, *([colour] if colour else [])]), "dim")
    return tag


Row = tuple[Text, Text, Text]
"""A chat-log row: time, who (or a mark for events), what."""


class _Painter:
    """Turns one conversation's events into chat-log rows."""

    def __init__(self, conversation: Conversation, show_format: bool) -> None:
        self.show_format = show_format
        self.colours: dict[str | None, str] = {}
        for p in conversation.participants:
            self.sender_style(p.account)

    def sender_style(self, who: str | None) -> str:
        if who not in self.colours:
            self.colours[who] = SENDER_COLOURS[len(self.colours) % len(SENDER_COLOURS)]
        return f"bold {self.colours[who]}"

    def name(self, who: str | None) -> Text:
        return Text(who or "(me)", self.sender_style(who))

    @staticmethod
    def time(ts: float | None) -> Text:
        return Text(clock(ts, millis=False), "dim")

    def note(self, ts: float | None, mark: str, who: str | None, what: str) -> Row:
        """A dim line about someone: joined, left, typing, nudged."""
        body = Text.assemble((who or "(me)", self.colours.get(who, "")), what, style="dim")
        return self.time(ts), Text(mark, "dim"), body

    def message(self, e: Message) -> Row:
        body = Text(e.text.replace("\r\n", "\n"), message_style(e))
        if self.show_format:
            body.append_text(_format_tag(e))
        if e.delivered is False:
            body.append("  ✗ not delivered", "bold red")
        return self.time(e.ts), self.name(e.sender), body

    def event(self, e: ChatEvent) -> Row | None:
        if isinstance(e, Message):
            return self.message(e)
        if isinstance(e, Joined):
            return self.note(e.ts, "→", e.who, " is here" if e.how == "IRO" else " joined")
        if isinstance(e, Called):
            outcome = "" if e.error is None else f": {e.meaning} ({e.error})"
            return self.note(e.ts, "☎", e.caller, f" calls {e.invitee or '?'}{outcome}")
        if isinstance(e, Left):
            return self.note(e.ts, "←", e.who, " left")
        if isinstance(e, Typing):
            return self.note(e.ts, "…", e.who, " is typing")
        if isinstance(e, Nudge):
            return self.note(e.ts, "!", e.who, " sent a nudge")
        if isinstance(e, Invitation):
            return self.time(e.ts), Text("⇪", "bold yellow"), self.invitation(e)
        if isinstance(e, OtherMessage) and e.detail:
            return self.note(e.ts, "*", e.sender, f" {e.detail}")
        return None

    def invitation(self, e: Invitation) -> Text:
        body = self.name(e.sender)
        verb = {"INVITE": " offers ", "ACCEPT": " accepts ", "CANCEL": " cancels "}
        body.append(verb.get(e.command or "", " sends an invitation message about "))
        if e.file_name:
            body.append("the file ").append(e.file_name, "bold")
            if e.file_size is not None and e.command == "INVITE":
                body.append(f" ({e.file_size:,} bytes)")
        else:
            body.append(e.application or "an application", "bold")
        if e.command == "CANCEL" and e.cancel_code:
            body.append(f" ({e.cancel_code})", "dim")
        return body

    def p2p(self, chunks: list[P2PChunk]) -> Row:
        first = chunks[0]
        size = sum(c.size or 0 for c in chunks)
        what = f" ({first.application})" if first.application else ""
        n = len(chunks)
        return self.note(first.ts, "⇄", first.sender,
                         f" sent P2P data{what}: session {first.session_id}, "
                         f"{n} chunk{'s' * (n != 1)}, {size:,} bytes")  # fmt: skip


MIN_TEXT = 30
"""Columns a chat log's text needs beside the time and the senders' column; with fewer,
the sender goes on the text's line."""


@dataclass(frozen=True, slots=True)
class ChatLog:
    """Chat-log rows as a grid: time, who (right-aligned), what. In a pane where that would
    leave the text fewer than MIN_TEXT columns (80x24 left it 19: "nobody@example.co",
    "m: invalid"), time, then who and what on one line, as `msnsniff chat` prints them."""

    rows: tuple[Row, ...]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        times = max((when.cell_len for when, _, _ in self.rows), default=0)
        who = max((name.cell_len for _, name, _ in self.rows), default=0)
        compact = options.max_width - times - who - 2 < MIN_TEXT
        log = Table.grid(padding=(0, 1), expand=True)
        log.add_column(no_wrap=True)
        if not compact:
            log.add_column(no_wrap=True, justify="right")
        log.add_column(ratio=1, overflow="fold")
        for when, name, what in self.rows:
            if compact:
                log.add_row(when, Text.assemble(name, " ", what))
            else:
                log.add_row(when, name, what)
        yield log


def render_conversation(conversation: Conversation, *, show_format: bool = True) -> Group:
    """The chat log: a header, then one row per event (P2P runs summarised)."""
    c = conversation
    painter = _Painter(c, show_format)
    head = Text.assemble(("session ", "dim"), (c.session_id or "?", "bold"),
                         ("  flow ", "dim"), c.flow.id, ("  ", ""))  # fmt: skip
    head.append_text(painter.name(c.account))
    others = sorted({p.account for p in c.participants if p.account and p.account != c.account})
    if others:
        head.append(" with ")
        for i, who in enumerate(others):
            head.append(", " if i else "").append_text(painter.name(who))
    rows: list[Row] = []
    run: list[P2PChunk] = []
    for e in c.events:
        if isinstance(e, P2PChunk):
            if run and (run[0].sender, run[0].session_id) != (e.sender, e.session_id):
                rows.append(painter.p2p(run))
                run = []
            run.append(e)
            continue
        if run:
            rows.append(painter.p2p(run))
            run = []
        row = painter.event(e)
        if row is not None:
            rows.append(row)
    if run:
        rows.append(painter.p2p(run))
    parts: list[RenderableType] = [head, Text(), ChatLog(tuple(rows))]
    if not c.complete:
        parts.append(Text("(the connection is still open)", "dim italic"))
    return Group(*parts)


def conversation_label(conversation: Conversation) -> Text:
    """A conversation's line in the list: who, with whom, when, how many messages."""
    c = conversation
    others = sorted({p.account for p in c.participants if p.account and p.account != c.account})
    label = Text(c.account or "(unknown user)", "bold")
    if others:
        label.append(" ⇄ " + ", ".join(others))
    n = c.message_count
    label.append(f"\n  {clock(c.started, millis=False)}  flow {c.flow.id}  "
                 f"{n} message{'s' * (n != 1)}", "dim")  # fmt: skip
    return label


class ChatList(OptionList):
    """The conversations. PageUp and PageDown that come before the list is laid out (`4`
    PageUp typed fast: the tab's key shows it and gives it the keys at once) wait for the
    layout: Textual's OptionList pages from its options' lines, which it has not counted
    yet, and it raised KeyError, ending the app. A list with no height at all (a terminal
    a few rows high) has no page to move by: the key does nothing. The keys handed to the
    list behind a waiting page key wait with it and run in order after it (`hold`, which
    the app asks): `4` PageDown Up typed fast ran the Up first and ended on the last
    conversation, not the one before it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._waiting: list[events.Key] | None = None  # keys behind a waiting page key

    def hold(self, key: events.Key) -> bool:
        """Keep `key` while a page key waits for the layout (False: none waits)."""
        if self._waiting is None:
            return False
        self._waiting.append(key)
        return True

    def action_page_up(self) -> None:
        self._page(-1)

    def action_page_down(self) -> None:
        self._page(1)

    def _page(self, direction: int) -> None:
        if self.scrollable_content_region:
            self._page_now(direction)
            return
        if self._waiting is None:  # not laid out: at the next refresh
            self._waiting = []
            self.call_after_refresh(self._page_laid_out, direction)

    async def _page_laid_out(self, direction: int) -> None:
        """The list is laid out (or has no height, which the next refresh will not change:
        no page to move by): page, then run the keys that waited behind the page key."""
        held, self._waiting = self._waiting or [], None
        if self.scrollable_content_region:
            self._page_now(direction)
        await run_in_turn(self, held)

    def _page_now(self, direction: int) -> None:
        if direction < 0:
            super().action_page_up()  # type: ignore[no-untyped-call]
        else:
            super().action_page_down()  # type: ignore[no-untyped-call]


def _signature(conversations: Iterable[Conversation]) -> tuple[tuple[str, int, bool], ...]:
    return tuple((c.flow.id, c.event_count, c.complete) for c in conversations)


class ChatView(Widget):
    """Conversations on the left, the highlighted one as a chat log on the right."""

    DEFAULT_CSS = """
    ChatView {
        height: 1fr;
        layout: horizontal;
    }
    ChatView > #chat-list {
        width: 42;
        max-width: 40%;
        height: 1fr;
    }
    ChatView > #chat-scroll {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
    }
    ChatView > .empty {
        color: $text-muted;
        padding: 1 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "filter", "Filter to conversation"),
        Binding("g", "jump", "Jump to its first frame"),
        Binding("t", "toggle_format", "Show/hide fonts"),
        Binding("left_square_bracket", "step(-1)", "Previous conversation"),
        Binding("right_square_bracket", "step(1)", "Next conversation"),
    ]

    def __init__(
        self,
        conversations: Conversations,
        *,
        expand: Callable[[Conversation], Conversation] | None = None,
        carried_by: Callable[[str], Iterable[str]] = lambda _flow_id: (),
        show_format: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._source = conversations
        self._expand = expand  # a summary's events, when the analyzer keeps summaries only
        self._carried_by = carried_by  # a gateway switchboard's HTTP connections
        self._items: list[Conversation] = []
        self._signature: tuple[tuple[str, int, bool], ...] = ()
        self._show_format = show_format
        self._drawn: tuple[str, int, bool, bool] | None = None  # (flow, events, complete, fmt)

    def compose(self) -> ComposeResult:
        yield ChatList(id="chat-list")
        with KeyScroll(id="chat-scroll"):
            yield Static("", id="chat-log")
        yield Static("no conversations in this capture", classes="empty", id="chat-empty")

    def on_mount(self) -> None:
        self.refresh_from()

    @property
    def _list(self) -> OptionList:
        return self.query_one("#chat-list", OptionList)

    @property
    def selected(self) -> Conversation | None:
        """The conversation shown."""
        index = self._list.highlighted
        return self._items[index] if index is not None and index < len(self._items) else None

    # -- updating ---------------------------------------------------------------------------
    def refresh_from(self, conversations: Conversations | None = None) -> None:
        """Re-read the analyzer (another one when given): call when more frames arrived."""
        if conversations is not None:
            self._source = conversations
            self._signature, self._drawn = (), None
        items = self._source.conversations()
        signature = _signature(items)
        if signature != self._signature:
            olist = self._list
            current = self.selected
            self._items, self._signature = items, signature
            with self.prevent(OptionList.OptionHighlighted):
                olist.clear_options()
                olist.add_options(Option(conversation_label(c), id=c.flow.id) for c in items)
                keep = current.flow.id if current is not None else None
                index = next((i for i, c in enumerate(items) if c.flow.id == keep), 0)
                olist.highlighted = index if items else None
        empty = not items
        self.query_one("#chat-empty", Static).display = empty
        self._list.display = not empty
        self.query_one("#chat-scroll").display = not empty
        self._draw()

    def select_flow(self, flow_id: str) -> None:
        """Show the conversation of switchboard connection `flow_id`."""
        for index, c in enumerate(self._items):
            if c.flow.id == flow_id:
                self._list.highlighted = index
                self._draw()
                return
        raise KeyError(flow_id)

    def _draw(self) -> None:
        c = self.selected
        if c is None:
            return
        key = (c.flow.id, c.event_count, c.complete, self._show_format)
        if key == self._drawn:
            return
        scroll = self.query_one("#chat-scroll", KeyScroll)
        # the same conversation, grown (live): it follows its end if the log was there (or
        # fitted), as a chat window does; another conversation starts at its beginning
        same = self._drawn is not None and self._drawn[0] == c.flow.id
        follow = same and scroll.scroll_y >= scroll.max_scroll_y
        self._drawn = key
        if self._expand is not None:
            c = self._expand(c)
        self.query_one("#chat-log", Static).update(
            render_conversation(c, show_format=self._show_format)
        )
        if follow:
            scroll.scroll_end(animate=False)  # once the longer log is laid out
        elif not same:
            scroll.scroll_home(animate=False, immediate=True)

    # -- events and actions -----------------------------------------------------------------
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self._draw()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.query_one("#chat-scroll", KeyScroll).focus()

    def action_filter(self) -> None:
        """Filter the stream to this conversation's switchboard connection."""
        c = self.selected
        if c is not None:
            request(self, FilterRequested(flow_filter([c.flow.id], self._carried_by)))

    def action_jump(self) -> None:
        """Jump the stream to the conversation's first frame."""
        c = self.selected
        if c is not None:
            request(self, FrameRequested(c.first_frame))

    def action_toggle_format(self) -> None:
        """Show or hide each message's font, effects and colour code."""
        self._show_format = not self._show_format
        self._draw()

    def action_step(self, step: int) -> None:
        """Show the previous or next conversation."""
        if self._items:
            index = self._list.highlighted or 0
            self._list.highlighted = (index + step) % len(self._items)
            self._draw()

