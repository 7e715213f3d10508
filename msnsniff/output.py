"""Frame records as JSON objects (the `-T jsonl` schema) and as one readable line (`-T text`).

The JSON schema per frame: `no`, `ts`, `flow`, `src`, `dst`, `dir`, `proto`, `cmd`, `trid`,
`args`, `fields`, `payload` (null or length, content type, headers, body, decoded fields),
`error` (null or code, name, meaning), `malformed` (null or reason), `unknown`, `offset`,
`length`, `dialect` (version and how it was decided), `problems`, `credentials`, and the
pairing: `request` (a reply's request frame), `replies` (a request's reply frames) and `rtt`
(seconds from the request to this reply, or to a request's first reply).

With `redact`, every credential (USR tickets and hashes, cookies, MSPAuth, ...) is replaced
by a marker in `args`, `fields` and the payload, and the raw line is not shown. The grammar
says which words are credentials; of a line it has no form for (a capture joined mid-way
starts inside a line, whose rest may read as a command: `TWN S t=...`) the words found by
their shape (`credentials.TAIL_SECRETS`, the table `msnsniff redact` uses) are.

Output is always valid UTF-8: bytes of a line that are not UTF-8 (kept in the decoded text
as surrogate escapes) are written as `\\xNN`, the way the benchmark ground truth and
Python's `backslashreplace` write them. JSON is encoded with orjson (compact separators).
"""

from __future__ import annotations

import binascii
import codecs
import dataclasses
import enum
import io
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Final, TextIO

import orjson

from dissectors.api import Direction, Frame
from dissectors.msnp.decode import Decoded, decode
from dissectors.msnp.frames import (
    CommandFrame,
    ErrorFrame,
    GapFrame,
    MalformedFrame,
    PartialFrame,
)
from dissectors.msnp.grammar import C2S, MAX_DIALECT, MIN_DIALECT, is_unknown
from dissectors.msnp.parts import command_parts
from dissectors.msnp.payloads import Payload, decode_payload
from dissectors.msnp.payloads.decode import BODY_AS_TEXT, MIME_COMMANDS
from dissectors.msnp.payloads.mime import MAX_CACHED_BLOCK, parse_block, text_codec
from msnsniff.capture import Flow
from msnsniff.credentials import MARKER, tail_secret_words
from msnsniff.session.capture_session import FrameRecord
from msnsniff.session.paired import Paired, Pairing

if TYPE_CHECKING:
    from msnsniff.session.filter import DisplayFilter

REDACTED: Final = MARKER  # the one marker of every --redact output


def _endpoints(record: FrameRecord) -> tuple[str | None, str | None]:
    flow = record.flow
    if record.direction is C2S:
        return flow.client, flow.server
    return flow.server, flow.client


def record_to_json(
    record: FrameRecord, *, redact: bool = False, pairing: Pairing | None = None
) -> dict[str, Any]:
    """The JSON object for one frame (see the module docstring)."""
    out = _frame_json(record, redact)
    out["request"] = None if pairing is None else pairing.request
    replies = None if pairing is None else pairing.replies
    out["replies"] = None if replies is None else list(replies)
    out["rtt"] = None if pairing is None or pairing.rtt is None else round(pairing.rtt, 6)
    return out


