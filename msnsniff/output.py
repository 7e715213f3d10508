"""Frame records as JSON objects (the `-T jsonl` schema) and as one readable line (`-T text`).

The JSON schema per frame: `no`, `ts`, `flow`, `src`, `dst`, `dir`, `proto`, `cmd`, `trid`,
`args`, `fields`, `payload` (null or length, content type, headers, body, decoded fields),
`error` (null or code, name, meaning), `malformed` (null or reason), `unknown`, `offset`,
`length`, `dialect` (version and how it was decided) and `problems`.

With `redact`, every credential (USR tickets and hashes, cookies, MSPAuth, ...) is replaced
by a marker in `args`, `fields` and the payload, and the raw line is not shown.

Output is always valid UTF-8: bytes of a line that are not UTF-8 (kept in the decoded text
as surrogate escapes) are written as `\\xNN`, the way the benchmark ground truth and
Python's `backslashreplace` write them. JSON is encoded with orjson (compact separators).
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from dissectors.api import Direction
from dissectors.msnp.decode import decode
from dissectors.msnp.frames import CommandFrame, ErrorFrame, GapFrame, MalformedFrame
from msnsniff.session.capture_session import FrameRecord

REDACTED: Final = "<redacted>"
_ARROWS: Final = {Direction.C2S: "→", Direction.S2C: "←"}


def _endpoints(record: FrameRecord) -> tuple[str | None, str | None]:
    flow = record.flow
    if record.direction is Direction.C2S:
        return flow.client, flow.server
    return flow.server, flow.client


def record_to_json(record: FrameRecord, *, redact: bool = False) -> dict[str, Any]:
    """The JSON object for one frame (see the module docstring)."""
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
    }
    if isinstance(frame, GapFrame):
        out["length"] = frame.length
        out["malformed"] = {"reason": f"{frame.length} {frame.reason}", "gap": frame.length}
        return out
    if isinstance(frame, MalformedFrame):
        out["malformed"] = {"reason": frame.reason}
        out["raw"] = None if redact else frame.raw.decode("utf-8", "backslashreplace")
        return out
    if not isinstance(frame, CommandFrame):
        return out
    decoded = decode(frame)
    args = list(frame.args)
    fields = decoded.fields
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
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "replace").decode("utf-8")


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
        return orjson.dumps(obj).decode("utf-8")
    except orjson.JSONEncodeError:  # lone surrogates, or an integer beyond 64 bits
        return json.dumps(_printable_tree(obj), ensure_ascii=False, separators=(",", ":"))


def record_to_jsonl(record: FrameRecord, *, redact: bool = False) -> str:
    return dumps(record_to_json(record, redact=redact))


def _summary(frame: CommandFrame, redact: bool) -> str:
    if redact:
        decoded = decode(frame)
        secrets = {str(decoded.fields.get(n)) for n in decoded.credentials}
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
        ctype = payload.content_type or "no content type"
        text += f"  [{payload.length} bytes, {ctype}]"
    if frame.unknown:
        text += "  [unknown command]"
    return text


def record_to_text(record: FrameRecord, *, redact: bool = False) -> str:
    """One readable line per frame, in the spirit of tshark's summary lines."""
    frame = record.frame
    ts = "-" if record.ts is None else f"{record.ts:.6f}"
    src, dst = _endpoints(record)
    where = f"{src or '?'} {_ARROWS[frame.direction]} {dst or '?'}" if src or dst else ""
    head = f"{record.no:>6} {ts:>14} {record.flow.id} {frame.direction.value}"
    if where:
        head += f" {where}"
    if isinstance(frame, GapFrame):
        body = f"[GAP: {frame.length} bytes missing at offset {frame.offset}]"
    elif isinstance(frame, MalformedFrame):
        body = f"[MALFORMED at offset {frame.offset}, {len(frame.raw)} bytes: {frame.reason}]"
    elif isinstance(frame, CommandFrame):
        body = _summary(frame, redact)
    else:
        body = repr(frame)
    return f"{head} {record.proto.upper()} {body}"
