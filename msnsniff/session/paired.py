"""What pairs with a frame (`Pairing`) and a frame record released with it (`Paired`).

Kept out of `pairing`'s module so that one can be compiled (`setup.py`): its fast
`new_pairing` writes a frozen dataclass's slots through their descriptors (`slot_setter`),
which a compiled (native) class does not have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from msnsniff.session.capture_session import FrameRecord


@dataclass(frozen=True, slots=True)
class Pairing:
    """What pairs with a frame: for a reply its request (and the time since it), for a
    request its replies (and the time to the first)."""

    request: int | None = None
    replies: tuple[int, ...] | None = None
    rtt: float | None = None

    def extra(self) -> dict[str, object]:
        """The pairing as display-filter values (`msnp.request`, `msnp.replies`, `msnp.rtt`)."""
        out: dict[str, object] = {}
        if self.request is not None:
            out["msnp.request"] = self.request
        if self.replies is not None:
            out["msnp.replies"] = list(self.replies)
        if self.rtt is not None:
            out["msnp.rtt"] = self.rtt
        return out


class Paired(NamedTuple):
    """A frame record with its pairing, as the outputs print it."""

    record: FrameRecord
    pairing: Pairing | None


def slot_setter(name: str) -> Callable[[Pairing, object], None]:
    """The `__set__` of `Pairing`'s slot `name`: writes it past the frozen `__setattr__`."""
    setter: Callable[[Pairing, object], None] = vars(Pairing)[name].__set__
    return setter
