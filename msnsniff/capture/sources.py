"""Open a capture file of any supported kind as a stream of source events."""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from msnsniff.capture import SourceEvent
from msnsniff.errors import MsnsniffError

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
               b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34")  # (the last two: modified pcap)
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


COMPRESSED: Final = (  # (magic, how it is compressed, what decompresses it to stdout)
    (b"\x1f\x8b", "gzip", "zcat"),
    (b"\x28\xb5\x2f\xfd", "zstd", "zstdcat"),
    (b"\xfd7zXZ\x00", "xz", "xzcat"),
    (b"BZh", "bzip2", "bzcat"),
    (b"\x04\x22\x4d\x18", "lz4", "lz4cat"),
)


def compressed(head: bytes) -> str | None:
    """What to say of a file whose first bytes are a compressor's (a `.pcap.gz`, which
    Wireshark opens as it is): how to give it instead; None for any other file."""
    for magic, how, tool in COMPRESSED:
        if head.startswith(magic):
            return (f"compressed with {how}: give it decompressed, through a pipe as in "
                    f"`msnsniff read <({tool} FILE)`")
    return None


def detect_kind(head: bytes) -> str:
    """'pcap', 'pcapng' or 'transcript' from a file's first bytes."""
    from msnsniff.capture.transcript import looks_like_transcript

    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    hint = compressed(head)
    if hint is not None:  # (before the transcript test: bytes of bzip2 may read as text)
        raise MsnsniffError(f"not a pcap, pcapng or transcript file: {hint}", offset=0)
    if looks_like_transcript(head):
        return "transcript"
    if not head:
        raise MsnsniffError("empty file: not a pcap, pcapng or transcript file", offset=0)
    raise MsnsniffError(
        "not a pcap, pcapng or transcript file (unrecognised first bytes)", offset=0
    )


