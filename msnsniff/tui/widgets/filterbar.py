"""The display-filter bar: the same language as `-Y`, a mistake pointed at inline."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from msnsniff.errors import MsnsniffError
from msnsniff.session.filter import DisplayFilter, compile_filter
from msnsniff.tui.widgets.textbox import TextBox


class FilterInput(TextBox):
    """The filter bar's box. Enter applies the filter at once and, when it compiles, gives
    the keys to the stream at once (the app's `keys_to_stream`): `f msnp.error` Enter `jj`
    typed fast put jj in the box, as they came before the focus moved; now the box hands
    them on (`TextBox`)."""

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

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="display filter, e.g. msnp.error == 216 or msnp.cmd == "
                          "\"ADD\"   (Enter applies, empty clears)", id="filter-input")
        yield Static("", id="filter-error")

    def set_text(self, text: str) -> None:
        self.query_one(Input).value = text

    def revert(self) -> None:
        """Show the filter in force again (empty if none), and no error: Escape leaves the
        bar, and text that was not applied (a mistake, or an edit) would pass for the
        filter that is, as Wireshark's bar never lets it."""
        self.set_text(self.applied)
        self._clear_error()

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
                error.update(Text(str(exc), style="red"))
                error.add_class("-shown")
                return False
        self._clear_error()
        self.applied = text
        self.post_message(self.Applied(text, display))
        return True
