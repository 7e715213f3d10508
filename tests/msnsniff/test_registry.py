"""Third-party dissectors through the `msnsniff.dissectors` entry-point group.

The README's worked example, `tests/plugin_example` (a TOYLINE dissector in its own package
with its own pyproject.toml), is installed with pip into a temporary directory and put on
PYTHONPATH; `msnsniff read` on a TOYLINE capture must then decode it with the plugin, and
without it must not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from dissectors.api import NEED_DATA, Direction, Dissector
from msnsniff.capture.write import PcapWriter, TcpConversation
from msnsniff.registry import ENTRY_POINT_GROUP, load_dissectors

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "plugin_example"

C2S_LINES = [b"HELO alice\r\n", b"SAY hello, world\n", b"SAY two\nSAY three\n", b"BYE\n"]
S2C_LINES = [b"+OK hi alice\n", b"+OK\n", b"+OK\n+OK\n", b"-ERR bye already\n"]


def _example_module() -> ModuleType:
    """The example plugin's module, imported from its source (no install needed)."""
    path = EXAMPLE / "msnsniff_toyline" / "__init__.py"
    spec = importlib.util.spec_from_file_location("msnsniff_toyline_source", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def test_builtin_dissectors_are_registered() -> None:
    found = load_dissectors()
    assert {"msnp", "http"} <= set(found)
    assert ENTRY_POINT_GROUP == "msnsniff.dissectors"


def test_example_dissector_meets_the_protocol() -> None:
    module = _example_module()
    cls: Any = module.ToyLineDissector
    dissector = cls()
    assert isinstance(dissector, Dissector)
    assert cls.sniff(b"HELO alice\n", Direction.C2S, [50000, 7007]) > 0.5
    assert cls.sniff(b"VER 1 MSNP8 CVR0\r\n", Direction.C2S, [1863]) == 0.0
    # bytes in any chunking give the same frames, each knowing its offset
    data = b"".join(C2S_LINES)
    whole, bytewise = cls(), cls()
    whole.feed(Direction.C2S, data)
    for i in range(len(data)):
        bytewise.feed(Direction.C2S, data[i : i + 1])
    frames = list(whole.drain())
    assert frames == list(bytewise.drain())
    assert [(f.verb, f.text, f.offset) for f in frames] == [
        ("HELO", "alice", 0), ("SAY", "hello, world", 12), ("SAY", "two", 29),
        ("SAY", "three", 37), ("BYE", "", 47),
    ]  # fmt: skip
    assert whole.next_frame() is NEED_DATA
    whole.feed(Direction.S2C, b"+OK part")
    whole.gap(Direction.S2C, 10)
    whole.feed(Direction.S2C, b"+OK\n")
    cut, after = whole.drain()
    assert (cut.complete, cut.offset, after.offset) == (False, 0, 18)


def _toyline_capture(path: Path) -> None:
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("10.7.0.2", 50007), ("10.7.0.1", 7007))
        conv.open(1.0)
        for i, (ask, answer) in enumerate(zip(C2S_LINES, S2C_LINES, strict=True)):
            conv.send(1.1 + i / 10, True, ask)
            conv.send(1.15 + i / 10, False, answer)
        conv.close(2.0)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin pip-installed into a fresh directory (offline, from its path)."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(EXAMPLE, source)  # pip builds in place: keep the tree clean
    target = work / "site"
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
         "--no-build-isolation", "--disable-pip-version-check", "--target", str(target),
         str(source)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pip cannot install the example plugin offline: {reason}")
    return target