def file_kind(path: Path) -> str:
    """'pcap', 'pcapng' or 'transcript' for the file at `path`."""
    try:
        with path.open("rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise MsnsniffError(f"cannot read: {exc.strerror or exc}") from exc  # callers name it
    return detect_kind(head)


@dataclass(frozen=True, slots=True)
class Capture:
    """One capture a command reads: a file, or one of the captures `msnsniff export A B -o
    X.txt` wrote into one transcript (`section`, counted from 1), named as the export named
    it, so it reads back, and is reported, as its original was."""

    name: str
    path: str
    section: int | None = None

    def events(self) -> Iterator[SourceEvent]:
        """The capture's source events."""
        return open_source(self.path, self.section)

    @property
    def label(self) -> str:
        """How a command reading this one capture names it: the file, or for a part of a
        transcript of several its name and where it is (`NAME (capture 2 of all.txt)`)."""
        if self.section is None:
            return self.path
        return f"{self.name} (capture {self.section} of {self.path})"


# The one piece of module state: a pipe gives its bytes once per process, whoever opens it,
# so what was copied from it is a fact about the process, not about any one caller; both
# maps only grow by one entry per pipe named on the command line.
_COPIES: dict[tuple[int, int], str] = {}  # a pipe (device, inode) -> the file holding its bytes
_GIVEN: dict[str, str] = {}  # and back


def shown(path: str | Path) -> str:
    """How messages name the file at `path`: as the user gave it (a pipe's copy by the
    pipe's name)."""
    return _GIVEN.get(str(path), str(path))


def readable_copy(path: str) -> str:
    """`path`, or for a pipe (`/dev/stdin` fed by `|`, a shell's `<(zcat x.pcap.gz)`) a
    temporary file holding all it gave, removed at exit: a capture is opened several times
    (its first bytes say its kind, then it is read; export and redact read it twice, -j N in
    several processes), and a pipe gives its bytes once, so the first look ate what the
    reader then missed ('not a pcap, pcapng or transcript file' of a valid capture). `-` is
    standard input, as in tshark's and tcpdump's `-r -`."""
    given = path
    if path == "-":
        path = "/dev/stdin"
    try:
        info = os.stat(path)
        if not stat.S_ISFIFO(info.st_mode):
            if given == "-":  # (`< FILE`: standard input is the file, still said as `-`)
                _GIVEN[path] = given
            return path  # (a file, a directory, or something its reader will report)
        key = (info.st_dev, info.st_ino)  # (not the path: /dev/fd/N names another pipe later)
        if key in _COPIES:
            return _COPIES[key]
        where = tempfile.mkdtemp(prefix="msnsniff-pipe-")
        atexit.register(shutil.rmtree, where, True)
        copy = os.path.join(where, os.path.basename(path) or "stdin")
        with open(path, "rb") as src, open(copy, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except OSError:
        return path
    _COPIES[key] = copy
    _GIVEN[copy] = given
    return copy


def captures_of(paths: Iterable[str | Path]) -> list[Capture]:
    """The captures in `paths`: each file one, a transcript marking several captures each
    of them (a file that cannot be read is one, for its reader to report; a pipe is read
    from the file `readable_copy` put its bytes in, under its own name)."""
    from msnsniff.capture.transcript import BOM, CAPTURE_MARK, captures

    out: list[Capture] = []
    for given in map(str, paths):
        path = readable_copy(given)
        names: list[str] = []
        try:
            with open(path, "rb") as fh:
                marked = fh.read(len(CAPTURE_MARK) + 3).removeprefix(BOM.encode()).startswith(
                    CAPTURE_MARK.encode())
            if marked:
                with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
                    names = captures(fh)
        except OSError:
            pass
        if len(names) > 1:
            out.extend(Capture(name, path, n) for n, name in enumerate(names, 1))
        else:
            out.append(Capture(given, path))
    return out


def one_capture(path: str | Path, choice: str | None, how: str) -> Capture:
    """The capture a command that reads one (the TUI, replay, mock) opens at `path`: the file
    itself, or of a transcript holding several captures (`captures_of`) the one `choice`
    names, by its name (or the end of its path: `demo.pcap` for `/x/captures/demo.pcap`) or
    its number counted from 1 (a name several parts share needs the number). Such a
    transcript without a choice is refused, naming its captures: read whole, its captures'
    frames would be numbered on and their logins mixed. `how` ends the refusal (what this
    command does with one capture)."""
    parts = captures_of([path])
    if choice is None:
        if len(parts) == 1:
            return parts[0]
        raise MsnsniffError(f"{path} holds {len(parts)} captures ({_listed(parts)}); {how}: "
                            "pick one with --capture NAME or --capture N")  # fmt: skip
    named = [n for n, part in enumerate(parts, 1) if part.name == choice]
    if not named:  # the end of its path names one too (exports name captures as given)
        tail = Path(choice).parts
        named = [n for n, part in enumerate(parts, 1)
                 if tail and Path(part.name).parts[-len(tail):] == tail]  # fmt: skip
    if len(named) == 1:
        return parts[named[0] - 1]
    if len(named) > 1:
        numbers = ", ".join(map(str, named[:-1])) + f" and {named[-1]}"
        raise MsnsniffError(f"--capture {choice}: captures {numbers} of {path} have that "
                            "name: give the number")  # fmt: skip
    if choice.isdigit() and 1 <= int(choice) <= len(parts):
        return parts[int(choice) - 1]
    raise MsnsniffError(f"--capture {choice}: no such capture in {path} ({_listed(parts)})")


def _listed(parts: list[Capture]) -> str:
    """`1 NAME, 2 NAME, ...`: a file's captures as `--capture` takes them."""
    return ", ".join(f"{n} {part.name}" for n, part in enumerate(parts, 1))


def open_source(path: str | Path, section: int | None = None) -> Iterator[SourceEvent]:
    """Events from the capture at `path`, whatever its kind; `section`: the capture of that
    number in a transcript an export of several captures wrote (see `captures_of`)."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "transcript":
        return _transcript(path, section)
    if kind == "pcap":
        from msnsniff.capture.pcap import read_pcap

        return read_pcap(path)
    from msnsniff.capture.pcap import read_pcapng

    return read_pcapng(path)


def _transcript(path: Path, section: int | None = None) -> Iterator[SourceEvent]:
    from msnsniff.capture.transcript import read_transcript, text_encoding

    with path.open("rb") as raw:
        encoding = text_encoding(raw.read(2))
    errors = "surrogateescape" if encoding == "utf-8" else "replace"  # (bytes kept as bytes
    # only where they are the wire's: UTF-8)
    with path.open("r", encoding=encoding, errors=errors, newline="") as fh:
        yield from read_transcript(fh, path.name, section, shown(path))