def _frame_json(record: FrameRecord, redact: bool) -> dict[str, Any]:
    frame = record.frame
    src, dst = _endpoints(record)
    out: dict[str, Any] = {
        "no": record.no,
        "ts": record.ts,
        "flow": record.flow.id,
        "src": src,
        "dst": dst,
        "dir": frame.direction.value,
        "proto": record.proto,
        "cmd": None,
        "trid": None,
        "args": [],
        "fields": {},
        "payload": None,
        "error": None,
        "malformed": None,
        "unknown": False,
        "offset": frame.offset,
        "length": len(frame.raw),
        "dialect": None,
        "problems": [],
        "credentials": [],  # every object has it (the schema above), even with none to name
    }
    if isinstance(frame, GapFrame):
        out["length"] = frame.length
        out["malformed"] = {"reason": f"{frame.length} {frame.reason}", "gap": frame.length}
        return out
    if isinstance(frame, MalformedFrame):
        out["malformed"] = (
            {"reason": frame.reason, "partial": True}  # no damage: the capture joined late
            if isinstance(frame, PartialFrame)
            else {"reason": frame.reason}
        )
        out["raw"] = None if redact else frame.raw.decode("utf-8", "backslashreplace")
        return out
    if not isinstance(frame, CommandFrame):
        if record.proto == "http":
            from msnsniff.httpview import fill_json

            fill_json(frame, out, redact)
        else:  # a plugin's frame: its own dataclass fields (redaction cannot know them)
            out["fields"] = {name: _plain(value) for name, value in own_fields(frame)}
            if redact:
                out["fields"] = dict.fromkeys(out["fields"], REDACTED)
        return out
    decoded = decode(frame)
    args = list(frame.args)
    fields = dict(decoded.fields)  # the decoded view is shared: redact a copy
    if redact and decoded.credentials:
        for name in decoded.credentials:
            value = fields.get(name)
            if isinstance(value, list):
                fields[name] = [REDACTED] * len(value)
                for v in value:
                    args = [REDACTED if a == v else a for a in args]
            elif value is not None:
                args = [REDACTED if a == value else a for a in args]
                fields[name] = REDACTED
    elif redact and decoded.shape is None and not isinstance(frame, ErrorFrame):
        # a line the grammar has no form for (a joined capture's partial first line that
        # reads as a command, `TWN S t=...`): its secrets by their shape (rare frames only)
        shaped = tail_secret_words(frame.line, frame.direction)
        if shaped:
            args = [REDACTED if a in shaped else a for a in args]
            fields["args"] = list(args)
    out.update(
        cmd=frame.cmd,
        trid=frame.trid,
        args=args,
        fields=fields,
        unknown=frame.unknown,
        dialect={
            "version": frame.dialect,
            "inferred": frame.dialect_inferred,
        },
        problems=list(decoded.problems),
        credentials=list(decoded.credentials),
    )
    if isinstance(frame, ErrorFrame):
        out["error"] = {
            "code": fields["code"],
            "name": fields["name"],
            "meaning": fields["meaning"],
        }
    payload = frame.payload
    if payload is not None:
        out["payload"] = payload.to_json(redact=REDACTED if redact else None)
    return out


def printable(text: str) -> str:
    """`text` with undecodable bytes (surrogate escapes) spelled as \\xNN: valid UTF-8."""
    if text.isascii():  # the common case: no escape in it
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "replace").decode("utf-8")


def printable_tree(value: Any) -> Any:
    """A JSON-ready value with every string (and key) made `printable`: valid UTF-8 for any
    writer that refuses surrogates (orjson, Parquet)."""
    return _printable_tree(value)


def _printable_tree(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(k): _printable_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable_tree(v) for v in value]
    return value


def dumps(obj: Any) -> str:
    """Compact JSON text of a JSON-ready value, always valid UTF-8."""
    try:
        return orjson.dumps(obj, default=str).decode("utf-8")
    except orjson.JSONEncodeError:  # lone surrogates, or an integer beyond 64 bits
        return json.dumps(_printable_tree(obj), ensure_ascii=False, separators=(",", ":"),
                          default=str)  # fmt: skip


def frame_jsonl(record: FrameRecord, *, redact: bool = False) -> str:
    """The JSON object of a frame without its pairing keys and closing brace: the part a
    parallel reader's worker renders (the parent adds `pairing_jsonl`)."""
    return dumps(_frame_json(record, redact))[:-1]


def pairing_jsonl(pairing: Pairing | None) -> str:
    """The pairing keys that close a frame's JSON object."""
    if pairing is None:
        return ',"request":null,"replies":null,"rtt":null}'
    replies = None if pairing.replies is None else list(pairing.replies)
    rtt = None if pairing.rtt is None else round(pairing.rtt, 6)
    return "," + dumps({"request": pairing.request, "replies": replies, "rtt": rtt})[1:]


def record_to_jsonl(
    record: FrameRecord, *, redact: bool = False, pairing: Pairing | None = None
) -> str:
    """One JSON Lines line (the same text as `dumps(record_to_json(...))`)."""
    return frame_jsonl(record, redact=redact) + pairing_jsonl(pairing)


