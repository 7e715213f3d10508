"""Percent-decoding: the same bytes as the standard library's, for any input."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dissectors.msnp.percent import HEX_PAIRS, unquote_bytes


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Alice%20Smith", b"Alice Smith"),
        (b"%e2%98%BA", "\u263a".encode()),
        (b"100%", b"100%"),  # a trailing % stays
        (b"%zz%4", b"%zz%4"),  # not two hex digits: kept as written
        (b"%%41", b"%A"),
        (b"no escapes", b"no escapes"),
        (b"", b""),
    ],
)
def test_examples(raw: bytes, expected: bytes) -> None:
    assert unquote_bytes(raw) == expected


def test_every_pair_of_digits_either_case() -> None:
    assert len(HEX_PAIRS) == 22 * 22
    for value in range(256):
        for digits in (f"{value:02x}", f"{value:02X}"):
            assert unquote_bytes(f"%{digits}".encode()) == bytes((value,))


# percent signs and hex digits made likely, so escapes (valid, cut short, bad) are common
_pieces = st.one_of(st.just(b"%"), st.sampled_from([b"0", b"9", b"a", b"F", b"g", b"G"]),
                    st.binary(max_size=4))  # fmt: skip


@given(st.lists(_pieces, max_size=30).map(b"".join))
def test_same_as_the_standard_library(raw: bytes) -> None:
    assert unquote_bytes(raw) == unquote_to_bytes(raw)
