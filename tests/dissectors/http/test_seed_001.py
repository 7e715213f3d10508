"""Seed 001 (LiveJournal/Dreamwidth XML-RPC sendmessage): the example decodes field by field,
and every documented limit and rule is detected."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import pytest

from dissectors.http import HttpRequest, HttpResponse
from dissectors.http.apps import xmlrpc
from dissectors.http.frames import AppInfo
from tests.dissectors.http.helpers import exchange
from tests.dissectors.http.seeds import lj_request_body, lj_response_body, post, reply


def codes(info: AppInfo | None) -> list[str]:
    assert info is not None
    return [c for c, _ in info.problems]


def test_seed_example_request_and_response_decode_field_by_field() -> None:
    req, resp = exchange(post("/interface/xmlrpc", lj_request_body(), "text/xml"),
                         reply(lj_response_body()))  # fmt: skip
    assert isinstance(req, HttpRequest) and isinstance(resp, HttpResponse)
    assert req.app is not None and req.app.kind == "xmlrpc"
    f = req.app.fields
    assert f["method"] == "LJ.XMLRPC.sendmessage"
    assert f["members"] == {
        "username": "test", "password": "test", "auth_method": "clear",
        "to": ["test_recipient1", "test_recipient2"], "subject": "Test",
        "body": "This is my test message.",
    }  # fmt: skip
    # the seed's example closes `</array><data>` the wrong way round: reported, still decoded
    assert codes(req.app) == ["xmlrpc.not_well_formed", "xmlrpc.cleartext_password"]
    assert "mismatched tag" in req.app.problems[0][1]
    assert req.app.credentials == ("members.password",)
    assert resp.app is not None and resp.app.fields["value"] == {
        "sent_count": 2, "msgid": [102365, 103215]}  # fmt: skip
    assert resp.app.fields["method"] == "LJ.XMLRPC.sendmessage" and codes(resp.app) == []


def call(**members: Any) -> bytes:
    def value(v: Any) -> str:
        if isinstance(v, list):
            return "<array><data>" + "".join(f"<value>{value(x)}</value>" for x in v) + \
                "</data></array>"
        if isinstance(v, int):
            return f"<int>{v}</int>"
        return f"<string>{escape(v)}</string>"

    body = "".join(f"<member><name>{k}</name><value>{value(v)}</value></member>"
                   for k, v in members.items())  # fmt: skip
    return (f"<?xml version='1.0'?><methodCall><methodName>LJ.XMLRPC.sendmessage</methodName>"
            f"<params><param><value><struct>{body}</struct></value></param></params>"
            "</methodCall>").encode()  # fmt: skip


GOOD: dict[str, Any] = {"username": "u", "hpassword": "0" * 32, "to": ["a", "b"],
                        "subject": "s", "body": "b"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, []),
        ({"subject": "x" * 256}, ["xmlrpc.subject_too_long"]),
        ({"subject": "x" * 255}, []),
        ({"subject": "two\nlines"}, ["xmlrpc.subject_newline"]),
        ({"body": "y" * 5001}, ["xmlrpc.body_too_long"]),
        ({"body": "y" * 5000}, []),
        ({"body": "<b>bold</b>"}, ["xmlrpc.body_html"]),
        ({"to": "single"}, ["xmlrpc.to_not_array"]),
        ({"to": []}, ["xmlrpc.to_empty"]),
        ({"subject": None}, ["xmlrpc.missing_member"]),
        ({"auth_method": "kerberos"}, ["xmlrpc.bad_auth_method"]),
        ({"hpassword": None}, ["xmlrpc.no_password"]),
        ({"hpassword": None, "auth_method": "challenge"}, ["xmlrpc.no_challenge"]),
        ({"parent": "x"}, ["xmlrpc.not_int"]),
    ],
)  # fmt: skip
def test_each_rule_of_sendmessage(change: dict[str, Any], expected: list[str]) -> None:
    members = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    info = xmlrpc.decode_call(call(**members))
    got = [c for c in codes(info) if c != "xmlrpc.hpassword"]
    assert got == expected
    assert ("xmlrpc.hpassword" in codes(info)) == ("hpassword" in members)


def response(value: str) -> bytes:
    return (f"<methodResponse><params><param><value>{value}</value></param></params>"
            "</methodResponse>").encode()  # fmt: skip


def test_response_checked_against_the_recipients_in_order() -> None:
    asked = xmlrpc.decode_call(call(**GOOD))
    one = response("<struct><member><name>sent_count</name><value><int>1</int></value></member>"
                   "<member><name>msgid</name><value><array><data><value><int>7</int></value>"
                   "</data></array></value></member></struct>")  # fmt: skip
    assert codes(xmlrpc.decode_response(one, asked)) == ["xmlrpc.recipients_mismatch"]
    wrong = response("<struct><member><name>sent_count</name><value><int>3</int></value>"
                     "</member><member><name>msgid</name><value><array><data></data></array>"
                     "</value></member><member><name>last_errors</name><value><array><data>"
                     "<value>quota</value></data></array></value></member></struct>")
    assert codes(xmlrpc.decode_response(wrong, asked)) == [
        "xmlrpc.count_mismatch", "xmlrpc.recipients_mismatch", "xmlrpc.last_errors"]


def test_fault_is_decoded() -> None:
    fault = (b"<methodResponse><fault><value><struct><member><name>faultCode</name><value>"
             b"<int>101</int></value></member><member><name>faultString</name><value><string>"
             b"Invalid password</string></value></member></struct></value></fault>"
             b"</methodResponse>")  # fmt: skip
    info = xmlrpc.decode_response(fault, None)
    assert info.fields["fault"] == {"code": 101, "string": "Invalid password"}
    assert codes(info) == ["xmlrpc.fault"]


def test_getchallenge_response_needs_a_challenge() -> None:
    asked = AppInfo("xmlrpc", {"method": "LJ.XMLRPC.getchallenge"})
    ok = response("<struct><member><name>challenge</name><value><string>c0:1:2:3:x</string>"
                  "</value></member></struct>")  # fmt: skip
    assert codes(xmlrpc.decode_response(ok, asked)) == []
    assert codes(xmlrpc.decode_response(response("<int>1</int>"), asked)) == [
        "xmlrpc.missing_member"]


@pytest.mark.parametrize(
    "bomb",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<methodCall><methodName>&b;</methodName></methodCall>",
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><methodCall>&e;</methodCall>',
        b"<methodCall>" + b"<a>" * 500 + b"</a>" * 500 + b"</methodCall>",
        b"<methodCall>" + b"<a>" * 500 + b"</methodCall>",
    ],
)  # fmt: skip
def test_entities_dtds_and_deep_documents_are_refused(bomb: bytes) -> None:
    info = xmlrpc.decode_call(bomb)
    assert "xmlrpc.not_a_call" in codes(info)
    assert "etc/passwd" not in str(info.fields) and "aaaa" not in str(info.fields)


@pytest.mark.parametrize(
    ("ctype", "declared", "encoding"),
    [
        ("text/xml; charset=iso-8859-1", None, "latin-1"),  # only HTTP says it: it decides
        ('text/xml; charset="windows-1252"', None, "cp1252"),
        ("text/xml", "latin-1", "latin-1"),  # the document says it
        ("text/xml", None, "utf-8"),
        # both say it and disagree: the HTTP charset is authoritative (RFC 7303)
        ("text/xml; charset=iso-8859-1", "utf-8", "latin-1"),
        ("text/xml; charset=utf-8", "iso-8859-1", "utf-8"),
        ('text/xml; charset="windows-1252"', "utf-8", "cp1252"),
    ],
)  # fmt: skip
def test_the_charset_a_body_is_written_in_is_honoured(ctype: str, declared: str | None,
                                                      encoding: str) -> None:  # fmt: skip
    subject = "Café über ½" if encoding == "latin-1" else "Café “über” ½"
    body = call(**{**GOOD, "subject": subject}).decode().replace(
        "<?xml version='1.0'?>",
        f"<?xml version='1.0' encoding='{declared}'?>" if declared else "<?xml version='1.0'?>",
    ).encode(encoding)  # fmt: skip
    req, _resp = exchange(post("/interface/xmlrpc", body, ctype), reply(b"", "text/plain"))
    assert isinstance(req, HttpRequest) and req.app is not None
    assert req.app.fields["members"]["subject"] == subject
    assert [c for c in codes(req.app) if c != "xmlrpc.hpassword"] == []


@pytest.mark.parametrize("encoding", ["UVF-8", "no-such-codec", "x"])
def test_a_declared_encoding_no_codec_knows_is_reported_not_raised(encoding: str) -> None:
    # found by fuzzing: expat's LookupError for the declaration escaped the dissector
    body = call(**GOOD).decode().replace(
        "<?xml version='1.0'?>", f"<?xml version='1.0' encoding='{encoding}'?>").encode()
    req, resp = exchange(post("/interface/xmlrpc", body, "text/xml"), reply(body))
    assert isinstance(req, HttpRequest) and req.app is not None
    assert isinstance(resp, HttpResponse) and resp.app is not None
    trouble = dict(req.app.problems)["xmlrpc.not_well_formed"]
    assert "encoding" in trouble and encoding in trouble
    assert req.app.fields["members"]["subject"] == GOOD["subject"]  # read tolerantly


def test_a_member_sent_twice_is_said_by_name_and_the_last_value_read() -> None:
    """A struct naming `subject` twice (and `hpassword`): the server reads a map, so the
    last value counts; the call says which names repeated, never the values."""
    body = call(**GOOD).replace(
        b"<member><name>subject</name>",
        b"<member><name>subject</name><value><string>first</string></value></member>"
        b"<member><name>hpassword</name><value><string>SECRET-LAST</string></value></member>"
        b"<member><name>subject</name>", 1)  # fmt: skip
    info = xmlrpc.decode_call(body)
    assert info.fields["members"]["subject"] == "s"
    assert info.fields["members"]["hpassword"] == "SECRET-LAST"
    repeated = [p for p in info.problems if p[0] == "xmlrpc.repeated_member"]
    assert repeated == [
        ("xmlrpc.repeated_member", "hpassword sent 2 times; only the last value is read"),
        ("xmlrpc.repeated_member", "subject sent 2 times; only the last value is read"),
    ]
    assert "SECRET-LAST" not in repr(info.problems)
    assert "xmlrpc.repeated_member" not in codes(xmlrpc.decode_call(call(**GOOD)))


@pytest.mark.parametrize(("text", "value"), [
    ("1", True), ("0", False), ("true", True), ("false", False), ("yes", "yes"),
])  # fmt: skip
def test_a_boolean_reads_as_sent(text: str, value: object) -> None:
    """`<boolean>true</boolean>` (the spec says 1) read as False, silently: every text but
    "1" did. true and false now read as themselves, and a word that is neither stays the
    text sent, as an <int> that is no number does."""
    body = (f"<?xml version='1.0'?><methodCall><methodName>x</methodName><params><param>"
            f"<value><boolean>{text}</boolean></value></param></params></methodCall>").encode()
    assert xmlrpc.decode_call(body).fields["params"] == [value]