def _secret_words(frame: CommandFrame, decoded: Decoded) -> set[str]:
    """The words a frame's credential fields hold: each word of a many-word one (USR's
    `*extra:secret`, a list), as `_frame_json` hides them, not the list's printed form. A
    line the grammar has no form for (the partial first line of a capture joined mid-way
    that reads as a command, `TWN S t=...`) has no credential fields: its secrets are found
    by their shape, as `msnsniff redact` finds them (only such rare lines pay for it)."""
    fields = decoded.fields
    words: set[str] = set()
    for name in decoded.credentials:
        value = fields.get(name)
        if isinstance(value, list):
            words.update(str(v) for v in value)
        elif value is not None:
            words.add(str(value))
    if decoded.shape is None and not isinstance(frame, ErrorFrame):
        words |= tail_secret_words(frame.line, frame.direction)
    return words


_HEADERLESS_KINDS: Final[Mapping[str, str]] = MappingProxyType({
    "xml": "XML, not well-formed",  # a parsed document is named by its root instead
    "challenge-answer": "challenge answer",
    "text": "text",
    "empty": "empty",
})
"""What a text line calls a payload without a content type, by how it was read."""


def payload_type_text(payload: Payload) -> str:
    """What a payload is, in words: its content type, or for one without MIME headers (ADL,
    UUX, NOT, QRY...) what it was read as (`XML <ml>`, `challenge answer`, `text`)."""
    ctype = payload.content_type
    if ctype is not None:
        return ctype
    root = payload.fields.get("root")
    if isinstance(root, str):
        return f"XML <{printable(root)}>"
    return _HEADERLESS_KINDS.get(payload.kind, "no content type")


def _summary(frame: CommandFrame, redact: bool) -> str:
    if redact:
        decoded = decode(frame)
        secrets = _secret_words(frame, decoded)
        words = [REDACTED if a in secrets else a for a in frame.args]
    else:
        words = list(frame.args)
    parts = [frame.cmd] + ([str(frame.trid)] if frame.trid is not None else []) + words
    text = printable(" ".join(parts))
    if len(text) > 160:
        text = text[:157] + "..."
    if isinstance(frame, ErrorFrame):
        text += f"  [{frame.error_name}]"
    payload = frame.payload
    if payload is not None:
        text += f"  [{payload.length} bytes, {payload_type_text(payload)}]"
    if frame.unknown:
        text += "  [unknown command]"
    return text


def pairing_text(pairing: Pairing | None) -> str:
    """The pairing of a frame as a suffix of its text line ("" when there is none)."""
    if pairing is None:
        return ""
    rtt = "" if pairing.rtt is None else f" {pairing.rtt * 1000:.1f} ms"
    if pairing.request is not None:
        return f"  [reply to #{pairing.request}{rtt}]"
    replies = pairing.replies
    if replies is None:  # printed before its replies could be known (live output)
        return ""
    if not replies:
        return "  [no reply]"
    shown = ", ".join(f"#{n}" for n in replies[:4]) + (" ..." if len(replies) > 4 else "")
    return f"  [{len(replies)} repl{'y' if len(replies) == 1 else 'ies'}: {shown}{rtt}]"


def record_to_text(
    record: FrameRecord, *, redact: bool = False, pairing: Pairing | None = None
) -> str:
    """One readable line per frame, in the spirit of tshark's summary lines."""
    return frame_text(record, redact=redact) + pairing_text(pairing)


def frame_text(record: FrameRecord, *, redact: bool = False) -> str:
    """A frame's text line without its pairing suffix."""
    frame = record.frame
    ts = "-" if record.ts is None else f"{record.ts:.6f}"
    src, dst = _endpoints(record)
    where = f"{src or '?'} → {dst or '?'}" if src or dst else ""  # sender first, as tshark
    head = f"{record.no:>6} {ts:>14} {record.flow.id} {frame.direction.value}"
    if where:
        head += f" {where}"
    if isinstance(frame, GapFrame):
        body = f"[GAP: {frame.length} bytes missing at offset {frame.offset}]"
    elif isinstance(frame, MalformedFrame):
        what = "PARTIAL" if isinstance(frame, PartialFrame) else "MALFORMED"
        body = f"[{what} at offset {frame.offset}, {len(frame.raw)} bytes: {frame.reason}]"
    elif isinstance(frame, CommandFrame):
        body = _summary(frame, redact)
    elif record.proto == "http":
        from msnsniff.httpview import summary

        body = summary(frame, redact)
    else:  # a plugin's frame: its own fields, named
        body = " ".join(f"{name}={'…' if redact else printable(str(value))}"
                        for name, value in own_fields(frame)) or f"{len(frame.raw)} bytes"
    line = f"{head} {record.proto.upper()} {body}"
    if not line.isprintable():  # the sender's control characters would drive the terminal
        line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    return line


