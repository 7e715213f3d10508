"""The contacts view: an account's lists at any version, the changes that made them, diffs.

What `msnsniff contacts` prints (the timeline, `--at-version`, `--diff A..B`) in one screen:
the timeline on the left (one row per change, with the frame that made it), the lists as
they were after the highlighted change on the right, one row per contact with a mark per
list, and on a second tab the difference between two marked rows. Selecting a timeline row
asks the app to jump the stream to its frame (`FrameRequested`). All facts come from
`ContactLists` and its `AccountHistory`; a history only exists for the accounts the analyzer
was told to keep (`keep_history_for`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from textual.widgets import DataTable, Select, Static, TabbedContent, TabPane

from dissectors.msnp.grammar import BLP_VALUES, GTC_VALUES
from msnsniff.session.contacts import (
    LISTS,
    UNLISTED,
    ContactLists,
    GroupId,
    ListChange,
    ListDiff,
    ListState,
    diff_states,
    expected_version,
    nick_text,
    nickname_changes,
    setting_text,
)
from msnsniff.tui.messages import FrameRequested, request
from msnsniff.tui.widgets.scroll import KeyScroll

STACK_BELOW = 60
"""A view narrower than this puts the lists under the timeline: beside it, at 40 columns
the timeline's half left its change column no room at all (only frames and versions)."""
LIST_STYLE: Mapping[str, str] = {"FL": "green", "AL": "cyan", "BL": "red", "RL": "yellow",
                                 "PL": "magenta"}  # fmt: skip


def _version(change: ListChange) -> Text:
    text = Text("-" if change.version is None else str(change.version))
    if expected_version(change) not in (None, change.version):
        text.append("!", "bold red")  # the version did not step by one: changes were missed
    return text


def describe_change(c: ListChange) -> Text:
    """One timeline row's change, coloured by what it did."""
    nick = f" {c.value!r}" if c.value is not None and c.value != c.contact else ""
    group = f" group {c.group}" if c.group is not None else ""
    kind = c.kind
    if kind == "sync":
        return Text("SYN: the lists sent whole", "bold")
    if kind == "sync_version":
        return Text("SYN: version current, lists not sent", "dim")
    if kind == "groups_sync":
        return Text("LSG: the groups sent whole", "bold")
    if kind == "list_sync":
        return Text.assemble(("LST: the ", "bold"), (f"{c.list}", LIST_STYLE.get(c.list or "", "")),
                             (" sent whole", "bold"))  # fmt: skip
    if kind == "add":
        return Text.assemble(("+ ", "green"), (f"{c.list} ", LIST_STYLE.get(c.list or "", "")),
                             f"{c.contact}{nick}{group}")  # fmt: skip
    if kind == "remove":
        return Text.assemble(("- ", "red"), (f"{c.list} ", LIST_STYLE.get(c.list or "", "")),
                             f"{c.contact}{group}")  # fmt: skip
    if kind == "rename":
        text = Text.assemble(("~ ", "yellow"), f"nickname of {c.contact}: {c.value!r}")
        if c.unlisted:
            text.append(f" ({UNLISTED})", "dim")
        return text
    if kind == "group_add":
        return Text.assemble(("+ ", "green"), f"group {c.group} {c.value!r}")
    if kind == "group_remove":
        return Text.assemble(("- ", "red"), f"group {c.group}")
    if kind == "group_rename":
        return Text.assemble(("~ ", "yellow"), f"group {c.group} {c.value!r}")
    if kind == "setting":
        return Text.assemble(("~ ", "yellow"), f"{c.name} {c.value}")
    return Text.assemble(("~ ", "yellow"), f"PRP {c.name} {c.value!r}")


def _group_names(gids: Iterable[GroupId], groups: Mapping[GroupId, str]) -> str:
    return ", ".join(groups.get(g, f"group {g}") for g in gids)


