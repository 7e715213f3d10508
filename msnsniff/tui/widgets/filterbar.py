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


class FilterBar(Vertical):
    """An input for a display filter; posts `Applied` with the compiled filter (or None)."""

    class Applied(Message):
        def __init__(self, text: str, display: DisplayFilter | None) -> None:
            super().__init__()
            self.text = text
            self.display = display

    def compose(self) -> ComposeResult:
        yield TextBox(placeholder="display filter, e.g. msnp.error == 216 or msnp.cmd == \"ADD\""
                    "   (Enter applies, empty clears)", id="filter-input")
        yield Static("", id="filter-error")

    def set_text(self, text: str) -> None:
        self.query_one(Input).value = text

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply(event.value)

    def apply(self, text: str) -> None:
        error = self.query_one("#filter-error", Static)
        text = text.strip()
        if not text:
            error.update("")
            error.remove_class("-shown")
            self.post_message(self.Applied("", None))
            return
        try:
            display = compile_filter(text)
        except MsnsniffError as exc:
            error.update(Text(str(exc), style="red"))
            error.add_class("-shown")
            return
        error.update("")
        error.remove_class("-shown")
        self.post_message(self.Applied(text, display))
