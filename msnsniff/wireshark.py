"""A Wireshark Lua dissector generated from the grammar tables (`msnsniff wireshark-lua`).

The script gives Wireshark and tshark real MSNP fields (`msnsniff.cmd`, `msnsniff.trid`,
`msnsniff.list`, `msnsniff.error`, `msnsniff.payload_length`, one `msnsniff.arg.NAME` per
grammar argument name, ...) from the very tables the Python dissector reads:

* `COMMANDS` (per direction: each variant's dialect range, TrID rule, arity, guard and
  argument names; the payload rule) and `WIRE_RULES` (the TrID rule per dialect),
* `PAYLOAD_RULES` and `ERROR_PAYLOAD_FROM` (which lines carry a payload, and its length),
* `DIALECT_CLUES` and `VER_RE`'s shape (how the dialect is fixed or inferred),
* `errors.ERRORS` (code -> name and meaning).

Nothing about the commands is written by hand here: the Lua text is the tables rendered as
Lua data plus a fixed engine (`_ENGINE`) that mirrors the framer (one CRLF line, then exactly
N payload bytes; resynchronisation on garbage) and the variant choice of `decode.py`. The
regular expressions of guards and clues are translated to Lua patterns; an expression the
translator does not understand raises `LuaGenerationError`, so a grammar change that the
script could not follow fails loudly instead of silently mis-dissecting.

The output is deterministic: the same tables give the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from dissectors.api import Direction
from dissectors.msnp.errors import ERRORS
from dissectors.msnp.framer import JOINED, MAX_LINE, MAX_PAYLOAD
from dissectors.msnp.grammar import (
    COMMANDS,
    DEFAULT_DIALECT,
    DIALECT_CLUES,
    ERROR_PAYLOAD_FROM,
    MAX_DIALECT,
    MIN_DIALECT,
    PAYLOAD_RULES,
    SYN_NEW_WITHOUT_COUNTS,
    SYN_WITHOUT_COUNTS,
    WIRE_RULES,
    PayloadRule,
    TrID,
    Variant,
)
from msnsniff.capture.reassembly import SERVER_PORTS
from msnsniff.errors import MsnsniffError

__all__ = ["LuaGenerationError", "LuaOptions", "generate_lua", "lua_patterns"]

DEFAULT_PORT: Final = 1863
_DIRS: Final = (Direction.C2S, Direction.S2C)
_TRID_CODES: Final = {TrID.YES: "Y", TrID.NO: "N", TrID.IF_INT: "I"}
_PAYLOAD_CODES: Final = {PayloadRule.LAST: "L", PayloadRule.LAST_IF_INT: "LI"}
_FIELD_NAME: Final = re.compile(r"^[a-z][a-z0-9_]*$")


class LuaGenerationError(MsnsniffError):
    """The tables hold something the generated Lua could not express faithfully."""


@dataclass(frozen=True, slots=True)
class LuaOptions:
    """What the generated script registers: a TCP port (None: none) and/or a heuristic."""

    port: int | None = DEFAULT_PORT
    heuristic: bool = True


# --- Lua literals ------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    """`text` as a double-quoted Lua string literal (UTF-8 bytes; anything unusual escaped)."""
    out = ['"']
    for byte in text.encode("utf-8", "surrogateescape"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def _list(items: Iterable[str]) -> str:
    return "{" + ", ".join(items) + "}"


# --- regular expressions -> Lua patterns ----------------------------------------------------------

_LUA_MAGIC: Final = frozenset("^$()%.[]*+-?")
_ESCAPES: Final = {"d": "%d", "D": "%D", "s": "%s", "S": "%S", "w": "[%w_]", "W": "[^%w_]"}
_START, _END = "\x01", "\x02"  # anchors, placed only where Lua accepts them


def _literal(char: str) -> str:
    if char in _LUA_MAGIC:
        return "%" + char
    if not 0x20 <= ord(char) < 0x7F:
        raise LuaGenerationError(f"non-ASCII character {char!r} in a grammar pattern")
    return char


class _RegexReader:
    """A recursive-descent reader of the regular-expression subset the grammar uses.

    Each parsed piece is a tuple of alternatives, each a string of Lua pattern atoms; a group
    `(a|b)` multiplies the alternatives (Lua patterns have no alternation).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> LuaGenerationError:
        return LuaGenerationError(f"pattern {self.text!r} at {self.pos}: {why}")

    def alternatives(self, depth: int) -> tuple[str, ...]:
        out: list[str] = []
        while True:
            out.extend(self.sequence(depth))
            if self.pos < len(self.text) and self.text[self.pos] == "|":
                self.pos += 1
                continue
            return tuple(out)

    def sequence(self, depth: int) -> tuple[str, ...]:
        alts: tuple[str, ...] = ("",)
        text = self.text
        while self.pos < len(text) and text[self.pos] not in "|)":
            char = text[self.pos]
            self.pos += 1
            if char == "(":
                if text.startswith("?:", self.pos):
                    self.pos += 2
                inner = self.alternatives(depth + 1)
                if self.pos >= len(text) or text[self.pos] != ")":
                    raise self.fail("unclosed group")
                self.pos += 1
                if self.pos < len(text) and text[self.pos] in "*+?{":
                    raise self.fail("a quantified group has no Lua pattern")
                alts = tuple(a + b for a in alts for b in inner)
                continue
            if char == "^":
                atom = _START
            elif char == "$":
                atom = _END
            else:
                atom = self.quantified(self.atom(char))
            alts = tuple(a + atom for a in alts)
        return alts

    def atom(self, char: str) -> str:
        text = self.text
        if char == "\\":
            if self.pos >= len(text):
                raise self.fail("trailing backslash")
            esc = text[self.pos]
            self.pos += 1
            if esc in _ESCAPES:
                return _ESCAPES[esc]
            if esc.isalnum():
                raise self.fail(f"unsupported escape \\{esc}")
            return _literal(esc)
        if char == ".":
            return "."
        if char == "[":
            end = text.find("]", self.pos + 1)
            if end < 0:
                raise self.fail("unclosed character class")
            body = text[self.pos : end]
            self.pos = end + 1
            if not re.fullmatch(r"\^?(?:[A-Za-z0-9]-[A-Za-z0-9]|[A-Za-z0-9 =@_]|\\[dsS])+", body):
                raise self.fail(f"unsupported character class [{body}]")
            return "[" + body.replace("\\", "%") + "]"
        if char in "*+?{}":
            raise self.fail(f"quantifier {char!r} without an atom")
        return _literal(char)

    def quantified(self, atom: str) -> str:
        text = self.text
        if self.pos >= len(text):
            return atom
        char = text[self.pos]
        if char in "*+?":
            self.pos += 1
            if self.pos < len(text) and text[self.pos] in "?+":
                raise self.fail("lazy or possessive quantifiers have no Lua pattern")
            return atom + char
        if char == "{":
            match = re.compile(r"\{(\d+)\}").match(text, self.pos)
            if match is None:
                raise self.fail("only {n} repetition is supported")
            self.pos = match.end()
            return atom * int(match.group(1))
        return atom


