"""The HTTP/1.x dissector: pairing, keep-alive, pipelining, chunking, encodings, bounds."""

from __future__ import annotations

import gzip
import zlib

import pytest

from dissectors.api import Direction, DissectorError
from dissectors.http import HttpDissector, HttpMalformed, HttpRequest, HttpResponse
from dissectors.http.limits import MAX_BODY, MAX_DECODED, MAX_HEAD
from tests.dissectors.http.helpers import exchange, http_frames

C2S, S2C = Direction.C2S, Direction.S2C
GET = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"


def ok(body: bytes, *headers: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_request_and_response_are_paired_with_offsets_and_lengths() -> None:
    frames = exchange(GET, ok(b"hi"))
    req, resp = frames
    assert isinstance(req, HttpRequest) and isinstance(resp, HttpResponse)
    assert (req.method, req.path, req.offset, req.length) == ("GET", "/a", 0, len(GET))
    assert (resp.status, resp.body, resp.request_offset, resp.request_method) == (
        200, b"hi", 0, "GET")  # fmt: skip
    assert resp.raw == ok(b"hi")


def test_keep_alive_and_pipelining_pair_in_order() -> None:
    post = b"POST /b?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    frames = http_frames([(C2S, GET + post + GET), (S2C, ok(b"1") + ok(b"2") + ok(b"3"))])
    reqs = [f for f in frames if isinstance(f, HttpRequest)]
    resps = [f for f in frames if isinstance(f, HttpResponse)]
    assert [r.offset for r in reqs] == [0, len(GET), len(GET) + len(post)]
    assert reqs[1].query == "x=1" and reqs[1].body == b"abc"
    assert [r.request_offset for r in resps] == [r.offset for r in reqs]
    assert [r.body for r in resps] == [b"1", b"2", b"3"]


def test_head_response_has_no_body() -> None:
    head = b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"
    frames = http_frames([(C2S, head + GET), (S2C, resp + ok(b"x"))])
    resps = [f for f in frames if isinstance(f, HttpResponse)]
    assert [(r.request_method, r.body) for r in resps] == [("HEAD", b""), ("GET", b"x")]


def test_chunked_and_gzip_and_deflate_bodies_are_decoded() -> None:
    z = gzip.compress(b"hello gzip")
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
               + b"%x\r\n" % 4 + z[:4] + b"\r\n" + b"%x\r\n" % (len(z) - 4) + z[4:]
               + b"\r\n0\r\n\r\n")  # fmt: skip
    deflated = ok(zlib.compress(b"hello deflate"), b"Content-Encoding: deflate")
    raw_deflate = zlib.compressobj(wbits=-15)
    rd = raw_deflate.compress(b"raw deflate") + raw_deflate.flush()
    rd_resp = ok(rd, b"Content-Encoding: deflate")
    frames = http_frames([(C2S, GET * 3), (S2C, chunked + deflated + rd_resp)])
    bodies = [f.body for f in frames if isinstance(f, HttpResponse)]
    assert bodies == [b"hello gzip", b"hello deflate", b"raw deflate"]


