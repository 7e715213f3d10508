"""Running a key's binding from a given widget, whatever has the focus by then; handing
keys on to where the focus is now, in order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from textual import events
from textual.dom import DOMNode


@runtime_checkable
class HoldsKeys(Protocol):
    """A widget that may hold the keys handed to it while one of them waits (`ChatList`)."""

    def hold(self, key: events.Key) -> bool:
        """Keep `key` to run in its turn; False when nothing waits (run it now)."""
        ...


@runtime_checkable
class HandsOn(Protocol):
    """An app that hands keys on in order (`MsnsniffApp.hand_on`)."""

    def hand_on(self, keys: Iterable[events.Key]) -> None: ...


def hand_on(node: DOMNode, keys: Iterable[events.Key]) -> None:
    """Give `keys` (typed to a widget that no longer has the focus) to the app again, as
    keys just typed, ahead of the keys typed since: through the app's `hand_on` when it
    has one (a view mounted alone in a test's app: posted to it, in order)."""
    app = node.app
    if isinstance(app, HandsOn):
        app.hand_on(keys)
        return
    for key in keys:
        app.post_message(events.Key(key.key, key.character))


async def run_binding(node: DOMNode, key: str, *, priority: bool = False) -> bool:
    """Run the first binding of `key` found from `node` up through its containers to the app,
    as Textual does when a key comes back up from the focused widget, but from `node`: the
    keys typed ahead belong to the widget they were typed to, not to where the focus is when
    they are run. Priority bindings are left out (they ran as the key arrived), unless
    `priority`: a key that waited its turn there (the app's `_waits_its_turn`) tries them
    first, from the app down, as Textual does as a key arrives. False when no binding took
    the key."""
    app = node.app
    if priority:
        for each in reversed(node.ancestors_with_self):
            for binding in each._bindings.key_to_bindings.get(key, ()):
                if binding.priority and await app.run_action(binding.action, each):
                    return True
    for each in node.ancestors_with_self:
        for binding in each._bindings.key_to_bindings.get(key, ()):
            if not binding.priority and await app.run_action(binding.action, each):
                return True
    return False


async def run_in_turn(node: DOMNode, keys: list[events.Key]) -> None:
    """Run `keys`, held by `node` while a key before them waited, in order from `node`
    (the app's priority keys among them too: `run_binding`); once one moves the keys to
    another widget, the rest go there (`hand_on`), as keys just typed."""
    for i, key in enumerate(keys):
        focused = node.app.focused
        await run_binding(node, key.key, priority=True)
        if node.app.focused is not focused:
            hand_on(node, keys[i + 1 :])
            return