def _read(capture: Path, plugin_dir: Path | None, fmt: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if plugin_dir is not None:
        env["PYTHONPATH"] = str(plugin_dir)
    run = subprocess.run(
        [sys.executable, "-m", "msnsniff", "read", "-T", fmt, str(capture)],
        capture_output=True, text=True, timeout=60, check=True, cwd=ROOT, env=env,
    )  # fmt: skip
    return run.stdout


def test_read_uses_an_installed_plugin(installed: Path, tmp_path: Path) -> None:
    capture = tmp_path / "toyline.pcap"
    _toyline_capture(capture)
    assert _read(capture, None, "jsonl") == ""  # nothing knows TOYLINE without the plugin

    records = [json.loads(line) for line in _read(capture, installed, "jsonl").splitlines()]
    assert {r["proto"] for r in records} == {"toyline"}
    c2s = [(r["offset"], r["length"]) for r in records if r["dir"] == "c2s"]
    s2c = [(r["offset"], r["length"]) for r in records if r["dir"] == "s2c"]
    assert c2s == [(0, 12), (12, 17), (29, 8), (37, 10), (47, 4)]
    assert s2c == [(0, 13), (13, 4), (17, 4), (21, 4), (25, 17)]
    assert {r["src"] for r in records} == {"10.7.0.2:50007", "10.7.0.1:7007"}
    # the plugin's own frame fields are the JSON fields and the text line
    assert records[0]["fields"] == {"verb": "HELO", "text": "alice", "complete": True}

    text = _read(capture, installed, "text")
    assert text.count(" TOYLINE ") == len(records)
    assert "verb=HELO text=alice complete=True" in text
    assert "verb=-ERR text=bye already" in text


def test_a_plugin_that_cannot_be_loaded_is_left_out_and_named(tmp_path: Path) -> None:
    """An installed plugin whose module is missing: msnsniff still reads with the others,
    and says once which plugin it left out and why, instead of a traceback."""
    info = tmp_path / "site" / "broken_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nbroken = no_such_module_here:Dissector\n")
    capture = Path(__file__).parents[2] / "captures" / "server_chat.pcap"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"),
                                                         str(Path(__file__).parents[2])])}
    result = subprocess.run([sys.executable, "-m", "msnsniff", "read", str(capture)],
                            capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "MSNP VER 1 MSNP8" in result.stdout
    assert result.stderr == ("msnsniff: plugin broken (no_such_module_here:Dissector) not "
                             "loaded: ModuleNotFoundError: No module named "
                             "'no_such_module_here'\n")  # fmt: skip


def test_plugins_are_registered_by_name_not_by_install_order(tmp_path: Path) -> None:
    """Of two plugins claiming a flow alike, the first registered reads it; that order was
    the order their distributions were found on sys.path, so two machines with the same
    plugins could decode the same capture differently. Plugins now come by name."""
    sites = []
    for name in ("zeta", "alpha"):
        info = tmp_path / name / f"p_{name}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: p-{name}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(
            f"[{ENTRY_POINT_GROUP}]\n{name} = dissectors.msnp:MsnpDissector\n")
        sites.append(str(tmp_path / name))
    code = "from msnsniff.registry import load_dissectors; print(*load_dissectors())"
    for order in (sites, sites[::-1]):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*order, str(ROOT)])}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=60, check=True)  # fmt: skip
        assert run.stdout.split() == ["msnp", "http", "alpha", "zeta"]


def test_a_plugin_naming_something_else_than_a_dissector_is_left_out(tmp_path: Path) -> None:
    """An entry point naming the frame class, or a constant, instead of the dissector
    loaded fine, and every connection it was asked about failed with AttributeError
    ('... has no attribute sniff/feed'). It is now left out like a plugin that cannot be
    imported, with one line saying what it is not."""
    info = tmp_path / "wrong-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wrong\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nframe = dissectors.api:Frame\n"
        "sentinel = dissectors.api:NEED_DATA\n")
    code = ("from msnsniff.registry import load_dissectors, unloadable_plugins\n"
            "print(*load_dissectors()); print(*unloadable_plugins(), sep='\\n')")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60, check=True)  # fmt: skip
    assert run.stdout.splitlines() == [
        "msnp http",
        "plugin frame (dissectors.api:Frame) not loaded: Frame is not a dissector: it has no "
        "feed, next_frame, drain, gap, sniff",
        "plugin sentinel (dissectors.api:NEED_DATA) not loaded: it names a NeedData, not a "
        "dissector class",
    ]


_OTHER = '''
from dissectors.api import NEED_DATA

class Other:
    name = "other"
    def feed(self, direction, data): pass
    def next_frame(self): return NEED_DATA
    def drain(self): return []
    def gap(self, direction, length): pass
    @classmethod
    def sniff(cls, first_bytes, direction, ports): return 0.0

class Again(Other):
    pass
'''


def test_a_plugin_cannot_take_an_in_tree_or_taken_name(tmp_path: Path) -> None:
    """A plugin registered as `msnp` silently replaced the MSNP dissector: every MSNP
    connection of a capture went undissected (or came out as another protocol's frames
    under the name the analyses read), with no word of why. Two plugins of the same name:
    the one found last on sys.path won, silently. The name is now the first's, and the
    other is left out with one line saying so."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "other_plugin.py").write_text(_OTHER)
    for dist, entries in (("one", "msnp = other_plugin:Other\nsame = other_plugin:Again\n"),
                          ("two", "same = other_plugin:Other\n")):  # fmt: skip
        info = site / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entries}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    code = "from msnsniff.registry import load_dissectors as l; print(*l().items(), sep='\\n')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60, check=True)  # fmt: skip
    assert run.stdout.splitlines()[0].startswith("('msnp', <class 'dissectors.msnp.")
    assert run.stdout.splitlines()[2] == "('same', <class 'other_plugin.Again'>)"
    capture = ROOT / "captures" / "server_chat.pcap"
    result = subprocess.run([sys.executable, "-m", "msnsniff", "read", str(capture)],
                            capture_output=True, text=True, env=env, timeout=60, check=True)
    assert "MSNP VER 1 MSNP8" in result.stdout
    assert result.stderr.splitlines() == [
        "msnsniff: plugin msnp (other_plugin:Other) not loaded: msnp is the name of msnsniff's "
        "own dissector (its frames are what the analyses read); register the plugin under "
        "another name",
        "msnsniff: plugin same (other_plugin:Other) not loaded: other_plugin:Again has the "
        "name same already",
    ]
