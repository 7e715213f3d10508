"""The display-filter language shared by every command (`-Y FILTER`) and the TUI.

Theory of operation
-------------------
A filter reads like Wireshark's: `msnp.cmd in {ADD REM} and dir == s2c and msnp.version > 12`.
Text is parsed by a small LALR grammar (lark, imported and built on first use, then cached)
into a tree, which is compiled *once* into nested closures; matching a frame runs the closures
and never walks the tree again. Compiled filters are cached by their text.

Syntax. A test is `FIELD` (presence), `FIELD OP VALUE` or `FIELD in {V1 V2 lo..hi}` (commas
optional). OP is `==` `!=` `<` `<=` `>` `>=` (or `eq ne lt le gt ge`), `contains`, `matches`
(or `~`), and Wireshark's `===` (all_eq) and `!==` (any_ne, or `~=`). Tests combine with
`not`/`!`, `and`/`&&`, `or`/`||` (that order of precedence) and parentheses. A VALUE is a
double-quoted string (escapes `\\"` `\\\\` `\\n` `\\t` `\\xNN` `\\uNNNN`; other backslashes are
kept, so `"\\d+"` is a regex; `r"..."` is raw) or a bare word (`ADD`, `c2s`, `bob@example.com`,
`12`, `0x1f`, `0.5`, `true`), read according to the field's kind.

Fields come from two tables. `FIELDS` maps a fixed name to a `FieldSpec`: its kind (integer,
number, string, boolean, list, any, presence), a getter and a description. `PREFIXES` maps a
dynamic prefix (`msnp.payload.header.`, `msnp.field.`, `msnp.payload.field.`) to a getter
factory taking the rest of the name, so `msnp.payload.header.X-MMS-IM-Format` needs no entry of
its own. Unknown names (with a "did you mean"), operators a kind does not support, literals
that do not fit the kind and bad regular expressions are compile-time `FilterError`s pointing
at their column, as are syntax errors.

Getters take a per-call `_Ctx` that decodes the frame's fields and payload lazily, at most once
per `matches` call and only if a getter asks. Values from the capture's analysis (round-trip
time, the request a reply answers...) are passed to `matches` in `extra`, keyed by field name.

Semantics, as in Wireshark: a field absent from a frame makes every comparison on it false
(and `not` of that comparison true); a bare field name tests presence (a boolean field tests
that it is true). A field may occur several times in a frame (`msnp.account`, `addr`, `port`,
the members of `msnp.lists`): a comparison is true when any occurrence satisfies it, except
`!=`, which is true when the field is present and no occurrence equals the value, `===`, when
every occurrence equals it, and `!==`, when one does not. String
`==` and `contains` are case-sensitive, `matches` is a case-insensitive Python regular
expression searched anywhere in the value; `contains` on a list field tests membership.
Fields whose values are protocol keywords or accounts ignore case in every comparison
(`FieldSpec.fold`): a command (`msnp.cmd == add` is ADD: the grammar's commands are upper
case), a list (`fl`), a status (`nln`), and an account (`Bob@Example.com`: servers, the
reference server too, treat sign-in names without regard to case); a REST method compares
as the dissector reads it (`fbrest.method == LiveMessage.send` selects the calls sent as
`facebook.liveMessage.send`, its `facebook.` prefix optional). Text people write
(nicknames, messages) and HTTP methods (case-sensitive by RFC 9110) keep exact case.
Fields of kind "any" (generic decoded fields) compare by number when both sides are numeric
and by text otherwise.
"""

from __future__ import annotations

import difflib
import enum
import functools
import ipaddress
import operator
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Final

from dissectors.http import apps as http_apps
from dissectors.http.apps import fbrest
from dissectors.msnp.decode import Decoded, decode
from dissectors.msnp.frames import (
    CommandFrame,
    ErrorFrame,
    GapFrame,
    MalformedFrame,
    PartialFrame,
)
from dissectors.msnp.grammar import ACCOUNT_TYPES, COMMANDS
from msnsniff.errors import MsnsniffError
from msnsniff.session import httpfields as hf
from msnsniff.session.capture_session import FrameRecord

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

    from dissectors.msnp.payloads import Payload

__all__ = [
    "FIELDS",
    "PREFIXES",
    "DisplayFilter",
    "FieldSpec",
    "FilterError",
    "Kind",
    "PrefixSpec",
    "compile_filter",
    "describe_fields",
]

MAX_DEPTH: Final = 100
"""Nesting (parentheses, `not`) a filter may have; deeper ones would exhaust the stack."""


# -- errors -----------------------------------------------------------------------------------


class FilterError(MsnsniffError):
    """A filter that does not compile: why, and the 1-based column it points at.

    `str()` shows the expression with a caret under the column; `message` is the bare reason.
    """

    heading: ClassVar[str] = "display filter"

    def __init__(self, message: str, column: int, text: str = "") -> None:
        self.message = message
        self.column = column
        self.text = text
        super().__init__(_render(message, column, text))
        self.reason = message


def _render(message: str, column: int, text: str) -> str:
    if not text:
        return f"column {column}: {message}"
    flat = "".join(" " if c in "\t\r\n\v\f" else c for c in text)
    return f"{flat}\n{' ' * _width(flat[: column - 1])}^ {message}"


def _width(text: str) -> int:
    """Terminal columns `text` takes: two for a wide (East Asian) character, none for a
    combining mark, so the caret stands under the column on screen."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


class _LiteralError(Exception):
    """A literal does not fit its field (raised while compiling, turned into FilterError)."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


# -- field kinds and the per-call context -----------------------------------------------------


class Kind(enum.Enum):
    """What a field holds; decides which operators and literals it accepts."""

    INT = "integer"
    FLOAT = "number"
    STR = "string"
    ADDR = "address"  # an IP address: `==` takes an address or a subnet (10.0.0.0/8)
    BOOL = "boolean"
    LIST = "list"  # string members: `contains` tests membership
    ANY = "any"  # typed at run time (generic decoded fields)
    PRESENCE = "presence"  # can only be tested for presence


_UNSET: Final[Any] = object()


class _Ctx:
    """One `matches` call: the record, the caller's extra values, and lazily decoded views."""

    __slots__ = ("_decoded", "_payload", "extra", "frame", "record")

    def __init__(self, record: FrameRecord, extra: Mapping[str, object] | None) -> None:
        self.record = record
        self.frame = record.frame
        self.extra = extra
        self._decoded: Any = _UNSET
        self._payload: Any = _UNSET

    def decoded(self) -> Decoded | None:
        got: Decoded | None = self._decoded
        if got is _UNSET:
            frame = self.frame
            got = decode(frame) if isinstance(frame, CommandFrame) else None
            self._decoded = got
        return got

    def fields(self) -> Mapping[str, Any]:
        got = self.decoded()
        return got.fields if got is not None else _EMPTY

    def payload(self) -> Payload | None:
        got: Payload | None = self._payload
        if got is _UNSET:
            frame = self.frame
            got = frame.payload if isinstance(frame, CommandFrame) else None
            self._payload = got
        return got


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
Getter = Callable[[_Ctx], Any]
"""Returns the value, or None when absent; for a `multi` field, a sequence (empty: absent)."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A filter field: kind, getter, one-line description; `multi` getters return sequences;
    `extra` fields are read from the analysis values passed to `matches`; a `fold` field's
    text values and literals are compared as `fold` makes them (`str.casefold` for protocol
    keywords and accounts, see the module doc)."""

    kind: Kind
    get: Getter
    description: str
    multi: bool = False
    extra: bool = False
    fold: Callable[[str], str] | None = None


