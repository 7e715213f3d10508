"""`Pairing`'s fast constructor builds what the dataclass's own does, still frozen."""

from __future__ import annotations

import dataclasses

import pytest

from msnsniff.session.paired import Pairing
from msnsniff.session.pairing import new_pairing


def test_the_fast_constructor_equals_the_dataclass_one() -> None:
    fast = new_pairing(None, (4, 5), 0.25)
    assert fast == Pairing(replies=(4, 5), rtt=0.25)
    assert (fast.request, fast.replies, fast.rtt) == (None, (4, 5), 0.25)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.rtt = 1.0  # type: ignore[misc]  # read only: must raise


def test_extra_names_only_what_is_known() -> None:
    assert new_pairing(3, None, 0.5).extra() == {"msnp.request": 3, "msnp.rtt": 0.5}
    assert new_pairing(None, (7,), None).extra() == {"msnp.replies": [7]}
    assert Pairing().extra() == {}
