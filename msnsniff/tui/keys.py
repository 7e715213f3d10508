"""Running a key's binding from a given widget, whatever has the focus by then."""

from __future__ import annotations

from textual.dom import DOMNode


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