@dataclass(frozen=True, slots=True)
class PrefixSpec:
    """A family of fields `prefix<suffix>`: `make(suffix)` builds the getter."""

    kind: Kind
    make: Callable[[str], Getter]
    description: str
    placeholder: str
    multi: bool = False


# -- getters ----------------------------------------------------------------------------------


def _command(fn: Callable[[CommandFrame], Any]) -> Getter:
    """A getter applying `fn` to command frames (absent on malformed and gap frames)."""

    def get(ctx: _Ctx) -> Any:
        frame = ctx.frame
        return fn(frame) if isinstance(frame, CommandFrame) else None

    return get


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _commands_having(names: Iterable[str]) -> frozenset[str]:
    """Commands with an argument of one of these names in some variant (or keyed items)."""
    wanted = set(names)
    return frozenset(
        spec.cmd
        for spec in COMMANDS.values()
        for variant in (*spec.c2s, *spec.s2c)
        for arg in variant.args
        if arg.name in wanted or arg.type in ("keyed", "keyednet")
    )


def _decoding(names: Sequence[str], read: Callable[[Mapping[str, Any]], Any], empty: Any) -> Getter:
    """A getter reading decoded fields, which decodes only frames whose command can have
    one of `names` (most frames cannot, and decoding is the expensive part)."""
    commands = _commands_having(names)

    def get(ctx: _Ctx) -> Any:
        frame = ctx.frame
        if not isinstance(frame, CommandFrame) or frame.cmd not in commands:
            return empty
        return read(ctx.fields())

    return get


def _decoded_str(*names: str) -> Getter:
    """Every string value among the named decoded fields (a multi getter)."""
    return _decoding(
        names, lambda fields: [v for n in names if isinstance(v := fields.get(n), str)], ()
    )


def _decoded_int(name: str) -> Getter:
    def read(fields: Mapping[str, Any]) -> int | None:
        value = fields.get(name)
        return value if _is_int(value) else None

    return _decoding((name,), read, None)


def _decoded_list(name: str) -> Getter:
    def read(fields: Mapping[str, Any]) -> list[str]:
        value = fields.get(name)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    return _decoding((name,), read, ())


def _group_ids(fields: Mapping[str, Any]) -> list[Any]:
    out: list[Any] = []
    one = fields.get("group_id")
    if isinstance(one, int | str):
        out.append(one)
    many = fields.get("groups")
    if isinstance(many, list):
        out.extend(many)
    return out


_by_id: Final = _decoding(("group_id", "groups"), _group_ids, ())
_GROUP_GUID_COMMANDS: Final = frozenset({"LSG", "ADG"})  # SBP's guid names a contact


def _groups(ctx: _Ctx) -> Any:
    """Group ids, and the GUID that names a group on MSNP10+ LSG and ADG lines."""
    found = _by_id(ctx)
    frame = ctx.frame
    if isinstance(frame, CommandFrame) and frame.cmd in _GROUP_GUID_COMMANDS:
        guid = ctx.fields().get("guid")
        if isinstance(guid, str):
            return [*found, guid]
    return found


def _payload_attr(fn: Callable[[Payload], Any]) -> Getter:
    def get(ctx: _Ctx) -> Any:
        payload = ctx.payload()
        return None if payload is None else fn(payload)

    return get


def _payload_text(payload: Payload) -> str | None:
    text = payload.fields.get("text")
    return text if isinstance(text, str) else None


def _extra(name: str, check: Callable[[object], bool], multi: bool = False,
           proto: str = "msnp") -> Getter:  # fmt: skip
    """A pairing value from `extra` (stored under its `msnp.*` name) for a record of `proto`,
    kept only when `check` accepts it (so matching never raises)."""

    def get_one(ctx: _Ctx) -> Any:
        extra = ctx.extra
        value = None if extra is None or ctx.record.proto != proto else extra.get(name)
        return value if value is not None and check(value) else None

    def get_many(ctx: _Ctx) -> list[Any]:
        extra = ctx.extra
        value = None if extra is None or ctx.record.proto != proto else extra.get(name)
        if isinstance(value, list | tuple):
            return [v for v in value if check(v)]
        return [value] if value is not None and check(value) else []

    return get_many if multi else get_one


def _on_response(get: Getter) -> Getter:
    """`get` on a response only (a frame the pairing names a request for): Wireshark shows
    `http.time` on the response alone, so `http.time > 1` lists each slow exchange once."""

    def get_on_response(ctx: _Ctx) -> Any:
        extra = ctx.extra
        return get(ctx) if extra is not None and extra.get("msnp.request") is not None else None

    return get_on_response


def _split_endpoint(endpoint: str | None) -> tuple[str | None, int | None]:
    if endpoint is None:
        return None, None
    host, sep, port = endpoint.rpartition(":")
    if not sep:
        return endpoint, None
    return host.strip("[]"), int(port) if port.isascii() and port.isdigit() else None


def _addrs(ctx: _Ctx) -> list[str]:
    flow = ctx.record.flow
    hosts = (_split_endpoint(flow.client)[0], _split_endpoint(flow.server)[0])
    return [h for h in hosts if h]


def _ports(ctx: _Ctx) -> list[int]:
    flow = ctx.record.flow
    ports = (_split_endpoint(flow.client)[1], _split_endpoint(flow.server)[1])
    return [p for p in ports if p is not None]


def _host_port(sending: bool, part: int, family: int | None = None) -> Getter:
    """The source (`sending`) or destination endpoint's host (`part` 0) or port (1), as
    Wireshark's `ip.src`, `tcp.dstport`...; `family` 4 or 6 keeps hosts of that family."""
    endpoint = _endpoint(sending)

    def get(ctx: _Ctx) -> Any:
        value = _split_endpoint(endpoint(ctx))[part]
        if isinstance(value, str) and family is not None and (":" in value) != (family == 6):
            return None
        return value

    return get


def _family_addrs(family: int) -> Getter:
    """`addr` of one family: Wireshark's `ip.addr` (IPv4) and `ipv6.addr`."""

    def get(ctx: _Ctx) -> list[str]:
        return [a for a in _addrs(ctx) if (":" in a) == (family == 6)]

    return get


def _endpoint(sending: bool) -> Getter:
    """The source (`sending`) or destination endpoint "ip:port" of the frame."""

    def get(ctx: _Ctx) -> str | None:
        flow = ctx.record.flow
        c2s = ctx.frame.direction.value == "c2s"
        return flow.client if c2s == sending else flow.server

    return get


def _frame_len(ctx: _Ctx) -> int:
    frame = ctx.frame
    return frame.length if isinstance(frame, GapFrame) else len(frame.raw)


def _malformed(ctx: _Ctx) -> bool:
    frame = ctx.frame
    return isinstance(frame, MalformedFrame | GapFrame) and not isinstance(frame, PartialFrame)


def _partial(ctx: _Ctx) -> bool:
    return isinstance(ctx.frame, PartialFrame)


def _malformed_reason(ctx: _Ctx) -> str | None:
    frame = ctx.frame
    if isinstance(frame, GapFrame):
        return f"{frame.length} {frame.reason}"
    return frame.reason if isinstance(frame, MalformedFrame) else None


def _gap(ctx: _Ctx) -> int | None:
    frame = ctx.frame
    return frame.length if isinstance(frame, GapFrame) else None


