"""The statistics view: `msnsniff stats` drawn as bar charts rather than tables of numbers.

Commands per direction (a row per command, selectable: it filters the stream to that
command in that direction), round-trip times per request command as p50/p90/p99 bars on one
scale, connections and bytes by kind, the busiest connections, presence changes and
contact-list churn. All numbers come from `Stats` (its counters and `to_json`); bars use the
eighth-block characters, so a bar's end is drawn to an eighth of a cell. A bar takes the
width left beside its figures, up to BAR or WIDE_BAR cells: in a narrow terminal the bars
shrink (each chart on one scale), never the figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Static

from msnsniff.session.stats import PERCENTILES, Stats
from msnsniff.session.webapi import WebStats
from msnsniff.tui.messages import FilterRequested, request
from msnsniff.tui.widgets.scroll import KeyScroll

EIGHTHS = " ▏▎▍▌▋▊▉"
TOP = 12
"""Commands shown per direction until all are asked for."""
BAR = 28
"""Cells of the longest bar in a command histogram."""
WIDE_BAR = 40
"""Cells of the longest bar in the other charts."""
RTT_SHADES = ("█", "▓", "░")
"""p50, p90 and p99 segments of a round-trip bar."""
KIND_STYLE = {"DS": "blue", "NS": "green", "SB": "magenta"}
STACK_BELOW = 60
"""A view narrower than this puts the two command histograms one above the other: side by
side at 40 columns each had 16, and the client's frame counts were cut off."""


def bar(value: float, maximum: float, width: int) -> str:
    """A horizontal bar of `value` on a scale where `maximum` fills `width` cells."""
    if maximum <= 0 or value <= 0:
        return ""
    eighths = max(1, round(min(value, maximum) / maximum * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[part] if part else "")


def rtt_bar(p50: float, p90: float, p99: float, maximum: float, width: int) -> Text:
    """One bar in three shades: solid to p50, then to p90, then light to p99. A round trip
    too short for a cell still gets one, in the shade of its first percentile above 0."""
    values = (p50, p90, p99)
    cells = [max(0, round(v / maximum * width)) if maximum > 0 else 0 for v in values]
    first = next((i for i, v in enumerate(values) if v > 0), None)
    if first is not None:
        cells[first] = max(cells[first], 1)
    for i in (1, 2):
        cells[i] = max(cells[i], cells[i - 1])  # each shade starts where the last ended
    text = Text()
    drawn = 0
    for shade, upto, style in zip(RTT_SHADES, cells, ("cyan", "cyan", "cyan dim"), strict=True):
        if upto > drawn:
            text.append(shade * (upto - drawn), style)
            drawn = upto
    return text


@dataclass(frozen=True, slots=True)
class FitBar:
    """A bar in a rich table, drawn at the width its column is given, up to `cells`: in a
    narrow pane the table shrinks the bar's column (the only one that may wrap) rather than
    cut the figures beside it, and every bar of the column is drawn at the same width, so
    the chart keeps one scale."""

    draw: Callable[[int], Text]  # the bar at that many cells
    cells: int

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, max(1, min(self.cells, options.max_width)))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.draw(max(1, min(self.cells, options.max_width)))


def _cyan_bar(value: float, maximum: float, width: int) -> Text:
    return Text(bar(value, maximum, width), "cyan")


def _ms(seconds: float) -> str:
    """Milliseconds, to the microsecond below 10 ms (loopback round trips are that short)."""
    ms = seconds * 1000
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}" if ms < 1000 else f"{ms:,.0f}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command_filter(cmd: str, direction: str, dialect: int | None = None) -> str:
    """The display filter selecting one command in one direction (and dialect, if given)."""
    expression = f"msnp.cmd == {_quote(cmd)} and dir == {direction}"
    return expression if dialect is None else f"{expression} and msnp.dialect == {dialect}"


