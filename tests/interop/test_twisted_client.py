"""Interop: Twisted 15.5's real MSNP8 client against the reference server.

`twisted_msn_client.py` (Python 2.7, see README.md beside it) runs as a subprocess of a
Python 2.7 virtualenv holding Twisted 15.5, made once in ~/.cache/msnsniff/tw27 (or where
MSNSNIFF_TW27 says); the reference server runs in this process on a thread of its own, with
its own event loop, so it keeps answering while the tests wait for the subprocesses. Every
test skips, saying why, when no Python 2.7 is found or the environment cannot be installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from glob import glob
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dissectors.api import Direction
from msnsniff.capture import StreamChunk
from msnsniff.capture.sources import open_source
from msnsniff.cli import main as msnsniff_main
from msnsniff.proxy.proxy import Proxy
from msnsniff.server.app import ReferenceServer
from msnsniff.server.model import LIST_BITS, Contact
from tests.msnsniff.proxy.harness import MemoryTap
from tests.msnsniff.server.scenario import PASSWORDS, TEST_CONFIG, LoopThread

T = TypeVar("T")
Event = dict[str, Any]

SCRIPT = Path(__file__).with_name("twisted_msn_client.py")
PY27_PROBE = "import sys; assert sys.version_info[:2] == (2, 7)"
VIRTUALENV = "virtualenv==16.7.12"  # one file, no dependencies, still runs on 2.7
PINS = (
    "Twisted==15.5.0", "zope.interface==5.5.2", "pyOpenSSL==21.0.0", "cryptography==3.3.2",
    "cffi==1.15.1", "six==1.16.0", "enum34==1.1.10", "ipaddress==1.0.23", "pycparser==2.21",
)  # fmt: skip
ENV_CHECK = (
    "import twisted, OpenSSL; from twisted.words.protocols import msn; "
    "assert twisted.__version__ == '15.5.0' and msn.ClientContextFactory"
)
BUILDING = ".msnsniff-building"  # in an environment being made: a leftover means "half made"
PIP = ("-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input",
       "--retries", "1", "--timeout", "20")  # fmt: skip

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.com"
LIST_VERSION = 3  # alice's and bob's list version after the set-up below


# --- Python 2.7 and the Twisted 15.5 environment ----------------------------------------


def _py27_candidates() -> list[str]:
    """Absolute pyenv installs first (the bare pyenv shim fails while the global version is
    3.x), then the usual system places, then every python2.7/python2 on PATH."""
    found: list[str] = []
    if os.environ.get("MSNSNIFF_PY27"):
        found.append(os.environ["MSNSNIFF_PY27"])
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv",
             "/opt/pyenv", "/usr/local/pyenv"]  # fmt: skip
    for root in filter(None, roots):
        found += sorted(glob(f"{root}/versions/2.7*/bin/python2.7"), reverse=True)
    found += ["/usr/bin/python2.7", "/usr/local/bin/python2.7", "/opt/python2.7/bin/python2.7"]
    for name in ("python2.7", "python2"):
        for folder in os.environ.get("PATH", "").split(os.pathsep):
            if folder:
                found.append(os.path.join(folder, name))
    unique: list[str] = []
    for path in found:
        if path not in unique and os.path.isfile(path) and os.access(path, os.X_OK):
            unique.append(path)
    return unique


def _clean_env() -> dict[str, str]:
    """This process's environment without PYTHON* variables (a py3 PYTHONPATH breaks 2.7)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def find_python27() -> tuple[str | None, list[str]]:
    """The first candidate that really is Python 2.7, and what was tried."""
    tried: list[str] = []
    for path in _py27_candidates():
        try:
            ok = subprocess.run([path, "-c", PY27_PROBE], capture_output=True, timeout=15,
                                env=_clean_env()).returncode == 0  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            ok = False
        if ok:
            return path, tried
        tried.append(path)
    return None, tried


def _tail(text: str, lines: int = 15) -> str:
    kept = [x for x in text.strip().splitlines() if not x.startswith("DEPRECATION: Python 2.7")]
    return "\n".join(kept[-lines:])


