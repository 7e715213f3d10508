"""The LiveJournal XML-RPC server of seed 001, over a real socket with the stdlib client."""

from __future__ import annotations

import hashlib
import xmlrpc.client
from collections.abc import Iterator
from typing import Any

import pytest

from msnsniff.client.webapi import LiveJournalClient
from msnsniff.server.ljxmlrpc import LiveJournalXmlRpc


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.fixture
def client() -> Iterator[LiveJournalClient]:
    server = LiveJournalXmlRpc({"test": "test"}, recipients={"alice", "carol"})
    assert server.server.server_address[0] == "127.0.0.1"
    server.start()
    client = LiveJournalClient(("127.0.0.1", server.port))
    try:
        yield client
    finally:
        client.close()
        server.close()


BASE: dict[str, Any] = {"to": ["alice", "carol"], "subject": "Test", "body": "hello"}


def test_sendmessage_answers_one_msgid_per_recipient_in_order(client: LiveJournalClient) -> None:
    got = client.call("sendmessage", {"username": "test", "password": "test", **BASE})
    assert got["sent_count"] == 2 and len(got["msgid"]) == 2
    assert got["msgid"][0] < got["msgid"][1]


def test_challenge_response_is_single_use(client: LiveJournalClient) -> None:
    challenge = client.call("getchallenge")["challenge"]
    args = {"username": "test", "auth_method": "challenge", "auth_challenge": challenge,
            "auth_response": md5(challenge + md5("test")), **BASE}  # fmt: skip
    assert client.call("sendmessage", args)["sent_count"] == 2
    with pytest.raises(xmlrpc.client.Fault) as fault:
        client.call("sendmessage", args)
    assert fault.value.faultCode == 101


@pytest.mark.parametrize(("change", "code"), [
    ({"password": "wrong"}, 101),
    ({"hpassword": md5("test"), "password": None}, None),
    ({"username": "nobody"}, 100),
    ({"subject": "s" * 256}, 209),
    ({"subject": "s" * 255}, None),
    ({"subject": "a\nb"}, 209),
    ({"body": "b" * 5001}, 209),
    ({"body": "b" * 5000}, None),
    ({"to": "alice"}, 203),
    ({"to": ["alice", "nobody"]}, 206),
    ({"subject": None}, 200),
    ({"auth_method": "kerberos"}, 203),
])  # fmt: skip
def test_each_documented_limit(client: LiveJournalClient, change: dict[str, Any],
                               code: int | None) -> None:  # fmt: skip
    args = {k: v for k, v in {"username": "test", "password": "test", **BASE, **change}.items()
            if v is not None}  # fmt: skip
    if code is None:
        assert client.call("sendmessage", args)["sent_count"] == len(args["to"])
        return
    with pytest.raises(xmlrpc.client.Fault) as fault:
        client.call("sendmessage", args)
    assert fault.value.faultCode == code


def test_the_recorded_scenario_runs(client: LiveJournalClient) -> None:
    out = client.scenario()
    assert out[:3] == ["ok 2 " + out[0].split(" ", 2)[2], *out[1:3]]
    assert out[3] == "fault 101" and out[4] == "fault 101"  # reused; wrong answer
    assert [o.split()[0] for o in out[5:]] == ["fault"] * 7 + ["ok"]


def test_a_bad_request_line_is_not_written_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """The stdlib handler wrote a bad request line (which may hold a password in its query)
    to stderr, although the server is built never to log requests."""
    import socket

    server = LiveJournalXmlRpc({"test": "test"})
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"POST /interface/xmlrpc?password=hunter2 HTTP/1.1 junk\r\n\r\n")
            answer = sock.recv(4096)
    finally:
        server.close()
    assert b"400" in answer  # refused, as before
    assert capfd.readouterr().err == ""  # it wrote "code 400, message Bad request ..."
