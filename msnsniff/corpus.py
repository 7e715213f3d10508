"""Many captures at once: directories expanded to their captures, captures spread over
worker processes (`-j`), and results joined in the order the captures were named, so the
output is the same whatever the number of workers."""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import io
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO, TypeVar

from msnsniff.errors import MsnsniffError

if TYPE_CHECKING:
    from msnsniff.capture.sources import Capture

CAPTURE_SUFFIXES: Final = frozenset({".pcap", ".pcapng", ".cap"})
TRANSCRIPT_SUFFIXES: Final = frozenset({".txt", ".log"})

T = TypeVar("T")
R = TypeVar("R")


def expand(paths: Sequence[str]) -> list[Path]:
    """The captures named: files as given, directories as their captures sorted by path
    (pcap/pcapng/cap files, and .txt/.log files that read as transcripts)."""
    from msnsniff.capture.transcript import looks_like_transcript

    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if not path.is_dir():
            out.append(path)
            continue
        found = []
        for p in sorted(path.rglob("*")):
            if not p.is_file():
                continue
            suffix = p.suffix.lower()
            if suffix in CAPTURE_SUFFIXES:
                found.append(p)
            elif suffix in TRANSCRIPT_SUFFIXES:
                with p.open("rb") as fh:
                    if looks_like_transcript(fh.read(65536)):
                        found.append(p)
        if not found:
            raise MsnsniffError(f"{path}: no captures in this directory")
        out.extend(found)
    return out


def jobs_for(requested: int | None, count: int) -> int:
    """Worker processes for `count` captures: as requested (0: one per core), at most one
    per capture."""
    wanted = (os.cpu_count() or 1) if requested == 0 else (requested or 1)
    return max(1, min(wanted, count))


def in_order(work: Callable[[T], R], items: Sequence[T], jobs: int) -> list[R]:
    """`work` over `items` on `jobs` processes; results in the order of `items`."""
    if jobs <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(work, items))


# -- read ---------------------------------------------------------------------------------------


def _read_one(job: tuple[argparse.Namespace, str, str]) -> tuple[int, str]:
    """One capture through `read`, its output into the file `target`: (status, stderr)."""
    from msnsniff.cli import cmd_read

    args, path, target = job
    err = io.StringIO()
    with open(target, "w", encoding="utf-8", errors="surrogateescape", newline="") as out:
        try:
            status = cmd_read(args, out, err)
        except MsnsniffError as exc:
            err.write(f"msnsniff: {path}: {exc}\n")
            status = 2
    return status, err.getvalue()


def read_many(args: argparse.Namespace, files: list[Capture], jobs: int, out: TextIO,
              err: TextIO) -> int:  # fmt: skip
    """`msnsniff read -j N` over several captures: each on a worker, printed in order."""
    from msnsniff.reports import file_heading

    with tempfile.TemporaryDirectory(prefix="msnsniff-read-") as tmp:
        tasks = []
        for i, capture in enumerate(files):
            one = copy.copy(args)
            one.files, one.jobs, one.capture = [capture.path], 1, capture.name
            one.section = capture.section  # one of a transcript's several: that one alone
            tasks.append((one, capture.name, str(Path(tmp) / f"{i:06d}.out")))
        results = in_order(_read_one, tasks, jobs)
        status = 0
        for (_, name, target), (code, messages) in zip(tasks, results, strict=True):
            if args.format == "text":
                file_heading(name, len(tasks), out)
            with open(target, encoding="utf-8", errors="surrogateescape", newline="") as fh:
                while chunk := fh.read(1 << 20):
                    out.write(chunk)
            out.flush()
            err.write(messages)
            status = max(status, code)
    return status