def lua_patterns(regex: str) -> tuple[str, ...]:
    """Lua patterns that together match what `re.search(regex, s)` matches.

    Alternation becomes several patterns (any may match); `^` and `$` must end up at the
    start and the end of each pattern. Raises `LuaGenerationError` for anything else.
    """
    reader = _RegexReader(regex)
    alts = reader.alternatives(0)
    if reader.pos != len(regex):
        raise reader.fail("unbalanced parenthesis")
    out: list[str] = []
    for alt in alts:
        body = alt
        start = body.startswith(_START)
        body = body.removeprefix(_START)
        end = body.endswith(_END)
        body = body.removesuffix(_END)
        if _START in body or _END in body:
            raise LuaGenerationError(f"pattern {regex!r}: an anchor inside the pattern")
        if not start and body.startswith("^"):
            body = "%" + body  # a literal caret would read as an anchor
        out.append(("^" if start else "") + body + ("$" if end else ""))
    # one pattern per distinct alternative, in the order the expression lists them
    return tuple(dict.fromkeys(out))


# --- the tables as Lua data ---------------------------------------------------------------------


def _ranges(values: Sequence[str]) -> list[tuple[int, int, str]]:
    """Consecutive dialects with one value, as (low, high, value), from MIN_DIALECT on."""
    out: list[tuple[int, int, str]] = []
    for i, value in enumerate(values):
        dialect = MIN_DIALECT + i
        if out and out[-1][2] == value:
            out[-1] = (out[-1][0], dialect, value)
        else:
            out.append((dialect, dialect, value))
    return out


def _guard(variant: Variant) -> str:
    if variant.guard is None:
        return "nil"
    return _list(lua_string(p) for p in lua_patterns(variant.guard.pattern))


def _variant(variant: Variant) -> str:
    for arg in variant.args:
        if not _FIELD_NAME.match(arg.name):
            raise LuaGenerationError(f"argument name {arg.name!r} cannot be a field name")
    args = _list(
        "{" + lua_string(a.name) + (", true" if a.rest else ", false") + "}" for a in variant.args
    )
    top = -1 if variant.max_args is None else variant.max_args
    return (
        f"{{lo = {variant.dialects[0]}, hi = {variant.dialects[1]}, "
        f'trid = "{_TRID_CODES[variant.trid]}", min = {variant.min_args}, max = {top}, '
        f"label = {lua_string(variant.label)}, guard = {_guard(variant)}, args = {args}}}"
    )


def _command_table() -> list[str]:
    lines = ["local COMMANDS = {"]
    for cmd, spec in COMMANDS.items():
        if not re.fullmatch(r"[A-Z]{3}", cmd):
            raise LuaGenerationError(f"command word {cmd!r} is not three capital letters")
        lines.append(f"  [{lua_string(cmd)}] = {{")
        lines.append(f"    title = {lua_string(spec.title)},")
        for direction in _DIRS:
            key = direction.value
            trid = [
                _TRID_CODES[WIRE_RULES[n][direction][cmd][0]]
                for n in range(MIN_DIALECT, MAX_DIALECT + 1)
            ]
            ranges = _list(f'{{{lo}, {hi}, "{code}"}}' for lo, hi, code in _ranges(trid))
            lines.append(f"    trid_{key} = {ranges},")
            rule = PAYLOAD_RULES[direction].get(cmd.encode())
            payload = "nil" if rule is None else f'"{_PAYLOAD_CODES[rule]}"'
            lines.append(f"    payload_{key} = {payload},")
            lines.append(f"    variants_{key} = {{")
            lines.extend(f"      {_variant(v)}," for v in spec.variants(direction))
            lines.append("    },")
        lines.append("  },")
    lines.append("}")
    return lines


def _clue_table() -> list[str]:
    lines = ["local CLUES = {"]
    new = SYN_NEW_WITHOUT_COUNTS
    for clue in DIALECT_CLUES:
        patterns = _list(lua_string(p) for p in lua_patterns(clue.pattern.pattern))
        # a SYN reply without counts whose version is not the client's: MSNP2-7 alone
        changed = f", new_lo = {new.low}, new_hi = {new.high}" if clue is SYN_WITHOUT_COUNTS else ""
        lines.append(
            f"  {{cmd = {lua_string(clue.cmd)}, dir = {lua_string(clue.direction.value)}, "
            f"lo = {clue.low}, hi = {clue.high}, patterns = {patterns}{changed}}},"
        )
    lines.append("}")
    return lines


def _error_table() -> list[str]:
    lines = ["local ERRORS = {"]
    for code in sorted(ERRORS):
        info = ERRORS[code]
        lines.append(
            f"  [{code}] = {{{lua_string(info.name)}, {lua_string(info.meaning)}, "
            f"{'true' if info.disconnects else 'false'}}},"
        )
    lines.append("}")
    return lines


def argument_names() -> tuple[str, ...]:
    """Every argument name of the grammar, sorted: one `msnsniff.arg.NAME` field each."""
    names = {a.name for s in COMMANDS.values() for v in (*s.c2s, *s.s2c) for a in v.args}
    return tuple(sorted(names))


