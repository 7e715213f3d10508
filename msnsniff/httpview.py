"""HTTP frames for the outputs: the JSON Lines object, the text line and words for the TUI.

The JSON uses the keys every frame has (`cmd` is the method or the status code, `args` the
target or the reason, `fields` what the sub-dissector decoded, `payload` the body, `problems`
as "code: sentence", `credentials` the names of fields holding secrets) plus `http` (version
and, for a response, where its request is). Bodies are shown as text up to `BODY_SHOWN`
characters. With `redact`, credential fields, bodies that carry them, raw bytes and the
credential headers are replaced by a marker, and so are the values of credential parameters
in request targets, other headers and other bodies (the Passport ticket in
`Authentication-Info`, `pwd`, `sig`, `session_key`...: `msnsniff.credentials`). An HTTP
gateway body is MSNP, tickets and cookies included: it is hidden too, and its commands are
shown, redacted, as the frames of the gateway session's own flow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from dissectors.api import Frame
from dissectors.http.frames import AppInfo, HttpMalformed, HttpMessage, HttpRequest, HttpResponse
from msnsniff.credentials import MARKER, scrub, scrub_body

BODY_SHOWN: Final = 2048
REDACTED: Final = MARKER
MSNP_BODIES: Final = frozenset({"gateway"})  # apps whose body is MSNP (hidden by `redact`)
SECRET_HEADERS: Final = frozenset({"authorization", "cookie", "set-cookie"})


def _text(data: bytes) -> str:
    text = data[:BODY_SHOWN].decode("utf-8", "backslashreplace")
    return text + (f"... ({len(data)} bytes)" if len(data) > BODY_SHOWN else "")


def _redacted_fields(app: AppInfo) -> dict[str, Any]:
    fields: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v)
                              for k, v in app.fields.items()}  # fmt: skip
    for name in app.credentials:
        group, dot, key = name.partition(".")
        inner = fields.get(group)
        if not dot:
            if inner is not None:
                fields[group] = REDACTED
        elif isinstance(inner, dict) and key in inner:
            inner[key] = REDACTED
    return fields


def fill_json(frame: Frame, out: dict[str, Any], redact: bool) -> None:
    """Fill the frame-record JSON object `out` for an HTTP frame."""
    if isinstance(frame, HttpMalformed):
        out["length"] = frame.length
        out["malformed"] = {"reason": frame.reason}
        out["raw"] = None if redact else frame.raw.decode("utf-8", "backslashreplace")
        return
    if not isinstance(frame, HttpMessage):
        return
    app = frame.app
    secret = bool(app is not None and (app.credentials or app.kind in MSNP_BODIES))
    out["length"] = frame.length
    if isinstance(frame, HttpRequest):
        out["cmd"], out["args"] = frame.method, [scrub(frame.target) if redact else frame.target]
    elif isinstance(frame, HttpResponse):
        out["cmd"], out["args"] = str(frame.status), [frame.reason]
    if app is not None:
        out["fields"] = _redacted_fields(app) if redact else dict(app.fields)
        out["credentials"] = list(app.credentials)
    out["problems"] = [f"{c}: {m}" for c, m in (*frame.problems,
                                                *(app.problems if app else ()))]  # fmt: skip
    out["payload"] = None if not frame.wire_body_length else {
        "length": frame.wire_body_length,
        "decoded_length": len(frame.body),
        "content_type": frame.content_type,
        "app": app.kind if app is not None else None,
        "body": REDACTED if redact and secret else (
            scrub_body(_text(frame.body)) if redact else _text(frame.body)),
    }  # fmt: skip
    headers = [[k, v] for k, v in frame.headers] if not redact else [
        [k, REDACTED if k in SECRET_HEADERS else scrub(v)] for k, v in frame.headers]
    http: dict[str, Any] = {"version": frame.version, "headers": headers}
    if isinstance(frame, HttpResponse):
        target = frame.request_target
        http.update(request_offset=frame.request_offset, request_method=frame.request_method,
                    request_target=scrub(target) if redact and target else target)  # fmt: skip
    out["http"] = http


def _value_words(value: Any) -> str:
    """An XML-RPC or REST value in a text line: `name=value` pairs and comma lists, as
    Wireshark shows members, not Python's repr (`{'sent_count': 2}`)."""
    if isinstance(value, dict):
        return " ".join(f"{k}={_value_words(v)}" for k, v in value.items()) or "(empty)"
    if isinstance(value, list | tuple):
        return ",".join(_value_words(v) for v in value) or "(none)"
    if value is None:
        return "(none)"
    text = str(value)
    return f'"{text}"' if not text or any(c in text for c in ' =,"') else text


