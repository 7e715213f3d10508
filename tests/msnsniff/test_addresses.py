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


def test_two_listeners_given_one_port_are_named() -> None:
    """`serve --listen 127.0.0.1:8080` (the notification server then on 8081, the HTTP
    Passport's default) said "cannot listen on 127.0.0.1:8081: Address already in use", as
    if another program held the port. The clash is named before anything listens."""
    from msnsniff.addresses import distinct_ports
    from msnsniff.errors import MsnsniffError

    distinct_ports({"a": 0, "b": 0, "c": None, "d": None, "e": 1863})  # any free port; off
    with pytest.raises(MsnsniffError) as caught:
        distinct_ports({"dispatch server": 8080, "notification server": 8081,
                        "HTTP Passport": 8081})  # fmt: skip
    assert str(caught.value) == ("the notification server and the HTTP Passport would both "
                                 "listen on port 8081")  # fmt: skip