_COMMON_FIELDS: Final = frozenset({"direction", "offset", "raw"})


def own_fields(frame: Frame) -> list[tuple[str, Any]]:
    """A frame's dataclass fields beyond the ones every frame has (a plugin's own)."""
    if not dataclasses.is_dataclass(frame):
        return []
    return [(f.name, getattr(frame, f.name)) for f in dataclasses.fields(frame)
            if f.name not in _COMMON_FIELDS and not f.name.startswith("_")]  # fmt: skip


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (bytes as text, a mapping as an object, an enum member
    by name, anything odd as its str)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict | MappingProxyType):  # an object, not Python's repr of it
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


# -- the fast path of `-T jsonl` ---------------------------------------------------------------
#
# `jsonl_bytes` gives the very bytes of `record_to_jsonl(...) + "\n"` encoded as UTF-8, at a
# third of the cost: one dict in the schema's key order built straight from the frame (the
# shared decoded fields and tuples as they are: orjson writes a tuple as an array, and nothing
# here changes them) and one orjson call that returns bytes with the newline. Whatever it does
# not handle the plain way (redaction, gap and malformed frames, values orjson refuses:
# surrogates, bytes, mappings that are not dicts, huge integers) goes through `record_to_jsonl`.
# A small payload is rendered once and remembered by its bytes; one not seen before whose
# decoder reads the body only as text (a chat message, a typing notification) is spliced from
# its header block's remembered JSON and its own body text instead of being decoded.

_NEWLINE: Final = orjson.OPT_APPEND_NEWLINE
_ORJSON_REFUSED: Final = (orjson.JSONEncodeError, TypeError)


def _payload_obj(payload: Payload) -> dict[str, Any] | None:
    """`payload.to_json()` without its copies, or None when only that can say it."""
    fields: Any = payload.fields
    if type(fields) is MappingProxyType:
        fields = fields.copy()  # orjson writes dicts only (a shallow copy: read, never changed)
    if type(fields) is not dict:
        return None
    text = None if payload.binary else payload.text
    return {
        "length": payload.length,
        "content_type": payload.content_type,
        "charset": payload.charset,
        "headers": payload.headers,
        "body": text,
        "body_base64": (
            None if text is not None
            else binascii.b2a_base64(payload.body, newline=False).decode("ascii")
        ),
        "fields": fields,
        "problems": payload.problems,
        "credentials": payload.credentials,
    }  # fmt: skip


def _payload_json(payload: Payload) -> orjson.Fragment | None:
    """The payload's `to_json()` as serialized JSON, or None when only that can say it."""
    obj = _payload_obj(payload)
    if obj is None:
        return None
    try:
        return orjson.Fragment(orjson.dumps(obj))
    except _ORJSON_REFUSED:
        return None


REMEMBERED_PAYLOADS: Final = 1024
REMEMBERED_PAYLOAD_BYTES: Final = 512
"""Payloads up to this size are rendered once and remembered (at most REMEMBERED_PAYLOADS
of them: about 5 MiB more peak RSS on the benchmark captures, 48.4 MiB in all at 1M packets
by default): a conversation's typing notifications and acknowledgements repeat, and on the
100k benchmark capture 48% of payloads had come before. The rendering depends on the
command and the bytes alone, and the remembered value is immutable."""


@lru_cache(maxsize=REMEMBERED_PAYLOADS)
def _payload_json_remembered(cmd: str, data: bytes) -> orjson.Fragment | None:
    """`_payload_json(decode_payload(cmd, data))`, spliced from the header block's JSON when
    `_block_json` has it (the same bytes, without decoding the headers again)."""
    if cmd in MIME_COMMANDS:
        end = data.find(b"\r\n\r\n", 0, MAX_CACHED_BLOCK + 4)  # where `split_mime` looks
        if end > 0:
            known = _block_json(data[:end])
            if known is not None:
                rendered = _spliced(known, data, end + 4)
                if rendered is not None:
                    return rendered
    return _payload_json(decode_payload(cmd, data))