def _error_attr(fn: Callable[[ErrorFrame], Any]) -> Getter:
    def get(ctx: _Ctx) -> Any:
        frame = ctx.frame
        return fn(frame) if isinstance(frame, ErrorFrame) else None

    return get


def _problems(ctx: _Ctx) -> list[str]:
    decoded = ctx.decoded()
    out = list(decoded.problems) if decoded is not None else []
    payload = ctx.payload()
    if payload is not None:
        out.extend(payload.problems)
    return out


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _typed_arg_names(accept: Callable[[str, str], bool], *always: str) -> tuple[str, ...]:
    """Grammar argument names whose (name, type) `accept` takes, plus `always`, in order."""
    names = dict.fromkeys(always)
    for spec in COMMANDS.values():
        for variant in (*spec.c2s, *spec.s2c):
            for arg in variant.args:
                if accept(arg.name, arg.type):
                    names[arg.name] = None
    return tuple(names)


ACCOUNT_FIELDS: Final = _typed_arg_names(lambda name, typ: typ in ACCOUNT_TYPES, "account")
"""Decoded field names holding an account (sender, caller, email...): `msnp.account`."""
NICK_FIELDS: Final = _typed_arg_names(lambda n, t: t == "url" and n.endswith("nick"), "nick")
"""Decoded field names holding a URL-decoded nickname: `msnp.nick`."""


def _header(name: str) -> Getter:
    wanted = name.lower()

    def get(ctx: _Ctx) -> list[str]:
        payload = ctx.payload()
        if payload is None:
            return []
        return [value for key, value in payload.headers if key.lower() == wanted]

    return get


def _decoded_any(name: str) -> Getter:
    def get(ctx: _Ctx) -> Any:
        return ctx.fields().get(name)

    return get


def _payload_field(name: str) -> Getter:
    def get(ctx: _Ctx) -> Any:
        payload = ctx.payload()
        return None if payload is None else payload.fields.get(name)

    return get


def _http(get: Callable[[Any], Any], multi: bool = False) -> Getter:
    """A getter reading an HTTP frame (`msnsniff.session.httpfields`); absent elsewhere."""
    absent = () if multi else None

    def read(ctx: _Ctx) -> Any:
        return get(ctx.frame) if ctx.record.proto == "http" else absent

    return read


def _http_prefix(make: Callable[[str], Callable[[Any], Any]], multi: bool = False
                 ) -> Callable[[str], Getter]:  # fmt: skip
    return lambda suffix: _http(make(suffix), multi)


_F = FieldSpec
_K = Kind
_HTTP_FIELDS: Final = (
    ("http.method", _K.STR, hf.method, "HTTP request method", False),
    ("http.uri", _K.STR, hf.uri, "HTTP request target as sent", False),
    ("http.path", _K.STR, hf.path, "HTTP request path (no query)", False),
    ("http.status", _K.INT, hf.status, "HTTP response status code", False),
    ("http.version", _K.STR, hf.version, "HTTP version (1.0, 1.1)", False),
    ("http.content_type", _K.STR, hf.content_type, "body media type, lower-case", False),
    ("http.body", _K.STR, hf.body, "body text, decoded", False),
    ("http.len", _K.INT, hf.body_len, "body bytes on the wire", False),
    ("http.app", _K.STR, hf.app_kind, "sub-dissector: xmlrpc, fbrest, gateway", False),
    ("http.malformed", _K.BOOL, hf.malformed, "bytes that are not HTTP", False),
    ("http.malformed.reason", _K.STR, hf.malformed_reason, "why they are not HTTP", False),
    ("http.problem", _K.STR, hf.problems, "problem code (http.*, xmlrpc.*, ...)", True),
    ("http.gateway.session", _K.STR, hf.gateway_session, "MSNP gateway SessionID", False),
    ("http.gateway.action", _K.STR, hf.gateway_action, "gateway open, poll or send", False),
    ("xmlrpc.method", _K.STR, hf.xmlrpc_method, "XML-RPC method (answers too)", False),
    ("xmlrpc.type", _K.STR, hf.xmlrpc_type, "call, response, fault or http_error", False),
    ("xmlrpc.fault.code", _K.INT, hf.xmlrpc_fault_code, "XML-RPC faultCode", False),
    ("xmlrpc.fault.string", _K.STR, hf.xmlrpc_fault_string, "XML-RPC faultString", False),
    ("fbrest.method", _K.STR, hf.fbrest_method, "Facebook REST method (answers too)", False),
    ("fbrest.error", _K.INT, hf.fbrest_error, "error_code of an error_response", False),
    ("fbrest.error.meaning", _K.STR, hf.fbrest_error_meaning, "the seed's meaning", False),
)
"""HTTP fields: (name, kind, frame getter, description, multi)."""

_HTTP_FOLDS: Final[Mapping[str, Callable[[str], str]]] = MappingProxyType(
    {"fbrest.method": fbrest.method_key, "http.content_type": str.casefold,
     "http.gateway.action": str.casefold}
)
"""HTTP fields compared as the dissector reads them: a REST method by the name its rules go
by (`facebook.liveMessage.send` is seed 002's `LiveMessage.send`), a media type and the
gateway's Action (held lower-case, as the gateway reads `Action=Open`) without case."""

_WIRESHARK_HTTP_FIELDS: Final = (
    ("http.request", _K.PRESENCE, hf.is_request, "an HTTP request (Wireshark's name)", False),
    ("http.response", _K.PRESENCE, hf.is_response, "an HTTP response (Wireshark's name)",
     False),
    ("http.request.method", _K.STR, hf.method, "Wireshark's name for http.method", False),
    ("http.request.uri", _K.STR, hf.uri, "Wireshark's name for http.uri", False),
    ("http.request.uri.path", _K.STR, hf.path, "Wireshark's name for http.path", False),
    ("http.request.uri.query", _K.STR, hf.query, "a request's query, without the ?", False),
    ("http.request.version", _K.STR, hf.request_version, "a request's HTTP/1.x", False),
    ("http.response.code", _K.INT, hf.status, "Wireshark's name for http.status", False),
    ("http.response.phrase", _K.STR, hf.reason, "a response's reason phrase", False),
    ("http.response.version", _K.STR, hf.response_version, "a response's HTTP/1.x", False),
    ("http.file_data", _K.STR, hf.body, "Wireshark's name for http.body", False),
    ("http.content_length", _K.INT, hf.content_length, "the Content-Length header's number",
     False),
    *((f"http.{name.lower().replace('-', '_')}", _K.STR, hf.header(name),
       f"Wireshark's name for http.header.{name}", True)
      for name in ("Host", "User-Agent", "Server", "Accept", "Accept-Encoding",
                   "Authorization", "Cookie", "Set-Cookie", "Location", "Referer",
                   "Connection", "Content-Encoding", "Transfer-Encoding", "Cache-Control",
                   "WWW-Authenticate")),
)  # fmt: skip
"""Wireshark's HTTP field names, so its filters work here: aliases of ours where they mean
the same, and the headers it has a field of its own for."""



def _proto_is(proto: str) -> Getter:
    return lambda c: True if c.record.proto == proto else None


def _app_is(kind: str) -> Getter:
    return _http(lambda frame: True if hf.app_kind(frame) == kind else None)


_PROTOCOLS: Final = (
    ("msnp", _proto_is("msnp"), "an MSNP frame (TCP or through the HTTP gateway)"),
    ("http", _proto_is("http"), "an HTTP frame"),
    ("xmlrpc", _app_is("xmlrpc"), "an XML-RPC call or answer"),
    ("fbrest", _app_is("fbrest"), "a Facebook REST call or answer"),
)
"""Protocol names as filters, as in Wireshark (`http`, `msnp and dir == s2c`)."""


