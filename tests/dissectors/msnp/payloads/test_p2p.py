"""application/x-msnmsgrp2p: binary header, footer, MSNSLP and its Context."""

from __future__ import annotations

import base64
import json
import struct

from dissectors.msnp.payloads import decode_payload
from dissectors.msnp.payloads.p2p import P2P_HEADER
from tests.dissectors.msnp.payloads.builders import mime, p2p, p2p_header, slp
from tests.helpers import cyclic_garbage

MSNOBJ = (
    '<msnobj Creator="alice@example.com" Size="24539" Type="3" Location="TFR2C.tmp" '
    'Friendly="AAA=" SHA1D="trC8SlFx2sWQxZMIBAWSEnXc8oQ=" SHA1C="U32o6bosZzluJq82eAtMpx5dIEI="/>'
)
SLP_HEADERS = {
    "To": "<msnmsgr:bob@example.com>",
    "From": "<msnmsgr:alice@example.com>",
    "Via": "MSNSLP/1.0/TLP ;branch={33517CE4-02FC-4428-B6F4-39927229B722}",
    "CSeq": "0 ",
    "Call-ID": "{9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}",
    "Max-Forwards": "0",
    "Content-Type": "application/x-msnmsgr-sessionreqbody",
}


def display_picture_invite() -> bytes:
    context = base64.b64encode(MSNOBJ.encode() + b"\x00").decode()
    body = (
        "EUF-GUID: {A4268EEC-FEC5-49E5-95C3-F126696BDBF6}\r\n"
        f"SessionID: 1980589\r\nAppID: 1\r\nContext: {context}\r\n\r\n"
    )
    return slp("INVITE MSNMSGR:bob@example.com MSNSLP/1.0", SLP_HEADERS, body)


def test_header_struct_is_48_bytes() -> None:
    assert P2P_HEADER.sizeof() == 48


def test_display_picture_invitation() -> None:
    data = display_picture_invite()
    p = decode_payload("MSG", p2p(data, ident=1234567))
    f = p.fields
    assert p.problems == () and p.credentials == ()
    assert p.content_type == "application/x-msnmsgrp2p" and f["P2P-Dest"] == "bob@example.com"
    assert (f["session_id"], f["identifier"], f["offset"]) == (0, 1234567, 0)
    assert f["total_size"] == f["message_length"] == f["data_length"] == len(data)
    assert f["flags"] == 0 and f["flag_names"] == []
    assert f["app_id"] == 0 and f["app_name"] == "session negotiation (MSNSLP)"
    s = f["slp"]
    assert s["kind"] == "request" and s["method"] == "INVITE"
    assert s["uri"] == "MSNMSGR:bob@example.com" and s["version"] == "MSNSLP/1.0"
    assert s["headers"]["Call-ID"] == "{9D79AE57-1BD5-444B-B14E-3FC9BB2B5D58}"
    assert s["CSeq"] == 0 and s["Max-Forwards"] == 0
    assert s["content_type"] == "application/x-msnmsgr-sessionreqbody"
    assert s["body"]["SessionID"] == 1980589 and s["body"]["AppID"] == 1
    assert s["application"] == "MSN object (display picture, emoticon, wink)"
    assert s["context_msnobj"]["Type_name"] == "display picture"
    assert s["context_msnobj"]["Size"] == 24539
    out = p.to_json()
    assert out["body"] is None
    assert base64.b64decode(out["body_base64"]) == p.body
    json.dumps(out)


def test_ok_response_and_bye() -> None:
    ok = slp("MSNSLP/1.0 200 OK", SLP_HEADERS, "SessionID: 1980589\r\n\r\n")
    p = decode_payload("MSG", p2p(ok))
    s = p.fields["slp"]
    assert (s["kind"], s["status"], s["reason"]) == ("response", 200, "OK")
    assert s["body"] == {"SessionID": 1980589}
    headers = dict(SLP_HEADERS, **{"Content-Type": "application/x-msnmsgr-sessionclosebody"})
    bye = slp("BYE MSNMSGR:bob@example.com MSNSLP/1.0", headers, "")
    assert decode_payload("MSG", p2p(bye)).fields["slp"]["method"] == "BYE"
    decline = slp("MSNSLP/1.0 603 Decline", SLP_HEADERS, "SessionID: 1\r\n")
    assert decode_payload("MSG", p2p(decline)).fields["slp"]["status"] == 603


def test_file_transfer_invitation_context() -> None:
    name = "holiday photo.jpg".encode("utf-16-le").ljust(520, b"\x00")
    context = struct.pack("<IIQI", 574, 2, 123456, 1) + name + b"\x00" * 30 + b"\xff" * 4
    body = (
        "EUF-GUID: {5D3E02AB-6190-11D3-BBBB-00C04F795683}\r\n"
        f"SessionID: 42\r\nAppID: 2\r\nContext: {base64.b64encode(context).decode()}\r\n\r\n"
    )
    data = slp("INVITE MSNMSGR:bob@example.com MSNSLP/1.0", SLP_HEADERS, body)
    s = decode_payload("MSG", p2p(data)).fields["slp"]
    assert s["application"] == "file transfer"
    assert s["context_file"] == {
        "header_length": 574,
        "version": 2,
        "file_size": 123456,
        "type": 1,
        "has_preview": False,
        "file_name": "holiday photo.jpg",
    }