REMEMBERED_BLOCKS: Final = 256
"""Header blocks whose payloads' JSON pieces `_block_json` remembers (a few hundred bytes
each): a sender's chat messages repeat their header block with a different body. On the 1M
benchmark capture a worker finds the block of 89.9% of the payloads it renders this way
remembered with 256 blocks, and of 90.6% with 1,024."""

BlockJson = tuple[str, bytes, bytes | None, bytes]
"""A header block's share of its payloads' JSON: the body's codec, the JSON from after the
length to the body, from after the body to the body as a field (None when the decoder does
not store it), and the rest."""


@lru_cache(maxsize=REMEMBERED_BLOCKS)
def _block_json(block: bytes) -> BlockJson | None:
    """The JSON pieces every payload with this header block shares, when its content type's
    decoder reads the body only as its text (`BODY_AS_TEXT`); else None.

    They are cut from the real decoding of the block with an empty body: with a body that
    decodes, only the length and the text differ, so `_spliced` fills those in. A block the
    general reader handles differently (`parse_block` gives None), or whose pieces would not
    come out the same, gets None and its payloads take the general path.
    """
    info = parse_block(block)
    ctype = None if info is None else info.content_type
    if info is None or ctype is None or ctype not in BODY_AS_TEXT:
        return None
    field = BODY_AS_TEXT[ctype]
    codec = "utf-8" if info.charset is None else text_codec(info.charset)
    if codec is None:
        return None
    sample = decode_payload("MSG", block + b"\r\n\r\n")
    obj = _payload_obj(sample)
    if obj is None or sample.kind != "mime" or sample.text != "":
        return None
    fields = dict(obj["fields"])
    try:
        head = orjson.dumps(
            {"content_type": ctype, "charset": obj["charset"], "headers": obj["headers"]}
        )
        rest = orjson.dumps({"problems": obj["problems"], "credentials": obj["credentials"]})
        if field is None:
            tail = b',"body_base64":null,"fields":' + orjson.dumps(fields) + b"," + rest[1:]
            return codec, b"," + head[1:-1] + b',"body":', None, tail
        if next(iter(fields), None) != field or fields.pop(field) != "":
            return None
        others = orjson.dumps(fields)[1:]  # `}`, or the other fields and `}`
        mid = b',"body_base64":null,"fields":{' + orjson.dumps(field) + b":"
        tail = (b"}" if others == b"}" else b"," + others) + b"," + rest[1:]
        return codec, b"," + head[1:-1] + b',"body":', mid, tail
    except _ORJSON_REFUSED:
        return None


def _spliced(known: BlockJson, data: bytes, start: int) -> orjson.Fragment | None:
    """The payload's JSON from its block's pieces and its body (`data[start:]`), or None when
    the body does not decode as text (or as JSON) and only the general path can say why."""
    codec, head, mid, tail = known
    try:
        body = orjson.dumps(data[start:].decode(codec))
    except Exception:  # not text (or not JSON): the general path says how it renders
        return None
    length = b'{"length":%d' % len(data)
    if mid is None:
        return orjson.Fragment(b"".join((length, head, body, tail)))
    return orjson.Fragment(b"".join((length, head, body, mid, body, tail)))


FlowHeads = tuple[Flow, str, orjson.Fragment, orjson.Fragment]
"""A flow, the protocol its records name, and the JSON after `"flow":` up to `"cmd"` of its
client's and of its server's frames (`"ID","src":...,"dst":...,"dir":...,"proto":...`)."""

FlowMemo = dict[int, FlowHeads]
"""A printer's `_flow_heads` of the flows it has printed, by the flow's identity (the entry
holds the flow, so its id is not reused while remembered). Each printer owns one
(`new_flow_memo`): no state is shared between printers or kept by the module."""
REMEMBERED_FLOWS: Final = 4096
"""Flows a `FlowMemo` remembers: forgotten all at once when there are more."""


def new_flow_memo() -> FlowMemo:
    """An empty memo for one printer's `jsonl_bytes` or `frame_jsonl_bytes` calls."""
    return {}


