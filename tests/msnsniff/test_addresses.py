"""`HOST:PORT` as the command line, XFR and RNG write it: one parser for every command."""

from __future__ import annotations

import pytest

from msnsniff.addresses import parse, show


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:1863", ("127.0.0.1", 1863)),
        ("[::1]:1864", ("::1", 1864)),
        ("::1:1864", ("::1", 1864)),
        ("host:0", ("host", 0)),
        ("host:65536", None),
        ("127.0.0.1", None),
        (":1863", None),
        ("host:", None),
        ("host:²", None),  # str.isdigit says yes to it; int() does not
        ("host:١٨٦٣", None),  # Arabic-Indic digits: int() would read them as 1863
    ],
)
def test_parse(text: str, expected: tuple[str, int] | None) -> None:
    assert parse(text) == expected


def test_show_brackets_ipv6_only() -> None:
    assert (show("127.0.0.1", 1), show("::1", 2)) == ("127.0.0.1:1", "[::1]:2")