def _step(argv: list[str], what: str, **env: str) -> None:
    """Run one install step; raise RuntimeError with its output's tail when it fails."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                           timeout=900, env={**_clean_env(), **env})  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"{what}: {exc}") from exc
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {r.returncode}):\n"
                           f"{_tail(r.stderr + r.stdout)}")  # fmt: skip


def _usable(python: Path) -> bool:
    if not python.exists():
        return False
    r = subprocess.run([str(python), "-W", "ignore", "-c", ENV_CHECK], capture_output=True,
                       timeout=60, env=_clean_env())  # fmt: skip
    return r.returncode == 0


def twisted_env(py27: str) -> Path:
    """The environment's python, made under an exclusive lock if it is not there yet (parallel
    runs wait for the one making it). Raises RuntimeError when it cannot be made."""
    import fcntl  # POSIX only, like the rest of this harness

    root = Path(os.environ.get("MSNSNIFF_TW27") or Path.home() / ".cache/msnsniff/tw27")
    root = root.expanduser().absolute()
    python = root / "bin" / "python"
    if _usable(python) and not (root / BUILDING).exists():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _usable(python) and not (root / BUILDING).exists():
            return python  # another run made it while this one waited
        if root.exists():
            if (root / BUILDING).exists() or not any(root.iterdir()):
                shutil.rmtree(root)  # half made by an interrupted run
            else:
                raise RuntimeError(f"{root} exists but holds no usable Twisted 15.5: remove it "
                                   "or point MSNSNIFF_TW27 elsewhere")  # fmt: skip
        root.mkdir()
        (root / BUILDING).write_text("made by tests/interop/test_twisted_client.py\n")
        try:
            with tempfile.TemporaryDirectory(prefix=".tw27-venvtool-", dir=root.parent) as tool:
                _step([py27, *PIP, "--target", tool, VIRTUALENV], "pip install virtualenv")
                _step([py27, "-m", "virtualenv", "-q", "--no-download", "-p", py27, str(root)],
                      "virtualenv", PYTHONPATH=tool)  # fmt: skip
            _step([str(python), *PIP, *PINS], "pip install Twisted 15.5")
            _step([str(python), "-W", "ignore", "-c", ENV_CHECK], "import check")
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        (root / BUILDING).unlink(missing_ok=True)
    return python


@pytest.fixture(scope="session")
def tw27() -> Path:
    """The Python of the Twisted 15.5 environment (skips when it cannot be had)."""
    py27, tried = find_python27()
    if py27 is None:
        pytest.skip("no Python 2.7 interpreter found (needed to run Twisted 15.5's MSNP8 "
                    f"client); tried: {', '.join(tried) or 'nothing on disk'}; "
                    "set MSNSNIFF_PY27 to one")  # fmt: skip
    started = time.monotonic()
    try:
        python = twisted_env(py27)
    except RuntimeError as exc:
        pytest.skip(f"cannot install the Twisted 15.5 environment with {py27}: {exc}")
    took = time.monotonic() - started
    if took > 5:
        print(f"made the Twisted 15.5 environment {python.parent.parent} in {took:.1f} s")
    return python


# --- the reference server on a thread of its own ----------------------------------------


class LiveServer(LoopThread):
    """A `ReferenceServer` with the demo accounts, running on its own thread and event loop
    (the store's SQLite connection lives on that thread: touch it only through `call`)."""

    def __init__(self, record: Path | None = None) -> None:
        super().__init__("msnsniff-server")
        self.record = record  # the server's own pcap of every MSNP connection it accepted
        self.log: list[str] = []
        self.server: ReferenceServer | None = None
        self._handler = _ListHandler(self.log)
        self._logger = logging.getLogger("msnsniff.server")
        self._level = self._logger.level

    def __enter__(self) -> LiveServer:
        self._logger.addHandler(self._handler)
        self._logger.setLevel(logging.DEBUG)
        self.start_loop()
        try:
            self.server = self.run(self._start())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.run(self.server.close())
        self.stop_loop()
        self._logger.removeHandler(self._handler)
        self._logger.setLevel(self._level)

    def call(self, fn: Callable[[ReferenceServer], T]) -> T:
        async def wrap() -> T:
            assert self.server is not None
            return fn(self.server)

        return self.run(wrap())

    async def _start(self) -> ReferenceServer:
        config = dataclasses.replace(TEST_CONFIG, https_port=0,  # Twisted: HTTPS
                                     record=self.record)
        server = ReferenceServer(config)
        server.add_demo_accounts()
        store = server.store
        alice, bob = store.account(ALICE), store.account(BOB)
        assert alice is not None and bob is not None
        both = LIST_BITS["FL"] | LIST_BITS["AL"] | LIST_BITS["RL"]
        with store.transaction():  # alice and bob on each other's lists, as after ADD FL+AL
            store.save_contact(alice, Contact(BOB, "Bob", both, [0]))
            store.save_contact(bob, Contact(ALICE, "Alice", both, [0]))
            for acc in (alice, bob):
                acc.version = LIST_VERSION
                store.save_account(acc)
        await server.start()
        return server

    @property
    def ns(self) -> str:
        return f"127.0.0.1:{self.call(lambda s: s.ports['ds'])}"

    @property
    def nexus(self) -> str:
        return self.call(lambda s: s.nexus_url)

    def describe(self) -> str:
        """The server side, for assertion messages: ports, accounts, sessions, its log."""

        def state(s: ReferenceServer) -> list[str]:
            out = [f"ports {s.ports}, nexus {s.nexus_url}",
                   f"NS sessions: {sorted(s.hub.sessions)}, "
                   f"switchboards: {len(s.hub.switchboards)}"]  # fmt: skip
            for email in (ALICE, BOB, CAROL):
                acc = s.store.account(email)
                if acc is not None:
                    contacts = {c.email: (c.lists, c.groups) for c in acc.contacts.values()}
                    out.append(f"{email}: version {acc.version}, nick {acc.nick!r}, "
                               f"groups {acc.groups}, contacts {contacts}")  # fmt: skip
            return out

        try:
            if self.loop.is_closed():
                raise RuntimeError("the server has stopped")
            lines = self.call(state)
        except Exception as exc:  # the server thread itself is what went wrong
            lines = [f"(server state unavailable: {exc!r})"]
        lines += ["server log (last 40):", *self.log[-40:]]
        return "\n".join(lines)


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(relativeCreated)8.0f %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(self.format(record))


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with LiveServer() as server:
        yield server


# --- running the client -----------------------------------------------------------------


@dataclasses.dataclass
class ClientRun:
    """One run of the script: its arguments, exit status, output and JSON events."""

    argv: list[str]
    proc: subprocess.Popen[bytes]
    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    events: list[Event] = dataclasses.field(default_factory=list)

    def wait(self, timeout: float) -> ClientRun:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.rc = self.proc.returncode
        self.stdout = out.decode("utf-8", "replace")
        self.stderr = err.decode("utf-8", "replace")
        for line in self.stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.events.append(event)
        return self

    @property
    def name(self) -> str:
        """account/scenario"""
        return f"{self.argv[self.argv.index('--account') + 1]} "\
               f"{self.argv[self.argv.index('--scenario') + 1]}"

    def all(self, kind: str, **match: Any) -> list[Event]:
        return [e for e in self.events if e.get("event") == kind
                and all(e.get(k) == v for k, v in match.items())]  # fmt: skip

    def one(self, kind: str, **match: Any) -> Event:
        found = self.all(kind, **match)
        assert found, f"no {kind} event matching {match}"
        return found[0]

    @property
    def result(self) -> Event:
        results = self.all("result")
        return results[-1] if results else {}

    def describe(self) -> str:
        out = self.stdout.strip().splitlines()
        cut = f"... {len(out) - 200} lines cut ...\n" if len(out) > 200 else ""
        return (f"$ {shlex.join(self.argv)}\nexit status {self.rc}\n--- stdout (JSON events)\n"
                f"{cut}{chr(10).join(out[-200:])}\n--- stderr (tail)\n{_tail(self.stderr, 40)}")


def start(python: Path, live: LiveServer, account: str, scenario: str, *extra: str,
          ns: str | None = None) -> ClientRun:  # fmt: skip
    """Run the script against `live` (its dispatch port, or `ns`; Passport always direct)."""
    argv = [str(python), "-W", "ignore", str(SCRIPT), "--ns", ns or live.ns,
            "--nexus", live.nexus,
            "--account", account, "--password", PASSWORDS[account], "--scenario", scenario,
            "--timeout", "20", "--trace", *extra]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_clean_env())  # fmt: skip
    return ClientRun(argv, proc)


