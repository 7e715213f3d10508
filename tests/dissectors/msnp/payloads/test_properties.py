"""Hypothesis: `decode_payload` never raises and its JSON always serialises, for any bytes."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissectors.msnp.payloads import MIME_DECODERS, Payload, decode_payload
from tests.dissectors.msnp.payloads.builders import p2p_header

COMMANDS = st.sampled_from(
    [
        "MSG", "NOT", "UBX", "UUX", "QRY", "IPG", "GCF", "ADL", "RML", "FQY",
        "UUN", "UBN", "UUM", "UBM", "SDC", "PAG", "241", "500", "ZZZ", "",
    ]
)  # fmt: skip

CONTENT_TYPES = st.sampled_from(
    [*MIME_DECODERS, "text/plain; charset=UTF-8", "text/plain; charset=rot13", "x", ""]
)

HEADER_LINES = st.one_of(
    st.builds(lambda t: f"Content-Type: {t}".encode(), CONTENT_TYPES),
    st.sampled_from(
        [
            b"MIME-Version: 1.0",
            b"X-MMS-IM-Format: FN=Arial; EF=BIUSX; CO=ff; CS=86; PF=22; RL=1",
            b"X-MMS-IM-Format: FN=%ZZ%E5; CO=; CS=zz; PF=; ;=;",
            b"P2P-Dest: bob@example.com",
            b"TypingUser: alice@example.com",
            b"MSPAuth: t=ABCDEFGHIJKLMNOPQRSTUV&p=",
            b"LoginTime: 99999999999999999999",
            b"ClientPort: 18183",
            b"MemberIdHigh: -1",
            b"no colon",
            b": no name",
            b"",
        ]
    ),
    st.binary(max_size=60),
)

BODY_PIECES = st.one_of(
    st.binary(max_size=400),
    st.sampled_from(
        [
            b"Invitation-Command: INVITE\r\nInvitation-Cookie: 1\r\nAuthCookie: 99999\r\n",
            b"ID: 2\r\nData: <msnobj Creator='a' Type='8' Friendly='!!'/>\r\n",
            b"(tux)\t<msnobj Type='2'/>\t(x)\t<<\t",
            b"Mail-Data: <MD><E>",
            b"INVITE MSNMSGR:b@x MSNSLP/1.0\r\nContent-Length: 40\r\n\r\nEUF-GUID: "
            b"{5D3E02AB-6190-11D3-BBBB-00C04F795683}\r\nContext: AAAA\r\n",
            b"<Data><PSM>x</PSM><CurrentMedia>\\0\\0\\0</CurrentMedia></Data>",
            b'<ml l="1"><d n="x"><c n="y" l="99999999999" t="z"/></d></ml>',
            b"<!DOCTYPE a [<!ENTITY b 'c'>]><a>&b;</a>",
            b"<NOTIFICATION><MSG><BODY>&lt;a&gt;</BODY></MSG></NOTIFICATION>",
        ]
    ),
    st.builds(
        lambda fields, data: p2p_header(**fields) + data,
        st.fixed_dictionaries(
            {
                "length": st.integers(0, 2**32 - 1),
                "total": st.integers(0, 2**64 - 1),
                "offset": st.integers(0, 2**64 - 1),
                "flags": st.integers(0, 2**32 - 1),
            }
        ),
        st.binary(max_size=200),
    ),
)


@st.composite
def structured(draw: st.DrawFn) -> bytes:
    """Header lines, a CRLF/LF/no separator, then body pieces."""
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    lines = draw(st.lists(HEADER_LINES, max_size=8))
    sep = draw(st.sampled_from([eol, b"", b"\r\n\r\n"]))
    body = b"".join(draw(st.lists(BODY_PIECES, max_size=3)))
    return eol.join(lines) + eol + sep + body


def check(cmd: str, data: bytes) -> Payload:
    p = decode_payload(cmd, data)
    assert p.length == len(data)
    assert not any("decoder failed" in problem for problem in p.problems), p.problems
    json.dumps(p.to_json())
    json.dumps(p.to_json(redact="<redacted>"))
    return p


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(COMMANDS, st.binary(max_size=4096))
def test_any_bytes_never_raise(cmd: str, data: bytes) -> None:
    check(cmd, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(COMMANDS, structured())
def test_structured_payloads_never_raise(cmd: str, data: bytes) -> None:
    p = check(cmd, data)
    if cmd in ("MSG", "UUM", "UBM"):
        assert p.kind == "mime"


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=3), st.binary(max_size=64))
def test_any_command_word(cmd: str, data: bytes) -> None:
    check(cmd, data)
