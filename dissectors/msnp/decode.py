"""Named, typed fields of a command frame, from the grammar's variants and a type table.

Decoding is separate from framing so the hot path (framing, pairing) never pays for it.
Every type decoder is total: a value that does not fit its type is kept as text and the
mismatch is reported in `problems`, never raised.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from dissectors.msnp.frames import CommandFrame, ErrorFrame
from dissectors.msnp.grammar import (
    ACK_MODES,
    AUTH_STEPS,
    BLP_VALUES,
    C2S,
    CAPABILITIES,
    CLIENT_VERSIONS,
    COMMANDS,
    GTC_VALUES,
    LIST_BITS,
    LIST_NAMES,
    MAX_DIALECT,
    MIN_DIALECT,
    NO,
    OUT_REASONS,
    STATUSES,
    YES,
    CommandSpec,
    Variant,
)
from dissectors.msnp.parts import command_parts
from dissectors.msnp.percent import unquote_bytes

_MAX_INT_DIGITS: Final = 19


class Decoded(NamedTuple):
    """The decoded view of a command frame (a named tuple: built once per frame, which a
    frozen dataclass's `__init__` made cost as much as choosing the variant)."""

    fields: dict[str, Any]
    variant: str
    problems: tuple[str, ...]
    credentials: tuple[str, ...]
    shape: Variant | None = None  # the grammar variant chosen (its dialects, its `form`)


_new_tuple: Final = tuple.__new__  # `Decoded(...)` without the named tuple's Python `__new__`


Out = dict[str, Any]
Problems = list[str]


def url_decode(raw: str) -> tuple[str, bool]:
    """Percent-decode a wire string as UTF-8; returns (text, valid UTF-8). Never raises."""
    if "%" not in raw and raw.isascii():  # the common case: nothing to decode
        return raw, True
    if len(raw) <= MAX_REMEMBERED_NAME:
        return _url_decode_remembered(raw)
    return _url_decode_escaped(raw)


REMEMBERED_NAMES: Final = 2048
MAX_REMEMBERED_NAME: Final = 512
"""`_url_decode_remembered` keeps the last `REMEMBERED_NAMES` strings of up to
`MAX_REMEMBERED_NAME` characters (a nickname is at most 387 bytes): a few megabytes at most."""


@lru_cache(maxsize=REMEMBERED_NAMES)
def _url_decode_remembered(raw: str) -> tuple[str, bool]:
    """`_url_decode_escaped`, remembered: the same nicknames and group names come back in
    every MSG, NLN, ILN and LST that names their owner (the result is an immutable pair, so
    sharing it is safe)."""
    return _url_decode_escaped(raw)


def _url_decode_escaped(raw: str) -> tuple[str, bool]:
    data = unquote_bytes(raw.encode("utf-8", "surrogateescape"))
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace"), False


def _int(name: str, raw: str, out: Out, problems: Problems) -> None:
    if raw.isascii() and raw.isdigit() and len(raw) <= _MAX_INT_DIGITS:
        out[name] = int(raw)
    else:
        out[name] = raw
        problems.append(f"{name}: expected an integer, got {raw!r}")


def _str(name: str, raw: str, out: Out, problems: Problems) -> None:
    out[name] = raw


def _stamp(name: str, raw: str, out: Out, problems: Problems) -> None:
    """An MSNP10+ list or settings version: a number, or the timestamp of a cached list."""
    number = raw.isascii() and raw.isdigit() and len(raw) <= _MAX_INT_DIGITS
    out[name] = int(raw) if number else raw


def _url(name: str, raw: str, out: Out, problems: Problems) -> None:
    text, valid = url_decode(raw)
    out[name] = text
    out[f"{name}_raw"] = raw
    if not valid:
        problems.append(f"{name}: not valid UTF-8 after URL-decoding")


def _hex(name: str, raw: str, out: Out, problems: Problems) -> None:
    out[name] = raw
    try:
        out[f"{name}_int"] = int(raw, 16) if len(raw) <= 18 else None
    except ValueError:
        problems.append(f"{name}: expected a hexadecimal number, got {raw!r}")


def _hostport(name: str, raw: str, out: Out, problems: Problems) -> None:
    out[name] = raw
    host, sep, port = raw.rpartition(":")
    if sep and port.isascii() and port.isdigit() and len(port) <= 5:
        out[f"{name}_host"] = host
        out[f"{name}_port"] = int(port)
    else:
        problems.append(f"{name}: expected host:port, got {raw!r}")


def _bool(name: str, raw: str, out: Out, problems: Problems) -> None:
    if raw in ("0", "1"):
        out[name] = raw == "1"
    else:
        out[name] = raw
        problems.append(f"{name}: expected 0 or 1, got {raw!r}")


_ALL_LIST_BITS: Final = sum(bit for bit, _ in LIST_BITS)
_LISTS_OF_BITS: Final[tuple[tuple[str, ...], ...]] = tuple(
    tuple(list_name for bit, list_name in LIST_BITS if bits & bit)
    for bits in range(_ALL_LIST_BITS + 1)
)
"""The list names of every combination of the known list bits, in `LIST_BITS` order."""


def _listbits(name: str, raw: str, out: Out, problems: Problems) -> None:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
        out[name] = raw
        problems.append(f"{name}: expected list bits, got {raw!r}")
        return
    bits = int(raw)
    out[name] = list(_LISTS_OF_BITS[bits & _ALL_LIST_BITS])
    out[f"{name}_bits"] = bits
    if bits & ~_ALL_LIST_BITS:
        problems.append(f"{name}: unknown list bits in {bits}")


def _groups(name: str, raw: str, out: Out, problems: Problems) -> None:
    parts = raw.split(",")
    if all(p.isascii() and p.isdigit() and len(p) <= 9 for p in parts):
        out[name] = [int(p) for p in parts]
    else:
        out[name] = parts  # MSNP10+ group GUIDs


def _is_caps_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 10


def _caps(name: str, raw: str, out: Out, problems: Problems) -> None:
    """A client id: capability bits and client version, from MSNP16 followed by `:` and
    the extended capabilities (`2789003324:48`)."""
    base, sep, extended = raw.partition(":")
    if not _is_caps_number(base) or (sep and not _is_caps_number(extended)):
        out[name] = raw
        problems.append(f"{name}: expected a client id number, got {raw!r}")
        return
    value = int(base)
    out[name] = value
    if sep:
        out[f"{name}_extended"] = int(extended)
    out[f"{name}_capabilities"] = [label for bit, label in CAPABILITIES if value & bit]
    version = value >> 28
    if version:
        out[f"{name}_version"] = CLIENT_VERSIONS.get(version, f"MSNC{version}")


def _netaccount(name: str, raw: str, out: Out, problems: Problems) -> None:
    """MSNP18's account with its network id before it (`1:name@host`): the account and
    the network, as MSNP14 to 17 give them in two arguments."""
    network, sep, account = raw.partition(":")
    if sep and network.isascii() and network.isdigit() and len(network) <= 9 and account:
        out[name] = account
        out["network"] = int(network)
    else:
        out[name] = raw


def _epaccount(name: str, raw: str, out: Out, problems: Problems) -> None:
    """A switchboard account with, from MSNP16, the endpoint (machine GUID) it signed in
    from (`name@host;{guid}`): the account and the endpoint, so one person's endpoints are
    one participant."""
    account, sep, endpoint = raw.partition(";")
    if sep and account and endpoint.startswith("{") and endpoint.endswith("}"):
        out[name] = account
        out["endpoint"] = endpoint
    else:
        out[name] = raw


def _keyed(name: str, raw: str, out: Out, problems: Problems) -> None:
    key, sep, value = raw.partition("=")
    if sep and len(key) == 1 and key.isupper():
        if key == "F":
            _url("nick", value, out, problems)
        else:
            out[{"N": "account", "C": "contact_id"}.get(key, key)] = value
    elif raw.isdigit() and "lists" not in out:
        _listbits("lists", raw, out, problems)
    else:
        _groups("groups", raw, out, problems)


def _keyednet(name: str, raw: str, out: Out, problems: Problems) -> None:
    """MSNP12's LST items: as `_keyed`, but the number after the list bits is the
    contact's network (1, Messenger; as MSNP13's ADL t= and MSNP14's NLN give it), not a
    group."""
    if "lists" in out and "network" not in out and "groups" not in out and raw.isdigit():
        _int("network", raw, out, problems)
    else:
        _keyed(name, raw, out, problems)


def _enum(table: Mapping[str, str], what: str) -> Callable[[str, str, Out, Problems], None]:
    def decode(name: str, raw: str, out: Out, problems: Problems) -> None:
        out[name] = raw
        meaning = table.get(raw)
        if meaning is None:
            problems.append(f"{name}: unknown {what} {raw!r}")
        else:
            out[f"{name}_meaning"] = meaning

    return decode


def _list(name: str, raw: str, out: Out, problems: Problems) -> None:
    out[name] = raw
    if raw not in LIST_NAMES:
        problems.append(f"{name}: unknown list {raw!r}")


TYPE_DECODERS: Final[Mapping[str, Callable[[str, str, Out, Problems], None]]] = MappingProxyType(
    {
        "str": _str,
        "int": _int,
        "stamp": _stamp,
        "url": _url,
        "hex": _hex,
        "account": _str,
        "netaccount": _netaccount,
        "epaccount": _epaccount,
        "secret": _str,
        "hostport": _hostport,
        "bool": _bool,
        "list": _list,
        "listbits": _listbits,
        "groups": _groups,
        "caps": _caps,
        "keyed": _keyed,
        "keyednet": _keyednet,
        "status": _enum(STATUSES, "status"),
        "gtc": _enum(GTC_VALUES, "GTC value"),
        "blp": _enum(BLP_VALUES, "BLP value"),
        "ack": _enum(ACK_MODES, "acknowledgement mode"),
        "authstep": _enum(AUTH_STEPS, "authentication step"),
        "outreason": _enum(OUT_REASONS, "OUT reason"),
    }
)


Plan = tuple[tuple[str, Callable[[str, str, Out, Problems], None], bool, bool, bool, bool], ...]


def _plan(variant: Variant) -> Plan:
    """Per argument: name, decoder, takes the rest, kept as plain text, holds a secret, and
    stored as it is (its decoder is `_str`: the loop stores it without calling one)."""
    return tuple(
        (a.name, TYPE_DECODERS[a.type], a.rest, a.type in ("str", "secret"), a.type == "secret",
         TYPE_DECODERS[a.type] is _str)
        for a in variant.args
    )  # fmt: skip


PLANS: Final[Mapping[int, Plan]] = MappingProxyType(
    {id(v): _plan(v) for spec in COMMANDS.values() for v in (*spec.c2s, *spec.s2c)}
)
"""Every grammar variant's decoding plan by the variant's identity (the variants live as long
as the grammar; hashing a variant's fields on every frame would cost more than decoding)."""


Candidate = tuple[int, int, "re.Pattern[str] | None", Variant]
"""A variant as `choose_variant` tries it: fewest and most arguments, guard, the variant."""

_ANY_NUMBER: Final = sys.maxsize  # the most arguments of a variant with a `*rest`


def _by_dialect(spec: CommandSpec, c2s: bool, has_trid: bool) -> tuple[tuple[Candidate, ...], ...]:
    """Per dialect (from MIN_DIALECT), the variants a line may take in the order they are
    tried: those of its dialect first, then the others (each in grammar order), without
    those its TrID rules out. Most commands have one order for every dialect: built once."""
    banned = NO if has_trid else YES
    variants = [v for v in (spec.c2s if c2s else spec.s2c) if v.trid is not banned]
    built: dict[tuple[bool, ...], tuple[Candidate, ...]] = {}
    rows = []
    for dialect in range(MIN_DIALECT, MAX_DIALECT + 1):
        fits = tuple(v.dialects[0] <= dialect <= v.dialects[1] for v in variants)
        row = built.get(fits)
        if row is None:
            order = [v for v, f in zip(variants, fits, strict=True) if f]
            order += [v for v, f in zip(variants, fits, strict=True) if not f]
            row = built[fits] = tuple(
                (v.min_args, _ANY_NUMBER if v.max_args is None else v.max_args, v.guard, v)
                for v in order
            )
        rows.append(row)
    return tuple(rows)


CANDIDATES: Final[Mapping[tuple[str, bool, bool], tuple[tuple[Candidate, ...], ...]]] = (
    MappingProxyType(
        {
            (cmd, c2s, has_trid): _by_dialect(spec, c2s, has_trid)
            for cmd, spec in COMMANDS.items()
            for c2s in (True, False)
            for has_trid in (True, False)
        }
    )
)
"""`_by_dialect` of every command, direction and TrID presence: choosing a variant is then
an arity check and a guard per candidate (the rest was decided here, once)."""


def choose_variant(frame: CommandFrame) -> Variant | None:
    """The grammar variant that describes this line, preferring the frame's dialect: the
    first whose dialect range, TrID rule, arity and guard fit (then any dialect's)."""
    trid, args = command_parts(frame)
    return _choose(frame.cmd, frame.direction is C2S, trid is not None,
                   frame.dialect, args)  # fmt: skip


def _choose(
    cmd: str, c2s: bool, has_trid: bool, dialect: int, args: tuple[str, ...]
) -> Variant | None:
    rows = CANDIDATES.get((cmd, c2s, has_trid))
    if rows is None:  # a command the grammar does not know
        return None
    candidates = rows[dialect - MIN_DIALECT]  # frames are read in the grammar's dialects
    n = len(args)
    joined: str | None = None
    for least, most, guard, variant in candidates:
        if n < least or n > most:
            continue
        if guard is not None:
            if joined is None:
                joined = " ".join(args)
            if guard.search(joined) is None:
                continue
        return variant
    return None


def decode(frame: CommandFrame) -> Decoded:
    """A frame's arguments as named fields, decoded once per frame and shared by every
    analyzer and output (so callers must not modify `fields`: copy it first)."""
    decoded = frame._decoded
    if decoded is None:
        decoded = _decode(frame)
        object.__setattr__(frame, "_decoded", decoded)
    return decoded


def _decode(frame: CommandFrame) -> Decoded:
    out: Out = {}
    problems: Problems = []
    if isinstance(frame, ErrorFrame):
        from dissectors.msnp.errors import error_info

        info = error_info(frame.code)
        out.update(code=info.code, name=info.name, meaning=info.meaning)
        if frame.args:
            out["extra"] = list(frame.args)
        return _new_tuple(Decoded, (out, "error", (), (), None))
    cmd = frame.cmd
    trid, args = command_parts(frame)  # the getters behind `frame.trid` and `frame.args`
    spec = COMMANDS.get(cmd)
    if spec is None:
        return _new_tuple(Decoded, ({"args": list(args)}, "", ("unknown command",), (), None))
    c2s = frame.direction is C2S
    variant = _choose(cmd, c2s, trid is not None, frame.dialect, args)
    if variant is None:
        where = "client" if c2s else "server"
        problems.append(f"arguments fit no known form of {cmd} sent by the {where}")
        return _new_tuple(Decoded, ({"args": list(args)}, "", tuple(problems), (), None))
    n = len(args)
    secrets: tuple[str, ...] = ()
    for i, (name, decoder, rest, plain, secret, as_is) in enumerate(PLANS[id(variant)]):
        if i >= n:
            break
        if rest:
            if plain:
                out[name] = list(args[i:])
            else:
                for raw in args[i:]:
                    decoder(name, raw, out, problems)
        elif as_is:
            out[name] = args[i]
        else:
            decoder(name, args[i], out, problems)
        if secret:
            secrets += (name,)
        if rest:
            break
    return _new_tuple(Decoded, (out, variant.label, tuple(problems), secrets, variant))


def decode_fields(frame: CommandFrame) -> dict[str, Any]:
    """A copy of the frame's decoded fields (the caller may change it)."""
    return dict(decode(frame).fields)
