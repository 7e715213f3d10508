"""The dissector registry: in-tree and third-party dissectors, by entry point.

Dissectors register under the entry-point group `msnsniff.dissectors` (the in-tree MSNP
dissector too, in pyproject.toml). When the package runs from a source tree without being
installed the group is empty, so the in-tree dissectors are added as a fallback. A plugin
that cannot be loaded (its module missing or failing on import) is left out with one line on
stderr, so a broken third-party package does not stop msnsniff reading anything.
"""

from __future__ import annotations

import multiprocessing
import sys
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
    """Name -> dissector class, from entry points plus the in-tree fallback."""
    found: dict[str, Any] = _builtin()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found and ep.value.startswith("dissectors."):
            continue
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # a third party's import may raise anything
            _left_out(ep, exc)
    return found


_SAID: set[str] = set()


def _left_out(ep: EntryPoint, exc: Exception) -> None:
    """Say once per run (not again in worker processes) that a plugin was left out."""
    text = f"plugin {ep.name} ({ep.value}) not loaded: {type(exc).__name__}: {exc}"
    if text not in _SAID and multiprocessing.parent_process() is None:
        _SAID.add(text)
        sys.stderr.write(f"msnsniff: {text}\n")
