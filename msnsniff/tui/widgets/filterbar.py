"""The display-filter bar: the same language as `-Y`, a mistake pointed at inline."""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from msnsniff.errors import MsnsniffError
from msnsniff.session.filter import DisplayFilter, FilterError, compile_filter
from msnsniff.tui.widgets.textbox import TextBox


class PointedError:
    """A filter mistake as a line of the filter with a caret under its column, the line cut
    to the width it is drawn in around that column: wrapped, a filter wider than the bar
    left the caret under another part of it (or under nothing)."""

    def __init__(self, error: FilterError) -> None:
        self.error = error

    def __str__(self) -> str:
        return str(self.error)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 8)
        error = self.error
        flat = "".join(" " if c in "\t\r\n\v\f" else c for c in error.text)
        before = flat[: max(error.column - 1, 0)]
        start = 0
        if cell_len(flat) > width and cell_len(before) > width * 2 // 3:
            # a line wider than the bar: the column about two thirds across
            while start < len(before) and cell_len("…" + before[start:]) > width * 2 // 3:
                start += 1
        lead = "…" if start else ""
        line = lead + flat[start:]
        if cell_len(line) > width:
            line = set_cell_size(line, width - 1) + "…"
        caret = cell_len(lead + before[start:])
        yield Text(line, style="red", no_wrap=True, overflow="crop")
        yield Text(" " * caret + "^ " + error.message, style="red")


HISTORY_KEPT = 100
"""Filters the bar remembers for Up and Down (the oldest are forgotten first)."""


class FilterInput(TextBox):
    """The filter bar's box. Enter applies the filter at once and, when it compiles, gives
    the keys to the stream at once (the app's `keys_to_stream`): `f msnp.error` Enter `jj`
    typed fast put jj in the box, as they came before the focus moved; now the box hands
    them on (`TextBox`). Up and Down walk the filters applied before (`FilterBar.recall`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "recall(-1)", "Earlier filter", show=False),
        Binding("down", "recall(1)", "Later filter", show=False),
    ]

    def action_recall(self, step: int) -> None:
        bar = self.parent
        if isinstance(bar, FilterBar):
            bar.recall(step)

    async def action_submit(self) -> None:
        bar = self.parent
        if isinstance(bar, FilterBar) and bar.apply(self.value):
            await self.app.run_action("keys_to_stream")


class FilterBar(Vertical):
    """An input for a display filter; posts `Applied` with the compiled filter (or None)."""

    class Applied(Message):
        def __init__(self, text: str, display: DisplayFilter | None) -> None:
            super().__init__()
            self.text = text
            self.display = display

    def __init__(self) -> None:
        super().__init__()
        self.applied = ""  # the filter in force, as the bar shows it again on Escape
        # the filters applied, oldest first, each once (Up and Down: `recall`)
        self.history: list[str] = []
        self._recalled: int | None = None  # the history entry shown (None: the typed text)
        self._typed = ""  # the text typed before Up, shown again after the last entry

    def compose(self) -> ComposeResult:
        # (fits 80 columns: the box cuts a hint with no sign; `f` and the help say the rest)
        yield FilterInput(placeholder="filter, e.g. msnp.error == 216 (Enter applies, empty "
                          "clears, ↑ earlier ones)", id="filter-input")
        yield Static("", id="filter-error")

    def set_text(self, text: str) -> None:
        self.query_one(Input).value = text

    def revert(self) -> None:
        """Show the filter in force again (empty if none), and no error: Escape leaves the
        bar, and text that was not applied (a mistake, or an edit) would pass for the
        filter that is, as Wireshark's bar never lets it."""
        self.set_text(self.applied)
        self._recalled = None
        self._clear_error()

    def recall(self, step: int) -> None:
        """Show the filter applied before the one shown (`step` -1) or after it (1), as a
        shell's history does: after the last, the text typed before the walk began; the
        oldest and that text stay where they are."""
        if not self.history:
            return
        box = self.query_one(Input)
        at = len(self.history) if self._recalled is None else self._recalled
        to = max(0, min(len(self.history), at + step))
        if to == at:
            return
        if self._recalled is None:
            self._typed = box.value
        self._recalled = None if to == len(self.history) else to
        box.value = self._typed if self._recalled is None else self.history[to]
        box.cursor_position = len(box.value)

    def _clear_error(self) -> None:
        error = self.query_one("#filter-error", Static)
        error.update("")
        error.remove_class("-shown")

    def apply(self, text: str) -> bool:
        """Apply `text` (empty: no filter); False when it does not compile (said inline)."""
        text = text.strip()
        display = None
        if text:
            try:
                display = compile_filter(text)
            except MsnsniffError as exc:
                error = self.query_one("#filter-error", Static)
                error.update(PointedError(exc) if isinstance(exc, FilterError) and exc.text
                             else Text(str(exc), style="red"))  # fmt: skip
                error.add_class("-shown")
                return False
        self._clear_error()
        self.applied = text
        self._recalled = None
        if text:
            if text in self.history:
                self.history.remove(text)
            self.history = [*self.history, text][-HISTORY_KEPT:]
        self.post_message(self.Applied(text, display))
        return True