def render_lists(state: ListState) -> RenderableType:
    """The lists as tables: settings, then one row per contact with a mark per list."""
    version = "?" if state.version is None else str(state.version)
    head = Text.assemble((state.account, "bold"), f"  list version {version}  ")
    if state.complete:
        head.append("complete", "green")
    else:
        head.append("partial: the whole lists were not seen", "yellow")
    if state.gaps:
        head.append(f"  {state.gaps} version gap{'s' * (state.gaps != 1)} since", "red")
    lines: list[RenderableType] = [head]
    if state.nickname is not None:
        lines.append(Text.assemble(("nickname  ", "dim"), state.nickname))
    settings = Text()
    if state.gtc is not None:
        settings.append("GTC ", "dim").append(state.gtc, "bold")
        settings.append(f" ({GTC_VALUES.get(state.gtc, '?')})  ", "dim")
    if state.blp is not None:
        settings.append("BLP ", "dim").append(state.blp, "bold")
        settings.append(f" ({BLP_VALUES.get(state.blp, '?')})", "dim")
    if settings:
        lines.append(settings)
    if state.prp:
        phones = Text("phones  ", "dim")
        for kind, value in state.prp.items():
            phones.append(f"{kind} ", "dim").append(value).append("  ")
        lines.append(phones)
    names = [name for name in LISTS if name in state.lists]
    contacts = sorted({who for name in names for who in state.lists[name]})
    sizes = Text()
    for name in names:
        sizes.append(name, LIST_STYLE.get(name, "")).append(f" {len(state.lists[name])}  ")
    lines += [sizes, Text(),
              ContactTable(state, names, contacts) if contacts
              else Text("no contacts on any list", "dim")]  # fmt: skip
    if state.groups:
        members = {g: 0 for g in state.groups}
        for gids in state.contact_groups.values():
            for g in gids:
                if g in members:
                    members[g] += 1
        group_table = Table(box=None, pad_edge=False, header_style="bold")
        group_table.add_column("group", justify="right")
        group_table.add_column("name")
        group_table.add_column("contacts", justify="right")
        for gid, name in state.groups.items():
            group_table.add_row(str(gid), name, str(members[gid]))
        lines += [Text(), group_table]
    return Group(*lines)


class ContactTable:
    """One row per contact with a mark per list, laid out for the width it is given: the
    contact, its nickname, the marks and its groups side by side where they fit; where they
    do not (the lists have half of 80 columns), the nickname and the groups under the
    contact. Squeezed into one table, the marks' columns were cut to "…" and the last
    list's and the groups' went off the pane: no mark could be told to its list."""

    def __init__(self, state: ListState, names: list[str], contacts: list[str]) -> None:
        self.state, self.names, self.contacts = state, names, contacts

    def _table(self, *, wide: bool) -> Table:
        state, names = self.state, self.names
        table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
        table.add_column("contact", no_wrap=wide)
        if wide:
            table.add_column("nickname", no_wrap=True)
        for name in names:
            table.add_column(name, justify="center", style=LIST_STYLE.get(name, ""),
                             no_wrap=True, min_width=len(name))  # fmt: skip
        if wide:
            table.add_column("groups")  # the one column that wraps when the pane is narrow
        for who in self.contacts:
            nick = state.nicknames.get(who)
            nick = "" if nick is None or nick == who else nick
            marks = ["●" if who in state.lists[name] else "·" for name in names]
            groups = _group_names(state.contact_groups.get(who, ()), state.groups)
            if wide:
                table.add_row(who, nick, *marks, groups)
                continue
            contact = Text(who, overflow="fold")
            for more in (nick, groups):
                if more:
                    contact.append(f"\n  {more}", "dim")
            table.add_row(contact, *marks)
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wide = self._table(wide=True)
        # (the groups may wrap, word by word: the others' columns are never cut)
        least = Measurement.get(console, options.update_width(1 << 16), wide).minimum
        fits = least <= options.max_width
        yield wide if fits else self._table(wide=False)


