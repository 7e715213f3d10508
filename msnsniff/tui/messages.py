"""Textual messages the side views post to the app: narrow the stream, or jump in it.

The views never act on the stream themselves (they do not know it); they say what the user
asked for and the app decides. Both messages bubble, carry read-only data and compare by it.
"""

from __future__ import annotations

from rich.repr import Result
from textual.message import Message


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