class Checker:
    """Assertions whose failure message carries every run's output and the server side."""

    def __init__(self, live: LiveServer, *runs: ClientRun,
                 more: Callable[[], str] | None = None) -> None:  # fmt: skip
        self.live = live
        self.runs = runs
        self.more = more  # more context (the proxy's side)

    def context(self) -> str:
        parts = [r.describe() for r in self.runs]
        if self.more is not None:
            parts.append(self.more())
        return "\n\n".join([*parts, "--- server\n" + self.live.describe()])

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            pytest.fail(f"{what}\n\n{self.context()}", pytrace=False)

    def event(self, run: ClientRun, kind: str, **match: Any) -> Event:
        found = run.all(kind, **match)
        self.check(bool(found), f"no {kind!r} event with {match} from the {run.name} run")
        return found[0]

    def succeeded(self, run: ClientRun, account: str) -> None:
        self.check(run.rc == 0 and run.result.get("ok") is True,
                   f"the {run.name} run did not succeed: {run.result or 'no result line'}")
        self.event(run, "logged_in", handle=account)
        self.event(run, "status_changed", status="NLN", requested="NLN")


# --- the tests ----------------------------------------------------------------------------


def test_login_sync(tw27: Path, live: LiveServer) -> None:
    run = start(tw27, live, ALICE, "login-sync", "--linger", "0.2").wait(30)
    c = Checker(live, run)
    c.succeeded(run, ALICE)
    c.event(run, "logged_in", handle=ALICE, screen_name="Alice", verified=1)
    profile = c.event(run, "profile")
    c.check(profile["headers"].get("PreferredEmail") == ALICE, "profile not for alice")
    c.event(run, "passport_connect", n=2)  # nexus, then DALogin: Twisted's own Passport code
    c.event(run, "syn_reply", version=LIST_VERSION, lst=1, lsg=1)
    synced = c.event(run, "list_synced")
    expected = [{"handle": BOB, "screen_name": "Bob", "lists": 11,
                 "list_codes": ["FL", "AL", "RL"], "groups": [0], "status": None,
                 "phones": {}}]  # fmt: skip
    c.check(synced["contacts"] == expected, f"synced contacts {synced['contacts']}")
    c.check(synced["groups"] == {"0": "Other Contacts"}, f"synced groups {synced['groups']}")
    c.check(synced["version"] == LIST_VERSION and synced["privacy"] == "AL",
            f"synced version/privacy {synced['version']}/{synced['privacy']}")


