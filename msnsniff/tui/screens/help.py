"""The help screen: every key of every view, read from their bindings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def describe_bindings(title: str, bindings: Iterable[BindingType]) -> str:
    lines = [f"[b]{title}[/b]"]
    for b in bindings:
        if isinstance(b, Binding):
            keys, text = b.key, b.description
        else:
            keys, text = b[0], b[2] if len(b) > 2 else b[1]
        keys = ", ".join(k.replace("question_mark", "?").replace("apostrophe", "'")
                         .replace("slash", "/") for k in keys.split(","))  # fmt: skip
        lines.append(f"  {keys:<24} {text}")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Lists every key; Escape or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help"),
    ]

    def __init__(self, sections: list[tuple[str, Iterable[BindingType]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        text = "\n\n".join(describe_bindings(t, b) for t, b in self.sections)
        mouse = ("[b]Mouse[/b]\n  click a row to select it, the wheel scrolls, click a tab to "
                 "open it, click a tree node to select it")  # fmt: skip
        with VerticalScroll(id="help-body"):
            yield Static(f"{text}\n\n{mouse}", id="help-text")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
