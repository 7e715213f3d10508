"""The root of msnsniff's own errors."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import ClassVar, Final


class MsnsniffError(Exception):
    """Something msnsniff cannot do, with where it happened when known."""

    heading: ClassVar[str] = ""
    """What a message of several lines is about: the line printed above it."""

    def __init__(
        self, message: str, *, offset: int | None = None, record: int | None = None
    ) -> None:
        where = []
        if record is not None:
            where.append(f"record {record}")
        if offset is not None:
            where.append(f"byte offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.reason = message
        self.offset = offset
        self.record = record


def require_output_dir(target: Path) -> None:
    """MsnsniffError naming `target` when the directory it is to be written in does not
    exist: the message names the output the user gave, not a temporary file beside it."""
    if not target.parent.is_dir():
        raise MsnsniffError(f"{target}: no directory {target.parent} to write it in")


_BIND_ADDRESS: Final = re.compile(r"address \('([^']*)', (\d+)(?:, \d+, \d+)?\)")


def cannot_listen(
    what: str, exc: OSError, where: str | None = None, *, host: str | None = None
) -> MsnsniffError:
    """`what: cannot listen on HOST:PORT: reason` for a failed bind, in one plain clause:
    asyncio words it 'error while attempting to bind on address (...): address already in
    use', after the errno's own text in some paths. `where` is the address when the caller
    knows it; else the one asyncio names, if any; else `host`, the host listened on (a name
    that does not resolve is named by nothing else). A resolver error keeps its own words:
    its negative code is no errno (os.strerror says 'Unknown error -2')."""
    text = str(exc)
    if where is None:
        found = _BIND_ADDRESS.search(text)
        if found is not None:
            name = found.group(1)
            where = f"[{name}]:{found.group(2)}" if ":" in name else f"{name}:{found.group(2)}"
        else:
            where = host
    why = os_reason(exc)
    return MsnsniffError(f"{what}cannot listen{f' on {where}' if where else ''}: {why}")


def bind_port(exc: OSError) -> int | None:
    """The port a failed bind was for, where asyncio's message names it (else None)."""
    found = _BIND_ADDRESS.search(str(exc))
    return int(found.group(2)) if found is not None else None


def os_reason(exc: OSError) -> str:
    """The errno's own words (`Connection refused`) for an OSError asyncio words its own way
    ("Connect call failed ('127.0.0.1', 1863)"); a resolver error keeps its words: its
    negative code is no errno."""
    if isinstance(exc, socket.gaierror) or not exc.errno:
        return exc.strerror or str(exc) or type(exc).__name__
    return os.strerror(exc.errno)