def test_list_changes(tw27: Path, live: LiveServer) -> None:
    def stored(s: ReferenceServer) -> tuple[int, str, dict[int, str], bool]:
        acc = s.store.account(CAROL)
        assert acc is not None
        return acc.version, acc.nick, dict(acc.groups), acc.on("FL", BOB)

    before = live.call(stored)[0]
    run = start(tw27, live, CAROL, "list-changes", "--peer", BOB, "--group", "Interop Group",
                "--group-renamed", "Renamed Group", "--nick", "Carol Twisted").wait(30)
    c = Checker(live, run)
    c.succeeded(run, CAROL)
    raw = {e["cmd"]: e["raw"] for e in run.all("list_result", ok=True)}
    c.check(list(raw) == ["ADG", "ADD", "REG", "REM", "RMG", "REA"], f"replies {list(raw)}")
    trid = {e["cmd"]: str(e["trid"]) for e in run.all("list_result")}
    gid = raw["ADG"][4]
    v = [str(before + i) for i in range(1, 7)]  # each change bumps the list version by one
    expected = {
        "ADG": ["ADG", trid["ADG"], v[0], "Interop%20Group", gid, "0"],
        "ADD": ["ADD", trid["ADD"], "FL", v[1], BOB, BOB, gid],
        "REG": ["REG", trid["REG"], v[2], gid, "Renamed%20Group", "0"],
        "REM": ["REM", trid["REM"], "FL", v[3], BOB, gid],
        "RMG": ["RMG", trid["RMG"], v[4], gid],
        "REA": ["REA", trid["REA"], v[5], CAROL, "Carol%20Twisted"],
    }
    for cmd, want in expected.items():
        c.check(raw[cmd] == want, f"{cmd} reply {raw[cmd]}, expected {want}")
    c.check(gid != "0", f"ADG gave the default group's id {gid}")
    # Twisted's own parse of each reply
    results = {e["cmd"]: e["result"] for e in run.all("list_result", ok=True)}
    c.check(results["ADG"] == [int(v[0]), "Interop Group", int(gid)], f"ADG {results['ADG']}")
    c.check(results["REA"] == [int(v[5]), "Carol Twisted"], f"REA {results['REA']}")
    state = live.call(stored)
    c.check(state == (before + 6, "Carol%20Twisted", {0: "Other%20Contacts"}, False),
            f"carol's stored list after the changes: {state}")


