"""Choosing one capture of a transcript that holds several (`--capture` of tui, replay, mock)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from msnsniff.capture.sources import captures_of, one_capture
from msnsniff.cli import main
from msnsniff.errors import MsnsniffError

CAPTURES = Path(__file__).resolve().parents[3] / "captures"


def _export(out: Path, *names: str) -> Path:
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["export", *(str(CAPTURES / n) for n in names), "-o", str(out)]) == 0
    return out


def test_a_capture_is_named_by_the_end_of_its_path_too(tmp_path: Path) -> None:
    """An export names each capture as it was given, often an absolute path, and
    `--capture msnp8_demo.pcap` was refused as no such capture; the end of the path (a file
    name, or more of it) now names it, and a tail several captures share still needs the
    number."""
    path = _export(tmp_path / "all.txt", "msnp8_demo.pcap", "server_chat.pcap",
                   "msnp8_demo.pcap")  # fmt: skip
    chat = one_capture(path, "server_chat.pcap", "one")
    assert (chat.name, chat.section) == (str(CAPTURES / "server_chat.pcap"), 2)
    assert one_capture(path, "captures/server_chat.pcap", "one") == chat
    with pytest.raises(MsnsniffError, match=r"captures 1 and 3 of .* have that name"):
        one_capture(path, "msnp8_demo.pcap", "one")
    with pytest.raises(MsnsniffError, match="no such capture"):
        one_capture(path, "chat.pcap", "one")  # (a file name is matched whole)


def test_a_capture_given_as_a_pipe_is_read_whole() -> None:
    """A capture given as a pipe (`msnsniff read <(zcat x.pcap.gz)`, `... | msnsniff read
    /dev/stdin`) was refused as 'not a pcap, pcapng or transcript file (unrecognised first
    bytes)': the look for an export's capture marker ate the first bytes, and the reader,
    opening the pipe again, saw the rest. A pipe is now read once into a temporary file,
    and every command reads that, under the name it was given."""
    import os

    demo = Path(__file__).parents[3] / "captures" / "msnp8_demo.pcap"

    def through_a_pipe(*argv: str) -> tuple[int, str]:
        read, write = os.pipe()  # (the capture fits the pipe's buffer: no writer needed)
        os.write(write, demo.read_bytes())
        os.close(write)
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                status = main([*argv, f"/dev/fd/{read}"])
        finally:
            os.close(read)
        return status, out.getvalue()

    whole = io.StringIO()
    with contextlib.redirect_stdout(whole):
        assert main(["read", "-T", "jsonl", str(demo)]) == 0
    assert through_a_pipe("read", "-T", "jsonl") == (0, whole.getvalue())
    assert through_a_pipe("stats")[0] == 0


def test_damage_in_a_capture_given_as_a_pipe_is_named_by_the_pipe() -> None:
    """The damage of a capture given as a pipe was named at the temporary file its bytes
    were put in (`/tmp/msnsniff-pipe-.../63: truncated record ...`), a path the user never
    gave and that is gone once msnsniff exits. It is now named as given (`/dev/fd/N`)."""
    import os

    demo = Path(__file__).parents[3] / "captures" / "msnp8_demo.pcap"
    read, write = os.pipe()
    os.write(write, demo.read_bytes()[:3000])  # inside the data of record 23
    os.close(write)
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            assert main(["read", f"/dev/fd/{read}"]) == 2
    finally:
        os.close(read)
    assert err.getvalue() == (f"msnsniff: /dev/fd/{read}: truncated record: 784 bytes "
                              "announced, 782 present (record 23, byte offset 2202)\n")  # fmt: skip


def test_a_transcript_note_names_the_file_as_given(tmp_path: Path) -> None:
    """A transcript's notes named the file by its last component alone: two `x.txt` in two
    directories gave the same `x.txt:3`, and a transcript given as a pipe was named after
    the temporary copy (`63:3`). They are now named as given, like a pcap's damage."""
    import os

    for where in ("a", "b"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "x.txt").write_text(
            "C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\nS: MSG Hotmail Hotmail 99\nabc\n")
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main(["read", str(tmp_path / "a" / "x.txt"), str(tmp_path / "b" / "x.txt")]) == 2
    assert [line.split(": the file ends")[0] for line in err.getvalue().splitlines()] == [
        f"msnsniff: {tmp_path}/a/x.txt:3", f"msnsniff: {tmp_path}/b/x.txt:3"]
    read, write = os.pipe()
    os.write(write, b"C: VER 1 MSNP8 CVR0\nS: MSG Hotmail Hotmail 99\nabc\nC: OUT\n")
    os.close(write)
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            assert main(["read", f"/dev/fd/{read}"]) == 0
    finally:
        os.close(read)
    assert err.getvalue() == (f"msnsniff: /dev/fd/{read}:2: MSG declares 99 payload bytes but "
                              "the transcript gives 5\n")  # fmt: skip