def _bytes_of(proto: str | None) -> Getter:
    """A frame's bytes as text (UTF-8; other bytes kept as surrogates), on `proto`'s frames
    only when given: Wireshark's `frame contains "alice"` and `msnp contains "alice"`."""

    def get(ctx: _Ctx) -> str | None:
        if proto is not None and ctx.record.proto != proto:
            return None
        return _text(ctx.frame.raw)

    return get


_PROTOCOL_BYTES: Final[Mapping[str, Getter]] = MappingProxyType(
    {"msnp": _bytes_of("msnp"), "http": _bytes_of("http")}
)
"""A protocol's name compared (`http contains "hpassword"`, `msnp matches "..."`) reads the
frame's bytes; alone, it still only tests that the frame is of that protocol."""

FIELDS: Final[Mapping[str, FieldSpec]] = MappingProxyType(
    {
        "frame": _F(_K.STR, _bytes_of(None), 'the frame\'s bytes (frame contains "alice")'),
        "frame.number": _F(_K.INT, lambda c: c.record.no, "frame number in the capture"),
        "frame.time": _F(_K.FLOAT, lambda c: c.record.ts, "capture time, seconds since 1970"),
        "frame.len": _F(_K.INT, _frame_len, "bytes the frame covers on the wire"),
        "frame.offset": _F(_K.INT, lambda c: c.frame.offset, "offset in its direction's stream"),
        **{name: _F(_K.PRESENCE, test, text) for name, test, text in _PROTOCOLS},
        "flow": _F(_K.STR, lambda c: c.record.flow.id, "connection id"),
        "flow.label": _F(_K.STR, lambda c: c.record.flow.label, "connection label (transcripts)"),
        "dir": _F(_K.STR, lambda c: c.frame.direction.value, "direction: c2s or s2c"),
        "proto": _F(_K.STR, lambda c: c.record.proto, "dissector that read the flow (msnp)"),
        "addr": _F(_K.ADDR, _addrs, "IP address of either endpoint", multi=True),
        "port": _F(_K.INT, _ports, "TCP port of either endpoint", multi=True),
        "src": _F(_K.STR, _endpoint(True), "sending endpoint ip:port"),
        "dst": _F(_K.STR, _endpoint(False), "receiving endpoint ip:port"),
        # Wireshark's names for the endpoints, so its filters work as they are
        "ip.addr": _F(_K.ADDR, _family_addrs(4), "IPv4 address of either endpoint", multi=True),
        "ip.src": _F(_K.ADDR, _host_port(True, 0, 4), "sending endpoint's IPv4 address"),
        "ip.dst": _F(_K.ADDR, _host_port(False, 0, 4), "receiving endpoint's IPv4 address"),
        "ipv6.addr": _F(_K.ADDR, _family_addrs(6), "IPv6 address of either endpoint",
                        multi=True),
        "ipv6.src": _F(_K.ADDR, _host_port(True, 0, 6), "sending endpoint's IPv6 address"),
        "ipv6.dst": _F(_K.ADDR, _host_port(False, 0, 6), "receiving endpoint's IPv6 address"),
        "tcp.port": _F(_K.INT, _ports, "Wireshark's name for port", multi=True),
        "tcp.srcport": _F(_K.INT, _host_port(True, 1), "sending endpoint's TCP port"),
        "tcp.dstport": _F(_K.INT, _host_port(False, 1), "receiving endpoint's TCP port"),
        "msnp.cmd": _F(_K.STR, _command(lambda f: f.cmd), "command word (error code digits)",
                       fold=str.casefold),
        "msnp.trid": _F(_K.INT, _command(lambda f: f.trid), "transaction id (absent if none)"),
        "msnp.args": _F(_K.STR, _command(lambda f: " ".join(f.args)), "arguments after TrID"),
        "msnp.line": _F(_K.STR, _command(lambda f: _text(f.line)), "the command line"),
        "msnp.dialect": _F(_K.INT, _command(lambda f: f.dialect), "MSNP version it was read as"),
        "msnp.unknown": _F(_K.BOOL, _command(lambda f: f.unknown), "command the grammar lacks"),
        "msnp.malformed": _F(_K.BOOL, _malformed, "malformed bytes or a capture gap"),
        "msnp.malformed.reason": _F(_K.STR, _malformed_reason,
                                    "why the bytes are malformed (or partial)"),
        "msnp.partial": _F(_K.BOOL, _partial, "the tail of a frame the capture missed the "
                           "start of (it joined the connection mid-way): not damage"),
        "msnp.gap": _F(_K.INT, _gap, "bytes lost by the capture (gap frames)"),
        "msnp.error": _F(_K.INT, _error_attr(lambda f: f.code), "error reply code"),
        "msnp.error.name": _F(_K.STR, _error_attr(lambda f: f.error_name), "error code name"),
        "msnp.problem": _F(_K.STR, _problems, "decoding problem", multi=True),
        "msnp.list": _F(_K.STR, _decoded_str("list"), "list argument: FL AL BL RL", multi=True,
                        fold=str.casefold),
        "msnp.lists": _F(_K.LIST, _decoded_list("lists"), "lists of an LST line", multi=True,
                         fold=str.casefold),
        "msnp.account": _F(
            _K.STR, _decoded_str(*ACCOUNT_FIELDS), "any account (sender, caller...)", multi=True,
            fold=str.casefold,
        ),
        "msnp.nick": _F(_K.STR, _decoded_str(*NICK_FIELDS), "nickname, URL-decoded", multi=True),
        "msnp.version": _F(_K.INT, _decoded_int("version"), "contact list version"),
        "msnp.group": _F(_K.ANY, _groups, "group id (number; GUID in MSNP10+)", multi=True),
        "msnp.status": _F(_K.STR, _decoded_str("status"), "status (NLN BSY AWY...)", multi=True,
                          fold=str.casefold),
        "msnp.payload": _F(
            _K.PRESENCE, _command(lambda f: f.payload_length), "the frame carries a payload"
        ),
        "msnp.payload.type": _F(
            _K.STR, _payload_attr(lambda p: p.content_type), "payload content type",
            fold=str.casefold,  # (a MIME type has no case)
        ),
        "msnp.payload.len": _F(
            _K.INT, _command(lambda f: f.payload_length), "payload length in bytes"
        ),
        "msnp.payload.text": _F(_K.STR, _payload_attr(_payload_text), "instant message text"),
        "msnp.payload.body": _F(
            _K.STR, _payload_attr(lambda p: None if p.binary else p.text), "payload body text"
        ),
        "msnp.rtt": _F(
            _K.FLOAT, _extra("msnp.rtt", _is_number), "seconds to the first reply (request)",
            extra=True,
        ),
        "msnp.request": _F(
            _K.INT, _extra("msnp.request", _is_int), "frame number of the request answered",
            extra=True,
        ),
        "msnp.replies": _F(
            _K.INT, _extra("msnp.replies", _is_int, multi=True), "frame numbers of the replies",
            multi=True, extra=True,
        ),
        **{name: _F(kind, _http(get, multi), text, multi=multi, fold=_HTTP_FOLDS.get(name))
           for name, kind, get, text, multi in (*_HTTP_FIELDS, *_WIRESHARK_HTTP_FIELDS)},
        # Wireshark's names for an HTTP exchange's pairing (the msnp.* ones are MSNP's only)
        "http.time": _F(
            _K.FLOAT, _on_response(_extra("msnp.rtt", _is_number, proto="http")),
            "seconds from the request to this response (on the response)", extra=True,
        ),
        "http.request_in": _F(
            _K.INT, _extra("msnp.request", _is_int, proto="http"),
            "frame number of the request a response answers", extra=True,
        ),
        "http.response_in": _F(
            _K.INT, _extra("msnp.replies", _is_int, multi=True, proto="http"),
            "frame number of a request's response", multi=True, extra=True,
        ),
    }
)  # fmt: skip
"""Every fixed filter field by name."""