def _app_words(app: AppInfo, frame: HttpMessage, f: Mapping[str, Any]) -> str:
    """The sub-dissector's view in words, from `f` (its fields, or their redacted copy)."""
    if app.kind == "xmlrpc":
        if f.get("type") == "fault":
            fault = f.get("fault") or {}
            return f"XML-RPC fault {fault.get('code')}: {fault.get('string')}"
        if f.get("type") == "http_error":
            return f"XML-RPC call {f.get('method') or '?'} failed: HTTP {f.get('status')}"
        if f.get("type") == "response":
            return f"XML-RPC answer to {f.get('method') or '?'}: {_value_words(f.get('value'))}"
        members = f.get("members") or {}
        who = members.get("username")
        to = members.get("to")
        extra = f" {who} → {', '.join(map(str, to))}" if isinstance(to, list) else (
            f" {who}" if who else "")
        return f"XML-RPC {f.get('method') or '?'}{extra}"
    if app.kind == "fbrest":
        if f.get("type") == "call":
            p = f.get("params") or {}
            return f"REST {p.get('method', '?')} → {p.get('recipient', '?')}"
        if f.get("type") == "http_error":
            return f"REST call {f.get('method') or '?'} failed: HTTP {f.get('status')}"
        error = f.get("error")
        if isinstance(error, dict):
            return f"REST error {error.get('code')}: {error.get('meaning') or error.get('message')}"
        return f"REST answer {_value_words(f.get('result'))}"
    action = f.get("action") or "?"
    sid = f.get("session_id")
    if isinstance(frame, HttpRequest):
        where = f" {f.get('server')} {f.get('ip')}" if action == "open" else f" {sid}"
        return f"gateway {action}{where} ({f.get('msnp_bytes')} MSNP bytes)"
    close = " closed" if f.get("session") == "close" else ""
    return f"gateway → {sid}{close} ({f.get('msnp_bytes')} MSNP bytes)"


def describe(frame: Frame) -> str:
    """The frame in words for one-line views."""
    if isinstance(frame, HttpMalformed):
        what = frame.message
        if what is not None:
            return f"{what} of {frame.length} bytes, its body malformed: {frame.reason}"
        return f"{frame.length} bytes not HTTP: {frame.reason}"
    if not isinstance(frame, HttpMessage):
        return repr(frame)
    if isinstance(frame, HttpRequest):
        head = f"{frame.method} {frame.path}"
    else:
        assert isinstance(frame, HttpResponse)
        head = f"{frame.status} {frame.reason}".strip()
    if frame.app is not None:
        head += f"  {_app_words(frame.app, frame, frame.app.fields)}"
    return head


def summary(frame: Frame, redact: bool) -> str:
    """The text line's body for an HTTP frame."""
    if isinstance(frame, HttpMalformed):
        what = frame.message
        body = "" if what is None else f" ({what}, its body)"
        return (f"[MALFORMED at offset {frame.offset}, {frame.length} bytes{body}: "
                f"{frame.reason}]")  # fmt: skip
    if not isinstance(frame, HttpMessage):
        return repr(frame)
    if isinstance(frame, HttpRequest):
        target = scrub(frame.target) if redact else frame.target
        text = f"{frame.method} {target} HTTP/{frame.version}"
    else:
        assert isinstance(frame, HttpResponse)
        text = f"HTTP/{frame.version} {frame.status} {frame.reason}".rstrip()
    if frame.wire_body_length:
        text += f"  [{frame.wire_body_length} bytes, {frame.content_type or 'no content type'}]"
    if frame.app is not None:
        app = frame.app
        text += f"  [{_app_words(app, frame, _redacted_fields(app) if redact else app.fields)}]"
    if len(text) > 220:
        text = text[:217] + "..."
    return text
