"""The dissector registry: in-tree and third-party dissectors, by entry point.

Dissectors register under the entry-point group `msnsniff.dissectors` (the in-tree MSNP
dissector too, in pyproject.toml). When the package runs from a source tree without being
installed the group is empty, so the in-tree dissectors are added as a fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
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
        found[ep.name] = ep.load()
    return found