VALUES: Final[Mapping[str, frozenset[str]]] = MappingProxyType({
    "dir": frozenset({"c2s", "s2c"}),
    "http.app": frozenset(app.kind for app in http_apps.APPS),
    "xmlrpc.type": frozenset({"call", "response", "fault", "http_error"}),
})
"""Fields that only ever hold one of a few words: `==`, `!=` and `in` with another word (a
typo, `C2S`) are compile-time errors rather than filters that silently select nothing."""

PREFIXES: Final[Mapping[str, PrefixSpec]] = MappingProxyType(
    {
        "msnp.payload.header.": PrefixSpec(
            _K.STR, _header, "a payload MIME header (name case-insensitive)", "<Name>", multi=True
        ),
        "msnp.payload.field.": PrefixSpec(
            _K.ANY, _payload_field, "a decoded payload field by name", "<name>"
        ),
        "msnp.field.": PrefixSpec(
            _K.ANY, _decoded_any, "a decoded command field by its grammar name", "<name>"
        ),
        "http.header.": PrefixSpec(
            _K.STR, _http_prefix(hf.header, True), "an HTTP header (name case-insensitive)",
            "<Name>", multi=True,
        ),
        "xmlrpc.member.": PrefixSpec(
            _K.ANY, _http_prefix(hf.xmlrpc_member),
            "a struct member of a call or answer (or fault)", "<name>",
        ),
        "fbrest.param.": PrefixSpec(
            _K.ANY, _http_prefix(hf.fbrest_param), "a REST call parameter", "<name>"
        ),
    }
)
"""Field families: a prefix and any suffix name a field."""


def describe_fields() -> str:
    """One line per field: name, kind and description (for `--help` and the TUI)."""
    rows = [(name, spec.kind.value, spec.description) for name, spec in FIELDS.items()]
    rows += [(p + s.placeholder, s.kind.value, s.description) for p, s in PREFIXES.items()]
    width = max(len(name) for name, _, _ in rows)
    return "\n".join(f"{name:<{width}}  {kind:<8}  {text}" for name, kind, text in rows)


# -- the grammar ------------------------------------------------------------------------------

_KEYWORDS: Final = ("and|or|not|in|eq|ne|lt|le|gt|ge|contains|matches|any_eq|all_eq|any_ne"
                    "|all_ne")

GRAMMAR: Final = rf"""
?start: or_test
?or_test: and_test (_OR and_test)*
?and_test: not_test (_AND not_test)*
?not_test: _NOT not_test -> negation
         | atom
?atom: _LPAR or_test _RPAR
     | FIELD -> presence
     | FIELD (CMP | WORDOP) value -> comparison
     | FIELD _IN _LBRACE (value _COMMA?)* _RBRACE -> membership
?value: STRING | WORD

_OR.3: /(or\b|\|\|)/
_AND.3: /(and\b|&&)/
_NOT.3: /(not\b|!(?!=))/
_IN.3: /in\b/
WORDOP.3: /(eq|ne|lt|le|gt|ge|contains|matches|any_eq|all_eq|any_ne|all_ne)\b/
CMP: /===|!==|==|!=|<=|>=|<|>|~=|~/
_LPAR: "("
_RPAR: ")"
_LBRACE: "{{"
_RBRACE: "}}"
_COMMA: ","
FIELD: /(?!({_KEYWORDS})\b)[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-]+)*/
STRING.2: /r?"(?:[^"\\]|\\[\s\S])*"/
WORD: /(?!({_KEYWORDS})(?![^\s(){{}}",!=<>~&|]))[^\s(){{}}",!=<>~&|]+/
%ignore /\s+/
"""

_EXPECTED: Final[Mapping[str, str]] = MappingProxyType(
    {
        "FIELD": "a field",
        "STRING": "a value",
        "WORD": "a value",
        "CMP": "an operator",
        "WORDOP": "an operator",
        "_IN": "an operator",
        "_NOT": '"not"',
        "_AND": '"and"',
        "_OR": '"or"',
        "_LPAR": '"("',
        "_RPAR": '")"',
        "_LBRACE": '"{"',
        "_RBRACE": '"}"',
        "_COMMA": '","',
        "$END": "the end",
    }
)
"""Terminal name -> how an error message names it, in the order messages list them."""


@functools.cache
def _parser() -> Lark:
    from lark import Lark

    return Lark(GRAMMAR, parser="lalr", lexer="contextual")


def _expected(names: Iterable[str]) -> str:
    wanted = {_EXPECTED.get(n, n) for n in names}
    ordered = [text for text in dict.fromkeys(_EXPECTED.values()) if text in wanted]
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _parse(text: str) -> Tree[Token]:
    from lark.exceptions import (
        LarkError,
        UnexpectedCharacters,
        UnexpectedEOF,
        UnexpectedToken,
    )

    end = len(text.rstrip()) + 1
    try:
        tree: Tree[Token] = _parser().parse(text)
    except UnexpectedToken as exc:
        token = exc.token
        at_end = token.type == "$END"
        column = end if at_end else (token.start_pos or 0) + 1
        where = "end of filter" if at_end else f'"{token}"'
        raise FilterError(
            f"unexpected {where}; expected {_expected(exc.expected)}", column, text
        ) from None
    except UnexpectedCharacters as exc:
        pos = exc.pos_in_stream or 0
        if text[pos] == '"' or text[pos : pos + 2] == 'r"':
            message = "unterminated string"
        else:
            message = f'unexpected "{text[pos]}"; expected {_expected(exc.allowed)}'
        raise FilterError(message, pos + 1, text) from None
    except UnexpectedEOF as exc:
        raise FilterError(
            f"unexpected end of filter; expected {_expected(exc.expected)}", end, text
        ) from None
    except LarkError as exc:  # pragma: no cover - lark's other failures
        raise FilterError(f"cannot parse: {exc}", 1, text) from None
    return tree


# -- literals ---------------------------------------------------------------------------------

_HEX: Final = re.compile(r"[+-]?0[xX][0-9a-fA-F]{1,32}")
_DEC: Final = re.compile(r"[+-]?[0-9]{1,40}")
_FLOAT: Final = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]{1,3})?")
_RANGE: Final = re.compile(r"(.+?)\.\.(.+)")
_ESCAPE: Final = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[\s\S])")
_SIMPLE_ESCAPES: Final[Mapping[str, str]] = MappingProxyType(
    {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "0": "\0", "a": "\a", "b": "\b",
     "f": "\f", "v": "\v"}
)  # fmt: skip


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) > 1:
        return chr(int(code[1:], 16))
    simple = _SIMPLE_ESCAPES.get(code)
    return simple if simple is not None else match.group(0)  # `\d` stays (regexes)


def _number(text: str) -> int | float | None:
    """The number a literal spells (decimal, hex, float), or None."""
    if _HEX.fullmatch(text):
        return int(text, 16)
    if _DEC.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return None