def render_list_diff(diff: ListDiff, a: ListState, b: ListState) -> RenderableType:
    """A diff as coloured lines: + added, - removed, ~ changed."""
    head = Text.assemble((diff.account, "bold"),
                         f"  version {diff.from_version} → {diff.to_version}")  # fmt: skip
    lines = [head]
    groups = {**a.groups, **b.groups}
    new_nick, renamed = nickname_changes(diff)
    for name, members in diff.added.items():
        lines += [Text.assemble(("+ ", "green"), (f"{name} ", LIST_STYLE.get(name, "")), who,
                                f" {new_nick[who]!r}" if who in new_nick else "")
                  for who in sorted(members)]  # fmt: skip
    for name, members in diff.removed.items():
        lines += [Text.assemble(("- ", "red"), (f"{name} ", LIST_STYLE.get(name, "")), who)
                  for who in sorted(members)]  # fmt: skip
    lines += [Text.assemble(("+ ", "green"), f"group {g} {n!r}")
              for g, n in diff.groups_added.items()]  # fmt: skip
    lines += [Text.assemble(("- ", "red"), f"group {g} {n!r}")
              for g, n in diff.groups_removed.items()]  # fmt: skip
    lines += [Text.assemble(("~ ", "yellow"), f"group {g} {old!r} → {new!r}")
              for g, (old, new) in diff.groups_renamed.items()]  # fmt: skip
    lines += [Text.assemble(("+ ", "green"), f"{who} joined {_group_names(g, groups)}")
              for who, g in diff.joined.items()]  # fmt: skip
    lines += [Text.assemble(("- ", "red"), f"{who} left {_group_names(g, groups)}")
              for who, g in diff.left.items()]  # fmt: skip
    lines += [Text.assemble(("~ ", "yellow"),
                            f"nickname of {who}: {nick_text(old)} → {nick_text(new)}")
              for who, (old, new) in renamed.items()]  # fmt: skip
    lines += [Text.assemble(("~ ", "yellow"), f"{name}: {setting_text(old)} → {setting_text(new)}")
              for name, (old, new) in diff.settings.items()]  # fmt: skip
    if diff.empty:
        lines.append(Text("no change", "dim"))
    return Group(*lines)


