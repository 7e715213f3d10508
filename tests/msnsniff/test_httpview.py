"""HTTP frames in `read`'s JSON and text, in the TUI's words, and with --redact."""

from __future__ import annotations

import json
from pathlib import Path

from dissectors.api import Direction
from dissectors.http.frames import HttpMalformed, HttpRequest
from msnsniff.capture import Flow
from msnsniff.capture.sources import open_source
from msnsniff.capture.write import PcapWriter, TcpConversation
from msnsniff.httpview import describe
from msnsniff.output import record_to_json, record_to_jsonl, record_to_text
from msnsniff.registry import load_dissectors
from msnsniff.session.analysis import Analysis, Finding, Severity
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.describe import describe as stream_words
from msnsniff.session.webapi import WebApis

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def records(name: str) -> list[FrameRecord]:
    session = CaptureSession(load_dissectors())
    return list(session.run(open_source(CAPTURES / f"{name}.pcap")))


def test_json_of_a_call_and_its_answer() -> None:
    call, answer = records("http_xmlrpc")[:2]
    one = record_to_json(call)
    assert (one["proto"], one["cmd"], one["args"]) == ("http", "POST", ["/interface/xmlrpc"])
    assert one["fields"]["method"] == "LJ.XMLRPC.sendmessage"
    assert one["credentials"] == ["members.password"]
    assert one["payload"]["app"] == "xmlrpc" and one["length"] == len(call.frame.raw)
    two = json.loads(record_to_jsonl(answer))
    assert two["cmd"] == "200" and two["http"]["request_offset"] == 0
    assert two["fields"]["value"]["sent_count"] == 2


def test_redact_hides_credentials_and_bodies_that_carry_them() -> None:
    call = records("http_xmlrpc")[0]
    out = record_to_json(call, redact=True)
    assert out["fields"]["members"]["password"] == "<redacted>"
    assert out["payload"]["body"] == "<redacted>"
    line = record_to_text(call, redact=True)  # the call in words, its password left out
    assert line.endswith("  [XML-RPC LJ.XMLRPC.sendmessage test → alice, carol]")
    assert line.count("test") == 1  # the sample's password is its user name, "test"
    fb = record_to_json(records("http_fbrest")[0], redact=True)
    assert fb["fields"]["params"]["sig"] == fb["fields"]["params"]["session_key"] == "<redacted>"


def test_redact_hides_the_gateway_session_id_everywhere() -> None:
    """The HTTP gateway's SessionID lets whoever holds it send and poll as the user: like a
    switchboard cookie, it is a credential, in the fields, the target, headers and words."""
    recs = [r for r in records("http_gateway") if r.proto == "http"]
    ids = {r.frame.app.fields["session_id"] for r in recs  # type: ignore[attr-defined]
           if r.frame.app.fields.get("session_id")}  # type: ignore[attr-defined]
    assert len(ids) > 3
    for r in recs:
        out = json.dumps(record_to_json(r, redact=True)) + record_to_text(r, redact=True)
        assert not [i for i in ids if i in out], r.no
        plain = record_to_json(r, redact=False)
        if plain["fields"].get("session_id"):
            assert plain["credentials"] == ["session_id"]
    send = next(r for r in recs
                if isinstance(r.frame, HttpRequest) and "SessionID=" in r.frame.target)
    assert "gateway send <redacted>" in record_to_text(send, redact=True)