CHAT_TEXT, CHAT_REPLY = "hello bob, from Twisted 15.5 (ça va?)", "hi alice: all good"


def chat(tw27: Path, live: LiveServer, ns: str | None = None,
         more: Callable[[], str] | None = None) -> tuple[Checker, ClientRun, ClientRun]:
    """bob (chat-responder) and alice (chat-initiator) as two concurrent runs: she opens a
    switchboard, invites him, says CHAT_TEXT, he answers CHAT_REPLY; both log out. Checks the
    outcome and gives the checker and both runs for more."""
    text, reply = CHAT_TEXT, CHAT_REPLY
    responder = start(tw27, live, BOB, "chat-responder", "--peer", ALICE, "--reply", reply,
                      ns=ns)  # fmt: skip
    initiator = start(tw27, live, ALICE, "chat-initiator", "--peer", BOB, "--message", text,
                      ns=ns)  # fmt: skip
    initiator.wait(30)
    responder.wait(10 if initiator.rc is not None else 1)
    c = Checker(live, initiator, responder, more=more)
    c.succeeded(initiator, ALICE)
    c.succeeded(responder, BOB)
    # each saw the other online (ILN after its own CHG, or NLN later)
    for run, other in ((initiator, BOB), (responder, ALICE)):
        seen = run.all("contact_initial_status", handle=other, status="NLN")
        seen += run.all("contact_status", handle=other, status="NLN")
        c.check(bool(seen), f"the {run.name} run never saw {other} online")
    # alice: XFR SB, CAL, JOI, her message ACKed, bob's reply received
    c.event(initiator, "sb_referral")
    c.event(initiator, "invited", handle=BOB)
    c.event(initiator, "sb_joined", handle=BOB, screen_name="Bob")
    c.event(initiator, "message_acked", body=text)
    got = [e["body"] for e in initiator.all("message", sender=BOB)]
    c.check(got == [reply], f"alice received {got!r}, expected exactly {[reply]!r}")
    headers = c.event(initiator, "message", sender=BOB)["headers"]
    c.check(headers.get("Content-Type", "").startswith("text/plain"),
            f"headers of bob's message at alice: {headers}")
    # bob: RNG from alice, ANS, her message, his reply ACKed
    c.event(responder, "sb_invitation", handle=ALICE, screen_name="Alice")
    c.event(responder, "sb_connected", answering=True)
    c.event(responder, "sb_roster")
    heard = [e["body"] for e in responder.all("message", sender=ALICE)]
    c.check(heard == [text], f"bob received {heard!r}, expected exactly {[text]!r}")
    name = c.event(responder, "message", sender=ALICE)["screen_name"]
    c.check(name == "Alice", f"sender's name at bob: {name!r}")
    c.event(responder, "message_acked", body=reply)
    return c, initiator, responder


def test_chat(tw27: Path, live: LiveServer) -> None:
    chat(tw27, live)


# --- the same chat through the transparent proxy ----------------------------------------

REWROTE = re.compile(r"^(\S+): rewrote (\S+) -> (\S+) in (XFR|RNG)$")
ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}:\d+\b")