def _chart(
    title: str, rows: Sequence[tuple[Text, float, str]], width: int = WIDE_BAR
) -> RenderableType:
    """A titled bar chart: label, bar, figure."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()  # the bars: the column that gives way (`FitBar`)
    grid.add_column(justify="right", no_wrap=True)
    top = max((value for _, value, _ in rows), default=0)
    for label, value, figure in rows:
        grid.add_row(label, FitBar(partial(_cyan_bar, value, top), width), figure)
    return Group(Text(title, "bold"), grid)


class CommandTable(DataTable[str | Text]):
    """A direction's command histogram; the footer names Enter for what it does here (the
    table's own said nothing and hid the view's). The tab's keys come here, so the keys
    that move past its last (or first) command scroll the statistics on (`_page`), and
    Home and End go to the top and the end of them: the table only moved its cursor, and
    the round trips and connections below could not be reached from the keyboard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "filter", "Filter to command"),
        Binding("home", "ends(-1)", "Top of the statistics", show=False),
        Binding("end", "ends(1)", "End of the statistics", show=False),
    ]

    def _page(self) -> KeyScroll | None:
        """The scrolling page the table is on (None: mounted without one)."""
        return next((a for a in self.ancestors if isinstance(a, KeyScroll)), None)

    def _past_end(self, step: int) -> bool:
        """The cursor can go no further that way (or there are no rows)."""
        return self.row_count == 0 or self.cursor_row == (0 if step < 0 else self.row_count - 1)

    def _moved(self) -> None:
        """Scroll the page to the cursor's row, now (fast keys each move from the last)."""
        page = self._page()
        if page is None or self.row_count == 0:
            return
        top = self.virtual_region.y + self.gutter.top + self.header_height + self.cursor_row
        for node in self.ancestors:  # (the table's place on the page, through its boxes)
            if node is page:
                break
            if isinstance(node, Widget):
                top += node.virtual_region.y + node.gutter.top
        top -= int(self.scroll_target_y)
        height = max(1, page.scrollable_content_region.height)
        view = page.scroll_target_y
        if top < view:
            page.scroll_to(y=top, animate=False, immediate=True)
        elif top >= view + height:
            page.scroll_to(y=top - height + 1, animate=False, immediate=True)

    def _step(
        self, step: int, on_page: Callable[[KeyScroll], None], on_table: Callable[[], None]
    ) -> None:
        """A key one way (`step`): past the table's end it scrolls the page on, to the tables
        below or above (`on_page`), else it moves the cursor as the table does (`on_table`)
        and brings its row into view."""
        page = self._page()
        if self._past_end(step) and page is not None:
            on_page(page)
            return
        on_table()
        self._moved()

    def action_cursor_down(self) -> None:
        self._step(1, lambda page: page.action_scroll_down(), super().action_cursor_down)

    def action_cursor_up(self) -> None:
        self._step(-1, lambda page: page.action_scroll_up(), super().action_cursor_up)

    def action_page_down(self) -> None:
        self._step(1, lambda page: page.action_page_down(), super().action_page_down)

    def action_page_up(self) -> None:
        self._step(-1, lambda page: page.action_page_up(), super().action_page_up)

    def action_ends(self, step: int) -> None:
        """Home: the first command, the page at its top; End: the last, the page at its end."""
        if self.row_count:
            self.move_cursor(row=0 if step < 0 else self.row_count - 1, scroll=False)
        page = self._page()
        if page is not None:
            page.scroll_to(y=0 if step < 0 else page.max_scroll_y, animate=False,
                           immediate=True)  # fmt: skip

    def action_filter(self) -> None:
        """Enter asks for the command under the cursor now, not through `RowSelected`
        (handled a turn later, when the keys typed behind Enter are here already: `request`)."""
        view = self.parent
        while view is not None and not isinstance(view, StatsView):
            view = view.parent
        if view is not None:
            view.filter_from(self)

    def on_resize(self, event: events.Resize) -> None:
        """Draw the bars again for the table's new width (`StatsView.bar_cells`)."""
        view = self.parent
        while view is not None and not isinstance(view, StatsView):
            view = view.parent
        if view is not None and len(self.columns) == 3:  # (its columns are added on mount)
            view.fit_bars(self)