def test_http10_response_reads_until_close() -> None:
    frames = exchange(b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nto the end")
    last = frames[-1]
    assert isinstance(last, HttpResponse) and last.body == b"to the end"


def test_body_cap_is_reported_and_only_the_cap_kept() -> None:
    big = b"x" * (MAX_BODY + 10)
    (resp,) = [f for f in exchange(GET, ok(big)) if isinstance(f, HttpResponse)]
    assert len(resp.body) == MAX_BODY and resp.wire_body_length == MAX_BODY + 10
    assert resp.length == len(ok(big)) and len(resp.raw) < len(big)
    assert [c for c, _ in resp.problems] == ["http.body_capped"]


def test_decompression_bomb_is_cut_at_the_decoded_cap() -> None:
    bomb = gzip.compress(b"\0" * (MAX_DECODED + 1000))
    (resp,) = [f for f in exchange(GET, ok(bomb, b"Content-Encoding: gzip"))
               if isinstance(f, HttpResponse)]  # fmt: skip
    assert len(resp.body) == MAX_DECODED
    assert [c for c, _ in resp.problems] == ["http.decoded_capped"]


def test_bad_and_unknown_encodings_are_reported() -> None:
    frames = http_frames([(C2S, GET * 2), (S2C, ok(b"nope", b"Content-Encoding: gzip")
                                           + ok(b"x", b"Content-Encoding: br"))])
    resps = [f for f in frames if isinstance(f, HttpResponse)]
    assert [[c for c, _ in r.problems] for r in resps] == [
        ["http.bad_encoding"], ["http.unknown_encoding"]]  # fmt: skip


def test_garbage_is_reported_with_reason_and_offset_then_parsing_resumes() -> None:
    junk = b"\x00\x01 not http\r\nstill not\r\n"
    frames = http_frames([(C2S, junk + GET)])
    bad, req = frames
    assert isinstance(bad, HttpMalformed) and isinstance(req, HttpRequest)
    assert (bad.offset, bad.length, req.offset) == (0, len(junk), len(junk))
    assert bad.reason == "not a request line"


def test_head_over_the_cap_is_malformed() -> None:
    huge = b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n"
    for chunks in ([huge], [huge[:100], huge[100:]]):
        frames = http_frames([(C2S, c) for c in chunks])
        assert isinstance(frames[0], HttpMalformed)
        assert str(MAX_HEAD) in frames[0].reason


def test_bad_chunk_size_is_malformed_mid_body() -> None:
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    frames = exchange(GET, bad + ok(b"next"))
    kinds = [type(f).__name__ for f in frames]
    assert kinds == ["HttpRequest", "HttpMalformed", "HttpResponse"]
    assert frames[1].offset == 0
    assert isinstance(frames[1], HttpMalformed) and frames[1].method is None  # a response
    assert frames[1].request_offset == 0  # the answer to the GET, its body bad
    junk = exchange(GET, b"HTPT/1.1 200 OK\r\n\r\n" + ok(b"next"))
    assert isinstance(junk[1], HttpMalformed) and junk[1].request_offset is None  # no head


def test_a_reason_shows_the_bad_bytes_without_python_s_repr() -> None:
    """h11 words a bad chunk line `illegal chunk header: bytearray(b'zz\\r\\n')`, which read,
    expert and the TUI printed as it was: the quoted bytes are left."""
    bad = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    frame = exchange(GET, bad + ok(b"next"))[1]
    assert isinstance(frame, HttpMalformed)
    assert frame.reason == "illegal chunk header: 'zz\\r\\n'"
    header = http_frames([(C2S, b"GET / HTTP/1.1\r\nHost: h\r\nBad Header\r\n\r\n")])[0]
    assert isinstance(header, HttpMalformed) and "bytearray" not in header.reason
    assert header.reason.startswith("illegal header line: 'Bad Header")


def test_a_request_whose_body_is_malformed_says_its_method() -> None:
    """Its answer names the request's offset: the malformed frame there is that request."""
    post = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    answer400 = b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n"
    frames = http_frames([(C2S, post + GET), (S2C, answer400)])
    bad = frames[0]
    assert isinstance(bad, HttpMalformed) and (bad.offset, bad.method) == (0, "POST")
    answer = next(f for f in frames if isinstance(f, HttpResponse))
    assert answer.request_offset == 0
    junk = http_frames([(C2S, b"\x00 not http\r\n" + GET)])[0]
    assert isinstance(junk, HttpMalformed) and junk.method is None


def test_a_bad_body_s_malformed_frame_keeps_its_bytes_from_its_offset() -> None:
    """Its `raw` began after the bytes h11 had read (the head, the bad chunk line), though
    the frame starts at the head: the hex dump showed the body's tail at offset 0."""
    post = b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"
    for chunks in ([post + GET], [post[:20], post[20:60], post[60:] + GET]):
        bad = http_frames([(C2S, c) for c in chunks])[0]
        assert isinstance(bad, HttpMalformed)
        assert (bad.offset, bad.length, bad.raw) == (0, len(post), post)
    dissector = HttpDissector()  # a gap in the body: the bytes before it, which are contiguous
    dissector.feed(C2S, post[:60])
    dissector.gap(C2S, 10)
    dissector.feed(C2S, b"more\r\n" + GET)
    bad = dissector.drain()[0]
    assert isinstance(bad, HttpMalformed) and bad.raw == post[:60]
    assert bad.length == 60 + 10 + len(b"more\r\n")


def test_connection_ending_mid_message_is_reported() -> None:
    """Inside a head: bytes that are not (yet) HTTP. Inside a body: the message as far as it
    came, flagged (found with a capture cut inside a POST: its head, path and the password
    in its body were an empty malformed run)."""
    frames = http_frames([(C2S, b"POST / HTTP/1.1\r\nHost: h\r\nContent-Le")])
    assert isinstance(frames[-1], HttpMalformed)
    head = b"POST /interface/xmlrpc HTTP/1.1\r\nHost: h\r\nContent-Length: 900\r\n\r\n"
    body = XMLRPC_CALL[:60]
    whole = http_frames([(C2S, head + body)])
    assert whole == http_frames([(C2S, (head + body)[i:i + 7])
                                 for i in range(0, len(head + body), 7)])  # fmt: skip
    (request,) = whole
    assert isinstance(request, HttpRequest)
    assert (request.offset, request.length, request.raw) == (0, len(head + body), head + body)
    assert (request.body, request.wire_body_length) == (body, 60)
    assert request.problems == (("http.incomplete", "the connection ended before the message "
                                                    "was complete"),)  # fmt: skip
    assert request.app is not None and request.app.kind == "xmlrpc"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort"
    frames = http_frames([(C2S, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"), (S2C, answer)])
    assert isinstance(frames[-1], HttpResponse) and frames[-1].request_offset == 0
    assert frames[-1].body == b"short" and frames[-1].problems[0][0] == "http.incomplete"


def test_strict_mode_raises_the_dissectors_own_error() -> None:
    with pytest.raises(DissectorError):
        http_frames([(C2S, b"\x00garbage\r\n\r\n")], strict=True)


def test_response_without_a_seen_request_pairs_with_nothing() -> None:
    frames = http_frames([(S2C, ok(b"late"))])
    assert isinstance(frames[0], HttpResponse) and frames[0].request_offset is None


@pytest.mark.parametrize(
    ("first", "direction", "low"),
    [(b"POST /interface/xmlrpc HTTP/1.0\r\n", C2S, 0.8),
     (b"HTTP/1.1 200 OK\r\n", S2C, 0.8),
     (b"VER 1 MSNP8 CVR0\r\n", C2S, 0.0),
     (b"PUT 5 MSNP\r\n", C2S, 0.0)],
)  # fmt: skip
def test_sniff_by_request_or_status_line(first: bytes, direction: Direction, low: float) -> None:
    score = HttpDissector.sniff(first, direction, [1234])
    assert score >= low if low else score == 0.0


@pytest.mark.parametrize(
    ("value", "code"),
    [(b"Basic dXNlcjpwdw==", "http.basic_auth"),
     (b"Passport1.4 OrgVerb=GET,sign-in=a%40b.c,pwd=secret123,lc=1033", "http.cleartext_password"),
     (b"Passport1.4 from-PP=t=abc", None)],
)  # fmt: skip
def test_passwords_in_the_authorization_header_are_flagged(value: bytes, code: str | None
                                                           ) -> None:  # fmt: skip
    req = b"GET /login HTTP/1.1\r\nHost: h\r\nAuthorization: " + value + b"\r\n\r\n"
    (frame,) = http_frames([(C2S, req)])
    assert isinstance(frame, HttpRequest)
    assert [c for c, _ in frame.problems] == ([code] if code else [])
    assert b"secret123" not in str(frame.problems).encode()


XMLRPC_CALL = (b"<?xml version='1.0'?><methodCall><methodName>LJ.XMLRPC.sendmessage</methodName>"
               b"<params/></methodCall>")  # fmt: skip


def _post(path: bytes, body: bytes, ctype: bytes) -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: h\r\nContent-Type: " + ctype
            + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "kind", "method"),
    [
        (_post(b"/interface/xmlrpc", XMLRPC_CALL, b"text/xml"), "xmlrpc",
         "LJ.XMLRPC.sendmessage"),
        (_post(b"/restserver.php", b"method=facebook.liveMessage.send&recipient=1",
               b"application/x-www-form-urlencoded"), "fbrest", "facebook.liveMessage.send"),
    ],
)  # fmt: skip
def test_an_http_error_status_answering_a_call_is_the_reason_it_failed(
    request_: bytes, kind: str, method: str
) -> None:
    """A 503 page (or an empty 403) is the server refusing the call: say so, rather than
    that the body is not the application's answer or not well-formed XML."""
    for status in (b"503 Service Unavailable\r\nContent-Type: text/html\r\n"
                   b"Content-Length: 4\r\n\r\n<b/>",
                   b"403 Forbidden\r\nContent-Length: 0\r\n\r\n"):  # fmt: skip
        answer = exchange(request_, b"HTTP/1.1 " + status)[1]
        assert isinstance(answer, HttpResponse) and answer.app is not None
        code = int(status[:3])
        assert answer.app.kind == kind
        assert dict(answer.app.fields) == {"type": "http_error", "method": method,
                                           "status": code}  # fmt: skip
        assert [c for c, _ in answer.app.problems] == [f"{kind}.http_error"]
        assert f"HTTP {code} answers {method} instead of" in answer.app.problems[0][1]


def test_a_fault_sent_with_an_error_status_is_still_decoded() -> None:
    fault = (b"<methodResponse><fault><value><struct><member><name>faultCode</name><value>"
             b"<int>101</int></value></member><member><name>faultString</name><value>"
             b"<string>Invalid password</string></value></member></struct></value></fault>"
             b"</methodResponse>")  # fmt: skip
    answer = exchange(_post(b"/interface/xmlrpc", XMLRPC_CALL, b"text/xml"),
                      b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n"
                      % len(fault) + fault)[1]  # fmt: skip
    assert isinstance(answer, HttpResponse) and answer.app is not None
    assert answer.app.fields["fault"] == {"code": 101, "string": "Invalid password"}


def test_an_http11_request_without_host_is_dissected_and_flagged() -> None:
    """Found with a hand-built XML-RPC POST lacking Host: h11 refuses it, so its 633 bytes
    (a clear-text password among them) were one malformed run and the 400 answered nothing."""
    no_host = _post(b"/interface/xmlrpc", XMLRPC_CALL, b"text/xml").replace(b"Host: h\r\n", b"")
    chunked = (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n")  # fmt: skip
    normal = b"GET /y HTTP/1.1\r\nHost: h\r\n\r\n"
    stream = no_host + chunked + normal
    answers = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 3
    whole = http_frames([(Direction.C2S, stream), (Direction.S2C, answers)])
    bytewise = http_frames([(Direction.C2S, stream[i:i + 1]) for i in range(len(stream))]
                           + [(Direction.S2C, answers)])  # fmt: skip
    assert whole == bytewise
    requests = [f for f in whole if isinstance(f, HttpRequest)]
    assert [(r.offset, r.length, r.version, r.path, r.body) for r in requests] == [
        (0, len(no_host), "1.1", "/interface/xmlrpc", XMLRPC_CALL),
        (len(no_host), len(chunked), "1.1", "/x", b"abc"),
        (len(no_host + chunked), len(normal), "1.1", "/y", b""),
    ]
    assert requests[0].raw == no_host
    assert requests[0].app is not None and requests[0].app.kind == "xmlrpc"
    assert [c for c, _ in requests[0].problems] == ["http.no_host"]
    assert [c for c, _ in requests[1].problems] == ["http.no_host"]
    assert requests[2].problems == ()
    responses = [f for f in whole if isinstance(f, HttpResponse)]
    assert [r.request_offset for r in responses] == [r.offset for r in requests]


def test_a_100_continue_names_its_request_and_the_final_response_still_answers_it() -> None:
    """Expect: 100-continue: the interim response comes between the request's head and its
    body; it names the request (as Wireshark pairs it), and the 200 after the body is the
    request's answer."""
    head = b"POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    frames = http_frames([(C2S, head), (S2C, b"HTTP/1.1 100 Continue\r\n\r\n"), (C2S, b"abc"),
                          (S2C, ok(b"done"))])  # fmt: skip
    interim, req, final = frames
    assert isinstance(interim, HttpResponse) and isinstance(req, HttpRequest)
    assert isinstance(final, HttpResponse)
    assert (interim.status, interim.request_offset, interim.request_method) == (100, 0, "POST")
    assert (req.body, final.status, final.request_offset, final.body) == (b"abc", 200, 0, b"done")
