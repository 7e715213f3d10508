"""How a batch command (read, expert, stats, ...) sets Python's cycle collector, and why.

A batch run allocates millions of short-lived objects that hold no reference cycles (frames,
records, decoded fields, JSON objects: refcounting frees each at once) while the analyzers'
state grows old beside them. With the default thresholds the collector starts a young pass
every 700 net allocations and, as the old heap grows, walks all of it again and again:
2.6-3.8 s of `read -j 1 -T jsonl` on the 1M benchmark capture (20-28 s), for next to
nothing found. Here what start-up made (modules, grammar tables) is frozen out of the
collector's reach, and a young pass waits for 50,000 net allocations. Memory stays where it
was (48 MiB peak on that capture either way) because the per-flow and per-payload cycles
that the collector used to clean up are gone (the MSNP dissector and the P2P header parse);
any cycle left is still collected, only in bigger, rarer passes.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Final

YOUNG_THRESHOLD: Final = 50_000


@contextlib.contextmanager
def batch_collector() -> Iterator[None]:
    """The collector set for a batch run, and set back afterwards (tests run commands in
    one process)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
