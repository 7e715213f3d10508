"""`--script FILE.py`: a frame-level hook in the spirit of mitmproxy's addons.

The script defines `on_frame(frame)`; for every frame in either direction it returns:

- the frame itself to pass it on;
- a changed frame (`frame.replace(line=..., payload=...)`): the payload length in the line
  is recomputed from the payload (added when the line has none), so a script can edit
  message text freely;
- `None` to drop the frame;
- a list of frames to send instead, where frames of the other direction (made with
  `frame.reply(...)` or `ProxyFrame(...)`) go back the way this one came: an injected reply.

A script that raises is reported and the original frame goes through untouched: forwarding
never depends on a script working.
"""

from __future__ import annotations

import importlib.util
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, cast

from dissectors.api import Direction
from msnsniff.errors import MsnsniffError
from msnsniff.proxy.framing import WireFrame, payload_length


@dataclass(frozen=True, slots=True)
class ProxyFrame:
    """A frame as a script sees it: direction, connection label, line (text) and payload."""

    direction: Direction
    connection: str
    line: str
    payload: bytes = b""

    @property
    def words(self) -> list[str]:
        return self.line.split()

    @property
    def cmd(self) -> str:
        w = self.words
        return w[0] if w else ""

    def replace(self, *, line: str | None = None, payload: bytes | None = None) -> ProxyFrame:
        return replace(self, line=self.line if line is None else line,
                       payload=self.payload if payload is None else payload)

    def reply(self, line: str, payload: bytes = b"") -> ProxyFrame:
        """A frame going the other way on the same connection (an injected answer)."""
        other = Direction.S2C if self.direction is Direction.C2S else Direction.C2S
        return ProxyFrame(other, self.connection, line, payload)

    def wire(self) -> bytes:
        """The bytes to send: the payload length in the line set to the payload's size, or
        added as its last word when the command needs one and the line has none (a script's
        `frame.reply("MSG Hotmail Hotmail", body)`): else the peer could not frame it."""
        line = self.line.encode("utf-8", "surrogateescape")
        length = payload_length(line, self.direction)  # None: the command takes no payload
        if length == -1:  # -1: it takes one, and its last word is no length
            return line + b" " + str(len(self.payload)).encode() + b"\r\n" + self.payload
        if length is not None and (self.payload or length > 0):
            words = line.split(b" ")
            if words[-1].isdigit():
                words[-1] = str(len(self.payload)).encode()
            line = b" ".join(words)
        return line + b"\r\n" + self.payload


MAX_SHOWN: Final = 5  # frames a note names one by one

Hook = Callable[[ProxyFrame], "ProxyFrame | Sequence[ProxyFrame] | None"]


def load_script(path: Path) -> Hook:
    """The `on_frame` function of a script file; MsnsniffError when there is none."""
    spec = importlib.util.spec_from_file_location(f"msnsniff_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise MsnsniffError(f"--script: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise MsnsniffError(f"--script: {path} failed to load: {_load_error(e, path)}") from e
    hook = getattr(module, "on_frame", None)
    if not callable(hook):
        raise MsnsniffError(f"--script: {path} defines no on_frame(frame) function")
    return cast(Hook, hook)  # a user's function: apply() checks what it returns


def _load_error(exc: Exception, path: Path) -> str:
    """Why a script did not load, as a person reads it: the file's own error (not the repr
    `FileNotFoundError(2, ...)`), a syntax error's line, or the exception and the line of
    the script it was raised on."""
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} (line {exc.lineno})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
             if Path(f.filename).absolute() == path.absolute()]  # fmt: skip
    return f"{type(exc).__name__}: {exc}" + (f" (line {lines[-1]})" if lines else "")


def apply(hook: Hook, frame: WireFrame, direction: Direction, connection: str
          ) -> tuple[list[ProxyFrame], str | None]:
    """Run the hook on one frame: (frames to send, a note when the script changed something
    or failed). Frames keep the hook's order; each carries its own direction."""
    original = ProxyFrame(direction, connection,
                          frame.line.decode("utf-8", "surrogateescape"), frame.payload)
    try:
        result = hook(original)
        # a generator's body runs here; a bool or a number is no list (`return frame.cmd !=
        # "PNG"` as a filter): never an exception into the relay, which would drop the link
        got: list[object] | None = None
        if isinstance(result, ProxyFrame):
            got = [result]
        elif result is not None and isinstance(result, Iterable):
            got = list(result)
    except (Exception, SystemExit) as e:  # a script's bug (or its exit()) must not stop us
        return [original], f"script error on {original.cmd}: {e!r}; frame passed unchanged"
    if result is None:
        return [], f"script dropped {_shown(original)}"
    out = [f for f in got or () if isinstance(f, ProxyFrame)]
    if got is None or len(out) != len(got):
        return [original], "script returned something that is not a ProxyFrame; passed unchanged"
    for f in out:  # `payload="text"` (a str), `line=b"..."`: nothing to send, and no crash
        if not isinstance(f.direction, Direction):  # `ProxyFrame("s2c", ...)`
            return [original], (f"script returned a frame whose direction is {f.direction!r}, "
                                "not a Direction (frame.reply() makes one going back); "
                                "frame passed unchanged")  # fmt: skip
        try:
            f.wire()
        except (TypeError, AttributeError, UnicodeError) as e:
            return [original], (f"script returned a frame that cannot be sent ({e}: the line "
                                "is a str, the payload bytes); frame passed unchanged")
    for f in out:  # its length would overwrite the line's last number, and the bytes follow
        line = f.line.encode("utf-8", "surrogateescape")
        if f.payload and payload_length(line, f.direction) is None:
            return [original], (f"script gave {_shown(f)} a payload, which {f.cmd or 'it'} "
                                "does not take; frame passed unchanged")  # fmt: skip
    if out == [original]:
        return out, None
    back = {direction: "", _other(direction): ", sent back"}
    sent = [f"{_shown(f)} ({len(f.wire())} bytes{back[f.direction]})" for f in out[:MAX_SHOWN]]
    if len(out) > MAX_SHOWN:
        sent.append(f"{len(out) - MAX_SHOWN} more")
    return out, (f"script changed {_shown(original)} ({len(frame.raw)} bytes) into "
                 f"{len(out)} frame(s): {', '.join(sent)}")


def _other(direction: Direction) -> Direction:
    return Direction.S2C if direction is Direction.C2S else Direction.C2S


def _shown(frame: ProxyFrame) -> str:
    """A frame for a note on stderr: its command and TrID only (the arguments of USR, ANS
    and others are tickets, password hashes and cookies; without --redact, notes are
    printed and recorded as they are made)."""
    words = frame.words[:2]
    return " ".join(words if words[1:] and words[1].isdigit() else words[:1])