_BOOLS: Final[Mapping[str, bool]] = MappingProxyType(
    {"true": True, "false": False, "1": True, "0": False}
)


@dataclass(frozen=True, slots=True)
class _Literal:
    """A value written in the filter: its text (unescaped), column, and numeric readings."""

    text: str
    column: int
    quoted: bool
    raw: str
    number: int | float | None
    boolean: bool | None

    @classmethod
    def of(cls, token: Token) -> _Literal:
        raw = str(token)
        if token.type == "STRING":
            body = raw[2:-1] if raw.startswith("r") else raw[1:-1]
            text = body if raw.startswith("r") else _ESCAPE.sub(_unescape, body)
            quoted = True
        else:
            text, quoted = raw, False
        stripped = text.strip()
        return cls(
            text, (token.start_pos or 0) + 1, quoted, raw, _number(stripped),
            _BOOLS.get(stripped.lower()),
        )  # fmt: skip

    def regex_column(self, pos: int | None) -> int:
        """The column of character `pos` of the text (exact when nothing was escaped)."""
        prefix = len(self.raw) - len(self.text) - 1 if self.quoted else 0
        exact = not self.quoted or self.raw[prefix:-1] == self.text
        return self.column + prefix + pos if pos is not None and exact else self.column


def _as_number(lit: _Literal) -> int | float:
    if lit.number is None:
        raise _LiteralError(f"{lit.raw} is not a number", lit.column)
    return lit.number


def _as_int(lit: _Literal) -> int:
    """An integer field's literal: a whole number (`12.0` is 12); a fraction (`1.5`) is
    refused, as Wireshark refuses it, rather than compared as a number."""
    number = _as_number(lit)
    if isinstance(number, float) and not number.is_integer():
        raise _LiteralError(f"{lit.raw} is not an integer", lit.column)
    return int(number)


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _as_network(lit: _Literal) -> IpNetwork:
    """An address field's literal: an address, or a subnet as Wireshark takes it
    (`10.0.0.0/8`, `::1`); an address is the subnet of that address alone."""
    try:
        return ipaddress.ip_network(lit.text.strip().strip("[]"), strict=False)
    except ValueError:
        raise _LiteralError(f"{lit.raw} is not an IP address or subnet", lit.column) from None


# the address texts one address test keeps its answers for (see `_in_network`)
MAX_ADDRESSES_KEPT: Final = 4096


def _in_network(network: IpNetwork) -> Pred:
    """The test of an address value (text, IPv6 with or without brackets) against a subnet.
    Each text is parsed once, not once a frame: every frame of a flow has the same two
    addresses, so the answer is kept by text (at most `MAX_ADDRESSES_KEPT`, then forgotten
    all at once), and parsing an address took longer than the rest of the test."""
    known: dict[str, bool] = {}

    def pred(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        answer = known.get(value)
        if answer is None:
            try:
                address = ipaddress.ip_address(value.strip("[]"))
            except ValueError:
                answer = False
            else:
                answer = address.version == network.version and address in network
            if len(known) >= MAX_ADDRESSES_KEPT:
                known.clear()
            known[value] = answer
        return answer

    return pred


def _as_bool(lit: _Literal) -> bool:
    if lit.boolean is None:
        raise _LiteralError(f"{lit.raw} is not true or false", lit.column)
    return lit.boolean


def _as_text(lit: _Literal) -> str:
    return lit.text


def _as_literal(lit: _Literal) -> _Literal:
    return lit


_COERCE: Final[Mapping[Kind, Callable[[_Literal], Any]]] = MappingProxyType(
    {
        Kind.INT: _as_int,
        Kind.FLOAT: _as_number,
        Kind.BOOL: _as_bool,
        Kind.STR: _as_text,
        Kind.ADDR: _as_network,
        Kind.LIST: _as_text,
        Kind.ANY: _as_literal,
    }
)
"""How a literal becomes a value to compare with a field of each kind."""


# -- predicates on one value ------------------------------------------------------------------

Pred = Callable[[Any], bool]
Test = Callable[[_Ctx], bool]

_ORDER: Final[Mapping[str, Callable[[Any, Any], bool]]] = MappingProxyType(
    {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}
)
_OP_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge", "~": "matches",
     "eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
     "contains": "contains", "matches": "matches",
     # Wireshark's: `==` is any_eq and `!=` all_ne; `===` all_eq, `!==` (and `~=`) any_ne
     "===": "all_eq", "!==": "any_ne", "~=": "any_ne", "any_eq": "eq", "all_ne": "ne",
     "all_eq": "all_eq", "any_ne": "any_ne"}
)  # fmt: skip
_ALL_OPS: Final = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "contains", "matches", "in"})
_KIND_OPS: Final[Mapping[Kind, frozenset[str]]] = MappingProxyType(
    {
        Kind.INT: frozenset({"eq", "ne", "lt", "le", "gt", "ge", "in"}),
        Kind.FLOAT: frozenset({"eq", "ne", "lt", "le", "gt", "ge", "in"}),
        Kind.STR: _ALL_OPS,
        Kind.ADDR: frozenset({"eq", "ne", "contains", "matches", "in"}),
        Kind.LIST: frozenset({"eq", "ne", "contains", "matches", "in"}),
        Kind.BOOL: frozenset({"eq", "ne", "in"}),
        Kind.ANY: _ALL_OPS,
        Kind.PRESENCE: frozenset(),
    }
)
"""Which operators each kind of field accepts."""


_TEXT_NUMBER: Final = re.compile(r"[+-]?(?:[0-9]{1,19}(?:\.[0-9]{0,19})?|\.[0-9]{1,19})")
"""A decoded text value read as a number: an integer or a decimal fraction, as seed 002's
`call_id` (a float, `1200000003.00`) is sent; not hex or exponents, which name other things."""


def _str_number(value: str) -> int | float | None:
    if not _TEXT_NUMBER.fullmatch(value):
        return None
    return float(value) if "." in value else int(value)


def _dyn_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    return _str_number(value) if isinstance(value, str) else None


def _dyn_eq(value: Any, lit: _Literal) -> bool:
    """Equality for a field typed at run time: by number, truth or text as the value is."""
    if isinstance(value, bool):
        return lit.boolean is not None and value is lit.boolean
    if isinstance(value, str):
        if value == lit.text:
            return True
        number = _str_number(value)
        return number is not None and lit.number is not None and number == lit.number
    if isinstance(value, int | float):
        return lit.number is not None and value == lit.number
    if isinstance(value, list | tuple):
        return any(_dyn_eq(item, lit) for item in value)
    return False


