"""The dissector registry: in-tree and third-party dissectors, by entry point.

Dissectors register under the entry-point group `msnsniff.dissectors` (the in-tree MSNP
dissector too, in pyproject.toml). When the package runs from a source tree without being
installed the group is empty, so the in-tree dissectors are added as a fallback. A plugin
that cannot be loaded (its module missing or failing on import, naming something that is
not a dissector class, or a name an in-tree dissector or an earlier plugin has) is left out
with one line on stderr, so a broken third-party package does not stop msnsniff reading
anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from dissectors.api import Dissector

ENTRY_POINT_GROUP = "msnsniff.dissectors"

DissectorFactory = Callable[[], Dissector]


def _builtin() -> dict[str, Any]:
    from dissectors.http import HttpDissector
    from dissectors.msnp import MsnpDissector

    return {"msnp": MsnpDissector, "http": HttpDissector}


def load_dissectors() -> Mapping[str, Any]:
    """Name -> dissector class, from entry points plus the in-tree fallback; a plugin that
    cannot be loaded is left out (`unloadable_plugins` says which and why)."""
    found: dict[str, Any] = _builtin()
    for ep in _plugins(found):
        if ep.name in found:  # a name is one dissector's: the in-tree one's, or the first's
            continue
        with contextlib.suppress(Exception):  # a third party's import may raise anything
            loaded = ep.load()
            if _not_a_dissector(loaded) is None:
                found[ep.name] = loaded
    return found


def unloadable_plugins() -> list[str]:
    """One line for each installed plugin whose module cannot be loaded, naming it and why
    (the command line prints them once, before it starts)."""
    out = []
    builtin = _builtin()
    names: dict[str, str] = {}  # name -> the entry point that has it
    for ep in _plugins(builtin):
        try:
            why = _not_a_dissector(ep.load())
        except Exception as exc:  # a third party's import may raise anything
            why = f"{type(exc).__name__}: {exc}"
        if ep.name in builtin:
            why = (f"{ep.name} is the name of msnsniff's own dissector (its frames are what "
                   "the analyses read); register the plugin under another name")
        elif ep.name in names:
            why = f"{names[ep.name]} has the name {ep.name} already"
        elif why is None:
            names[ep.name] = ep.value
        if why is not None:
            out.append(f"plugin {ep.name} ({ep.value}) not loaded: {why}")
    return out


_METHODS = ("feed", "next_frame", "drain", "gap", "sniff")  # what `Dissector` asks for


def _not_a_dissector(obj: Any) -> str | None:
    """Why an entry point's object cannot be a dissector class; None when it can."""
    if not isinstance(obj, type):
        return f"it names a {type(obj).__name__}, not a dissector class"
    missing = [name for name in _METHODS if not callable(getattr(obj, name, None))]
    if missing:
        return f"{obj.__name__} is not a dissector: it has no {', '.join(missing)}"
    return None


def _plugins(builtin: Mapping[str, Any]) -> list[EntryPoint]:
    """The entry points to load, by name: all but those that name an in-tree dissector
    again."""
    eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP)
           if not (ep.name in builtin and ep.value.startswith("dissectors."))]  # fmt: skip
    # by name, not in the order the distributions are found on sys.path: of two dissectors
    # claiming a flow alike, the first registered reads it, the same on every machine
    return sorted(eps, key=lambda ep: (ep.name, ep.value))
