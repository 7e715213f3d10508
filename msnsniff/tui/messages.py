"""The side views' requests to the app: narrow the stream, or jump in it.

The views never act on the stream themselves (they do not know it); they say what the user
asked for (`request`) and the app decides. Both requests are Textual messages: they bubble,
carry read-only data and compare by it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from rich.repr import Result
from textual.message import Message
from textual.widget import Widget


class FilterRequested(Message):
    """Show only the frames a display-filter expression selects (e.g. `flow == "12"`)."""

    __slots__ = ("_expression",)

    def __init__(self, expression: str) -> None:
        self._expression = expression
        super().__init__()

    @property
    def expression(self) -> str:
        """The display filter, in the language of `msnsniff.session.filter`."""
        return self._expression

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FilterRequested) and other._expression == self._expression

    def __hash__(self) -> int:
        return hash((FilterRequested, self._expression))

    def __rich_repr__(self) -> Result:
        yield "expression", self._expression


class FrameRequested(Message):
    """Move the stream view to the frame with this number (the capture's frame number)."""

    __slots__ = ("_number",)

    def __init__(self, number: int) -> None:
        self._number = number
        super().__init__()

    @property
    def number(self) -> int:
        """The frame number, as `FrameRecord.no` and the filter field `frame.number`."""
        return self._number

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrameRequested) and other._number == self._number

    def __hash__(self) -> int:
        return hash((FrameRequested, self._number))

    def __rich_repr__(self) -> Result:
        yield "number", self._number


@runtime_checkable
class AnswersAtOnce(Protocol):
    """An app that answers a side view's request as it is made (the msnsniff app)."""

    def answer(self, sender: Widget, request: FilterRequested | FrameRequested) -> None:
        """Act on `request`, made by `sender` (a side view), now."""


def request(sender: Widget, message: FilterRequested | FrameRequested) -> None:
    """Ask for `message`: an app that `AnswersAtOnce` is called now, within the key that
    asked (Enter, Chat's f or g), any other gets the message, bubbling from `sender`. A
    message is handled a turn later, by when the keys typed right behind that key have been
    handed to the view too (`2` Enter `j` typed fast: j went to the Sessions tree, not to the
    stream the filter showed); answered now, the app hands them on (`MsnsniffApp.on_key`)."""
    app = sender.app
    if isinstance(app, AnswersAtOnce):
        app.answer(sender, message)
    else:
        sender.post_message(message)
