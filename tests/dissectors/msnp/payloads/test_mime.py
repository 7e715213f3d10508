"""The MIME layer: header block, line ends, Content-Type, charsets, JSON shape."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from dissectors.msnp.payloads import MIME_DECODERS, Payload, decode_payload
from tests.dissectors.msnp.payloads.builders import crlf, mime


def test_headers_in_order_with_duplicates_and_body() -> None:
    data = crlf("MIME-Version: 1.0\nContent-Type: text/x-foo\nX-A: 1\nX-A: 2\n\nbody\nline 2")
    p = decode_payload("MSG", data)
    assert p.headers == (
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/x-foo"),
        ("X-A", "1"),
        ("X-A", "2"),
    )
    assert p.body == b"body\r\nline 2"
    assert p.text == "body\r\nline 2"
    assert p.content_type == "text/x-foo" and p.charset is None
    assert p.fields == {} and p.problems == () and p.credentials == ()
    assert p.length == len(data) and p.kind == "mime"
    assert p.header("x-a") == "1" and p.header("nope") is None


def test_json_shape() -> None:
    p = decode_payload("MSG", mime("text/plain; charset=UTF-8", "hi"))
    out = p.to_json()
    assert set(out) == {
        "length",
        "content_type",
        "charset",
        "headers",
        "body",
        "body_base64",
        "fields",
        "problems",
        "credentials",
    }
    assert out["headers"][1] == ["Content-Type", "text/plain; charset=UTF-8"]
    assert out["body"] == "hi" and out["body_base64"] is None
    json.dumps(out)
    out["fields"]["text"] = "changed"
    assert p.to_json()["fields"]["text"] == "hi"  # a fresh copy every call


def test_lf_only_is_accepted_and_reported() -> None:
    p = decode_payload("MSG", b"MIME-Version: 1.0\nContent-Type: text/plain\n\nhello")
    assert p.content_type == "text/plain" and p.body == b"hello"
    assert any("LF only" in problem for problem in p.problems)


def test_missing_blank_line() -> None:
    p = decode_payload("MSG", crlf("MIME-Version: 1.0\nContent-Type: text/x-msmsgscontrol\n"))
    assert p.body == b"" and p.content_type == "text/x-msmsgscontrol"
    assert any("no blank line" in problem for problem in p.problems)


def test_unterminated_last_header_line() -> None:
    p = decode_payload("MSG", b"MIME-Version: 1.0\r\nContent-Type: text/plain")
    assert p.content_type == "text/plain"
    assert any("without a line end" in problem for problem in p.problems)


def test_bad_header_line_reports_its_offset() -> None:
    data = crlf("MIME-Version: 1.0\nno colon here\nContent-Type: text/plain\n\nx")
    p = decode_payload("MSG", data)
    assert "bad header line at byte offset 19: b'no colon here'" in p.problems
    assert [k for k, _ in p.headers] == ["MIME-Version", "Content-Type"]


def test_missing_content_type_and_mime_version() -> None:
    p = decode_payload("MSG", crlf("X-Thing: 1\n\nbody"))
    assert p.content_type is None
    assert "no Content-Type header" in p.problems
    assert "no MIME-Version header" in p.problems


def test_content_type_parameters() -> None:
    p = decode_payload("MSG", mime('Text/Plain; Charset="ISO-8859-1"; format=flowed', b"caf\xe9"))
    assert p.content_type == "text/plain" and p.charset == "ISO-8859-1"
    assert p.text == "café" and p.fields["text"] == "café"
    bad = decode_payload("MSG", mime("plaintext", "x"))
    assert any("not a media type" in problem for problem in bad.problems)


def test_undecodable_body_goes_to_base64() -> None:
    p = decode_payload("MSG", mime("text/plain; charset=UTF-8", b"\xff\xfe bad"))
    out = p.to_json()
    assert out["body"] is None
    assert base64.b64decode(out["body_base64"]) == b"\xff\xfe bad"
    assert any("not valid UTF-8" in problem for problem in p.problems)


def test_unknown_and_non_text_charsets() -> None:
    for charset in ("x-martian", "rot13", "hex", "punycode"):
        p = decode_payload("MSG", mime(f"text/plain; charset={charset}", "abc"))
        assert any("unknown charset" in problem for problem in p.problems), charset
        assert p.to_json()["body"] is None


def test_unknown_content_type_keeps_headers_and_body() -> None:
    p = decode_payload("MSG", mime("application/x-something-new", "a: b", X_Extra="1"))
    assert p.fields == {} and p.body == b"a: b" and p.header("X-Extra") == "1"
    assert "application/x-something-new" not in MIME_DECODERS


def test_header_bytes_decoded_with_replacement() -> None:
    p = decode_payload("MSG", b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\nX-N: \xff\r\n\r\n")
    assert p.header("X-N") == "\ufffd"


def test_uum_and_ubm_are_mime() -> None:
    data = mime("text/plain; charset=UTF-8", "offline hello", X_MMS_IM_Format="FN=Arial; EF=B")
    for cmd in ("UUM", "UBM"):
        p = decode_payload(cmd, data)
        assert p.fields["text"] == "offline hello" and p.fields["effects"] == ["bold"]


def test_payload_is_frozen() -> None:
    p = decode_payload("MSG", mime("text/plain", "x"))
    assert isinstance(p, Payload)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.length = 3  # type: ignore[misc]  # read only: must raise
    hash(p)  # fields are excluded from the hash, so a payload can live in a set