class ProxyTap(MemoryTap):
    """MemoryTap, plus each proxied connection's two ends: the client's address as the proxy
    saw it, and the local address of its upstream leg (which is what the server saw)."""

    def __init__(self) -> None:
        super().__init__()
        self.proxy: Proxy | None = None
        self.clients: dict[int, str] = {}
        self.upstream: dict[int, str] = {}

    def opened(self, conn: int, label: str, client: str, server: str, kind: str) -> None:
        super().opened(conn, label, client, server, kind)
        self.clients[conn] = client
        # told once the upstream leg is connected: its socket is there (the Tap protocol
        # does not carry that address, so it is read off the relay's pipe)
        core = self.proxy.core if self.proxy is not None else None
        pipe = core.pipes.get(conn) if core is not None else None
        leg = pipe.legs[Direction.S2C].transport if pipe is not None else None
        local = leg.get_extra_info("sockname") if leg is not None else None
        self.upstream[conn] = f"{local[0]}:{local[1]}" if isinstance(local, tuple) else "?"

    def describe(self, tmp: Path) -> str:
        err = tmp / "live.err"
        live_err = err.read_text(errors="replace") if err.exists() else "(none)"
        conns = [f"  #{n} {kind}: {self.clients.get(n)} -> proxy -> from {self.upstream.get(n)}"
                 for n, kind in sorted(self.kinds.items())]  # fmt: skip
        return "\n".join(["--- proxy connections", *conns, "--- proxy notes", *self.notes,
                          "--- live analysis stderr (tail)", _tail(live_err, 30)])


def _c2s_streams(path: Path) -> dict[str, bytes]:
    """What each client of a capture sent, by the client's address."""
    got: dict[str, bytearray] = {}
    for event in open_source(path):
        if isinstance(event, StreamChunk):
            buf = got.setdefault(event.flow.client or event.flow.id, bytearray())
            if event.direction is Direction.C2S:
                buf += event.data
    return {k: bytes(v) for k, v in got.items()}