class StatsView(Widget):
    """Capture statistics as bar charts; a command row filters the stream to it."""

    DEFAULT_CSS = """
    StatsView {
        height: 1fr;
    }
    StatsView > KeyScroll {
        height: 1fr;
    }
    StatsView #stats-summary {
        padding: 0 1;
        text-style: bold;
    }
    StatsView #stats-commands {
        height: auto;
    }
    StatsView.-stacked #stats-commands {
        layout: vertical;
    }
    StatsView #stats-commands > DataTable {
        width: 1fr;
        height: auto;
        max-height: 40;
        margin: 0 1;
        border: round $primary-darken-2;
    }
    StatsView .stats-section {
        margin: 1 1 0 1;
        height: auto;
    }
    StatsView .empty {
        color: $text-muted;
        padding: 1 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "filter", "Filter to command", show=True),
        Binding("a", "toggle_all", "All/top commands"),
        Binding("o", "toggle_order", "Order by count/name"),
    ]

    def __init__(
        self,
        stats: Stats,
        *,
        web: WebStats | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._stats = stats
        self._web = web  # HTTP: methods, statuses, XML-RPC/REST calls, gateway sessions
        self._all = False
        self._by_name = False
        self._drawn: tuple[object, ...] | None = None
        self._dialects: set[int] = set()

    def compose(self) -> ComposeResult:
        with KeyScroll(id="stats-scroll"):
            yield Static("", id="stats-summary")
            with Horizontal(id="stats-commands"):
                for direction, title in (("c2s", "client → server"), ("s2c", "server → client")):
                    table = CommandTable(
                        id=f"stats-{direction}", cursor_type="row", zebra_stripes=False
                    )
                    table.border_title = title
                    yield table
            yield Static("", id="stats-rtt", classes="stats-section")
            yield Static("", id="stats-flows", classes="stats-section")
            yield Static("", id="stats-other", classes="stats-section")
        yield Static("no MSNP frames in this capture", classes="empty", id="stats-empty")

    def on_mount(self) -> None:
        self.refresh_from()

    def on_resize(self, event: events.Resize) -> None:
        """Stack the command histograms below STACK_BELOW columns, side by side above (and
        draw the round trips again, closer together: `_rtt`)."""
        stacked = event.size.width < STACK_BELOW
        if stacked != self.has_class("-stacked"):
            self.set_class(stacked, "-stacked")
            self._drawn = None
            self.refresh_from()

    def _table(self, direction: str) -> DataTable[str | Text]:
        return self.query_one(f"#stats-{direction}", DataTable)

    # -- updating ---------------------------------------------------------------------------
    def refresh_from(self, stats: Stats | None = None) -> None:
        """Re-read the analyzer (another one when given): call when more frames arrived."""
        if stats is not None:
            self._stats = stats
            self._drawn = None
        s = self._stats
        key = (sum(s.commands.values()), sum(f.frames for f in s.flows.values()), s.malformed,
               s.gaps, s.partial, sum(h.count for h in s.rtt.values()), sum(s.unanswered.values()),
               self._all, self._by_name,
               self._web.bytes if self._web is not None else 0)  # fmt: skip
        if key == self._drawn:
            return
        self._drawn = key
        empty = not s.flows
        self.query_one("#stats-empty", Static).display = empty
        self.query_one("#stats-scroll").display = not empty
        if empty:
            return
        self._dialects = {dialect for _, dialect, _ in s.commands}
        frames = sum(f.frames for f in s.flows.values())
        summary = Text(f"{frames:,} frames on {len(s.flows)} connection"
                       f"{'s' * (len(s.flows) != 1)}")  # fmt: skip
        summary.append(f"   {s.malformed} malformed", "red" if s.malformed else "dim")
        summary.append(f"   {s.gaps} gaps", "red" if s.gaps else "dim")
        if s.partial:  # as `msnsniff stats`: the capture joined connections mid-way, no damage
            summary.append(f"   {s.partial} partial (joined mid-way)", "dim")
        if self._dialects:
            summary.append("   " + ", ".join(f"MSNP{d}" for d in sorted(self._dialects)), "dim")
        self.query_one("#stats-summary", Static).update(summary)
        for direction in ("c2s", "s2c"):
            self._fill(direction)
        self.query_one("#stats-rtt", Static).update(self._rtt())
        self.query_one("#stats-flows", Static).update(self._flows())
        self.query_one("#stats-other", Static).update(self._other())

    def command_rows(self, direction: str) -> list[tuple[str, int, int]]:
        """(command, dialect, frames) of one direction, in the order shown: the TOP busiest
        (all with `a`), by count or, with `o`, by name (the busiest by name, not the first
        names: those hid MSG, the busiest, from server_chat's server table)."""
        rows = [(cmd, dialect, n) for (d, dialect, cmd), n in self._stats.commands.items()
                if d == direction]  # fmt: skip
        rows.sort(key=lambda r: (-r[2], r[0], r[1]))
        if not self._all:
            rows = rows[:TOP]
        if self._by_name:
            rows.sort(key=lambda r: (r[0], r[1]))
        return rows

    def _fill(self, direction: str) -> None:
        table = self._table(direction)
        rows = self.command_rows(direction)
        cursor = table.cursor_row
        # the command under the cursor stays under it when the rows are ordered anew (`o`,
        # live counts overtaking each other), as a sorted packet list keeps its selection
        keys = list(table.rows)
        selected = keys[cursor].value if 0 <= cursor < len(keys) else None
        table.clear(columns=True)  # (a column keeps the width of its widest cell ever)
        table.add_column("command", key="cmd")
        table.add_column("frames", key="count")
        table.add_column("", key="bar")
        top = max((n for _, _, n in rows), default=0)
        several = len(self._dialects) > 1
        labels = [Text(cmd, "bold") for cmd, _, _ in rows]
        if several:
            for label, (_, dialect, _) in zip(labels, rows, strict=True):
                label.append(f" {dialect}", "dim")
        counts = [Text(f"{n:,}", justify="right") for _, _, n in rows]
        cells = self.bar_cells(table, labels, counts)
        for label, count, (cmd, dialect, n) in zip(labels, counts, rows, strict=True):
            table.add_row(label, count, Text(bar(n, top, cells), "cyan"),
                          key=f"{cmd} {dialect}")  # fmt: skip
        total = sum(n for (d, _, _), n in self._stats.commands.items() if d == direction)
        table.border_subtitle = f"{total:,} MSNP frames"  # HTTP requests are not commands
        if rows:
            keep = next((i for i, (cmd, dialect, _) in enumerate(rows)
                         if f"{cmd} {dialect}" == selected), None)  # fmt: skip
            table.move_cursor(row=min(max(cursor, 0), len(rows) - 1) if keep is None else keep)

    @staticmethod
    def bar_cells(table: DataTable[str | Text], labels: Sequence[Text],
                  counts: Sequence[Text]) -> int:  # fmt: skip
        """Cells of the longest bar in `table`: what its width leaves beside the command
        and frames columns (and a vertical scrollbar), up to BAR; BAR before it is laid out
        (its first resize draws the bars again: `CommandTable.on_resize`)."""
        room = table.content_region.width - table.styles.scrollbar_size_vertical
        if room <= 0:
            return BAR
        used = (max([len("command"), *(label.cell_len for label in labels)])
                + max([len("frames"), *(count.cell_len for count in counts)])
                + 3 * 2 * table.cell_padding)  # fmt: skip
        return max(4, min(BAR, room - used))

    def fit_bars(self, table: DataTable[str | Text]) -> None:
        """The table was resized: draw its bars again at the width it has now."""
        self._fill("c2s" if table.id == "stats-c2s" else "s2c")

    def _rtt(self) -> RenderableType:
        rtt = self._stats.rtt
        if not rtt:
            return Text("Round-trip times: no MSNP request was answered", "dim")
        scale = max(h.percentile(99) for h in rtt.values())
        # one space between the columns in a narrow view: with two, at 40 columns the last
        # figures were cut off
        gap = (0, 0, 0, 1) if self.has_class("-stacked") else (0, 1)
        table = Table(box=None, pad_edge=False, header_style="bold", padding=gap)
        # the command's name whole, however narrow the pane (at 40 columns it read "A…")
        table.add_column("cmd", no_wrap=True, min_width=max(3, *map(len, rtt)))
        table.add_column("pairs", justify="right", no_wrap=True)
        legend = " ".join(f"{s} p{p}" for s, p in zip(RTT_SHADES, PERCENTILES, strict=True))
        table.add_column(legend)  # the bars: the column that gives way (`FitBar`)
        for p in PERCENTILES:
            table.add_column(f"p{p} ms", justify="right", no_wrap=True)
        table.add_column("max ms", justify="right", no_wrap=True)
        for cmd, h in sorted(rtt.items()):
            p50, p90, p99 = (h.percentile(p) for p in PERCENTILES)
            drawn = FitBar(partial(rtt_bar, p50, p90, p99, scale), WIDE_BAR)
            table.add_row(cmd, f"{h.count:,}", drawn, _ms(p50), _ms(p90), _ms(p99),
                          _ms(h.high))  # fmt: skip
        parts: list[RenderableType] = [Text("Round-trip time per request command", "bold"),
                                       table]  # fmt: skip
        if self._stats.unanswered:
            text = ", ".join(f"{c} {n}" for c, n in sorted(self._stats.unanswered.items()))
            parts.append(Text.assemble(("unanswered requests: ", "yellow"), text))
        return Group(*parts)

    def _flows(self) -> RenderableType:
        kinds: Counter[str] = Counter()
        volume: Counter[str] = Counter()
        for f in self._stats.flows.values():
            kinds[f.kind] += 1
            volume[f.kind] += f.bytes
        by_kind = [
            (Text(f"{kind:<3}", KIND_STYLE.get(kind, "")), float(volume[kind]),
             f"{volume[kind]:,} bytes in {kinds[kind]} connection{'s' * (kinds[kind] != 1)}")
            for kind in sorted(kinds)
        ]  # fmt: skip
        busiest = sorted(self._stats.flows.values(), key=lambda f: -f.bytes)[:8]
        flows = [
            (Text.assemble((f"{f.kind:<3}", KIND_STYLE.get(f.kind, "")), f" flow {f.flow.id:<6}"),
             float(f.bytes), f"{f.bytes:,} bytes, {f.frames:,} frames"
             + (f", {f.problems} problems" if f.problems else ""))
            for f in busiest
        ]  # fmt: skip
        return Group(_chart("Bytes by connection kind", by_kind), Text(),
                     _chart(f"Busiest connections (top {len(busiest)})", flows))  # fmt: skip

    def _other(self) -> RenderableType:
        s = self._stats
        parts: list[RenderableType] = []
        if s.presence:
            rows = [(Text(f"{cmd} {status}"), float(n), f"{n:,}")
                    for (cmd, status), n in sorted(s.presence.items(),
                                                   key=lambda kv: (-kv[1], kv[0]))]  # fmt: skip
            parts.append(_chart("Presence changes", rows))
        else:
            parts.append(Text("Presence changes: none", "dim"))
        parts.append(Text())
        if s.churn:
            rows = [(Text(f"{cmd} {lst}" if lst != "-" else cmd), float(n), f"{n:,}")
                    for (cmd, lst), n in sorted(s.churn.items(),
                                                key=lambda kv: (-kv[1], kv[0]))]  # fmt: skip
            parts.append(
                _chart("Contact-list changes (server replies that change the lists)", rows)
            )
        else:
            parts.append(Text("Contact-list changes: none", "dim"))
        if self._web is not None and not self._web.empty:
            parts += [Text(), Text(self._web.render())]
        return Group(*parts)

    # -- events and actions -----------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        direction = "c2s" if event.data_table.id == "stats-c2s" else "s2c"
        self._request(direction, event.cursor_row)

    def filter_from(self, table: DataTable[str | Text]) -> None:
        """Filter the stream to the command under `table`'s cursor, in its direction."""
        self._request("c2s" if table.id == "stats-c2s" else "s2c", table.cursor_row)

    def _request(self, direction: str, row: int) -> None:
        rows = self.command_rows(direction)
        if 0 <= row < len(rows):
            cmd, dialect, _ = rows[row]
            several = len(self._dialects) > 1
            request(self, FilterRequested(command_filter(cmd, direction,
                                                         dialect if several else None)))

    def action_filter(self) -> None:
        """Filter the stream to the highlighted command in its direction."""
        focused = self.screen.focused
        for direction in ("c2s", "s2c"):
            table = self._table(direction)
            if focused is table:
                self._request(direction, table.cursor_row)

    def action_toggle_all(self) -> None:
        """Show every command, or the busiest ones only."""
        self._all = not self._all
        self.refresh_from()

    def action_toggle_order(self) -> None:
        """Order the commands by frame count or by name."""
        self._by_name = not self._by_name
        self.refresh_from()

