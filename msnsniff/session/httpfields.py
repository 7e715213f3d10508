"""Display-filter values of HTTP frames and their sub-dissectors (`http.*`, `xmlrpc.*`,
`fbrest.*`): small getters from a frame to a value, None when the frame has none.

`filter.py` lists them in its field tables next to the MSNP ones; they read only the frame.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any, Final

from dissectors.api import Frame
from dissectors.http.frames import AppInfo, HttpMalformed, HttpMessage, HttpRequest, HttpResponse

FrameGetter = Callable[[Frame], Any]


def _app(frame: Frame, kind: str) -> AppInfo | None:
    app = frame.app if isinstance(frame, HttpMessage) else None
    return app if app is not None and app.kind == kind else None


def method(frame: Frame) -> str | None:
    """`http.method`: a request's method."""
    return frame.method if isinstance(frame, HttpRequest) else None


def uri(frame: Frame) -> str | None:
    """`http.uri`: a request's target as sent."""
    return frame.target if isinstance(frame, HttpRequest) else None


def path(frame: Frame) -> str | None:
    """`http.path`: a request's path, without the query."""
    return frame.path if isinstance(frame, HttpRequest) else None


def status(frame: Frame) -> int | None:
    """`http.status`: a response's status code."""
    return frame.status if isinstance(frame, HttpResponse) else None


def query(frame: Frame) -> str | None:
    """`http.request.uri.query`: a request's query, without the `?` (None without one)."""
    return frame.query or None if isinstance(frame, HttpRequest) else None


def reason(frame: Frame) -> str | None:
    """`http.response.phrase`: a response's reason phrase."""
    return frame.reason if isinstance(frame, HttpResponse) else None


def request_version(frame: Frame) -> str | None:
    """`http.request.version`: a request's HTTP version, as Wireshark writes it."""
    return f"HTTP/{frame.version}" if isinstance(frame, HttpRequest) else None


def response_version(frame: Frame) -> str | None:
    """`http.response.version`: a response's HTTP version, as Wireshark writes it."""
    return f"HTTP/{frame.version}" if isinstance(frame, HttpResponse) else None


def is_request(frame: Frame) -> bool | None:
    """`http.request`: the message is a request."""
    return True if isinstance(frame, HttpRequest) else None


def is_response(frame: Frame) -> bool | None:
    """`http.response`: the message is a response."""
    return True if isinstance(frame, HttpResponse) else None


def content_length(frame: Frame) -> int | None:
    """`http.content_length`: the Content-Length header's number (None without a valid one)."""
    value = frame.header("content-length") if isinstance(frame, HttpMessage) else None
    value = value.strip() if value is not None else None
    return int(value) if value and value.isascii() and value.isdigit() else None


def version(frame: Frame) -> str | None:
    """`http.version`: the message's HTTP version."""
    return frame.version if isinstance(frame, HttpMessage) else None


def content_type(frame: Frame) -> str | None:
    """`http.content_type`: the body's media type."""
    return frame.content_type if isinstance(frame, HttpMessage) else None


def body(frame: Frame) -> str | None:
    """`http.body`: the body as text (decoded from its content coding)."""
    if not isinstance(frame, HttpMessage) or not frame.body:
        return None
    return frame.body.decode("utf-8", "surrogateescape")


def body_len(frame: Frame) -> int | None:
    """`http.len`: the body's bytes on the wire."""
    return frame.wire_body_length if isinstance(frame, HttpMessage) else None


def malformed(frame: Frame) -> bool:
    """`http.malformed`: bytes that are not HTTP."""
    return isinstance(frame, HttpMalformed)


def malformed_reason(frame: Frame) -> str | None:
    """`http.malformed.reason`: why they are not."""
    return frame.reason if isinstance(frame, HttpMalformed) else None


def problems(frame: Frame) -> list[str]:
    """`http.problem`: the codes of the message's and its application's problems."""
    if not isinstance(frame, HttpMessage):
        return []
    app = frame.app.problems if frame.app is not None else ()
    return [code for code, _ in (*frame.problems, *app)]


def app_kind(frame: Frame) -> str | None:
    """`http.app`: the application (xmlrpc, fbrest, gateway) the message belongs to."""
    app = frame.app if isinstance(frame, HttpMessage) else None
    return app.kind if app is not None else None


def header(name: str) -> FrameGetter:
    """`http.header.<Name>`: the values of one header."""
    low = name.lower()

    def get(frame: Frame) -> list[str]:
        if not isinstance(frame, HttpMessage):
            return []
        return [v for k, v in frame.headers if k == low]

    return get


def _field(kind: str, *keys: str) -> FrameGetter:
    def get(frame: Frame) -> Any:
        app = _app(frame, kind)
        value: Any = app.fields if app is not None else None
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    return get


gateway_session = _field("gateway", "session_id")
gateway_action = _field("gateway", "action")
xmlrpc_method = _field("xmlrpc", "method")
xmlrpc_type = _field("xmlrpc", "type")
xmlrpc_fault_code = _field("xmlrpc", "fault", "code")
xmlrpc_fault_string = _field("xmlrpc", "fault", "string")
fbrest_method = _field("fbrest", "method")
fbrest_error = _field("fbrest", "error", "code")
fbrest_error_meaning = _field("fbrest", "error", "meaning")


FAULT_MEMBERS: Final = MappingProxyType({"faultCode": "code", "faultString": "string"})
"""The members of a <fault>'s struct on the wire -> their keys in the decoded `fault`."""


def xmlrpc_member(name: str) -> FrameGetter:
    """A member of the call's struct, or of the answer's struct (a fault's too: faultCode,
    faultString, the names it has on the wire)."""
    def get(frame: Frame) -> Any:
        app = _app(frame, "xmlrpc")
        if app is None:
            return None
        for source in (app.fields.get("members"), app.fields.get("value")):
            if isinstance(source, dict) and name in source:
                return source[name]
        fault = app.fields.get("fault")
        key = FAULT_MEMBERS.get(name)
        return fault.get(key) if key is not None and isinstance(fault, dict) else None

    return get


def fbrest_param(name: str) -> FrameGetter:
    """`fbrest.param.<name>`: one parameter of a REST call."""
    return _field("fbrest", "params", name)
