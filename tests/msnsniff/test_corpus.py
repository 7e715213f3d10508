"""Many captures: directories expanded, `-j` workers, results joined in the named order."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from msnsniff.cli import main
from msnsniff.corpus import expand
from msnsniff.errors import MsnsniffError

CAPTURES = Path(__file__).parents[2] / "captures"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "b").mkdir(parents=True)
    shutil.copy(CAPTURES / "server_chat.pcap", root / "b" / "chat.pcap")
    shutil.copy(CAPTURES / "server_list_changes.pcap", root / "a.pcap")
    shutil.copy(CAPTURES / "server_md5_logins.pcap", root / "b" / "md5.pcap")
    (root / "b" / "notes.txt").write_text("prose, not a transcript\n")
    (root / "log.txt").write_text("C: VER 1 MSNP8 CVR0\nS: VER 1 MSNP8\n")
    return root


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


def test_directories_expand_to_their_captures_sorted(corpus: Path) -> None:
    assert expand([str(corpus)]) == [corpus / "a.pcap", corpus / "b" / "chat.pcap",
                                     corpus / "b" / "md5.pcap", corpus / "log.txt"]
    (corpus / "empty").mkdir()
    with pytest.raises(MsnsniffError, match="no captures"):
        expand([str(corpus / "empty")])


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_read_in_parallel_prints_what_one_process_prints(corpus: Path, fmt: str) -> None:
    one = run("read", "-T", fmt, "-j", "1", str(corpus))
    many = run("read", "-T", fmt, "-j", "3", str(corpus))
    assert one[0] == many[0] == 0
    assert one[1] == many[1] and one[1]
    if fmt == "jsonl":  # each capture's frames, in the sorted order, numbered from 1
        numbers = [json.loads(line)["no"] for line in one[1].splitlines()]
        assert numbers.count(1) == 4


@pytest.mark.parametrize("jobs", [[], ["-j", "1"], ["-j", "3"]], ids=["default", "1", "3"])
def test_json_lines_of_several_captures_name_their_capture_first(corpus: Path,
                                                                 jobs: list[str]) -> None:
    """Frame numbers restart with each capture, so each line says which capture it is of,
    first; a line of one capture alone is as before, without the key."""
    status, out, _ = run("read", "-T", "jsonl", *jobs, str(corpus))
    assert status == 0
    lines = out.splitlines()
    assert all(line.startswith('{"capture":') for line in lines)
    named = [json.loads(line) for line in lines]
    for path in expand([str(corpus)]):
        alone = run("read", "-T", "jsonl", str(path))[1].splitlines()
        assert not alone[0].startswith('{"capture":')
        mine = [o for o in named if o["capture"] == str(path)]
        assert [{k: v for k, v in o.items() if k != "capture"} for o in mine] == [
            json.loads(line) for line in alone]
    assert len(named) > 100
    # the same bytes when the lines go straight to a binary stdout (the fast path)
    done = subprocess.run([sys.executable, "-m", "msnsniff", "read", "-T", "jsonl", *jobs,
                           str(corpus)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.stdout == out


def test_stats_total_is_the_sum_of_the_captures(corpus: Path) -> None:
    status, out, _ = run("stats", "-T", "json", "-j", "2", str(corpus))
    assert status == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in rows[:-1]] == [str(p) for p in expand([str(corpus)])]
    total = rows[-1]
    assert total["file"] is None and total["captures"] == 4

    def frames(row: dict[str, Any]) -> int:  # a parsed JSON object
        return sum(f["frames"] for f in row["flows"])

    assert frames(total) == sum(frames(r) for r in rows[:-1]) > 0
    assert run("stats", "-T", "json", "-j", "1", str(corpus))[1] == out