def _flow_heads(flow: Flow, proto: str, memo: FlowMemo | None) -> FlowHeads | None:
    """The JSON of the keys every frame of `flow` in one direction shares (flow, src, dst,
    dir, proto), rendered once per flow and written as the value of `"flow"` (an
    `orjson.Fragment` is written as it is): one dict entry instead of five, and no attribute
    reads of the flow, on each line. None when orjson refuses a value (then the general path
    renders the line)."""
    heads = []
    for direction in (Direction.C2S, Direction.S2C):
        ends = (flow.client, flow.server) if direction is C2S else (flow.server, flow.client)
        keys = {"flow": flow.id, "src": ends[0], "dst": ends[1], "dir": direction.value,
                "proto": proto}  # fmt: skip
        try:
            heads.append(orjson.Fragment(orjson.dumps(keys)[len(b'{"flow":') : -1]))
        except _ORJSON_REFUSED:
            return None
    entry = (flow, proto, heads[0], heads[1])
    if memo is not None:
        if len(memo) >= REMEMBERED_FLOWS:
            memo.clear()
        memo[id(flow)] = entry
    return entry


def _dialect_json(inferred: bool) -> dict[int, orjson.Fragment]:
    """The `"dialect"` object of every grammar dialect, rendered once."""
    return {
        version: orjson.Fragment(orjson.dumps({"version": version, "inferred": inferred}))
        for version in range(MIN_DIALECT, MAX_DIALECT + 1)
    }


_FIXED_DIALECTS: Final = _dialect_json(False)
_INFERRED_DIALECTS: Final = _dialect_json(True)


def _command_obj(
    record: FrameRecord, frame: CommandFrame, memo: FlowMemo | None
) -> dict[str, Any] | None:
    """`_frame_json(record, redact=False)` for a command frame, sharing what it can (the
    flow's keys with the printer's other lines of the flow, through `memo`)."""
    decoded = frame._decoded
    if decoded is None:
        decoded = decode(frame)
    cmd = frame.cmd
    raw = frame.raw
    payload_json = None
    payload_length = frame.payload_length
    if payload_length is not None:
        if frame._payload is None and payload_length <= REMEMBERED_PAYLOAD_BYTES:
            # not decoded yet: render it from the bytes, or take it from the last renderings
            payload_json = _payload_json_remembered(cmd, raw[frame.header_len :])
        else:
            payload = frame.payload
            payload_json = None if payload is None else _payload_json(payload)
        if payload_json is None:
            return None
    flow = record.flow
    proto = record.proto
    heads = None if memo is None else memo.get(id(flow))
    if heads is None or heads[0] is not flow or heads[1] != proto:
        heads = _flow_heads(flow, proto, memo)
        if heads is None:
            return None
    direction = frame.direction
    fields = decoded.fields
    version = frame.dialect
    inferred = frame.dialect_inferred
    dialect: Any = (_INFERRED_DIALECTS if inferred else _FIXED_DIALECTS).get(version)
    if dialect is None:
        dialect = {"version": version, "inferred": inferred}
    trid, args = command_parts(frame)  # what `frame.trid` and `frame.args` read
    error = None
    if isinstance(frame, ErrorFrame):
        error = {"code": fields["code"], "name": fields["name"], "meaning": fields["meaning"]}
    return {
        "no": record.no,
        "ts": record.ts,
        "flow": heads[2] if direction is C2S else heads[3],  # and src, dst, dir, proto
        "cmd": cmd,
        "trid": trid,
        "args": args,
        "fields": fields,
        "payload": payload_json,
        "error": error,
        "malformed": None,
        "unknown": is_unknown(cmd, direction),
        "offset": frame.offset,
        "length": len(raw),
        "dialect": dialect,
        "problems": decoded.problems,
        "credentials": decoded.credentials,
    }


def jsonl_bytes(
    record: FrameRecord,
    pairing: Pairing | None,
    *,
    redact: bool = False,
    memo: FlowMemo | None = None,
) -> bytes:
    """`record_to_jsonl(record, redact=redact, pairing=pairing) + "\n"` as UTF-8 bytes; a
    printer passes its `memo` so that each flow's constant keys are rendered once."""
    frame = record.frame
    if not redact and isinstance(frame, CommandFrame):
        obj = _command_obj(record, frame, memo)
        if obj is not None:
            if pairing is None:
                obj["request"] = obj["replies"] = obj["rtt"] = None
            else:
                obj["request"] = pairing.request
                obj["replies"] = pairing.replies
                rtt = pairing.rtt
                obj["rtt"] = None if rtt is None else round(rtt, 6)
            try:
                return orjson.dumps(obj, option=_NEWLINE)
            except _ORJSON_REFUSED:
                pass
    return (record_to_jsonl(record, redact=redact, pairing=pairing) + "\n").encode()


