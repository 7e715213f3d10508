"""The help screen: every key of every view, read from their bindings."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import ClassVar, Final

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Static

from msnsniff.tui.widgets.scroll import KeyScroll

# Textual's names of the keys that are shown as their character
KEY_NAMES: Final = MappingProxyType({
    "question_mark": "?",
    "apostrophe": "'",
    "slash": "/",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
})


def _literal(text: str) -> str:
    """`text` as Textual markup that shows it as it is."""
    return text.replace("[", "\\[")


def describe_bindings(title: str, bindings: Iterable[BindingType]) -> str:
    """A section of the help: each binding's keys, as typed, and what it does."""
    lines = [f"[b]{title}[/b]"]
    for b in bindings:
        if isinstance(b, Binding):
            keys, text = b.key, b.description
        else:
            keys, text = b[0], b[2] if len(b) > 2 else b[1]
        keys = ", ".join(KEY_NAMES.get(k, k) for k in keys.split(","))
        lines.append(_literal(f"  {keys:<24} {text}"))  # "[" is a key here, not markup
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
        with KeyScroll(id="help-body"):
            yield Static(f"{text}\n\n{mouse}", id="help-text")
