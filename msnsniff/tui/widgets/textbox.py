"""A one-line text box whose editing keys keep their place among the characters typed.

Textual's `Input` inserts a character when the key reaches it, but runs a bound key (Backspace,
Home, the arrows, ctrl+u, ctrl+w...) only when the key has come back up to the app, by when
the characters typed right behind it are already in: `abc` Backspace `d` typed fast gave
`abc`, ctrl+u `xyz` an empty box. `TextBox` runs its own bindings as the key reaches it,
and hands the keys that reach it after it gave the focus away to the widget that has it.
Escape is one of them: it gives the keys back to the stream (the app's `focus_stream`) in
its turn, so the keys typed behind it go there, not into the box.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import Input

from msnsniff.tui.keys import hand_on


class TextBox(Input):
    """An `Input` that runs its own key bindings in order with the characters typed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.focus_stream", "Back to the stream", show=False),
    ]

    async def on_key(self, event: events.Key) -> None:
        focused = self.app.focused
        if focused is not None and focused is not self:
            # typed behind a key that gave the focus away from here (Enter in the filter bar):
            # the keys go where the focus is now, in the order they came, ahead of the keys
            # typed since (`hand_on`)
            event.stop()
            event.prevent_default()
            hand_on(self, [event])
            return
        if event.is_printable:
            return  # Input inserts it
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            # the app's priority bindings were tried before the key was handed here
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()  # not again when it reaches the app
                event.prevent_default()
                return
