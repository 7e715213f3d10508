"""A frame in words, for one-line views: "ADD FL bob@example.com → v1201", "216 not on list".

A table of small describers keyed by command, each reading the decoded fields; commands
without one are shown as their line. Used by the TUI's stream; pure, so tested without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from dissectors.api import Direction, Frame
from dissectors.http.frames import HttpFrame
from dissectors.msnp.errors import error_info
from dissectors.msnp.frames import (
    CommandFrame,
    ErrorFrame,
    GapFrame,
    MalformedFrame,
    PartialFrame,
)
from msnsniff.output import own_fields, printable

Describer = Callable[[CommandFrame, dict[str, Any]], str]
MAX: Final = 200


def _version(f: dict[str, Any]) -> str:
    v = f.get("version")
    return f" → v{v}" if isinstance(v, int) else ""


def _list_change(frame: CommandFrame, f: dict[str, Any]) -> str:
    group = f.get("group_id")
    where = f" group {group}" if group not in (None, "") else ""
    return f"{frame.cmd} {f.get('list', '?')} {f.get('account', '?')}{where}{_version(f)}"


def _rea(frame: CommandFrame, f: dict[str, Any]) -> str:
    return f"REA {f.get('account', '?')} = {f.get('nick', '?')}{_version(f)}"


def _group(frame: CommandFrame, f: dict[str, Any]) -> str:
    name = f.get("name")
    gid = f.get("group_id")
    what = " ".join(str(x) for x in (f"group {gid}" if gid is not None else None, name) if x)
    return f"{frame.cmd} {what}{_version(f)}"


def _syn(frame: CommandFrame, f: dict[str, Any]) -> str:
    if frame.direction is Direction.C2S:
        return f"SYN: the client has v{f.get('version', '?')}"
    if "contacts" in f:
        return f"SYN v{f.get('version')}: {f['contacts']} contacts, {f.get('groups')} groups"
    return f"SYN v{f.get('version', '?')}"


def _presence(frame: CommandFrame, f: dict[str, Any]) -> str:
    status = f.get("status_meaning") or f.get("status", "?")
    who = f.get("account")
    if who is None:
        return f"{frame.cmd} → {status}"
    return f"{frame.cmd} {who}{_nick_of(f)} is {status}"


def _fln(frame: CommandFrame, f: dict[str, Any]) -> str:
    return f"FLN {f.get('account', '?')} went offline"


def _msg(frame: CommandFrame, f: dict[str, Any]) -> str:
    payload = frame.payload
    ctype = (payload.content_type if payload is not None else None) or "?"
    sender = f.get("sender_nick") or f.get("sender")
    if payload is not None and ctype.startswith("text/plain"):
        text = payload.body.decode("utf-8", "replace").replace("\r\n", " ⏎ ")
        who = f"{sender}: " if sender else "» "
        return f"MSG {who}{text}"
    kind = ctype.removeprefix("text/x-msmsgs").removeprefix("text/x-") or ctype
    return f"MSG {kind}" + (f" from {sender}" if sender and sender != "Hotmail" else "")


def _xfr(frame: CommandFrame, f: dict[str, Any]) -> str:
    if frame.direction is Direction.C2S:
        return f"XFR {f.get('kind', '?')} requested"
    return f"XFR {f.get('kind', '?')} → {f.get('address', '?')}"


def _usr(frame: CommandFrame, f: dict[str, Any]) -> str:
    if f.get("result") == "OK":
        return f"USR OK {f.get('account', '?')}{_nick_of(f)}"
    method, step = f.get("method"), f.get("step")
    if method and step:
        who = f.get("account")
        return f"USR {method} {step}" + (f" {who}" if who else "")
    return _line(frame)


def _cal(frame: CommandFrame, f: dict[str, Any]) -> str:
    if frame.direction is Direction.C2S:
        return f"CAL {f.get('account', '?')}"
    return f"CAL {f.get('status', '?')} session {f.get('session_id', '?')}"


def _join(frame: CommandFrame, f: dict[str, Any]) -> str:
    return f"{frame.cmd} {f.get('account', '?')}"


def _rng(frame: CommandFrame, f: dict[str, Any]) -> str:
    return f"RNG from {f.get('caller', '?')} to session {f.get('session_id', '?')}"


def _nick_of(f: dict[str, Any]) -> str:
    """` (nick)` after an account, unless the nickname is the account itself or absent."""
    nick = f.get("nick")
    return f" ({nick})" if nick and nick != f.get("account") else ""


def _lst(frame: CommandFrame, f: dict[str, Any]) -> str:
    if frame.direction is Direction.C2S:
        return f"LST {f.get('list', '?')} requested"
    if "list" in f:  # the counted form before MSNP8: one list, item `index` of `total`
        who = f.get("account")
        if who is None:
            return f"LST {f['list']} empty{_version(f)}"
        count = f" ({f.get('index', '?')}/{f.get('total', '?')})"
        return f"LST {f['list']} {who}{_nick_of(f)}{count}{_version(f)}"
    lists = f.get("lists")
    on = " ".join(lists) if isinstance(lists, list) and lists else "no list"
    groups = f.get("groups")
    where = f" groups {','.join(map(str, groups))}" if isinstance(groups, list) and groups else ""
    return f"LST {f.get('account', '?')}{_nick_of(f)} on {on}{where}"


def _lsg(frame: CommandFrame, f: dict[str, Any]) -> str:
    gid = f.get("group_id", f.get("guid", "?"))
    return f"LSG group {gid} {f.get('name', '?')}"


def _property(frame: CommandFrame, f: dict[str, Any]) -> str:
    who = f" {f['account']}" if f.get("account") else ""
    value = f.get("value")
    setting = f"= {value}" if value else "blank"  # the BPRs after an ADD FL (seed 004)
    return f"{frame.cmd}{who} {f.get('type', '?')} {setting}{_version(f)}"


def _setting(frame: CommandFrame, f: dict[str, Any]) -> str:
    meaning = f.get("value_meaning")
    return f"{frame.cmd} {f.get('value', '?')}" + (f" ({meaning})" if meaning else "") + (
        _version(f)
    )


DESCRIBERS: Final[Mapping[str, Describer]] = MappingProxyType({
    "GTC": _setting, "BLP": _setting, "LST": _lst, "LSG": _lsg, "PRP": _property,
    "BPR": _property,
    "ADD": _list_change, "REM": _list_change, "REA": _rea, "ADG": _group, "RMG": _group,
    "REG": _group, "SYN": _syn, "CHG": _presence, "ILN": _presence, "NLN": _presence,
    "FLN": _fln, "MSG": _msg, "XFR": _xfr, "USR": _usr, "CAL": _cal, "JOI": _join,
    "BYE": _join, "IRO": _join, "RNG": _rng,
})  # fmt: skip


def _line(frame: CommandFrame) -> str:
    return printable(frame.raw[: frame.header_len - 2].decode("utf-8", "surrogateescape"))


def error_words(frame: ErrorFrame) -> str:
    """`216 not on list`: the code and its constant's name in words."""
    return f"{frame.cmd} {error_info(frame.code).words}"