def _constants(options: LuaOptions) -> list[str]:
    port = "nil" if options.port is None else str(options.port)
    return [
        f"local MIN_DIALECT, MAX_DIALECT, DEFAULT_DIALECT = {MIN_DIALECT}, {MAX_DIALECT}, "
        f"{DEFAULT_DIALECT}",
        f"local ERROR_PAYLOAD_FROM = {ERROR_PAYLOAD_FROM}",
        f"local MAX_LINE, MAX_PAYLOAD = {MAX_LINE}, {MAX_PAYLOAD}",
        f"local JOINED = {lua_string(JOINED)}",
        f"local SERVER_PORT = {port}",
        "local WELL_KNOWN_SERVER_PORTS = "
        + _list(f"[{p}] = true" for p in sorted(SERVER_PORTS)),
        f"local HEURISTIC = {'true' if options.heuristic else 'false'}",
        f"local ARG_NAMES = {_list(lua_string(n) for n in argument_names())}",
    ]


_HEADER: Final = """\
-- msnsniff.lua: an MSN Messenger protocol (MSNP) dissector for Wireshark and tshark.
--
-- GENERATED by `msnsniff wireshark-lua` from msnsniff's grammar tables
-- (dissectors/msnp/grammar.py, dissectors/msnp/errors.py). Do not edit: regenerate.
--
-- Use:  wireshark -X lua_script:msnsniff.lua   or   tshark -X lua_script:msnsniff.lua -r F
-- or copy it into the personal Lua plugins folder. Fields: msnsniff.cmd, msnsniff.trid,
-- msnsniff.list, msnsniff.error (and .name, .meaning), msnsniff.payload_length,
-- msnsniff.dir, msnsniff.dialect, msnsniff.args, msnsniff.arg.NAME for each grammar argument,
-- msnsniff.malformed, and msnsniff.partial for the first bytes of a connection the capture
-- joined mid-way (no SYN): the tail of a frame whose start it missed, not damage.
"""


def generate_lua(options: LuaOptions | None = None) -> str:
    """The dissector script: the tables as Lua data, then the engine."""
    options = options or LuaOptions()
    parts = [
        _HEADER,
        "\n".join(_constants(options)),
        "\n".join(_command_table()),
        "\n".join(_clue_table()),
        "\n".join(_error_table()),
        _ENGINE,
    ]
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


# --- the engine --------------------------------------------------------------------------------
#
# Written for this project. It mirrors dissectors/msnp/framer.py (line, then payload by the
# declared length; garbage skipped to the next line that starts with a known command),
# dissector.py (the dialect: VER from the server fixes it, the client's proposal is
# provisional, clues narrow it when no VER was seen) and decode.py's `choose_variant`.
# Wireshark reads the packets once in order (learning: `streams`, `memo`), then shows them
# again in any order from what that pass kept (`memo`). The heuristic holds the bytes of the
# packets it declines, as msnsniff does while it sniffs, and once it claims the connection
# they are read with the next packet of their direction (`with_held`, `prefix`); held
# packets no later packet took were given to another dissector in that pass and are read on
# their first showing (`late_state`).

