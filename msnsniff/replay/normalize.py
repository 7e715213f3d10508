"""Normalising server frames so a recording and its replay compare on behaviour, not on
values that differ by nature (TrIDs, cookies, tickets, list versions, times).

Rules are data: `DEFAULT_RULES` holds them as lines of the same language users extend with
`--rule` or `--rules FILE`:

    field [CMD:]NAME LABEL an argument the grammar names NAME (in CMD only, with CMD:)
                           becomes <LABEL>
    field [CMD:]NAME offset  a list version: shown as v+N, N its step from the version before
                           it on the connection (so one change more or less upstream does
                           not shift every later version)
    header NAME LABEL      a payload header's value becomes <LABEL>
    ignore CMD             frames of command CMD are left out of the comparison
    keep CMD|NAME          undo a default rule

A normalised frame is a tuple of text lines: the command line (TrIDs other than 0 shown as
`#`), then, for a payload, its header lines and body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from dissectors.msnp.decode import choose_variant
from dissectors.msnp.frames import CommandFrame, ErrorFrame
from msnsniff.errors import MsnsniffError

DEFAULT_RULES: Final = """
field cookie cookie
field session_id session
field address address
field current_address address
field policy challenge
field USR:value secret
field challenge challenge
field length length
field version offset
header LoginTime time
header MSPAuth ticket
header ClientIP address
header ClientPort port
header sid sid
header kv kv
ignore CHL
ignore QRY
"""
"""The rules every comparison starts from: values that change from run to run.

CHL and QRY are left out because challenges come from a timer, not from what the client did.
"""

BODY_LIMIT: Final = 400
"""Characters of a payload body kept in a normalised frame."""


@dataclass(frozen=True, slots=True)
class Rules:
    """The normalisation table (see the module docstring)."""

    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    ignored: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, lines: Iterable[str], base: Rules | None = None) -> Rules:
        """Rules from lines of the rule language, on top of `base`; MsnsniffError names the
        bad line."""
        fields = dict(base.fields) if base else {}
        headers = {k.casefold(): v for k, v in base.headers.items()} if base else {}
        ignored = set(base.ignored) if base else set()
        for n, raw in enumerate(lines, 1):
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            verb, args = words[0], words[1:]
            if verb == "field" and len(args) == 2:
                cmd, colon, name = args[0].rpartition(":")
                fields[f"{cmd.upper()}:{name}" if colon else name] = args[1]
            elif verb == "header" and len(args) == 2:
                headers[args[0].casefold()] = args[1]
            elif verb == "ignore" and len(args) == 1:
                ignored.add(args[0].upper())
            elif verb == "keep" and len(args) == 1:
                cmd, colon, name = args[0].rpartition(":")
                fields.pop(f"{cmd.upper()}:{name}" if colon else name, None)
                headers.pop(args[0].casefold(), None)
                ignored.discard(args[0].upper())
            else:
                raise MsnsniffError(f"rule {n}: cannot read {raw.strip()!r} (expected 'field "
                                    "NAME LABEL|offset', 'header NAME LABEL', 'ignore CMD' "
                                    "or 'keep CMD|NAME')")  # fmt: skip
        return cls(MappingProxyType(fields), MappingProxyType(headers), frozenset(ignored))

    @classmethod
    def default(cls, extra: Iterable[str] = ()) -> Rules:
        """The default rules, then the user's `extra` ones (numbered from 1 in errors)."""
        return cls.parse(extra, base=cls.parse(DEFAULT_RULES.splitlines()))


class Normalizer:
    """Normalises the server frames of one connection, in order (list versions are offsets
    from the version before them on the connection)."""

    def __init__(self, rules: Rules) -> None:
        self._rules = rules
        self._base: int | None = None

    def ignored(self, frame: CommandFrame) -> bool:
        return frame.cmd in self._rules.ignored

    def frame(self, frame: CommandFrame) -> tuple[str, ...]:
        words = [frame.cmd]
        trid = frame.trid
        if trid is not None:
            words.append("#" if trid else "0")
        words.extend(self._args(frame))
        lines = [" ".join(words)]
        payload = frame.payload_bytes
        if payload is not None:
            lines.extend(self._payload(payload))
        return tuple(lines)

    def _args(self, frame: CommandFrame) -> list[str]:
        args = list(frame.args)
        if isinstance(frame, ErrorFrame):
            return args
        variant = choose_variant(frame)
        if variant is None:
            return args
        for i, spec in enumerate(variant.args):
            if i >= len(args) or spec.rest:
                break
            label = self._rules.fields.get(f"{frame.cmd}:{spec.name}")
            if label is None:
                label = self._rules.fields.get(spec.name)
            if label is None:
                continue
            if label == "offset":
                args[i] = self._offset(args[i])
            else:
                args[i] = f"<{label}>"
        return args

    def _offset(self, text: str) -> str:
        if not text.isdigit():
            return text
        value = int(text)
        delta = 0 if self._base is None else value - self._base
        self._base = value
        return f"v{delta:+d}" if delta else "v"

    def _payload(self, payload: bytes) -> list[str]:
        head, sep, body = payload.partition(b"\r\n\r\n")
        if not sep:
            head, body = b"", payload
        out: list[str] = []
        for line in head.split(b"\r\n"):
            name, colon, value = line.decode("utf-8", "replace").partition(":")
            label = self._rules.headers.get(name.strip().casefold()) if colon else None
            out.append(f"{name}: <{label}>" if label is not None else f"{name}{colon}{value}")
        text = body.decode("utf-8", "replace")
        if len(text) > BODY_LIMIT:
            text = text[:BODY_LIMIT] + "…"
        out.extend(line for line in text.replace("\r\n", "\n").split("\n") if line)
        return out