def describe(frame: Frame) -> str:
    """The frame in words, at most MAX characters."""
    if isinstance(frame, GapFrame):
        text = f"[{frame.length} bytes missing from the capture]"
    elif isinstance(frame, MalformedFrame):
        what = "partial" if isinstance(frame, PartialFrame) else "malformed"
        text = f"[{what}, {len(frame.raw)} bytes: {frame.reason}]"
    elif isinstance(frame, ErrorFrame):
        text = error_words(frame)
    elif isinstance(frame, CommandFrame):
        describer = DESCRIBERS.get(frame.cmd)
        try:
            text = describer(frame, frame.fields) if describer is not None else _line(frame)
        except Exception:  # a describer must never take a row down with it
            text = _line(frame)
        text = printable(text)
    elif isinstance(frame, HttpFrame):
        from msnsniff.httpview import describe as http_words

        text = printable(http_words(frame))
    else:  # a plugin's frame: its protocol and its own fields, as `read -T text` shows it
        words = " ".join(f"{name}={value}" for name, value in own_fields(frame))
        proto = getattr(frame, "proto", "?")
        head = f"{proto.upper()} " if isinstance(proto, str) and proto != "?" else ""
        text = printable(head + (words or f"{len(frame.raw)} bytes"))
    return text if len(text) <= MAX else text[: MAX - 1] + "…"
