"""`HOST:PORT` as the command line, XFR and RNG write it: one parser for every command."""

from __future__ import annotations

import pytest

from msnsniff.addresses import parse, reached, show


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


def test_reached_names_the_address_a_client_of_a_wildcard_connected_to() -> None:
    """A listener on a named host names itself; on a wildcard, the server's own address the
    client reached (an IPv4 client of a dual-stack `::` listener by its IPv4 address, as
    MSN clients know no other); without the socket's address, the wildcard as given."""
    assert reached("127.0.0.2", ("127.0.0.9", 1863)) == "127.0.0.2"
    assert reached("0.0.0.0", ("127.0.0.2", 1863)) == "127.0.0.2"
    assert reached("::", ("::ffff:127.0.0.2", 1863, 0, 0)) == "127.0.0.2"
    assert reached("::", ("::1", 1863, 0, 0)) == "::1"
    assert reached("::", ("::ffff:abcd", 1863, 0, 0)) == "::ffff:abcd"  # not an IPv4 one
    assert reached("0.0.0.0", None) == "0.0.0.0"
