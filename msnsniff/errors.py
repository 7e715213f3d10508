"""The root of msnsniff's own errors."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


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