def test_redact_hides_tickets_and_credential_parameters_in_heads_and_targets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "passport.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 8081))
        conv.open(1.0)
        conv.send(1.1, True, b"GET /login.srf?lc=1033&pwd=hunter2&sig='abc' HTTP/1.1\r\n"
                             b"Host: login\r\nAuthorization: Passport1.4 pwd=hunter2\r\n\r\n")
        conv.send(1.2, False, b"HTTP/1.1 200 OK\r\nAuthentication-Info: Passport1.4 "
                              b"da-status=success,from-PP='t=TICKET&p=PROFILE',ru=http://x/\r\n"
                              b"Content-Length: 0\r\n\r\n")
    session = CaptureSession(load_dissectors())
    request, response = [r for r in session.run(open_source(path)) if r.proto == "http"]
    plain = json.dumps([record_to_json(request), record_to_json(response)])
    assert "hunter2" in plain and "t=TICKET&p=PROFILE" in plain  # shown to who asked
    asked = record_to_json(request, redact=True)
    assert asked["args"] == ["/login.srf?lc=1033&pwd=<redacted>&sig='<redacted>'"]
    assert dict(asked["http"]["headers"])["authorization"] == "<redacted>"
    answer = record_to_json(response, redact=True)
    assert dict(answer["http"]["headers"])["authentication-info"] == (
        "Passport1.4 da-status=success,from-PP='<redacted>',ru=http://x/"
    )
    assert answer["http"]["request_target"] == asked["args"][0]
    hidden = json.dumps([asked, answer]) + record_to_text(request, redact=True)
    assert "hunter2" not in hidden and "TICKET" not in hidden and "abc" not in hidden


def test_redact_hides_gateway_bodies_whose_msnp_is_shown_redacted_as_frames() -> None:
    recs = records("http_gateway")
    ticket = next(r for r in recs if r.proto == "msnp" and r.frame.raw.startswith(b"USR")
                  and b" S t=" in r.frame.raw)  # fmt: skip
    secret = ticket.frame.raw.split(b" S ", 1)[1].split(b"\r\n")[0].decode()
    plain = [record_to_json(r) for r in recs if r.proto == "http"]
    assert any(secret in (o["payload"] or {}).get("body", "") for o in plain)
    redacted = "\n".join(record_to_jsonl(r, redact=True) for r in recs)
    assert secret not in redacted
    assert record_to_json(ticket, redact=True)["args"] == ["TWN", "S", "<redacted>"]


def test_text_lines_and_stream_words() -> None:
    recs = records("http_fbrest")
    assert "REST facebook.liveMessage.send → 563683308" in record_to_text(recs[0])
    assert stream_words(recs[1].frame) == "200 OK  REST answer 1"
    # values as name=value words, not Python's repr ({'sent_count': 2, 'msgid': [...]})
    answer = record_to_text(records("http_xmlrpc")[1])
    assert "XML-RPC answer to LJ.XMLRPC.sendmessage: sent_count=2 msgid=102365,102366]" in answer
    words = [stream_words(r.frame) for r in records("http_gateway") if r.proto == "http"]
    assert words[0].startswith("POST /gateway/gateway.dll  gateway open NS 127.0.0.1:")
    assert any(w.endswith("closed (0 MSNP bytes)") for w in words)


def test_malformed_http() -> None:
    frame = HttpMalformed(Direction.C2S, 5, b"\x00junk\n", "not a request line", 6)
    record = FrameRecord(1, None, Flow("1"), "http", frame)
    out = record_to_json(record)
    assert out["malformed"] == {"reason": "not a request line"} and out["length"] == 6
    assert "MALFORMED at offset 5, 6 bytes" in record_to_text(record)
    assert describe(frame) == "6 bytes not HTTP: not a request line"


def test_a_malformed_request_or_response_says_what_it_is() -> None:
    """A POST whose chunked body is bad was "71 bytes not HTTP", in read, expert and the
    TUI, though its head was a request (the answer pairs with it): it says so now."""
    post = HttpMalformed(Direction.C2S, 0, b"POST /a", "illegal chunk header", 71, "POST")
    answer = HttpMalformed(Direction.S2C, 0, b"HTTP/1.1 200", "illegal chunk header", 61,
                           request_offset=0)
    record = FrameRecord(2, None, Flow("1"), "http", post)
    assert "[MALFORMED at offset 0, 71 bytes (POST request, its body): illegal chunk header]" \
        in record_to_text(record)
    assert describe(post) == "POST request of 71 bytes, its body malformed: illegal chunk header"
    assert describe(answer) == "response of 61 bytes, its body malformed: illegal chunk header"
    findings: list[Finding] = []
    checks = WebApis(findings.append)
    checks.feed(record)
    assert [f.message for f in findings] == [
        "the POST request at offset 0 (71 bytes) has a malformed body: illegal chunk header"]


