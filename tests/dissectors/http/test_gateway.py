"""The MSNP HTTP gateway: open, send and poll requests; SessionID chains; carried MSNP."""

from __future__ import annotations

from dissectors.api import Direction
from dissectors.http import HttpRequest, HttpResponse
from dissectors.http.apps import gateway
from tests.dissectors.http.helpers import http_frames

C2S, S2C = Direction.C2S, Direction.S2C

# the shapes of the public protocol notes' examples (hypothetic.org "HTTP Examples")
OPEN = (b"POST http://gateway.messenger.hotmail.com/gateway/gateway.dll?Action=open&Server=NS"
        b"&IP=messenger.hotmail.com HTTP/1.1\r\nAccept: */*\r\nUser-Agent: MSMSGS\r\n"
        b"Host: gateway.messenger.hotmail.com\r\nConnection: Keep-Alive\r\n"
        b"Content-Type: application/x-msn-messenger\r\nContent-Length: 18\r\n\r\n"
        b"VER 5 MSNP8 CVR0\r\n")  # fmt: skip
OPENED = (b"HTTP/1.0 200 OK\r\nServer: Microsoft-IIS/5.0\r\n"
          b"X-MSN-Messenger: SessionID=954547325.13160; GW-IP=207.46.110.18\r\n"
          b"Content-Length: 18\r\nContent-Type: application/x-msn-messenger\r\n"
          b"Proxy-Connection: keep-alive\r\n\r\nVER 5 MSNP8 CVR0\r\n")  # fmt: skip
POLL = (b"POST http://207.46.110.18/gateway/gateway.dll?Action=poll&SessionID=954547325.13160"
        b" HTTP/1.1\r\nHost: 207.46.110.18\r\nContent-Type: application/x-msn-messenger\r\n"
        b"Content-Length: 0\r\n\r\n")  # fmt: skip
POLLED = (b"HTTP/1.1 200 OK\r\nX-MSN-Messenger: SessionID=954547325.32498; GW-IP=207.46.110.18;"
          b" Session=close\r\nContent-Type: application/x-msn-messenger\r\n"
          b"Content-Length: 5\r\n\r\nOUT\r\n")  # fmt: skip


def test_open_then_poll_carry_the_msnp_bytes_per_session() -> None:
    frames = http_frames([(C2S, OPEN), (S2C, OPENED)])
    frames += http_frames([(C2S, POLL), (S2C, POLLED)])
    req, resp, poll, polled = frames
    assert isinstance(req, HttpRequest) and isinstance(resp, HttpResponse)
    assert req.app is not None and req.app.fields["action"] == "open"
    assert req.app.fields["server"] == "NS" and req.carried == ()  # travels with the answer
    assert resp.app is not None and resp.app.fields["session_id"] == "954547325.13160"
    assert resp.app.fields["gw_ip"] == "207.46.110.18"
    assert [(c.key, c.direction, c.data, c.server) for c in resp.carried] == [
        ("954547325.13160", C2S, b"VER 5 MSNP8 CVR0\r\n", "messenger.hotmail.com:1863"),
        ("954547325.13160", S2C, b"VER 5 MSNP8 CVR0\r\n", "messenger.hotmail.com:1863"),
    ]
    assert isinstance(poll, HttpRequest) and isinstance(polled, HttpResponse)
    assert poll.app is not None and poll.app.fields["action"] == "poll" and poll.carried == ()
    (c,) = polled.carried
    assert (c.key, c.rename, c.data, c.end) == (
        "954547325.13160", "954547325.32498", b"OUT\r\n", True)


def test_gateway_problems() -> None:
    info, _ = gateway.decode_request("Action=open&Server=XX", b"VER 1 MSNP8\r\n", "text/plain")
    assert [c for c, _ in info.problems] == [
        "gateway.bad_open", "gateway.bad_open", "gateway.content_type"]
    info, _ = gateway.decode_request("", b"", None)
    assert [c for c, _ in info.problems] == ["gateway.no_session"]
    info, _ = gateway.decode_request("Action=poll&SessionID=1", b"PNG\r\n",
                                     gateway.CONTENT_TYPE)  # fmt: skip
    assert [c for c, _ in info.problems] == ["gateway.poll_body"]
    info, carried = gateway.decode_response(400, (), b"", None)
    assert [c for c, _ in info.problems] == ["gateway.http_error"] and carried == ()


def test_session_header_parsing() -> None:
    assert gateway.session_header("SessionID=1.2; GW-IP=1.2.3.4; Session=close") == {
        "SessionID": "1.2", "GW-IP": "1.2.3.4", "Session": "close"}