def test_direct_connection_nonce_is_a_credential() -> None:
    body = (
        "Bridge: TCPv1\r\nListening: true\r\nNonce: {4E1C2A07-F7D9-4F43-8C2E-1A2B3C4D5E6F}\r\n"
        "IPv4Internal-Addrs: 192.168.0.20\r\nIPv4Internal-Port: 2201\r\n\r\n"
    )
    data = slp("MSNSLP/1.0 200 OK", SLP_HEADERS, body)
    p = decode_payload("MSG", p2p(data))
    assert p.credentials == ("Nonce",)
    out = json.dumps(p.to_json(redact="<redacted>"))
    assert "4E1C2A07" not in out


def test_ack_message() -> None:
    p = decode_payload(
        "MSG", p2p(flags=0x2, total=1412, ack_id=1234567, ack_uid=7654321, ack_size=1412)
    )
    f = p.fields
    assert p.problems == ()
    assert f["flag_names"] == ["ack"] and f["data_length"] == 0
    assert (f["ack_identifier"], f["ack_unique_id"], f["ack_data_size"]) == (1234567, 7654321, 1412)


def test_data_chunk_flags_and_footer() -> None:
    chunk = bytes(range(256)) * 4
    p = decode_payload(
        "MSG",
        p2p(chunk, session=1980589, offset=1202, total=24539, flags=0x20, footer=1),
    )
    f = p.fields
    assert p.problems == () and "slp" not in f
    assert f["flag_names"] == ["MSN object data"] and f["data_length"] == 1024
    assert f["app_id"] == 1 and f["app_name"].startswith("MSN object")
    file_data = decode_payload("MSG", p2p(b"x", session=9, total=9, flags=0x1000030, footer=2))
    assert file_data.fields["flag_names"] == ["file", "MSN object data", "file data"]
    assert decode_payload("MSG", p2p(flags=0x40000)).fields["flags_unknown"] == 0x40000


def test_header_too_short() -> None:
    p = decode_payload("MSG", mime("application/x-msnmsgrp2p", b"\x00" * 20, P2P_Dest="b@x"))
    assert p.problems == ("P2P header too short: 20 of 48 bytes",)
    assert p.to_json()["body_base64"] == base64.b64encode(b"\x00" * 20).decode()


def test_message_length_overrun_and_missing_footer() -> None:
    head = mime("application/x-msnmsgrp2p", P2P_Dest="bob@example.com")
    p = decode_payload("MSG", head + p2p_header(total=500, length=500) + b"abc")
    problems = " | ".join(p.problems)
    assert "message length 500 overruns the payload (3 bytes" in problems
    assert "footer missing (0 of 4 bytes)" in problems
    assert p.fields["data_length"] == 3
    short = decode_payload("MSG", head + p2p_header(total=3, length=3) + b"abc\x00\x00")
    assert "P2P footer missing (2 of 4 bytes)" in short.problems


def test_trailing_bytes_and_bad_sizes() -> None:
    p = decode_payload("MSG", p2p(b"abc", offset=10, total=5) + b"junk")
    problems = " | ".join(p.problems)
    assert "4 bytes after the P2P footer" in problems
    assert "exceeds total size 5" in problems


def test_missing_p2p_dest() -> None:
    p = decode_payload("MSG", mime("application/x-msnmsgrp2p", p2p_header() + b"\x00" * 4))
    assert "P2P message without a P2P-Dest header" in p.problems


def test_bad_slp() -> None:
    bad = b"INVITE MSNMSGR:x\r\nCSeq: one\r\nContent-Length: 999\r\n\r\nEUF-GUID: {A4268EEC-FEC5-49E5-95C3-F126696BDBF6}\r\nContext: !!!\r\n"  # noqa: E501
    p = decode_payload("MSG", p2p(bad))
    problems = " | ".join(p.problems)
    assert "MSNSLP start line not understood" in problems
    assert "MSNSLP CSeq: expected an integer" in problems
    assert "Content-Length 999 but" in problems
    assert "MSNSLP Context is not base64" in problems
    # a chunk of a larger message may end before Content-Length: not a problem then
    part = decode_payload("MSG", p2p(bad, total=5000))
    assert not any("Content-Length" in problem for problem in part.problems)
    no_headers = decode_payload("MSG", p2p(b"MSNSLP/1.0 200 OK"))
    assert "MSNSLP message has no headers" in no_headers.problems


def test_decoding_leaves_no_reference_cycles() -> None:
    """construct's `parse` makes its context name itself; the header and the file Context are
    parsed without that, so a decoded P2P message is freed by refcounting alone (a batch run
    keeps the cycle collector mostly idle: msnsniff/collector.py)."""
    name = "a.txt".encode("utf-16-le").ljust(520, b"\x00")
    context = struct.pack("<IIQI", 574, 2, 99, 1) + name + b"\x00" * 34
    body = (
        "EUF-GUID: {5D3E02AB-6190-11D3-BBBB-00C04F795683}\r\n"
        f"SessionID: 42\r\nAppID: 2\r\nContext: {base64.b64encode(context).decode()}\r\n\r\n"
    )
    data = p2p(slp("INVITE MSNMSGR:bob@example.com MSNSLP/1.0", SLP_HEADERS, body))
    seen: list[int] = []

    def work() -> None:
        fields = decode_payload("MSG", data).fields
        seen.append(fields["slp"]["context_file"]["file_size"])

    assert cyclic_garbage(work) == []
    assert seen == [99]