def test_redact_hides_authorization_headers() -> None:
    req = (b"GET /login HTTP/1.1\r\nHost: h\r\nAuthorization: Passport1.4 sign-in=a,pwd=pw\r\n"
           b"\r\n")  # fmt: skip
    from tests.dissectors.http.helpers import http_frames

    (frame,) = http_frames([(Direction.C2S, req)])
    record = FrameRecord(1, None, Flow("1"), "http", frame)
    assert "pwd=pw" in json.dumps(record_to_json(record))
    assert "pwd=pw" not in json.dumps(record_to_json(record, redact=True))


def test_redact_hides_the_session_key_and_secret_an_answer_hands_out(tmp_path: Path) -> None:
    from msnsniff.cli import main

    body = (b"<auth_getSession_response><session_key>SESSIONKEY-1</session_key><uid>42</uid>"
            b"<secret>SESSIONSECRET-1</secret></auth_getSession_response>")  # fmt: skip
    json_body = b'{"session_key": "SESSIONKEY-2", "uid": 42, "secret": "SESSIONSECRET-2"}'
    call = b"method=facebook.auth.getSession&api_key=k&v=1.0&auth_token=t&call_id=%d&sig=x"
    path = tmp_path / "getsession.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 80))
        conv.open(1.0)
        for i, (answer, ctype) in enumerate([(body, b"text/xml"),
                                             (json_body, b"application/json")]):  # fmt: skip
            form = call % i
            conv.send(2.0 + i, True, b"POST /restserver.php HTTP/1.1\r\nHost: api\r\nContent-Type:"
                      b" application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                      % len(form) + form)  # fmt: skip
            conv.send(2.5 + i, False, b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype +
                      b"\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer)  # fmt: skip
        conv.close(4.0)
    session = CaptureSession(load_dissectors())
    recs = [r for r in session.run(open_source(path)) if r.proto == "http"]
    shown = "\n".join(record_to_jsonl(r, redact=True) + record_to_text(r, redact=True)
                      for r in recs)  # fmt: skip
    assert "SESSION" not in shown
    assert "SESSIONKEY-1" in record_to_text(recs[1])  # shown to who did not ask to hide it
    copy = tmp_path / "copy.pcap"
    assert main(["redact", str(path), str(copy)]) == 0
    data = copy.read_bytes()
    assert b"SESSION" not in data and b"<session_key>redacted-session_key-" in data


def test_redact_hides_credential_parameters_in_bodies_no_application_claims() -> None:
    """A form posted to a path none of the sub-dissectors knows (LiveJournal's flat
    interface) still carries a password: --redact hides its value as `msnsniff redact`
    does, and leaves the rest of the body readable."""
    from tests.dissectors.http.helpers import http_frames

    form = b"mode=login&user=test&password=hunter2&ver=1"
    req = (b"POST /interface/flat HTTP/1.1\r\nHost: lj\r\nContent-Type: application/"
           b"x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(form) + form)
    (frame,) = http_frames([(Direction.C2S, req)])
    record = FrameRecord(1, None, Flow("1"), "http", frame)
    assert "hunter2" in json.dumps(record_to_json(record))
    body = record_to_json(record, redact=True)["payload"]["body"]
    assert body == "mode=login&user=test&password=<redacted>&ver=1"


def test_redact_hides_an_ljsession_answer_and_a_facebook_login_pass(tmp_path: Path) -> None:
    """LiveJournal's `sessiongenerate` hands out a login session cookie (`ljsession`), and
    Facebook's login form posts the password as `pass`: neither was a credential, so both
    redactors printed and copied them."""
    from msnsniff.cli import main

    call = (b"<?xml version='1.0'?><methodCall><methodName>LJ.XMLRPC.sessiongenerate"
            b"</methodName><params><param><value><struct><member><name>username</name><value>"
            b"<string>test</string></value></member></struct></value></param></params>"
            b"</methodCall>")  # fmt: skip
    answer = (b"<?xml version='1.0'?><methodResponse><params><param><value><struct><member>"
              b"<name>ljsession</name><value><string>v1:u2:s3:aSESSIONCOOKIE</string></value>"
              b"</member></struct></value></param></params></methodResponse>")  # fmt: skip
    login = b"email=alice%40example.com&pass=PASSWORD-HUNTER&login=Log+In"
    path = tmp_path / "sessions.pcap"
    with path.open("wb") as fh:
        writer = PcapWriter(fh)
        lj = TcpConversation(writer, ("10.0.0.1", 3000), ("10.0.0.2", 80))
        lj.open(1.0)
        lj.send(2.0, True, b"POST /interface/xmlrpc HTTP/1.1\r\nHost: lj\r\nContent-Type: "
                b"text/xml\r\nContent-Length: %d\r\n\r\n" % len(call) + call)  # fmt: skip
        lj.send(2.5, False, b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: "
                b"%d\r\n\r\n" % len(answer) + answer)  # fmt: skip
        lj.close(3.0)
        fb = TcpConversation(writer, ("10.0.0.1", 3001), ("10.0.0.3", 80), isn=(7, 9))
        fb.open(4.0)
        fb.send(5.0, True, b"POST /login.php HTTP/1.1\r\nHost: www.facebook.com\r\nContent-"
                b"Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
                % len(login) + login)  # fmt: skip
        fb.close(6.0)
    session = CaptureSession(load_dissectors())
    recs = [r for r in session.run(open_source(path)) if r.proto == "http"]
    assert len(recs) == 3
    plain = "\n".join(record_to_jsonl(r) for r in recs)
    assert "SESSIONCOOKIE" in plain and "PASSWORD-HUNTER" in plain  # shown when not hidden
    shown = "\n".join(record_to_jsonl(r, redact=True) + record_to_text(r, redact=True)
                      for r in recs)  # fmt: skip
    assert "SESSIONCOOKIE" not in shown and "PASSWORD-HUNTER" not in shown
    copy = tmp_path / "copy.pcap"
    assert main(["redact", str(path), str(copy)]) == 0
    data = copy.read_bytes()
    assert b"SESSIONCOOKIE" not in data and b"PASSWORD-HUNTER" not in data


def test_an_error_status_answering_a_call_is_named_in_the_line_and_by_expert(
    tmp_path: Path,
) -> None:
    """Found by answering an XML-RPC call with a 503 page: the line said `answer ...: (none)`
    and expert that the body was not a methodResponse, never the status."""
    body = (b"<methodCall><methodName>LJ.XMLRPC.sendmessage</methodName><params/>"
            b"</methodCall>")  # fmt: skip
    path = tmp_path / "503.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.0.0.1", 3000), ("10.0.0.2", 80))
        conv.open(1.0)
        conv.send(1.1, True, b"POST /interface/xmlrpc HTTP/1.0\r\nContent-Type: text/xml\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip
        conv.send(1.2, False, b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/html"
                              b"\r\nContent-Length: 4\r\n\r\n<b/>")  # fmt: skip
        conv.close(1.3)
    analysis = Analysis(CaptureSession(load_dissectors()))
    analysis.add(lambda sink: WebApis(sink))
    answer = list(analysis.run(open_source(path)))[1]
    assert record_to_text(answer).endswith(
        "[XML-RPC call LJ.XMLRPC.sendmessage failed: HTTP 503]")
    assert [(f.severity, f.code, f.message) for f in analysis.findings if f.frame == 2] == [
        (Severity.WARN, "xmlrpc.http_error",
         "HTTP 503 answers LJ.XMLRPC.sendmessage instead of an XML-RPC methodResponse")]
