"""The replay machine without sockets (it is sans-IO): rewriting, pacing and its clock."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from msnsniff.registry import load_dissectors
from msnsniff.replay.machine import (
    Connect,
    Credentials,
    Done,
    Replayer,
    ReplayOptions,
    Send,
)
from msnsniff.replay.recording import load_recording
from msnsniff.session.capture_session import CaptureSession

CAPTURE = Path(__file__).parents[3] / "captures" / "server_login_msnp8.pcap"
TICKET = "t=fresh-ticket&p=profile"


def machine(options: ReplayOptions | None = None) -> Replayer:
    recording = load_recording(CAPTURE, CaptureSession(load_dissectors()), select="1")
    return Replayer(recording, ("127.0.0.1", 1864),
                    Credentials(tickets={"bob@example.com": TICKET}),
                    options or ReplayOptions())  # fmt: skip


def sent(actions: Sequence[object]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Send)]


def test_fresh_trids_and_a_given_ticket() -> None:
    m = machine()
    (connect,) = m.start(0.0)
    assert connect == Connect("1", "127.0.0.1", 1864)
    assert sent(m.connected("1", 0.0)) == [b"VER 1 MSNP8 CVR0\r\n"]
    out = sent(m.data("1", b"VER 1 MSNP8\r\n", 0.0))
    assert out == [b"CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 5.0.0540 MSMSGS bob@example.com\r\n"]
    assert sent(m.data("1", b"CVR 2 1 1 1 x y\r\n", 0.0)) == [b"USR 3 TWN I bob@example.com\r\n"]
    assert sent(m.data("1", b"USR 3 TWN S lc=1033,ct=1\r\n", 0.0)) == [
        f"USR 4 TWN S {TICKET}\r\n".encode()
    ]


def test_original_pace_keeps_the_recorded_gap_up_to_max_gap() -> None:
    m = machine(ReplayOptions(pace="original", max_gap=0.05))
    m.start(0.0)
    m.connected("1", 0.0)
    m.data("1", b"VER 1 MSNP8\r\n", 0.0)  # CVR: its recorded gap is a fraction of a ms
    m.tick(0.01)
    m.data("1", b"CVR 2 1 1 1 x y\r\n", 0.01)
    m.tick(0.02)
    # USR TWN S came 0.12 s after USR TWN I in the recording (the Passport round trip):
    # kept, but at most max_gap
    assert sent(m.data("1", b"USR 3 TWN S lc=1033\r\n", 0.03)) == []
    assert m.deadline() == pytest.approx(0.02 + 0.05)
    assert sent(m.tick(0.06)) == []
    assert sent(m.tick(0.07)) == [f"USR 4 TWN S {TICKET}\r\n".encode()]


def test_fast_pace_waits_for_nothing_but_replies() -> None:
    m = machine()
    m.start(0.0)
    m.connected("1", 0.0)
    m.data("1", b"VER 1 MSNP8\r\n", 0.0)
    m.data("1", b"CVR 2 1 1 1 x y\r\n", 0.0)
    assert sent(m.data("1", b"USR 3 TWN S lc=1033\r\n", 0.0))


def test_no_reply_fails_at_the_deadline_naming_the_request() -> None:
    m = machine(ReplayOptions(timeout=2.0))
    m.start(0.0)
    m.connected("1", 0.0)
    assert m.deadline() == pytest.approx(2.0)
    assert m.tick(1.9) == []
    done = [a for a in m.tick(2.0) if isinstance(a, Done)]
    assert done and done[0].failure is not None
    assert done[0].failure.startswith("no reply within 2 s to VER 1 (recorded #1)")


def test_a_challenge_is_answered_at_once() -> None:
    m = machine()
    m.start(0.0)
    m.connected("1", 0.0)
    out = sent(m.data("1", b"VER 1 MSNP8\r\nCHL 0 15570131571988941333\r\n", 0.0))
    qry = next(x for x in out if x.startswith(b"QRY"))
    head, _, answer = qry.partition(b"\r\n")
    assert head.split()[2:] == [b"msmsgs@msnmsgr.com", b"32"]
    assert len(answer) == 32 and m.auto_qry == 1


def test_a_redirect_the_recording_did_not_have_is_followed_at_most_max_redirects() -> None:
    from msnsniff.replay.machine import MAX_REDIRECTS, Close

    m = machine()
    m.start(0.0)
    key = "1"
    for hop in range(1, MAX_REDIRECTS + 2):
        assert sent(m.connected(key, 0.0)) == [b"VER 1 MSNP8 CVR0\r\n"]
        m.data(key, b"VER 1 MSNP8\r\n", 0.0)
        m.data(key, b"CVR 2 1 1 1 x y\r\n", 0.0)
        out = m.data(key, f"XFR 3 NS 127.0.0.1:{1900 + hop} 0 127.0.0.1:1864\r\n".encode(), 0.0)
        if hop > MAX_REDIRECTS:
            (done,) = [a for a in out if isinstance(a, Done)]
            assert done.failure is not None
            assert done.failure.startswith(f"NS bob@example.com: redirected {hop} times (XFR NS)")
            break
        assert Close(key) in out
        key = f"1+{hop}"
        assert Connect(key, "127.0.0.1", 1900 + hop) in out
        assert m.data(f"1+{hop - 1}" if hop > 1 else "1", b"QNG\r\n", 0.0) == []  # left behind
    assert sum("a redirect the recording did not have" in n for n in m.notes) == MAX_REDIRECTS