class Timeline(DataTable[str | Text]):
    """The timeline table: Home and End go to the first and last change; the footer names
    Enter for what it does here (the table's own said nothing and hid the view's)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "jump", "Jump to frame"),
        Binding("home", "scroll_top", "First change", show=False),
        Binding("end", "scroll_bottom", "Last change", show=False),
    ]

    def action_jump(self) -> None:
        """Enter asks for the change's frame now, not through `RowSelected` (handled a turn
        later, when the keys typed behind Enter are here already: `request`)."""
        view = self.parent
        while view is not None and not isinstance(view, ContactsView):
            view = view.parent
        if view is not None:
            view.action_jump()


class ContactsView(Widget):
    """An account's contact lists through the capture: timeline, lists at a version, diff."""

    DEFAULT_CSS = """
    ContactsView {
        height: 1fr;
        layout: vertical;
    }
    ContactsView #contacts-bar {
        dock: top;
        height: auto;
    }
    ContactsView #contacts-account {
        width: 48;
    }
    ContactsView #contacts-marks {
        width: 1fr;
        padding: 1 2 0 2;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        color: $text-muted;
    }
    ContactsView #contacts-body {
        height: 1fr;
    }
    ContactsView #contacts-timeline {
        width: auto;
        max-width: 50%;
        height: 1fr;
    }
    ContactsView TabbedContent {
        width: 3fr;
        height: 1fr;
    }
    ContactsView TabPane {
        padding: 0 1;
    }
    ContactsView .empty {
        color: $text-muted;
        padding: 1 2;
    }
    ContactsView.-stacked #contacts-body {
        layout: vertical;
    }
    ContactsView.-stacked #contacts-timeline {
        width: 1fr;
        max-width: 100%;
    }
    ContactsView.-stacked TabbedContent {
        width: 1fr;
    }
    ContactsView.-stacked #contacts-account {
        width: 1fr;
    }
    ContactsView.-stacked #contacts-account #label {
        height: 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    ContactsView.-stacked #contacts-marks {
        width: auto;
        padding: 0 0 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "jump", "Jump to frame", show=True),
        Binding("a", "mark_a", "Diff from here (A)"),
        Binding("b", "mark_b", "Diff to here (B)"),
        Binding("x", "clear_marks", "Clear A/B"),
        Binding("l", "show_lists", "Show lists"),
        Binding("d", "show_diff", "Show diff"),
        Binding("left_square_bracket", "account(-1)", "Previous account"),
        Binding("right_square_bracket", "account(1)", "Next account"),
    ]

    def __init__(
        self,
        lists: ContactLists,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._lists = lists
        self._known_accounts: list[str] = []
        self._account: str | None = None
        self._changes: list[ListChange] = []  # the rows of the timeline table
        self._mark_a: int | None = None  # row indices
        self._mark_b: int | None = None
        self._shown: tuple[str | None, int, int | None, int | None] | None = None  # last drawn

    def compose(self) -> ComposeResult:
        with Horizontal(id="contacts-body"):
            yield Timeline(id="contacts-timeline", cursor_type="row", zebra_stripes=True)
            with TabbedContent(id="contacts-tabs"):
                with TabPane("Lists", id="contacts-lists-pane"), KeyScroll():
                    yield Static("", id="contacts-state")
                with TabPane("Diff A → B", id="contacts-diff-pane"), KeyScroll():
                    yield Static("", id="contacts-diff")
        with Horizontal(id="contacts-bar"):  # docked on top, but after the timeline in focus
            yield Select[str]([], prompt="account", id="contacts-account")
            yield Static("", id="contacts-marks")
        yield Static("no contact-list traffic in this capture", classes="empty",
                     id="contacts-empty")  # fmt: skip

    def on_resize(self, event: events.Resize) -> None:
        """Below STACK_BELOW columns the timeline takes the width, the lists go under it, and
        the account picker and the A/B marks share one line: the picker without its border,
        the account cut short, the marks without "(first)" or "(cursor)" (at 40 columns the
        bordered picker wrapped the account, the marks wrapped beside it, and the four lines
        they took left a 12-line terminal no timeline)."""
        stacked = event.size.width < STACK_BELOW
        if stacked != self.has_class("-stacked"):
            self.set_class(stacked, "-stacked")
            self.query_one("#contacts-account", Select).compact = stacked
            self._shown = None  # the marks are written for the layout
            self._show()

    def on_mount(self) -> None:
        table = self._table
        table.add_column(" ", key="mark", width=2)
        table.add_column("frame", key="frame")
        table.add_column("version", key="version")
        table.add_column("change", key="change")
        self.refresh_from()

    @property
    def _table(self) -> Timeline:
        return self.query_one("#contacts-timeline", Timeline)

    @property
    def account(self) -> str | None:
        """The account shown."""
        return self._account

    @property
    def selected_change(self) -> ListChange | None:
        """The timeline row under the cursor: the lists shown are as it left them."""
        row = self._table.cursor_row
        return self._changes[row] if 0 <= row < len(self._changes) else None

    # -- updating ---------------------------------------------------------------------------
    def refresh_from(self, lists: ContactLists | None = None) -> None:
        """Re-read the analyzer (another one when given): call when more frames arrived."""
        if lists is not None:
            self._lists = lists
            self._known_accounts, self._account, self._changes = [], None, []
            self._shown = None
            self._table.clear()
        accounts = self._lists.accounts
        select = self.query_one("#contacts-account", Select)
        if accounts != self._known_accounts:
            self._known_accounts = accounts
            with self.prevent(Select.Changed):
                select.set_options((account, account) for account in accounts)
                if self._account in accounts:
                    select.value = self._account
        empty = not accounts
        self.query_one("#contacts-empty", Static).display = empty
        self.query_one("#contacts-bar").display = not empty
        self.query_one("#contacts-body").display = not empty
        if empty:
            return
        if self._account not in accounts:
            self.select_account(accounts[0])
        else:
            self._extend()
            self._show()

    def select_account(self, account: str) -> None:
        """Show `account`'s lists (one of `ContactLists.accounts`)."""
        if account not in self._lists.accounts:
            raise KeyError(account)
        select = self.query_one("#contacts-account", Select)
        if select.value != account:
            with self.prevent(Select.Changed):
                select.value = account
        self._account = account
        self._changes = []
        self._mark_a = self._mark_b = None
        self._table.clear()
        self._extend()
        self._table.move_cursor(row=len(self._changes) - 1, scroll=True)
        self._show()

    def show_version(self, version: int) -> None:
        """Move to the last timeline row that carried `version`; KeyError if none did."""
        for row in range(len(self._changes) - 1, -1, -1):
            if self._changes[row].version == version:
                self._table.move_cursor(row=row, scroll=True)
                self._show()
                return
        raise KeyError(version)

    def _extend(self) -> None:
        """Add the timeline rows the history gained; follow the end if the cursor was on it."""
        if self._account is None:
            return
        timeline = self._lists.history(self._account).timeline()
        old = len(self._changes)
        if len(timeline) == old:
            return
        table = self._table
        at_end = table.cursor_row >= old - 1
        for index in range(old, len(timeline)):
            change = timeline[index]
            table.add_row(self._mark_text(index), str(change.frame), _version(change),
                          describe_change(change), key=str(index))  # fmt: skip
        self._changes = timeline
        if at_end and old:
            table.move_cursor(row=len(timeline) - 1, scroll=True)

    def _mark_text(self, row: int) -> Text:
        marks = ("A" if row == self._mark_a else "") + ("B" if row == self._mark_b else "")
        return Text(marks, "bold reverse")

    def _pair(self) -> tuple[int, int] | None:
        """The rows to diff: the marks, else the first row and the cursor."""
        if not self._changes:
            return None
        cursor = max(0, min(self._table.cursor_row, len(self._changes) - 1))
        a = self._mark_a if self._mark_a is not None else 0
        b = self._mark_b if self._mark_b is not None else cursor
        return a, b

    def _state(self, row: int) -> ListState:
        assert self._account is not None
        return self._lists.history(self._account).state_at_frame(self._changes[row].frame)

    def _show(self) -> None:
        """Render the lists at the cursor's row and the diff of the pair, if they changed."""
        pair = self._pair()
        key = (self._account, self._table.cursor_row, self._mark_a, self._mark_b)
        if key == self._shown or self._account is None:
            return
        if pair is None:  # logged in, no SYN yet (or never: `msnsniff send`)
            self._shown = key
            self.query_one("#contacts-state", Static).update(Text.assemble(
                (self._account, "bold"), ("  no SYN or list change seen for this account", "dim"),
            ))  # fmt: skip
            self.query_one("#contacts-diff", Static).update("")
            self.query_one("#contacts-marks", Static).update("")
            return
        self._shown = key
        state = self._state(max(0, min(self._table.cursor_row, len(self._changes) - 1)))
        self.query_one("#contacts-state", Static).update(render_lists(state))
        a, b = self._state(pair[0]), self._state(pair[1])
        self.query_one("#contacts-diff", Static).update(render_list_diff(diff_states(a, b), a, b))
        # beside the bordered picker, one line each (one line they wrapped at 80 columns and
        # made the bar a line taller); under it (`on_resize`), both short on its one line
        short = self.has_class("-stacked")
        marks = []
        for name, row, marked in (("A", pair[0], self._mark_a), ("B", pair[1], self._mark_b)):
            change = self._changes[row]
            version = "-" if change.version is None else str(change.version)
            how = "marked" if marked is not None else ("first" if name == "A" else "cursor")
            marks.append(Text.assemble((f"{name} ", "bold"), f"v{version} #{change.frame}",
                                       "" if short else f" ({how})"))  # fmt: skip
        label = Text(" " if short else "\n").join(marks)
        self.query_one("#contacts-marks", Static).update(label)

    # -- events -----------------------------------------------------------------------------
    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str) and event.value != self._account:
            self.select_account(event.value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_jump()

    # -- actions ----------------------------------------------------------------------------
    def action_jump(self) -> None:
        """Jump the stream to the frame that made the change under the cursor."""
        change = self.selected_change
        if change is not None:
            request(self, FrameRequested(change.frame))

    def _set_mark(self, which: str) -> None:
        row = self._table.cursor_row
        if not 0 <= row < len(self._changes):
            return
        old = (self._mark_a, self._mark_b)
        if which == "A":
            self._mark_a = row
        else:
            self._mark_b = row
        for changed in {*old, row} - {None}:
            assert changed is not None
            self._table.update_cell(str(changed), "mark", self._mark_text(changed))
        self._show()

    def action_mark_a(self) -> None:
        """Mark the highlighted version as the diff's start."""
        self._set_mark("A")

    def action_mark_b(self) -> None:
        """Mark the highlighted version as the diff's end, and show the diff."""
        self._set_mark("B")
        self.action_show_diff()

    def action_clear_marks(self) -> None:
        """Diff from the first version to the cursor again."""
        old = {self._mark_a, self._mark_b} - {None}
        self._mark_a = self._mark_b = None
        for row in old:
            assert row is not None
            self._table.update_cell(str(row), "mark", self._mark_text(row))
        self._show()

    def action_show_lists(self) -> None:
        """Show the lists at the highlighted version."""
        self.query_one("#contacts-tabs", TabbedContent).active = "contacts-lists-pane"

    def action_show_diff(self) -> None:
        """Show the diff between versions A and B."""
        self.query_one("#contacts-tabs", TabbedContent).active = "contacts-diff-pane"

    def action_account(self, step: int) -> None:
        """Show the previous or next account. With a single account there is no other: it
        is left as it is (showing it again dropped its A/B marks and moved the cursor)."""
        accounts = self._lists.accounts
        if not accounts:
            return
        index = accounts.index(self._account) if self._account in accounts else 0
        account = accounts[(index + step) % len(accounts)]
        if account == self._account:
            self.notify(f"{account} is the only account in this capture",
                        severity="information", markup=False)  # fmt: skip
            return
        self.select_account(account)
