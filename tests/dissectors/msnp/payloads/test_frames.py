"""Payloads reached through the dissector: `CommandFrame.payload` on framed bytes."""

from __future__ import annotations

from dissectors.msnp.frames import CommandFrame
from tests.dissectors.msnp.payloads.builders import crlf, mime, p2p
from tests.helpers import C2S, S2C, one_way


def test_profile_and_message_frames() -> None:
    profile = crlf(
        "MIME-Version: 1.0\nContent-Type: text/x-msmsgsprofile; charset=UTF-8\n"
        "LoginTime: 1726321960\nsid: 507\nMSPAuth: secret$\nClientPort: 18183\n\n"
    )
    data = b"MSG Hotmail Hotmail %d\r\n" % len(profile) + profile
    (frame,) = one_way(data, S2C, dialect=8)
    assert isinstance(frame, CommandFrame) and frame.payload is not None
    assert frame.payload.fields["ClientPort_decoded"] == 1863
    assert frame.payload.credentials == ("MSPAuth",)


def test_p2p_frame_from_the_client() -> None:
    payload = p2p(b"hello", session=7, total=5, flags=0x20, footer=1)
    data = b"MSG 5 D %d\r\n" % len(payload) + payload
    (frame,) = one_way(data, C2S, dialect=9)
    assert isinstance(frame, CommandFrame) and frame.payload is not None
    assert frame.payload.fields["session_id"] == 7 and frame.payload.problems == ()


def test_typing_frame_without_payload_decoding_cost() -> None:
    payload = mime("text/x-msmsgscontrol", "\r\n", TypingUser="alice@example.com")
    data = b"MSG 9 U %d\r\n" % len(payload) + payload
    (frame,) = one_way(data, C2S, dialect=8)
    assert isinstance(frame, CommandFrame) and frame.payload is not None
    assert frame.payload.fields == {"TypingUser": "alice@example.com"}
