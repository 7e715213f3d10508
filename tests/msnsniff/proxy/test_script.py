"""`--script`: an addon changes, drops and injects frames between the client and the
reference server; payload lengths are recomputed; a failing script changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from msnsniff.proxy.addons import ProxyFrame, load_script
from tests.msnsniff.proxy.harness import Rig, run

A, B = "alice@example.com", "bob@example.com"

SCRIPT = '''
def on_frame(frame):
    if frame.cmd == "MSG" and b"secret" in frame.payload:
        return frame.replace(payload=frame.payload.replace(b"secret", b"[a much longer word]"))
    if frame.cmd == "MSG" and b"TypingUser" in frame.payload:
        return None  # typing notifications are dropped
    if frame.cmd == "PNG":
        return frame.reply("QNG 42")  # answered by the proxy, never sent on
    if frame.cmd == "CHG" and frame.words[2] == "BSY":
        raise RuntimeError("a bug in the script")
    return frame
'''


def test_a_script_changes_drops_and_injects(tmp_path: Path) -> None:
    path = tmp_path / "addon.py"
    path.write_text(SCRIPT)

    async def test(rig: Rig) -> None:
        alice, bob = await rig.friends(A, B)
        alice.conn.send_line("PNG")
        assert (await alice.conn.until("QNG")).line == "QNG 42"  # the server would say "QNG"
        r = await alice.set_status("BSY")  # the script raises: the frame goes on unchanged
        assert r.line == f"CHG {r.trid} BSY 0"
        a = await alice.open_chat()
        await a.conn.call("CAL", B)
        b = await bob.answer(await bob.conn.until("RNG"))
        await a.conn.until("JOI")
        typing = b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: a\r\n\r\n"
        a.conn.command("MSG", "U", payload=typing)
        ack = await a.say("the secret is out")
        assert ack is not None and ack.cmd == "ACK"
        msg = await b.conn.read()  # the typing notification never arrived: this is the text
        assert msg.cmd == "MSG"
        assert msg.payload.endswith(b"the [a much longer word] is out")
        assert msg.line.endswith(f" {len(msg.payload)}")  # the length was recomputed
        notes = "\n".join(rig.tap.notes)
        assert "script dropped" in notes and "script error" in notes and "changed" in notes

    run(test, tmp_path, hook=load_script(path))


def test_wire_recomputes_lengths_and_keeps_other_frames_exact() -> None:
    from dissectors.api import Direction

    f = ProxyFrame(Direction.C2S, "sb#1", "MSG 4 A 5", b"hello")
    assert f.replace(payload=b"hi").wire() == b"MSG 4 A 2\r\nhi"
    assert ProxyFrame(Direction.C2S, "ns#1", "CHG 5 NLN 0").wire() == b"CHG 5 NLN 0\r\n"
    assert f.reply("ACK 4").direction is Direction.S2C



def test_a_payload_line_written_without_its_length_gets_one() -> None:
    """`frame.reply("MSG Hotmail Hotmail", body)` went out as `MSG Hotmail Hotmail` and the
    body, which no client can frame (the body's lines read as commands): the length the
    command needs is added as its last word."""
    from dissectors.api import Direction

    f = ProxyFrame(Direction.C2S, "sb#1", "MSG 4 N 3", b"abc")
    body = b"MIME-Version: 1.0\r\n\r\nhello"
    assert f.reply("MSG Hotmail Hotmail", body).wire() == \
        b"MSG Hotmail Hotmail 26\r\n" + body
    assert f.replace(line="MSG 4 N").wire() == b"MSG 4 N 3\r\nabc"
    assert f.replace(line="MSG 4 N", payload=b"").wire() == b"MSG 4 N 0\r\n"


def test_a_script_calling_exit_is_reported_and_the_proxy_goes_on() -> None:
    """A script's `sys.exit()` (SystemExit, not an Exception) went up through the event loop
    and stopped the whole proxy with status 1: it is a script error like any other now."""
    import sys

    from dissectors.api import Direction
    from msnsniff.proxy.addons import apply
    from msnsniff.proxy.framing import WireFrame

    def hook(frame: ProxyFrame) -> ProxyFrame:
        sys.exit("bye")

    out, note = apply(hook, WireFrame(b"CVR 2 0x0409"), Direction.C2S, "main#1")
    assert [f.wire() for f in out] == [b"CVR 2 0x0409\r\n"]
    assert note == "script error on CVR: SystemExit('bye'); frame passed unchanged"


def test_a_script_returning_no_frames_leaves_the_connection_alone(tmp_path: Path) -> None:
    """`return frame.cmd != "PNG"` (a filter's bool) made apply() raise TypeError inside
    the relay: asyncio printed a traceback and dropped the client's connection, reported
    as a client reset. A bool, and a generator that fails, are script errors now, the
    frame passes, and the login goes on."""
    from dissectors.api import Direction
    from msnsniff.proxy.addons import apply
    from msnsniff.proxy.framing import WireFrame

    def failing(frame: ProxyFrame) -> Any:
        def frames() -> Iterator[ProxyFrame]:
            yield frame
            raise ValueError("oops")

        return frames()

    def as_filter(frame: ProxyFrame) -> Any:
        return frame.cmd != "PNG"

    def number(frame: ProxyFrame) -> Any:
        return 5

    for hook in (as_filter, number, failing):
        out, note = apply(hook, WireFrame(b"PNG"), Direction.C2S, "ns#1")
        assert [f.wire() for f in out] == [b"PNG\r\n"]
        assert note is not None and "passed unchanged" in note, note

    async def test(rig: Rig) -> str:
        alice = await rig.login("alice@example.com")
        await alice.sync()
        return (await alice.conn.call("ADG", "Filtered", "0")).cmd

    assert run(test, tmp_path, hook=as_filter) == "ADG"


def test_a_frame_with_a_str_payload_or_a_bytes_line_passes_unchanged() -> None:
    """`frame.replace(payload="hi")` (a str) raised TypeError in the relay, as did a bytes
    line or an unencodable one: asyncio then dropped the connection. Such a frame is
    reported and the original goes on."""
    from dissectors.api import Direction
    from msnsniff.proxy.addons import apply
    from msnsniff.proxy.framing import WireFrame

    def str_payload(frame: ProxyFrame) -> Any:
        return frame.replace(payload="hi")  # type: ignore[arg-type]

    def bytes_line(frame: ProxyFrame) -> Any:
        return frame.replace(line=b"MSG 1 N 2")  # type: ignore[arg-type]

    def surrogate(frame: ProxyFrame) -> Any:
        return frame.replace(line="PNG \ud800")

    for hook in (str_payload, bytes_line, surrogate):
        out, note = apply(hook, WireFrame(b"MSG 1 N 2", b"ab"), Direction.C2S, "sb#1")
        assert [f.wire() for f in out] == [b"MSG 1 N 2\r\nab"]
        assert note is not None and note.startswith("script returned a frame that cannot be "
                                                    "sent ("), note


def test_a_frame_made_with_a_direction_that_is_a_string_passes_unchanged() -> None:
    """`ProxyFrame("s2c", ...)` (a string, where the module says ProxyFrame(...) can make a
    frame to send back) raised KeyError inside the relay, which dropped the connection."""
    from dissectors.api import Direction
    from msnsniff.proxy.addons import apply
    from msnsniff.proxy.framing import WireFrame

    def answer(frame: ProxyFrame) -> Any:
        return [ProxyFrame("s2c", frame.connection, "QNG 5")]  # type: ignore[arg-type]

    out, note = apply(answer, WireFrame(b"PNG"), Direction.C2S, "ns#1")
    assert [f.wire() for f in out] == [b"PNG\r\n"]
    assert note == ("script returned a frame whose direction is 's2c', not a Direction "
                    "(frame.reply() makes one going back); frame passed unchanged")


def test_a_payload_on_a_command_that_takes_none_passes_the_frame_unchanged() -> None:
    """`frame.replace(payload=...)` on `CHG 5 NLN 0` overwrote the line's last number with
    the payload's length and sent the bytes after the line, which the server then read as
    a command (found by the proxy review): the frame now passes unchanged, with a note."""
    from dissectors.api import Direction
    from msnsniff.proxy.addons import apply
    from msnsniff.proxy.framing import WireFrame

    line = b"CHG 5 NLN 0"
    out, note = apply(lambda f: f.replace(payload=b"oops"), WireFrame(line), Direction.C2S,
                      "ns#1")  # fmt: skip
    assert [f.wire() for f in out] == [line + b"\r\n"]
    assert note == "script gave CHG 5 a payload, which CHG does not take; frame passed unchanged"
    assert ProxyFrame(Direction.C2S, "ns#1", "CHG 5 NLN 0", b"x").wire() == b"CHG 5 NLN 0\r\nx"


def test_notes_name_a_frame_by_command_and_trid_never_by_its_credentials() -> None:
    """The notes go to stderr whatever --redact says: a USR's ticket or MD5 hash and a
    switchboard cookie must not be in them."""
    from dissectors.api import Direction
    from msnsniff.proxy.addons import apply
    from msnsniff.proxy.framing import WireFrame

    secrets = {
        b"USR 3 TWN S t=SECRETTICKET&p=SECRETPROFILE": "USR 3",
        b"USR 3 MD5 S 0123456789abcdef0123456789abcdef": "USR 3",
        b"ANS 1 bob@example.com 849102291.520491113 11752013": "ANS 1",
    }
    for line, shown in secrets.items():
        _, dropped = apply(lambda f: None, WireFrame(line), Direction.C2S, "ns#1")
        _, changed = apply(lambda f: [f, f], WireFrame(line), Direction.C2S, "ns#1")
        for note in (dropped, changed):
            assert note is not None and f" {shown} " in f"{note} "
            assert line.split()[-1].decode() not in note and "SECRET" not in note
    _, note = apply(lambda f: None, WireFrame(b"MSG alice@example.com Alice 0"),
                    Direction.S2C, "sb#1")  # fmt: skip
    assert note == "script dropped MSG"


def test_the_recording_marks_where_the_other_side_got_something_else(tmp_path: Path) -> None:
    """-w holds what each endpoint sent; a script's change, drop or injected reply was
    nowhere in it, so the file read as if the client had got the server's frames. Each now
    comes with the proxy's note as a pcapng comment on the packet that carried the frame,
    and so does each rewritten XFR/RNG address."""
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    path = tmp_path / "addon.py"
    path.write_text(SCRIPT)

    async def test(rig: Rig) -> None:
        alice, bob = await rig.friends(A, B)
        alice.conn.send_line("PNG")
        assert (await alice.conn.until("QNG")).line == "QNG 42"
        a = await alice.open_chat()
        await a.conn.call("CAL", B)
        b = await bob.answer(await bob.conn.until("RNG"))
        await a.conn.until("JOI")
        assert (await a.say("the secret is out")) is not None
        await b.conn.until("MSG")

    run(test, tmp_path, hook=load_script(path))
    marked = {}
    for packet in rdpcap(str(tmp_path / "proxy.pcapng")):
        if packet.comment and bytes(packet[TCP].payload):  # (not a FIN: the stop)
            marked[bytes(packet[TCP].payload).split()[0]] = packet.comment.decode()
    assert marked[b"PNG"].startswith("msnsniff proxy: ns#")
    assert "script changed PNG (5 bytes) into 1 frame(s): QNG 42 (8 bytes, sent back)" in \
        marked[b"PNG"]
    assert "script changed MSG" in marked[b"MSG"] and "bytes) into 1 frame(s): MSG" in \
        marked[b"MSG"]
    assert "rewrote 127.0.0.1:" in marked[b"XFR"] and "in XFR" in marked[b"XFR"]
    assert "in RNG" in marked[b"RNG"]


def test_a_script_that_does_not_load_says_why_as_a_person_reads_it(tmp_path: Path) -> None:
    """`--script` that failed to load was reported by the exception's repr:
    "FileNotFoundError(2, 'No such file or directory')", a SyntaxError's tuple of
    position fields, "RuntimeError('boom')" with no line. Now the reason, and the line."""
    import pytest

    from msnsniff.errors import MsnsniffError

    cases = {"syntax.py": ("def on_frame(f) return f\n", "expected ':' (line 1)"),
             "raises.py": ("x = 1\nraise RuntimeError('boom')\n", "RuntimeError: boom (line 2)"),
             "imports.py": ("import msnsniff_no_such_module\n",
                            "ModuleNotFoundError: No module named 'msnsniff_no_such_module' "
                            "(line 1)")}  # fmt: skip
    for name, (text, why) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(MsnsniffError) as caught:
            load_script(path)
        assert str(caught.value) == f"--script: {path} failed to load: {why}"
    with pytest.raises(MsnsniffError) as caught:
        load_script(tmp_path / "absent.py")
    assert str(caught.value) == (f"--script: {tmp_path / 'absent.py'} failed to load: "
                                 "No such file or directory")  # fmt: skip
