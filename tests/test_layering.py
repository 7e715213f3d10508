"""The layering rules of ARCHITECTURE.md, checked in a fresh interpreter."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_core_and_cli_do_not_import_textual_or_scapy() -> None:
    loaded = _modules_after(
        "import dissectors, dissectors.msnp, msnsniff.cli, msnsniff.output\n"
        "from dissectors.msnp import MsnpDissector\n"
        "MsnpDissector()"
    )
    assert "dissectors.msnp" in loaded and "msnsniff.cli" in loaded
    heavy = {m for m in loaded if m.split(".")[0] in ("textual", "scapy")}
    assert heavy == set()


def test_read_command_does_not_import_textual_or_scapy() -> None:
    seed = ROOT.parent / "shared" / "seeds" / "004_b8b8689117ee1abf.txt"
    sample = seed if seed.exists() else ROOT / "captures" / "msnp8_demo.pcap"
    loaded = _modules_after(
        "import io, contextlib\nfrom msnsniff.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main(['read', {str(sample)!r}])"
    )
    assert "msnsniff.session.capture_session" in loaded
    assert {m for m in loaded if m.split(".")[0] in ("textual", "scapy")} == set()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_dissectors_never_import_msnsniff() -> None:
    offenders = {
        str(p.relative_to(ROOT)): sorted(i for i in _imports(p) if i.split(".")[0] == "msnsniff")
        for p in (ROOT / "dissectors").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(offenders) >= 8  # the walk really saw the package


def test_nothing_imports_the_tui_except_the_cli() -> None:
    offenders = []
    for p in (ROOT / "msnsniff").rglob("*.py"):
        rel = p.relative_to(ROOT)
        if rel.parts[1] == "tui" or rel.name == "cli.py":
            continue
        if any(i.startswith("msnsniff.tui") for i in _imports(p)):
            offenders.append(str(rel))
    assert offenders == []


def _top_level_imports(path: Path) -> set[str]:
    """Modules a file imports when it is imported (not inside a function or class body)."""
    names: set[str] = set()
    todo: list[ast.stmt] = list(ast.parse(path.read_text(encoding="utf-8")).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif isinstance(node, ast.If | ast.Try | ast.With):  # guarded imports count too
            todo += [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
    return names


def test_scapy_and_textual_are_imported_only_where_they_are_used() -> None:
    """Every module, not only those `read` loads: scapy inside the functions that capture,
    textual at module level only in the TUI package (which nothing else imports eagerly)."""
    offenders = []
    for root in ("msnsniff", "dissectors"):
        for p in (ROOT / root).rglob("*.py"):
            rel = p.relative_to(ROOT)
            heavy = {i.split(".")[0] for i in _top_level_imports(p)} & {"scapy", "textual"}
            if rel.parts[:2] == ("msnsniff", "tui"):
                heavy -= {"textual"}
            if heavy:
                offenders.append(f"{rel}: {sorted(heavy)}")
    assert offenders == []


def test_relative_imports_are_not_used() -> None:
    """The checks above read absolute module names: a relative import would slip past."""
    relative = [
        str(p.relative_to(ROOT))
        for root in ("msnsniff", "dissectors")
        for p in (ROOT / root).rglob("*.py")
        if any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(ast.parse(
            p.read_text(encoding="utf-8"))))
    ]  # fmt: skip
    assert relative == []


TOP_LEVEL = {".ci", ".gitignore", "README.md", "benchmarks", "captures", "dissectors",
             "msnsniff", "pyproject.toml", "setup.py", "tests"}  # fmt: skip
"""The repository's fixed top level (the project's brief, plus CI, the benchmarks and the
opt-in compiled build's setup.py)."""


def test_the_repository_top_level_holds_only_the_fixed_entries() -> None:
    """A stray file at the root (once a pcap named `-` from a hand check of `sniff -w -`)
    is caught here rather than shipped."""
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        # not a checkout of its own: an unpacked sdist, or a copy inside another checkout
        # (the compiled build's, under bench-data/)
        entries = {p.name for p in ROOT.iterdir()}
        assert entries >= {"README.md", "pyproject.toml", "msnsniff", "dissectors"}
        return
    tracked = {line.split("/", 1)[0] for line in listed.stdout.splitlines()}
    assert tracked - TOP_LEVEL == set()
    assert {"README.md", "pyproject.toml", "msnsniff", "dissectors", "tests"} <= tracked