_ENGINE: Final = r"""
local msnsniff = Proto("msnsniff", "MSN Messenger Protocol (msnsniff)")

local F = {
  cmd = ProtoField.string("msnsniff.cmd", "Command"),
  title = ProtoField.string("msnsniff.title", "Command meaning"),
  trid = ProtoField.uint64("msnsniff.trid", "Transaction ID", base.DEC),
  dir = ProtoField.string("msnsniff.dir", "Direction (c2s or s2c)"),
  dialect = ProtoField.uint8("msnsniff.dialect", "Dialect (MSNP version)", base.DEC),
  dialect_inferred = ProtoField.bool("msnsniff.dialect_inferred", "Dialect inferred (no VER)"),
  args = ProtoField.string("msnsniff.args", "Arguments"),
  variant = ProtoField.string("msnsniff.variant", "Form"),
  list = ProtoField.string("msnsniff.list", "List"),
  error = ProtoField.uint16("msnsniff.error", "Error code", base.DEC),
  error_name = ProtoField.string("msnsniff.error.name", "Error name"),
  error_meaning = ProtoField.string("msnsniff.error.meaning", "Error meaning"),
  error_disconnects = ProtoField.bool("msnsniff.error.disconnects", "Server disconnects"),
  payload_length = ProtoField.uint32("msnsniff.payload_length", "Payload length", base.DEC),
  payload = ProtoField.bytes("msnsniff.payload", "Payload"),
  content_type = ProtoField.string("msnsniff.content_type", "Payload Content-Type"),
  malformed = ProtoField.string("msnsniff.malformed", "Malformed"),
  partial = ProtoField.bool("msnsniff.partial",
                            "Partial (the tail of a frame the capture missed the start of)"),
}
local ARG_FIELDS = {}
for _, name in ipairs(ARG_NAMES) do
  ARG_FIELDS[name] = ProtoField.string("msnsniff.arg." .. name, name)
end

local field_list = {}
for _, key in ipairs({"cmd", "title", "trid", "dir", "dialect", "dialect_inferred", "args",
                      "variant", "list", "error", "error_name", "error_meaning",
                      "error_disconnects", "payload_length", "payload", "content_type",
                      "malformed", "partial"}) do
  field_list[#field_list + 1] = F[key]
end
for _, name in ipairs(ARG_NAMES) do
  field_list[#field_list + 1] = ARG_FIELDS[name]
end
msnsniff.fields = field_list

local E = {
  malformed = ProtoExpert.new("msnsniff.expert.malformed", "Malformed MSNP bytes",
                              expert.group.MALFORMED, expert.severity.ERROR),
  unknown = ProtoExpert.new("msnsniff.expert.unknown", "Command unknown to the grammar",
                            expert.group.UNDECODED, expert.severity.WARN),
  nofit = ProtoExpert.new("msnsniff.expert.nofit", "Arguments fit no known form",
                          expert.group.PROTOCOL, expert.severity.WARN),
  error = ProtoExpert.new("msnsniff.expert.error", "MSNP error reply",
                          expert.group.RESPONSE_CODE, expert.severity.NOTE),
  partial = ProtoExpert.new("msnsniff.expert.joined_midway",
                            "The capture began in the middle of the connection",
                            expert.group.SEQUENCE, expert.severity.CHAT),
}
msnsniff.experts = {E.malformed, E.unknown, E.nofit, E.error, E.partial}

local f_stream = Field.new("tcp.stream")
local f_completeness = Field.new("tcp.completeness")
local f_tcp_flags = Field.new("tcp.flags")

local KNOWN = {}
for word in pairs(COMMANDS) do KNOWN[word] = true end

-- per connection (see `conn_key`): who the client is, and the dialect as it goes on
local streams = {}
-- per frame read in order (packet number, bytes given, offset): the dialect it was read
-- under and whether it came before its direction's first whole frame. A revisit (Wireshark's
-- clicks, tshark -2's second pass) reads this, not the connection's state, which has moved
-- on; it is kept apart from `streams` because the first pass and a revisit may know the
-- connection under different keys (see `conn_key`)
local memo = {}
-- per TCP stream: the client's endpoint, as its handshake shows it (see `opener` below)
local openers = {}
-- per connection the heuristic has not claimed: the bytes it holds, per direction, with the
-- packets they came in, the bytes counted and the last packet counted (see `looks_like_msnp`)
local held = {}
-- per connection, by its endpoints: the first packet the in-order pass gave this dissector
-- (see `late_state`)
local first_read = {}
-- per packet read with bytes held before it (see `with_held`): {its own length, the bytes};
-- per packet whose bytes were all read with a later one: that packet's number
local prefix = {}
local carried = {}
-- per packet the heuristic held, in the in-order pass, until it claimed the connection:
-- its direction's held bytes, with the packets they came in (see `with_held`)
local held_in = {}
local any_prefix = false  -- whether `prefix` holds anything (the common path skips it)

function msnsniff.init()
  streams = {}
  memo = {}
  first_read = {}
  openers = {}
  held = {}
  prefix = {}
  carried = {}
  held_in = {}
  any_prefix = false
end

local function endpoint(address, port)
  return tostring(address) .. "|" .. tostring(port)
end

-- The dissector never sees a handshake (no payload), so a postdissector notes, for each TCP
-- stream, who opened it: the sender of a SYN, else the receiver of a SYN-ACK (the capture
-- missed the SYN), as msnsniff's reassembly decides. One field read per packet; the rest
-- only on a SYN. It adds nothing to the tree and claims no packet. It notes on every pass:
-- tshark's first pass of two (-2) builds no tree, so no field can be read there.
local opener = Proto("msnsniff_opener", "msnsniff: who opened each TCP connection")

function opener.dissector(tvb, pinfo, tree)
  local flags = f_tcp_flags()
  if flags == nil or flags.value % 4 < 2 then return 0 end  -- no SYN (0x02)
  local fi = f_stream()
  if fi == nil then return 0 end
  local key = tostring(fi.value)
  if (flags.value % 32) < 16 then  -- SYN without ACK (0x10): from the client
    openers[key] = endpoint(pinfo.src, pinfo.src_port)
  elseif openers[key] == nil then  -- SYN-ACK, its SYN not captured: to the client
    openers[key] = endpoint(pinfo.dst, pinfo.dst_port)
  end
  return 0
end
register_postdissector(opener)

local function is_server_port(port)
  return WELL_KNOWN_SERVER_PORTS[port] ~= nil or port == SERVER_PORT
end

-- A connection's key: its tcp.stream where the packet has a tree to read it from; where it
-- has none (the first, in-order pass of tshark -2 and of Wireshark without a display filter:
-- no field can be read there), its two endpoints in a fixed order, so that both directions
-- share one state (the dialect the server's VER fixes applies to the client's lines too).
-- Frames read there are found again by `memo`, whatever key a later pass uses. (A second
-- connection on the same ports is told apart there by its VER: see `reused`.)
local function pair_key(pinfo)
  local a, b = endpoint(pinfo.src, pinfo.src_port), endpoint(pinfo.dst, pinfo.dst_port)
  if a > b then a, b = b, a end
  return a .. "=" .. b
end

local function conn_key(pinfo)
  local fi = f_stream()
  if fi ~= nil then return tostring(fi.value) end
  return pair_key(pinfo)
end

local function stream_state(pinfo)
  local fi = f_stream()
  local key = conn_key(pinfo)
  local st = streams[key]
  if st == nil then
    -- as msnsniff's reassembly decides: after a handshake the client is the side that opened
    -- the connection (whoever speaks first: a server may push a banner or a CHL before the
    -- client's VER, and a capture may show the server's first segment first); joined
    -- mid-connection, the side whose port is not a well-known server port, else the one
    -- with the higher port
    local src, dst = pinfo.src_port, pinfo.dst_port
    local done = f_completeness()
    local client = fi and openers[tostring(fi.value)]
    local syn = client ~= nil or (done ~= nil and (done.value % 2) == 1)
    if client == nil then
      local from_client = is_server_port(dst) or (not is_server_port(src) and dst < src)
      client = from_client and endpoint(pinfo.src, src) or endpoint(pinfo.dst, dst)
    end
    -- joined: no SYN seen, so each direction may start inside a frame (as msnsniff's
    -- `joined_midway`); started: the directions whose first frame was read
    st = {client = client, dialect = DEFAULT_DIALECT, inferred = true, fixed = false,
          lo = MIN_DIALECT, hi = MAX_DIALECT, joined = not syn, started = {}}
    streams[key] = st
    if not pinfo.visited then first_read[pair_key(pinfo)] = pinfo.number end
  end
  return st
end

-- Packets of a connection before the one the heuristic recognised it by went, in the
-- in-order pass, to another dissector (data): TCP hands them to this one only when it
-- dissects them again, with the connection's dissector set (tshark -2's second pass, a click
-- in Wireshark). Such a "late" packet is read with a state of its own that starts as the
-- connection did (the default dialect, no direction started), in the order they come; what
-- it learns is kept in `memo` as the first pass's is. TCP reassembles segments only in the
-- first pass, so a late packet's bytes are read on their own.
local function is_late(pinfo)
  return pinfo.number < (first_read[pair_key(pinfo)] or 0)
end

local function late_state(st)
  if st.late == nil then
    st.late = {client = st.client, dialect = DEFAULT_DIALECT, inferred = true, fixed = false,
               lo = MIN_DIALECT, hi = MAX_DIALECT, joined = st.joined, started = {}}
  end
  return st.late
end

-- Bytes the heuristic held before it recognised the connection (as msnsniff holds a flow's
-- first bytes while it sniffs) are read with the first packet of their direction the
-- in-order pass gives this dissector: the claiming one, or the other direction's next. They
-- are put in front of its bytes in a new data source, as TCP shows a reassembled frame; the
-- packets they came in show nothing of their own then (TCP's "segment of a reassembled
-- PDU"). A frame they leave cut at the end is held again for the next packet (`st.pending`):
-- TCP cannot reassemble from bytes it did not give. What was read with what is kept
-- (`prefix`, `carried`), so a revisit reads the same bytes the same way. Held bytes no later
-- packet of their direction took (the in-order pass gave their packets to another
-- dissector) are read whole, on a revisit, with the last packet they came in, as TCP shows
-- a reassembled frame (`held_in`): each packet read on its own showed a line cut across
-- two of them as two malformed pieces. Returns the bytes to read (nil: none) and how many
-- of them were held.
local function with_held(tvb, pinfo, st, dir, visited)
  local n = pinfo.number
  if visited then
    local into = carried[n]
    local d = held_in[n]
    if into == nil and d ~= nil then
      into = d.nums[#d.nums]
      if into == n then
        return ByteArray.new(d.data, true):tvb(
          "MSNP bytes held until the connection was recognised"), 0
      end
    end
    if into ~= nil then
      pinfo.cols.info = "[MSNP bytes read in packet " .. into .. "]"
      return nil, 0
    end
  elseif st.pending ~= nil and st.pending[dir] ~= nil then
    local pend = st.pending[dir]
    st.pending[dir] = nil
    prefix[n] = {tvb:len(), pend.data}
    for _, m in ipairs(pend.nums) do carried[m] = n end
  end
  local p = prefix[n]
  if p == nil or p[1] ~= tvb:len() then return tvb, 0 end
  local bytes = ByteArray.new(p[2], true) .. tvb:bytes()
  return bytes:tvb("MSNP bytes held until the connection was recognised"), #p[2]
end

local function is_int(token)
  return token ~= nil and #token > 0 and #token <= 10 and token:find("^%d+$") ~= nil
end

local function rule_at(ranges, dialect)
  for _, r in ipairs(ranges) do
    if r[1] <= dialect and dialect <= r[2] then return r[3] end
  end
  return "I"
end

-- the tokens of a line after its command word: {text, start offset in the line (0-based)}
local function tokens_of(line)
  local out = {}
  for at, token in line:gmatch("()(%S+)") do
    out[#out + 1] = {token, at - 1}
  end
  return out
end

-- a frame's tokens, split once (the dialect pass and the tree both read them)
local function frame_tokens(fr)
  if fr.toks == nil then fr.toks = tokens_of(fr.line:sub(4)) end
  return fr.toks
end

local function guard_ok(guard, joined)
  if guard == nil then return true end
  for _, pattern in ipairs(guard) do
    if joined:find(pattern) then return true end
  end
  return false
end

local function choose_variant(variants, dialect, has_trid, nargs, joined)
  local banned = has_trid and "N" or "Y"
  for pass = 1, 2 do
    for _, v in ipairs(variants) do
      if (pass == 2 or (v.lo <= dialect and dialect <= v.hi)) and v.trid ~= banned
         and nargs >= v.min and (v.max < 0 or nargs <= v.max) and guard_ok(v.guard, joined) then
        return v
      end
    end
  end
  return nil
end

-- the dialect after a command line (mirrors dissector.py: VER, then the clues)
local function observe(st, cmd, dir, trid, args)
  if cmd == "VER" then
    local best, least = nil, nil
    for _, a in ipairs(args) do
      local n = tonumber(a:match("^MSNP(%d+)$"))
      if n and n >= MIN_DIALECT and n <= MAX_DIALECT then
        if best == nil or n > best then best = n end
        if least == nil or n < least then least = n end
      end
    end
    if best == nil then return end
    if dir == "s2c" then
      st.fixed = true
      st.dialect, st.inferred = best, false
    elseif not st.fixed then
      st.dialect, st.inferred = best, true  -- a proposal: the server's VER fixes it
      st.lo, st.hi = least, best  -- the server can only choose one of these
    end
    return
  end
  if st.fixed then return end
  if cmd == "SYN" and dir == "c2s" then st.syn_asked = args[1] end
  local parts = {}
  if trid ~= nil then parts[1] = trid end
  for _, a in ipairs(args) do parts[#parts + 1] = a end
  local text = table.concat(parts, " ")
  for _, clue in ipairs(CLUES) do
    if clue.cmd == cmd and clue.dir == dir and guard_ok(clue.patterns, text) then
      local clo, chi = clue.lo, clue.hi
      if clue.new_lo ~= nil and st.syn_asked ~= nil and args[1] ~= st.syn_asked then
        clo, chi = clue.new_lo, clue.new_hi  -- (as dissector.py: a new version, no counts)
      end
      local lo, hi = math.max(st.lo, clo), math.min(st.hi, chi)
      if lo > hi then lo, hi = clo, chi end
      st.lo, st.hi = lo, hi
      local dialect = math.min(math.max(DEFAULT_DIALECT, lo), hi)
      if dialect ~= st.dialect then  -- (a clue that keeps the dialect keeps how it was told)
        st.dialect, st.inferred = dialect, true
      end
      return
    end
  end
end

-- is `pos` (1-based) the start of a line the framer would sync to?
local function sync_point(data, pos)
  local word = data:sub(pos, pos + 2)
  local after = data:sub(pos + 3, pos + 3)
  if KNOWN[word] and (after == " " or after == "\r") then return true end
  return data:find("^[1-9]%d%d %d", pos) ~= nil
end

-- where a garbage run starting at 0-based `start` ends (0-based, exclusive)
local function garbage_end(data, start)
  local at = start + 1
  while true do
    local nl = data:find("\n", at, true)
    if nl == nil then return #data end
    if sync_point(data, nl + 1) then return nl end
    at = nl + 1
  end
end

-- one frame at 0-based `pos`: a table describing it, or nil and the bytes still needed
local function frame_at(data, pos, dir, dialect)
  local eol = data:find("\r\n", pos + 1, true)
  if eol ~= nil and eol - 1 - pos > MAX_LINE then eol = nil end
  if eol == nil then
    if #data - pos < MAX_LINE + 2 then return nil, DESEGMENT_ONE_MORE_SEGMENT end
    local e = garbage_end(data, pos)
    return {kind = "malformed", len = e - pos, garbage = true, cut = e == #data,
            reason = "not an MSNP command line; skipped to the next command"}
  end
  local line_len = eol - 1 - pos
  local line = data:sub(pos + 1, pos + line_len)
  local word = line:sub(1, 3)
  if line_len < 3 or (line_len > 3 and line:sub(4, 4) ~= " ")
     or not (KNOWN[word] or word:find("^%d%d%d$") or word:find("^%u%u%u$")) then
    local e = garbage_end(data, pos)
    return {kind = "malformed", len = e - pos, garbage = true, cut = e == #data,
            reason = "not an MSNP command line; skipped to the next command"}
  end
  local is_error = word:find("^%d%d%d$") ~= nil
  local length = nil
  local last = line:match("^.* (.*)$")
  if is_error then
    local _, spaces = line:gsub(" ", " ")
    if dialect >= ERROR_PAYLOAD_FROM and spaces == 2 and is_int(last) then
      length = tonumber(last)
    end
  else
    local spec = COMMANDS[word]
    local rule = spec and spec["payload_" .. dir]
    if rule ~= nil then
      if is_int(last) then
        length = tonumber(last)
      elseif rule == "L" then
        return {kind = "malformed", len = line_len + 2,
                reason = "payload length missing or not a number"}
      end
    end
  end
  local total = line_len + 2
  if length ~= nil then
    if length > MAX_PAYLOAD then
      return {kind = "malformed", len = total, reason = "declared payload length " ..
              length .. " exceeds the limit of " .. MAX_PAYLOAD .. " bytes"}
    end
    total = total + length
    if #data < pos + total then return nil, pos + total - #data end
  end
  return {kind = is_error and "error" or "command", len = total, line = line,
          line_len = line_len, word = word, payload_length = length,
          last_len = last and #last or 0}
end

-- a command line's TrID and arguments as `dialect` reads them (before the frame is shown:
-- what `observe` learns from may change the dialect the frame itself is shown in)
local function trid_and_args(fr, dir, dialect)
  local spec = COMMANDS[fr.word]
  local rule = "I"
  if fr.kind == "error" then
    rule = "Y"
  elseif spec ~= nil then
    rule = rule_at(spec["trid_" .. dir], dialect)
  end
  local toks = frame_tokens(fr)
  local trid = nil
  local first = 1
  if rule ~= "N" and toks[1] ~= nil and is_int(toks[1][1]) then
    trid, first = toks[1][1], 2
  end
  local args = {}
  for i = first, #toks do args[#args + 1] = toks[i][1] end
  return trid, args
end

local function add_command(tvb, tree, pinfo, pos, fr, st, dir, dialect, inferred)
  local sub = tree:add(msnsniff, tvb:range(pos, fr.len))
  local word = fr.word
  local spec = COMMANDS[word]
  sub:add(F.cmd, tvb:range(pos, 3))
  if spec ~= nil then sub:add(F.title, tvb:range(pos, 3), spec.title) end
  sub:add(F.dir, tvb:range(pos, fr.len), dir)
  sub:add(F.dialect, tvb:range(pos, fr.len), dialect)
  sub:add(F.dialect_inferred, tvb:range(pos, fr.len), inferred)
  local toks = frame_tokens(fr)
  local trid, args = trid_and_args(fr, dir, dialect)
  local first = 1
  if trid ~= nil then
    sub:add(F.trid, tvb:range(pos + 3 + toks[1][2], #trid), UInt64.new(trid))
    first = 2
  end
  local joined = table.concat(args, " ")
  if #args > 0 then
    local a0 = pos + 3 + toks[first][2]
    local last = toks[#toks]
    sub:add(F.args, tvb:range(a0, pos + 3 + last[2] + #last[1] - a0))
  end
  local summary = word .. (trid and (" " .. trid) or "") .. (#args > 0 and (" " .. joined) or "")
  if fr.kind == "error" then
    local code = tonumber(word)
    local info = ERRORS[code]
    local name = info and info[1] or "ERR_UNKNOWN"
    local meaning = info and info[2] or ("undocumented error code " .. code)
    local item = sub:add(F.error, tvb:range(pos, 3), code)
    item:append_text(" (" .. name .. ")")
    sub:add(F.error_name, tvb:range(pos, 3), name)
    sub:add(F.error_meaning, tvb:range(pos, 3), meaning)
    sub:add(F.error_disconnects, tvb:range(pos, 3), info ~= nil and info[3] or false)
    sub:add_proto_expert_info(E.error, word .. " " .. name .. ": " .. meaning)
    summary = summary .. " [" .. name .. "]"
  elseif spec == nil or #spec["variants_" .. dir] == 0 then
    sub:add_proto_expert_info(E.unknown, "Unknown command " .. word .. " (" .. dir .. ")")
    summary = summary .. " [unknown command]"
  else
    local v = choose_variant(spec["variants_" .. dir], dialect, trid ~= nil, #args, joined)
    if v == nil then
      sub:add_proto_expert_info(E.nofit, "Arguments fit no known form of " .. word)
    else
      if v.label ~= "" then sub:add(F.variant, tvb:range(pos, 3), v.label) end
      for i, spec_arg in ipairs(v.args) do
        if first + i - 1 > #toks then break end
        local last_i = spec_arg[2] and #toks or (first + i - 1)
        for j = first + i - 1, last_i do
          local t = toks[j]
          local range = tvb:range(pos + 3 + t[2], #t[1])
          if spec_arg[1] == "list" then sub:add(F.list, range) end
          sub:add(ARG_FIELDS[spec_arg[1]], range)
        end
        if spec_arg[2] then break end
      end
    end
  end
  if fr.payload_length ~= nil then
    local at = pos + fr.line_len - fr.last_len
    sub:add(F.payload_length, tvb:range(at, fr.last_len), fr.payload_length)
    if fr.payload_length > 0 then
      local body = tvb:range(pos + fr.line_len + 2, fr.payload_length)
      sub:add(F.payload, body)
      local text = body:raw()
      local head = text:match("^(.-)\r\n\r\n") or text
      local _, at = ("\r\n" .. head):lower():find("\r\ncontent%-type:[ \t]*")
      local ctype = at and ("\r\n" .. head):match("^([^;\r\n]*)", at + 1)
      if ctype ~= nil and ctype ~= "" then
        sub:add(F.content_type, body, (ctype:gsub("%s+$", "")))
      end
      summary = summary .. " [" .. fr.payload_length .. " bytes" ..
        (ctype and ctype ~= "" and (", " .. ctype) or "") .. "]"
    end
  end
  sub:append_text(", " .. summary)
  return summary, trid, args
end

local LATE_CUT = "cut at the end of a packet read after its connection was recognised as " ..
  "MSNP: TCP put no later segment with it (it reassembles in the first pass only)"

-- A first pass without tcp.stream knows a connection by its endpoints (see `conn_key`), so a
-- later connection that reuses them would carry on with the earlier one's state (its dialect
-- above all). The client's VER is the first line of a connection and comes only there: one
-- after the client's first whole frame starts the state afresh, as msnsniff's reassembly
-- starts a new flow on the new SYN. Where the packet was first read stays as it was.
local function reused(pinfo, st, dir, tvb)
  if dir ~= "c2s" or not st.started.c2s or pinfo.visited or f_stream() ~= nil
     or tvb:len() < 4 or tvb:raw(0, 4) ~= "VER " then
    return st
  end
  local pair = pair_key(pinfo)
  local first = first_read[pair]
  streams[conn_key(pinfo)] = nil
  st = stream_state(pinfo)
  first_read[pair] = first
  return st
end

local function dissect(tvb, pinfo, tree)
  local st = stream_state(pinfo)
  local dir = (endpoint(pinfo.src, pinfo.src_port) == st.client) and "c2s" or "s2c"
  st = reused(pinfo, st, dir, tvb)
  pinfo.cols.protocol = "MSNP"
  local visited = pinfo.visited
  local given, held_len = tvb:len(), 0
  if any_prefix then
    tvb, held_len = with_held(tvb, pinfo, st, dir, visited)
    if tvb == nil then return given end
  end
  local data = tvb:raw()
  local summaries = {}
  local pos = 0
  local late = false
  local ls = st  -- the state frames are read with and learn into (see `late_state`)
  while pos < #data do
    -- the dialect a frame is read under is remembered, so revisiting a packet (Wireshark's
    -- second pass, a click in the GUI) shows what the first, in-order pass saw
    local key = pinfo.number .. ":" .. tvb:len() .. ":" .. pos
    local seen = memo[key]
    if seen == nil and pos == 0 and visited and is_late(pinfo) then
      late, ls = true, late_state(st)
    end
    local learn = not visited or (late and seen == nil)
    local dialect, inferred, first
    if visited and seen ~= nil then
      dialect, inferred, first = seen[1], seen[2], seen[3]
    else
      dialect, inferred, first = ls.dialect, ls.inferred, not ls.started[dir]
    end
    -- the first bytes of a direction of a connection the capture joined mid-way (whether it
    -- was joined, the handshake tells; a first pass of two may not have seen it)
    local partial = st.joined and first
    local fr, need = frame_at(data, pos, dir, dialect)
    if fr == nil and late then
      -- too late for TCP to add the next segment: the rest is shown as it is (in a joined
      -- connection's partial tail, as partial; it does not end the tail)
      fr = {kind = "malformed", len = #data - pos, garbage = true, cut = true,
            reason = LATE_CUT}
    elseif fr == nil then
      if pos >= held_len then
        pinfo.desegment_offset = pos - held_len
        pinfo.desegment_len = need
      elseif not visited then  -- cut in the held bytes: held again (see `with_held`)
        st.pending = st.pending or {}
        st.pending[dir] = {data = data:sub(pos + 1), nums = {}}
      end
      break
    end
    if learn then
      memo[key] = {dialect, inferred, first}
      -- a garbage run that reaches the end of the bytes given goes on in the next segment
      -- (one run for the framer, which waits): it does not yet end a joined stream's
      -- partial tail
      if not fr.cut then ls.started[dir] = true end
    end
    if fr.kind == "malformed" and partial and fr.garbage then
      -- as msnsniff's PartialFrame: the tail of a frame whose start the capture missed, no
      -- damage (the reason is kept in msnsniff.malformed, as JSON keeps malformed.reason)
      local sub = tree:add(msnsniff, tvb:range(pos, fr.len))
      sub:add(F.dir, tvb:range(pos, fr.len), dir)
      sub:add(F.malformed, tvb:range(pos, fr.len), JOINED)
      sub:add(F.partial, tvb:range(pos, fr.len), true)
      sub:add_proto_expert_info(E.partial, "the capture began in the middle of this " ..
        "connection: its first " .. fr.len .. " bytes (" .. dir .. ") are the tail of a " ..
        "frame whose start it missed")
      sub:append_text(", partial: " .. JOINED)
      summaries[#summaries + 1] = "[PARTIAL: " .. JOINED .. "]"
    elseif fr.kind == "malformed" then
      local sub = tree:add(msnsniff, tvb:range(pos, fr.len))
      sub:add(F.dir, tvb:range(pos, fr.len), dir)
      sub:add(F.malformed, tvb:range(pos, fr.len), fr.reason)
      sub:add_proto_expert_info(E.malformed, fr.reason)
      sub:append_text(", malformed: " .. fr.reason)
      summaries[#summaries + 1] = "[MALFORMED: " .. fr.reason .. "]"
    else
      if learn and fr.kind == "command" then
        observe(ls, fr.word, dir, trid_and_args(fr, dir, dialect))
        if ls.dialect ~= dialect or ls.inferred ~= inferred then
          -- the line that told the dialect (the server's VER, a clue) is of it too, as
          -- msnsniff's framer makes that frame again in it
          dialect, inferred = ls.dialect, ls.inferred
          memo[key] = {dialect, inferred, first}
        end
      end
      local summary = add_command(tvb, tree, pinfo, pos, fr, st, dir, dialect, inferred)
      summaries[#summaries + 1] = summary
    end
    pos = pos + fr.len
  end
  if #summaries > 0 then
    pinfo.cols.info = table.concat(summaries, " | ")
  elseif pos == 0 then
    pinfo.cols.info = "[MSNP segment of a reassembled frame]"
  end
  return given
end

function msnsniff.dissector(tvb, pinfo, tree)
  return dissect(tvb, pinfo, tree)
end

-- does this connection look like MSNP? As msnsniff decides (its capture session holds a
-- flow's bytes, per direction, while it asks the dissectors' `sniff`): in the first
-- SNIFF_LIMIT bytes a direction sent, with a CRLF, a known command or an error reply at the
-- start, or a known command at the start of a later line (a capture joined mid-line or
-- inside a payload; the line may begin in one segment and its command end in the next).
-- The bytes of the packets it declines are held (see `with_held`), until the connection's
-- held bytes, both ways, reach SNIFF_LIMIT: then msnsniff drops the connection, and the
-- heuristic does not look at it again. One that opens with an HTTP request or status line is
-- HTTP at once (msnsniff's HTTP dissector outbids these rules), so MSNP lines a gateway
-- tunnels in a later segment's body do not claim it either. The bounds also keep the cost
-- on a busy capture's other TCP traffic to a table look-up per segment once a connection's
-- first 4 KiB were looked at.
local SNIFF_LIMIT = 4096
local HTTP_METHODS = {GET = true, POST = true, HEAD = true, PUT = true, DELETE = true,
                      OPTIONS = true, PATCH = true, TRACE = true, CONNECT = true}

local function http_start(head)
  local method = head:match("^(%u+) [\033-\126]+ HTTP/1%.[01]\r?\n")
  if method ~= nil and HTTP_METHODS[method] then return true end
  return head:find("^HTTP/1%.[01] [1-5]%d%d[ \r\n]") ~= nil
end

local function msnp_content(head)
  if not head:find("\r\n", 1, true) then return false end
  local word = head:sub(1, 3)
  local after = head:sub(4, 4)
  if KNOWN[word] and (after == " " or after == "\r") then return true end
  if head:find("^[1-9]%d%d %d") then return true end
  for later in head:gmatch("\n(%u%u%u)[ \r]") do
    if KNOWN[later] then return true end
  end
  return false
end

-- the connection's held bytes (nil: it is not MSNP), or false: not yet
local function looks_like_msnp(tvb, pinfo)
  local key = conn_key(pinfo)
  local h = held[key]
  if h == nil then
    h = {bytes = 0, last = -1, dirs = {}}
    held[key] = h
  end
  if h.bytes >= SNIFF_LIMIT then return nil end
  local src = endpoint(pinfo.src, pinfo.src_port)
  local d = h.dirs[src]
  if d == nil then
    d = {data = "", nums = {}}
    h.dirs[src] = d
  end
  local head = d.data .. tvb:raw(0, math.min(tvb:len(), SNIFF_LIMIT - #d.data))
  local http = http_start(head)
  if not http and #head >= 5 and msnp_content(head) then return h end
  -- each packet counted once, whatever the pass (tshark -2's first pass has no tcp.stream,
  -- so its second pass counts afresh under another key, in order, as the first did)
  if pinfo.number > h.last then
    h.last = pinfo.number
    h.bytes = http and SNIFF_LIMIT or h.bytes + tvb:len()
    if h.bytes >= SNIFF_LIMIT then
      h.dirs = {}  -- dropped, as msnsniff drops it
    else
      d.data = d.data .. tvb:raw()
      d.nums[#d.nums + 1] = pinfo.number
    end
  end
  return false
end

-- the connection is claimed: the bytes held each way are read with the next packet of their
-- direction the in-order pass gives this dissector (this one, for its own direction)
local function claim(h, pinfo)
  held[conn_key(pinfo)] = nil
  if pinfo.visited then return end
  local st = stream_state(pinfo)
  for src, d in pairs(h.dirs) do
    if #d.data > 0 then
      st.pending = st.pending or {}
      st.pending[src == st.client and "c2s" or "s2c"] = d
      for _, m in ipairs(d.nums) do held_in[m] = d end
      any_prefix = true
    end
  end
end

local tcp_port = DissectorTable.get("tcp.port")
if SERVER_PORT ~= nil then
  tcp_port:add(SERVER_PORT, msnsniff)  -- replaces the built-in MSNMS dissector on this port
end
tcp_port:add_for_decode_as(msnsniff)  -- "Decode As... MSNSNIFF" for any other port

if HEURISTIC then
  msnsniff:register_heuristic("tcp", function(tvb, pinfo, tree)
    local h = looks_like_msnp(tvb, pinfo)
    if not h then return false end
    claim(h, pinfo)
    pinfo.conversation = msnsniff
    dissect(tvb, pinfo, tree)
    return true
  end)
end
"""