def _read_jsonl(path: Path) -> list[Event]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = msnsniff_main(["read", "-T", "jsonl", str(path)])
    assert rc == 0, f"msnsniff read {path}: exit {rc}"
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_chat_through_proxy(tw27: Path, tmp_path: Path) -> None:
    """test_chat with both clients behind the proxy: dispatch, notification and switchboard
    connections all relayed, XFR NS/SB and RNG pointed at the proxy, the rest byte for byte;
    Passport stays direct (HTTPS, not MSNP)."""
    tap = ProxyTap()
    with LiveServer(record=tmp_path / "server.pcap") as live, \
            (tmp_path / "live.out").open("wb") as out, \
            (tmp_path / "live.err").open("wb") as err:  # fmt: skip
        ports: dict[str, int] = live.call(lambda s: dict(s.ports))
        proxy = Proxy(("127.0.0.1", 0), ("127.0.0.1", ports["ds"]),
                      record=tmp_path / "proxy.pcapng", analysis=["-T", "jsonl"],
                      extra_taps=(tap,), analysis_out=out, analysis_err=err)  # fmt: skip
        tap.proxy = proxy
        live.run(proxy.start())
        try:
            c, alice, bob = chat(tw27, live, ns=proxy.address, more=lambda: tap.describe(tmp_path))

            # everything over: every proxied connection closed, no session left at the server
            def busy(s: ReferenceServer) -> bool:
                return bool(s.hub.sessions or s.hub.switchboards)

            deadline = time.monotonic() + 5
            while (len(tap.finished) < len(tap.kinds) or live.call(busy)) \
                    and time.monotonic() < deadline:  # fmt: skip
                time.sleep(0.05)
            c.check(len(tap.finished) == len(tap.kinds) and not live.call(busy),
                    "connections still open 5 s after both runs ended")
        finally:
            live.run(proxy.close())  # the recording complete, the live output flushed

        # the proxy's rewrites: XFR NS (each login's dispatch), XFR SB (alice), RNG (bob)
        real = {kind: f"127.0.0.1:{ports[kind]}" for kind in ("ds", "ns", "sb")}
        found = [m for m in map(REWROTE.match, tap.notes) if m]
        done = sorted((m[4], m[2]) for m in found)
        want = sorted([("XFR", real["ns"])] * 2 + [("XFR", real["sb"]), ("RNG", real["sb"])])
        c.check(done == want, f"rewrites {done}, expected {want}")
        ns_proxy = {m[3] for m in found if m[2] == real["ns"]}
        sb_proxy = {m[3] for m in found if m[2] == real["sb"]}
        c.check(len(ns_proxy) == len(sb_proxy) == 1 and not (ns_proxy | sb_proxy) & {
            *real.values(), proxy.address}, f"the proxy's listeners: NS {ns_proxy}, SB {sb_proxy}")
        ns_at, sb_at = ns_proxy.pop(), sb_proxy.pop()
        live_notes = [x.removeprefix("proxy: ") for x in (tmp_path / "live.err").read_text()
                      .splitlines() if REWROTE.match(x.removeprefix("proxy: "))]  # fmt: skip
        c.check(sorted(live_notes) == sorted(m[0] for m in found),
                f"the live analysis's rewrite notes {live_notes}")

        # what the clients saw: only the proxy's addresses (the real DS's only as XFR NS's
        # "current server" field, which the proxy leaves as it is)
        for run in (alice, bob):
            peers = [e["peer"] for e in run.all("ns_connected")]
            c.check(peers == [proxy.address, ns_at], f"{run.name}: NS connections to {peers}")
            referral = c.event(run, "ns_referral")
            c.check(f"{referral['host']}:{referral['port']}" == ns_at, f"{run.name}: {referral}")
            for e in run.all("wire", dir="recv"):
                words = e["line"].split(" ")
                allowed = {proxy.address, ns_at, sb_at}
                if words[:1] == ["XFR"] and words[2:3] == ["NS"]:
                    allowed.add(real["ds"])
                seen = set(ADDRESS.findall(e["line"])) - allowed
                c.check(not seen, f"{run.name} received {e['line']!r}: addresses {seen}")
        xfr = c.event(alice, "sb_referral")
        rng = c.event(bob, "sb_invitation")
        for what, e in (("XFR SB at alice", xfr), ("RNG at bob", rng)):
            c.check(f"{e['host']}:{e['port']}" == sb_at, f"{what} gave {e}, expected {sb_at}")
        sb_wire = [e for r in (alice, bob) for e in r.all("wire", conn="sb")]
        c.check(any(e["line"].startswith("USR ") for e in sb_wire)
                and any(e["line"].startswith("ANS ") for e in sb_wire),
                "no USR/ANS on the switchboard connections")  # fmt: skip

        # what the server saw: exactly the proxy's upstream connections, nothing else
        kinds = sorted(tap.kinds.values())
        c.check(kinds == ["main", "main", "ns", "ns", "sb", "sb"], f"proxied: {kinds}")
        at_server = _c2s_streams(tmp_path / "server.pcap")
        upstream = set(tap.upstream.values())
        c.check(set(at_server) == upstream and len(upstream) == len(tap.kinds),
                f"the server's connections came from {sorted(at_server)}; the proxy's upstream "
                f"legs from {sorted(upstream)}")
        c.check(not set(at_server) & set(tap.clients.values()),
                "a client connected to the server directly")
        for n, frm in tap.upstream.items():  # relayed byte for byte, client to server
            c.check(at_server.get(frm) == bytes(tap.bytes[(n, Direction.C2S)]),
                    f"connection #{n}: what the server got differs from what the client sent")

    # the proxy's recording read back = its live output, frame for frame
    recorded = _read_jsonl(tmp_path / "proxy.pcapng")
    live_out = [json.loads(x) for x in (tmp_path / "live.out").read_text().splitlines()]

    def key(f: Event) -> tuple[Any, ...]:
        return f["dir"], f["cmd"], f["trid"], tuple(f["args"])

    c.check(len(live_out) > 40, f"only {len(live_out)} frames in the live output")
    c.check(sorted(map(key, live_out)) == sorted(map(key, recorded)),
            f"recorded {len(recorded)} frames, live {len(live_out)}; differing: "
            f"{sorted(set(map(key, live_out)) ^ set(map(key, recorded)))[:10]}")
    servers = {f["src"] for f in live_out if f["dir"] == "s2c"}
    c.check(servers == {f["src"] for f in recorded if f["dir"] == "s2c"} == set(real.values()),
            f"servers in the live output {servers}, expected {set(real.values())}")
    cmds = {f["cmd"] for f in live_out}
    c.check({"XFR", "RNG", "CAL", "ANS", "JOI", "MSG", "ACK", "OUT"} <= cmds,
            f"commands in the live output: {sorted(cmds)}")