def frame_jsonl_bytes(
    record: FrameRecord, *, redact: bool = False, memo: FlowMemo | None = None
) -> bytes:
    """`frame_jsonl(record)` as UTF-8 bytes, without its `{"no":N` head as well: the part of
    the line a parallel reader's worker renders (the parent adds both ends). `memo` as for
    `jsonl_bytes`."""
    frame = record.frame
    if not redact and isinstance(frame, CommandFrame):
        obj = _command_obj(record, frame, memo)
        if obj is not None:
            del obj["no"]
            try:
                return b"," + orjson.dumps(obj)[1:-1]
            except _ORJSON_REFUSED:
                pass
    line = frame_jsonl(record, redact=redact)
    return line[line.index(",") :].encode()


def pairing_jsonl_bytes(pairing: Pairing | None) -> bytes:
    """`pairing_jsonl(pairing)` as UTF-8 bytes."""
    if pairing is None:
        return _NO_PAIRING
    rtt = pairing.rtt
    return b"," + orjson.dumps(
        {
            "request": pairing.request,
            "replies": pairing.replies,
            "rtt": None if rtt is None else round(rtt, 6),
        }
    )[1:]


_NO_PAIRING: Final = b',"request":null,"replies":null,"rtt":null}'


BLOCK: Final = 1 << 16
"""Bytes `block_buffered` gathers before each write to the file."""


@contextmanager
def block_buffered(out: TextIO) -> Iterator[TextIO]:
    """`out`, or, while its bytes would go straight to the file (the interpreter's stdout
    under PYTHONUNBUFFERED or `python -u`: a system call per line, which costs `read` as much
    as decoding a third of its frames), a text stream writing to the same file in blocks of
    `BLOCK` bytes. Everything is written by the time the block ends; a terminal is left
    alone, so interactive output still appears line by line."""
    raw = getattr(out, "buffer", None)
    if not isinstance(raw, io.RawIOBase) or out.isatty():
        yield out
        return
    out.flush()
    text = io.TextIOWrapper(
        io.BufferedWriter(raw, BLOCK), encoding=out.encoding, errors=out.errors
    )
    try:
        yield text
    finally:
        text.flush()
        text.detach().detach()  # hand the file back to `out` unclosed


def utf8_sink(out: TextIO) -> Callable[[bytes], object] | None:
    """A writer of UTF-8 bytes to `out`'s own binary stream, after what was written to `out`
    as text so far (flushed now), or None when `out` has none or does not write UTF-8."""
    buffer: IO[bytes] | None = getattr(out, "buffer", None)
    encoding = getattr(out, "encoding", None)
    if buffer is None or encoding is None or codecs.lookup(encoding).name != "utf-8":
        return None
    out.flush()
    return buffer.write


def capture_key(name: str | None) -> str:
    """The `"capture":NAME,` a JSON line of one of several captures starts with (after its
    `{`), or nothing."""
    return "" if name is None else f'"capture":{dumps(name)},'


def jsonl_printer(
    redact: bool, out: TextIO, display: DisplayFilter | None = None, capture: str | None = None
) -> Callable[[Paired], None] | None:
    """Prints each paired record (that `display` shows) as a JSON line to `out`'s binary
    stream, naming `capture` first when given; None when `out` cannot take UTF-8 bytes (then
    print text with `record_to_jsonl`)."""
    write = utf8_sink(out)
    if write is None:
        return None
    sink = write
    if capture is not None:
        head = b"{" + capture_key(capture).encode()

        def sink(line: bytes) -> object:
            return write(head + line[1:])

    memo = new_flow_memo()

    def emit(paired: Paired) -> None:
        pairing = paired.pairing
        if display is not None and not display.matches(
            paired.record, None if pairing is None else pairing.extra()
        ):
            return
        sink(jsonl_bytes(paired.record, pairing, redact=redact, memo=memo))

    return emit
