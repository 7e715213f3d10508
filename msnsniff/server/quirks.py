"""Deliberate misbehaviour for testing tools against the reference server (`serve --quirk`).

A regression harness (`msnsniff replay`) is only trusted once it has been seen to catch a
change, and its fault handling once it has met a faulty server; these switches make the
reference server that changed or faulty server on purpose. They are off by default and
nothing else turns them on.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

Effect = Literal["ignore", "close"]

QUIRKS: Final[Mapping[str, str]] = MappingProxyType({
    "rem-absent-ok": "REM of a contact not on the list answers as if it had been removed "
                     "(instead of 216)",
    "silent-syn": "SYN is never answered",
    "close-on-chg": "CHG closes the connection instead of being answered",
    "ns-redirect": "the notification server answers each account's first USR ... I with "
                   "XFR NS to itself (a login sent on to another notification server)",
})  # fmt: skip
"""Quirk name -> what it does."""

COMMAND_QUIRKS: Final[Mapping[str, tuple[str, Effect]]] = MappingProxyType({
    "silent-syn": ("SYN", "ignore"),
    "close-on-chg": ("CHG", "close"),
})
"""The quirks that replace a command's handling outright: name -> (command, effect)."""


def check_quirks(names: frozenset[str]) -> None:
    """ValueError naming an unknown quirk (and the known ones)."""
    unknown = sorted(names - QUIRKS.keys())
    if unknown:
        raise ValueError(f"unknown quirk {', '.join(unknown)} (known: {', '.join(QUIRKS)})")


def command_effect(names: frozenset[str], cmd: str) -> Effect | None:
    """What the enabled quirks do to a notification-server command, if anything."""
    for name in names:
        quirk = COMMAND_QUIRKS.get(name)
        if quirk is not None and quirk[0] == cmd:
            return quirk[1]
    return None
