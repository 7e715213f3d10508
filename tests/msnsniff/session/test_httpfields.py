"""The display filter's http.*, xmlrpc.* and fbrest.* fields on the bundled captures."""

from __future__ import annotations

from pathlib import Path

import pytest

from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.session.capture_session import CaptureSession
from msnsniff.session.filter import compile_filter, describe_fields

CAPTURES = Path(__file__).resolve().parents[3] / "captures"


def count(name: str, text: str) -> int:
    display = compile_filter(text)
    session = CaptureSession(load_dissectors())
    return sum(display.matches(r) for r in session.run(open_source(CAPTURES / f"{name}.pcap")))


@pytest.mark.parametrize(("name", "text", "n"), [
    ("http_xmlrpc", "http.method == POST", 15),
    ("http_xmlrpc", "http.status == 200 and http.app == xmlrpc", 15),
    ("http_xmlrpc", 'xmlrpc.method == "LJ.XMLRPC.getchallenge"', 4),
    ("http_xmlrpc", "xmlrpc.type == fault", 9),
    ("http_xmlrpc", "xmlrpc.fault.code == 209", 3),
    ("http_xmlrpc", 'xmlrpc.member.subject matches "\\n"', 1),
    ("http_xmlrpc", "xmlrpc.member.sent_count == 2", 4),
    # a fault's struct members by their names on the wire (they matched nothing)
    ("http_xmlrpc", "xmlrpc.member.faultCode == 101", 3),
    ("http_xmlrpc", "xmlrpc.member.faultCode in {200..209}", 6),
    ('http_xmlrpc', 'xmlrpc.member.faultString contains "Invalid password"', 3),
    ("http_xmlrpc", "xmlrpc.member.faultCode and xmlrpc.type != fault", 0),
    ("http_xmlrpc", 'http.problem == "xmlrpc.body_html"', 1),
    ("http_xmlrpc", 'http.header.Content-Type contains "xml"', 30),
    ("http_fbrest", "fbrest.error in {101 102 103 104 292 1100 1101 1102}", 8),
    ("http_fbrest", 'fbrest.error.meaning contains "too long"', 2),
    ("http_fbrest", "fbrest.param.recipient == 42", 1),
    ("http_fbrest", 'fbrest.method == "facebook.liveMessage.send"', 22),
    ("http_gateway", "http.gateway.action == open", 8),
    ("http_gateway", 'http.header.X-MSN-Messenger contains "Session=close"', 4),
    ("http_gateway", 'proto == msnp and msnp.cmd == MSG and flow matches "/gw"', 8),
    ("http_gateway", "http.malformed", 0),
    ("server_chat", "http.method or xmlrpc.method or fbrest.error", 0),
])  # fmt: skip
def test_http_fields(name: str, text: str, n: int) -> None:
    assert count(name, text) == n


def test_the_fields_are_listed() -> None:
    listed = describe_fields()
    for name in ("http.method", "http.header.<Name>", "xmlrpc.member.<name>", "fbrest.error",
                 "fbrest.param.<name>"):  # fmt: skip
        assert name in listed


@pytest.mark.parametrize(("name", "text", "n"), [
    ("http_gateway", "http", 70),
    ("http_gateway", "msnp", 69),  # the MSNP inside the gateway's bodies
    ("http_gateway", "msnp and not http", 69),
    ("http_gateway", "xmlrpc or fbrest", 0),
    ("http_xmlrpc", "xmlrpc and dir == s2c", 15),
    ("http_fbrest", "fbrest", 22),
    ("server_chat", "http", 0),
])  # fmt: skip
def test_a_protocol_name_is_a_filter_as_in_wireshark(name: str, text: str, n: int) -> None:
    assert count(name, text) == n


def _shown(name: str, text: str) -> list[str]:
    """The `read -Y text` lines of a bundled capture (pairing included)."""
    import contextlib
    import io

    from msnsniff.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["read", "-Y", text, str(CAPTURES / f"{name}.pcap")]) == 0
    return out.getvalue().splitlines()


@pytest.mark.parametrize(("name", "text", "n"), [
    ("http_xmlrpc", "msnp.rtt > 0 or msnp.request or msnp.replies", 0),  # no MSNP here
    ("http_xmlrpc", "http.time > 0", 15),  # on the response only, as in Wireshark
    ("http_xmlrpc", "http.response_in", 15),
    ("http_xmlrpc", "http.request_in and dir == s2c", 15),
    # the MSNP inside the gateway's bodies (an open's first command and its answers too: 9)
    ("http_gateway", "msnp.rtt > 0 and not http", 55),
    ("http_gateway", "http.time > 0 and msnp", 0),
])  # fmt: skip
def test_pairing_fields_belong_to_their_protocol(name: str, text: str, n: int) -> None:
    """`msnp.rtt` matched every paired HTTP frame; an HTTP exchange now has Wireshark's
    `http.time`, `http.request_in` and `http.response_in`."""
    assert len(_shown(name, text)) == n


def test_http_request_in_names_the_request() -> None:
    first = _shown("http_xmlrpc", "http.request_in == 1")
    assert len(first) == 1 and "s2c" in first[0] and "reply to #1" in first[0]