def _dyn_order(cmp: Callable[[Any, Any], bool], lit: _Literal) -> Pred:
    def pred(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return any(pred(item) for item in value)
        if lit.number is not None:
            number = _dyn_number(value)
            return number is not None and cmp(number, lit.number)
        return isinstance(value, str) and cmp(value, lit.text)

    return pred


def _dyn_contains(lit: _Literal) -> Pred:
    def pred(value: Any) -> bool:
        if isinstance(value, str):
            return lit.text in value
        if isinstance(value, list | tuple):
            return any(_dyn_eq(item, lit) for item in value)
        return False

    return pred


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else None


def _dyn_matches(rx: re.Pattern[str]) -> Pred:
    def pred(value: Any) -> bool:
        if isinstance(value, list | tuple):
            return any(pred(item) for item in value)
        text = _scalar_text(value)
        return text is not None and rx.search(text) is not None

    return pred


def _compile_regex(lit: _Literal) -> re.Pattern[str]:
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: not our business
            warnings.simplefilter("ignore")
            return re.compile(lit.text, re.IGNORECASE)
    except re.error as exc:
        raise FilterError(
            f"invalid regular expression: {exc.msg}", lit.regex_column(exc.pos)
        ) from None
    except (OverflowError, RecursionError, ValueError) as exc:
        raise FilterError(f"invalid regular expression: {exc}", lit.column) from None


def _predicate(op: str, kind: Kind, lit: _Literal) -> Pred:
    """The test one value of a `kind` field must pass for `field op lit` (`ne` gives eq)."""
    if op == "matches":
        rx = _compile_regex(lit)
        if kind is Kind.ANY:
            return _dyn_matches(rx)
        search = rx.search
        return lambda v: search(v) is not None
    if kind is Kind.ADDR:  # an address or subnet; `contains` reads the text
        return (lambda v: lit.text in v) if op == "contains" else _in_network(_as_network(lit))
    value = _COERCE[kind](lit)
    if kind is Kind.ANY:
        if op in ("eq", "ne"):
            return lambda v: _dyn_eq(v, lit)
        if op == "contains":
            return _dyn_contains(lit)
        return _dyn_order(_ORDER[op], lit)
    if op in ("eq", "ne"):
        return functools.partial(operator.eq, value)
    if op == "contains":  # a list field's occurrences are its members: membership is equality
        if kind is Kind.LIST:
            return functools.partial(operator.eq, value)
        return lambda v: value in v
    cmp = _ORDER[op]
    return lambda v: cmp(v, value)


def _range(lit: _Literal) -> tuple[int | float, int | float] | None:
    """The bounds of a `lo..hi` literal, None if it is not one; raises if it is a bad one."""
    bounds = _RANGE.fullmatch(lit.text) if lit.number is None and not lit.quoted else None
    if bounds is None:
        return None
    low, high = _number(bounds.group(1)), _number(bounds.group(2))
    if low is None or high is None:
        raise _LiteralError(f"{lit.raw} is not a range of numbers", lit.column)
    return low, high


def _set_predicate(kind: Kind, lits: Sequence[_Literal]) -> Pred:
    """The test for `field in {...}`: equal to any element, or within a numeric `lo..hi`."""
    numeric = kind in (Kind.INT, Kind.FLOAT, Kind.ANY)
    ranges: list[tuple[int | float, int | float]] = []
    others: list[_Literal] = []
    for lit in lits:
        if not numeric and lit.number is None and not lit.quoted and _RANGE.fullmatch(lit.text):
            raise _LiteralError(f"{lit.raw} is a range, which only a numeric field takes "
                                "(quote it to mean the text)", lit.column)  # fmt: skip
        bounds = _range(lit) if numeric else None
        if bounds is not None and kind is Kind.INT \
                and not all(float(b).is_integer() for b in bounds):
            raise _LiteralError(f"{lit.raw} is not a range of integers", lit.column)
        if bounds is None:
            others.append(lit)
        else:
            ranges.append(bounds)
    if kind is Kind.ANY:

        def dynamic(value: Any) -> bool:
            if isinstance(value, list | tuple):
                return any(dynamic(item) for item in value)
            if any(_dyn_eq(value, lit) for lit in others):
                return True
            number = _dyn_number(value) if ranges else None
            return number is not None and any(lo <= number <= hi for lo, hi in ranges)

        return dynamic
    if kind is Kind.ADDR:
        tests = [_in_network(_as_network(lit)) for lit in others]
        return lambda v: any(test(v) for test in tests)
    members = frozenset(_COERCE[kind](lit) for lit in others)
    if not ranges:
        return members.__contains__
    return lambda v: v in members or any(lo <= v <= hi for lo, hi in ranges)


# -- tests on a frame -------------------------------------------------------------------------


def _any_test(get: Getter, multi: bool, pred: Pred) -> Test:
    if multi:

        def test_multi(ctx: _Ctx) -> bool:
            return any(map(pred, get(ctx)))

        return test_multi

    def test(ctx: _Ctx) -> bool:
        value = get(ctx)
        return value is not None and pred(value)

    return test


def _none_test(get: Getter, multi: bool, eq: Pred) -> Test:
    """`!=`: present, and no occurrence equal."""
    if multi:

        def test_multi(ctx: _Ctx) -> bool:
            values = get(ctx)
            return bool(values) and not any(map(eq, values))

        return test_multi

    def test(ctx: _Ctx) -> bool:
        value = get(ctx)
        return value is not None and not eq(value)

    return test


def _all_test(get: Getter, multi: bool, pred: Pred) -> Test:
    """`===` (Wireshark's all_eq): present, and every occurrence passes."""
    if multi:

        def test_multi(ctx: _Ctx) -> bool:
            values = get(ctx)
            return bool(values) and all(map(pred, values))

        return test_multi
    return _any_test(get, multi, pred)  # one occurrence: any is all


def _presence_test(spec: _Resolved) -> Test:
    get = spec.get
    if spec.multi:
        return lambda ctx: bool(get(ctx))
    if spec.kind is Kind.BOOL:
        return lambda ctx: get(ctx) is True
    return lambda ctx: get(ctx) is not None


def _all(tests: Sequence[Test]) -> Test:
    if len(tests) == 2:
        a, b = tests
        return lambda ctx: a(ctx) and b(ctx)
    return lambda ctx: all(t(ctx) for t in tests)


def _any(tests: Sequence[Test]) -> Test:
    if len(tests) == 2:
        a, b = tests
        return lambda ctx: a(ctx) or b(ctx)
    return lambda ctx: any(t(ctx) for t in tests)


def _negate(test: Test) -> Test:
    return lambda ctx: not test(ctx)


# -- compiling a tree -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Resolved:
    name: str
    kind: Kind
    get: Getter
    multi: bool
    extra: bool
    fold: Callable[[str], str] | None = None

    def folded(self) -> _Resolved:
        """The field read through its `fold` (its text values), for the compare it makes."""
        get, fold = self.get, self.fold
        assert fold is not None
        if self.multi:
            def get_many(ctx: _Ctx) -> list[Any]:
                return [fold(v) if isinstance(v, str) else v for v in get(ctx)]

            return replace(self, get=get_many)

        def get_one(ctx: _Ctx) -> Any:
            value = get(ctx)
            return fold(value) if isinstance(value, str) else value

        return replace(self, get=get_one)


def _fold(lit: _Literal, fold: Callable[[str], str]) -> _Literal:
    """The literal as a folded field compares it."""
    return replace(lit, text=fold(lit.text))


def _field_names() -> list[str]:
    return [*FIELDS, *(p + s.placeholder for p, s in PREFIXES.items()),
            *(f"{p}.<field>" for p in _plugin_protocols())]  # fmt: skip


@functools.cache
def _plugin_protocols() -> frozenset[str]:
    """The names of the installed third-party dissectors (`PROTO` and `PROTO.<field>`)."""
    from msnsniff.registry import load_dissectors

    return frozenset(load_dissectors()) - {"msnp", "http"} - {n.partition(".")[0] for n in FIELDS}


def _plugin_field(proto: str, attr: str) -> Getter:
    """A field of a plugin's frame: one of its own dataclass fields, on that protocol's frames."""

    def get(ctx: _Ctx) -> Any:
        if ctx.record.proto != proto or attr.startswith("_") or attr in _COMMON:
            return None
        value = getattr(ctx.frame, attr, None)
        return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value

    return get


_COMMON: Final = frozenset({"direction", "offset", "raw", "proto"})  # every frame's: not its own


def _resolve(token: Token) -> _Resolved:
    name = str(token)
    spec = FIELDS.get(name)
    if spec is not None:
        return _Resolved(name, spec.kind, spec.get, spec.multi, spec.extra, spec.fold)
    for prefix, family in PREFIXES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            getter = family.make(name[len(prefix) :])
            return _Resolved(name, family.kind, getter, family.multi, False)
    proto, dot, attr = name.partition(".")
    if proto in _plugin_protocols() and (not dot or attr.isidentifier()):
        if not dot:  # the protocol's name alone, as `msnp` and `http`
            return _Resolved(name, Kind.PRESENCE, _proto_is(proto), False, False)
        return _Resolved(name, Kind.ANY, _plugin_field(proto, attr), False, False)
    close = difflib.get_close_matches(name, _field_names(), n=1, cutoff=0.6)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    raise FilterError(f'unknown field "{name}"{hint}', (token.start_pos or 0) + 1)


class _Compiler:
    """Turns a parse tree into one test closure; collects the fields it uses."""

    def __init__(self) -> None:
        self.used: dict[str, _Resolved] = {}
        self._rules: Mapping[str, Callable[[Tree[Token], int], Test]] = {
            "or_test": self._or,
            "and_test": self._and,
            "negation": self._not,
            "presence": self._presence,
            "comparison": self._comparison,
            "membership": self._membership,
        }

    def compile(self, tree: Tree[Token], depth: int = 0) -> Test:
        if depth > MAX_DEPTH:
            first = next(tree.scan_values(lambda v: True), None)
            column = (first.start_pos or 0) + 1 if first is not None else 1
            raise FilterError(f"the filter nests deeper than {MAX_DEPTH} levels", column)
        return self._rules[str(tree.data)](tree, depth + 1)

    def _subtrees(self, tree: Tree[Token], depth: int) -> list[Test]:
        from lark import Tree

        return [self.compile(c, depth) for c in tree.children if isinstance(c, Tree)]

    def _or(self, tree: Tree[Token], depth: int) -> Test:
        return _any(self._subtrees(tree, depth))

    def _and(self, tree: Tree[Token], depth: int) -> Test:
        return _all(self._subtrees(tree, depth))

    def _not(self, tree: Tree[Token], depth: int) -> Test:
        (inner,) = self._subtrees(tree, depth)
        return _negate(inner)

    def _field(self, token: Token, compared: bool = False) -> _Resolved:
        resolved = _resolve(token)
        self.used[resolved.name] = resolved
        get_bytes = _PROTOCOL_BYTES.get(resolved.name) if compared else None
        if get_bytes is not None:  # `http contains "x"`: the protocol's bytes
            return replace(resolved, kind=Kind.STR, get=get_bytes)
        return resolved

    def _presence(self, tree: Tree[Token], depth: int) -> Test:
        return _presence_test(self._field(_tokens(tree)[0]))

    def _check_op(self, spec: _Resolved, op: str, token: Token) -> None:
        if op in _KIND_OPS[spec.kind]:
            return
        column = (token.start_pos or 0) + 1
        if spec.kind is Kind.PRESENCE:
            raise FilterError(f"{spec.name} can only be tested for presence", column)
        shown = "in" if op == "in" else str(token)
        raise FilterError(
            f'"{shown}" does not apply to {spec.name}, {_article(spec.kind)} field',
            column,
        )

    def _comparison(self, tree: Tree[Token], depth: int) -> Test:
        field_token, op_token, value_token = _tokens(tree)
        spec = self._field(field_token, compared=True)
        op = _OP_NAMES[str(op_token)]
        base = "eq" if op in ("all_eq", "any_ne") else op  # (those compare by equality too)
        self._check_op(spec, base, op_token)
        lit = _Literal.of(value_token)
        if base in ("eq", "ne"):
            _check_value(spec, lit)
        fold = spec.fold
        if fold is not None and base != "matches":  # (a regular expression ignores case)
            spec, lit = spec.folded(), _fold(lit, fold)
        try:
            pred = _predicate(base, spec.kind, lit)
        except _LiteralError as exc:
            raise _literal_error(spec, exc) from None
        if op == "ne":
            return _none_test(spec.get, spec.multi, pred)
        if op == "all_eq":
            return _all_test(spec.get, spec.multi, pred)
        if op == "any_ne":
            return _any_test(spec.get, spec.multi, lambda v: not pred(v))
        return _any_test(spec.get, spec.multi, pred)

    def _membership(self, tree: Tree[Token], depth: int) -> Test:
        field_token, *values = _tokens(tree)
        spec = self._field(field_token, compared=True)
        self._check_op(spec, "in", field_token)
        lits = [_Literal.of(v) for v in values]
        for lit in lits:
            _check_value(spec, lit)
        fold = spec.fold
        if fold is not None:
            spec, lits = spec.folded(), [_fold(lit, fold) for lit in lits]
        if not lits:
            return lambda ctx: False
        try:
            pred = _set_predicate(spec.kind, lits)
        except _LiteralError as exc:
            raise _literal_error(spec, exc) from None
        return _any_test(spec.get, spec.multi, pred)


def _check_value(spec: _Resolved, lit: _Literal) -> None:
    """Raise when `spec` holds only the words of `VALUES` and `lit` is none of them."""
    allowed = VALUES.get(spec.name)
    if allowed is not None and lit.text not in allowed:
        words = ", ".join(sorted(allowed))
        raise FilterError(f"{spec.name} is one of {words}: {lit.raw} is none of them",
                          lit.column)  # fmt: skip


def _literal_error(spec: _Resolved, exc: _LiteralError) -> FilterError:
    return FilterError(f"{spec.name} is {_article(spec.kind)} field: {exc.message}", exc.column)


def _article(kind: Kind) -> str:
    return f"an {kind.value}" if kind.value[0] in "aeiou" else f"a {kind.value}"


def _tokens(tree: Tree[Token]) -> list[Token]:
    """The children of a leaf rule, which are all tokens."""
    from lark import Token

    return [c for c in tree.children if isinstance(c, Token)]


# -- the public API ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DisplayFilter:
    """A compiled filter: `matches(record, extra)` says whether a frame passes.

    `fields` are the field names the filter uses; `extra_fields` those of them read from the
    analysis values (so a caller runs the analysis only when a filter needs it).
    """

    text: str
    fields: frozenset[str]
    extra_fields: frozenset[str]
    _test: Test = field(repr=False, compare=False)

    def matches(self, record: FrameRecord, extra: Mapping[str, object] | None = None) -> bool:
        """Whether the frame passes; `extra` holds analysis values by field (`Pairing.extra()`)."""
        return self._test(_Ctx(record, extra))


def compile_filter(text: str) -> DisplayFilter:
    """Compile filter text once; raises `FilterError` (with its column) when it is invalid."""
    return _compile(text)


@functools.lru_cache(maxsize=64)
def _compile(text: str) -> DisplayFilter:
    if not text.strip():
        raise FilterError("the filter is empty", 1, text)
    tree = _parse(text)
    compiler = _Compiler()
    try:
        test = compiler.compile(tree)
    except FilterError as exc:
        raise FilterError(exc.message, exc.column, text) from None
    used = compiler.used
    return DisplayFilter(
        text,
        frozenset(used),
        frozenset(name for name, spec in used.items() if spec.extra),
        test,
    )