def test_an_export_of_several_captures_saved_with_a_byte_order_mark_is_still_split(
    tmp_path: Path,
) -> None:
    """An export of two captures, saved again by an editor that put a byte order mark first,
    is still two captures, each read as its own."""
    src = tmp_path / "two.txt"
    src.write_text("\ufeff# msnsniff export of a\nC: VER 1 MSNP8 CVR0\n"
                   "# msnsniff export of b\nC: VER 1 MSNP8 CVR0\n", encoding="utf-8")
    assert [(c.name, c.section) for c in captures_of([src])] == [("a", 1), ("b", 2)]


@pytest.mark.parametrize(("command", "said"), [
    (["read"], "not a pcap, pcapng or transcript file: "),
    (["redact"], "not a pcap or pcapng file: "),
])  # fmt: skip
def test_a_compressed_capture_is_named_as_one(tmp_path: Path, command: list[str],
                                              said: str) -> None:  # fmt: skip
    """A `.pcap.gz` (which Wireshark opens as it is) was 'not a pcap, pcapng or transcript
    file (unrecognised first bytes)', as if it were no capture at all; it is now said to be
    compressed, with how to give it (the pipe the README describes)."""
    import gzip

    demo = Path(__file__).parents[3] / "captures" / "msnp8_demo.pcap"
    src = tmp_path / "demo.pcap.gz"
    src.write_bytes(gzip.compress(demo.read_bytes()))
    extra = [str(tmp_path / "out.pcap")] if command == ["redact"] else []
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        assert main([*command, str(src), *extra]) == 2
    assert err.getvalue().startswith(
        f"msnsniff: {src}: {said}compressed with gzip: give it decompressed, through a pipe "
        "as in `msnsniff read <(zcat FILE)`")  # fmt: skip


def test_a_utf16_transcript_reads_as_its_utf8_twin(tmp_path: Path) -> None:
    """Windows PowerShell's `>` writes text as UTF-16 with a byte order mark: such a
    transcript was 'not a pcap, pcapng or transcript file'. It now reads as the same text
    in UTF-8 does (the wire bytes are UTF-8, as MSNP's are)."""
    text = "C: VER 1 MSNP8 CVR0\r\nS: VER 1 MSNP8\r\nC: REA 2 a@b.c Z%C3%BC\r\n"
    utf8, utf16 = tmp_path / "a.txt", tmp_path / "b.txt"
    utf8.write_bytes(text.encode())
    utf16.write_bytes(text.encode("utf-16"))  # (little-endian here, with its mark)
    outs = []
    for path in (utf8, utf16):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["read", "-T", "jsonl", str(path)]) == 0
        outs.append(out.getvalue().replace(path.name, "X"))
    assert outs[0] == outs[1] and outs[0].count("\n") == 3


def test_a_dash_is_standard_input_as_in_tshark() -> None:
    """`zcat x.pcap.gz | msnsniff read -` (tshark's and tcpdump's `-r -`) said '-: cannot
    read: No such file or directory'. `-` is now standard input, copied like any pipe, and
    named `-` in what is said about it."""
    import subprocess
    import sys

    demo = Path(__file__).parents[3] / "captures" / "msnp8_demo.pcap"
    whole = subprocess.run([sys.executable, "-m", "msnsniff", "read", "-T", "jsonl", str(demo)],
                           capture_output=True, check=True).stdout  # fmt: skip
    got = subprocess.run([sys.executable, "-m", "msnsniff", "read", "-T", "jsonl", "-"],
                         input=demo.read_bytes(), capture_output=True)  # fmt: skip
    assert got.returncode == 0 and got.stdout == whole and whole.count(b"\n") == 63
    cut = subprocess.run([sys.executable, "-m", "msnsniff", "read", "-T", "none", "-"],
                         input=demo.read_bytes()[:3000], capture_output=True)  # fmt: skip
    assert cut.returncode == 2 and cut.stderr == (
        b"msnsniff: -: truncated record: 784 bytes announced, 782 present (record 23, byte "
        b"offset 2202)\n")


def test_standard_input_redirected_from_a_file_is_named_as_given(tmp_path: Path) -> None:
    """`msnsniff read - < cut.pcap` named its notes and damage "/dev/stdin", where `cat
    cut.pcap | msnsniff read -` and JSON Lines' `capture` say "-": standard input given as
    `-` is said as `-` however it is fed."""
    import subprocess
    import sys

    root = Path(__file__).parents[3]
    damaged = tmp_path / "d.pcap"
    damaged.write_bytes((root / "captures" / "msnp8_demo.pcap").read_bytes()[:3000])
    with damaged.open("rb") as stdin:
        proc = subprocess.run([sys.executable, "-m", "msnsniff", "read", "-T", "none", "-"],
                              cwd=root, stdin=stdin, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("msnsniff: -: truncated record: "), proc.stderr
