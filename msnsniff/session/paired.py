"""What pairs with a frame (`Pairing`) and a frame record released with it (`Paired`).

Kept out of `pairing`'s module so that one can be compiled (`setup.py`): the fast
`new_pairing` writes a frozen dataclass's slots through their descriptors, which a compiled
(native) class does not have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, NamedTuple

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


def _pairing_maker() -> Callable[[int | None, tuple[int, ...] | None, float | None], Pairing]:
    make = object.__new__
    set_request, set_replies, set_rtt = (
        slot_setter(name) for name in ("request", "replies", "rtt")
    )

    def new_pairing(
        request: int | None, replies: tuple[int, ...] | None, rtt: float | None
    ) -> Pairing:
        pairing: Pairing = make(Pairing)
        set_request(pairing, request)
        set_replies(pairing, replies)
        set_rtt(pairing, rtt)
        return pairing

    return new_pairing


new_pairing: Final = _pairing_maker()
"""`Pairing(request, replies, rtt)` for the per-frame path: the slots written through their
descriptors, past the frozen dataclass's `object.__setattr__` per field."""
