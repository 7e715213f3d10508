"""Sub-dissectors of HTTP bodies, chosen by path first and content second (a table).

`decode_request` picks the application of a request from its path (absolute-form targets
too) or, failing that, from its content type and a glance at the body; a response is
decoded by the application of the request it answers (or by its own content type when the
request was not seen).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from dissectors.api import Carried
from dissectors.http.apps import fbrest, gateway, xml, xmlrpc
from dissectors.http.frames import AppInfo, HttpRequest

Headers = tuple[tuple[str, str], ...]
RequestDecoder = Callable[[str, bytes, str | None], tuple[AppInfo, tuple[Carried, ...]]]


@dataclass(frozen=True, slots=True)
class App:
    """One sub-dissector: the paths and content types that select it."""

    kind: str
    paths: tuple[str, ...]
    content_types: tuple[str, ...]
    sniff: Callable[[str, bytes], bool]
    request: RequestDecoder


def _xmlrpc_request(query: str, body: bytes, ctype: str | None
                    ) -> tuple[AppInfo, tuple[Carried, ...]]:  # fmt: skip
    return xmlrpc.decode_call(body), ()


def _fbrest_request(query: str, body: bytes, ctype: str | None
                    ) -> tuple[AppInfo, tuple[Carried, ...]]:  # fmt: skip
    return fbrest.decode_call(query, body, ctype), ()


def _fbrest_sniff(query: str, body: bytes) -> bool:
    return fbrest.is_call(fbrest.params_of(query, body[:8192], None))


APPS: Final = (
    App("gateway", (gateway.PATH,), (gateway.CONTENT_TYPE,), lambda q, b: False,
        gateway.decode_request),
    App("xmlrpc", (xmlrpc.PATH,), (), lambda q, b: b"<methodCall" in b[:512], _xmlrpc_request),
    App("fbrest", fbrest.PATHS, (), _fbrest_sniff, _fbrest_request),
)  # fmt: skip
"""Path, then content type, then the body's look: the first app that matches decodes."""


def _origin_path(path: str) -> str:
    """`http://host/x/y` (a request to a proxy) -> `/x/y`."""
    if path.startswith(("http://", "https://")):
        rest = path.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return path


def choose(path: str, query: str, ctype: str | None, body: bytes) -> App | None:
    """The application an HTTP request belongs to: by path, then content type, then body."""
    path = _origin_path(path).lower()
    for app in APPS:
        if any(path == p or path.endswith(p) for p in app.paths):
            return app
    for app in APPS:
        if ctype in app.content_types:
            return app
    for app in APPS:
        if app.sniff(query, body):
            return app
    return None


def _ctype(headers: Headers) -> str | None:
    value = next((v for k, v in headers if k == "content-type"), None)
    return value.split(";", 1)[0].strip().lower() if value else None


def _xml_body(headers: Headers, body: bytes) -> bytes:
    """An XML body in UTF-8 when the Content-Type's charset says how it is written."""
    value = next((v for k, v in headers if k == "content-type"), None)
    return xml.in_utf8(body, xml.charset_of(value))


def decode_request(path: str, query: str, headers: Headers, body: bytes
                   ) -> tuple[AppInfo | None, tuple[Carried, ...]]:  # fmt: skip
    """A request's application view and the frames its body carries (the gateway's MSNP)."""
    ctype = _ctype(headers)
    app = choose(path, query, ctype, body)
    if app is None:
        return None, ()
    return app.request(query, body if app.kind == "gateway" else _xml_body(headers, body), ctype)


ANSWER_MARKS: Final = MappingProxyType({
    "xmlrpc": re.compile(rb"<methodResponse"),
    "fbrest": re.compile(rb"error_response|\"error_code\""),
})
"""What an application's own answer (an XML-RPC fault, a REST error) holds, which some
servers send with a 4xx/5xx status; such a body is decoded as usual."""
ANSWER_NAMES: Final = MappingProxyType({"xmlrpc": "an XML-RPC methodResponse",
                                        "fbrest": "a REST answer"})  # fmt: skip


def _http_error(kind: str, status: int, call: AppInfo | None) -> AppInfo:
    """A 4xx/5xx answer to an application call with no answer of the application in it: the
    HTTP status is the reason the call failed, not a body that does not parse."""
    method = str(call.fields.get("method", "")) if call is not None else ""
    what = method or "the call"
    return AppInfo(kind, {"type": "http_error", "method": method or None, "status": status},
                   ((f"{kind}.http_error",
                     f"HTTP {status} answers {what} instead of {ANSWER_NAMES[kind]}"),))


def decode_response(status: int, headers: Headers, body: bytes, request: HttpRequest | None
                    ) -> tuple[AppInfo | None, tuple[Carried, ...]]:  # fmt: skip
    """A response's application view, read as the answer to `request` when known."""
    ctype = _ctype(headers)
    kind = request.app.kind if request is not None and request.app is not None else None
    if kind is None:
        if ctype == gateway.CONTENT_TYPE or any(k == gateway.HEADER for k, _ in headers):
            kind = "gateway"
        elif b"<methodResponse" in body[:512]:
            kind = "xmlrpc"
        else:
            return None, ()
    call = request.app if request is not None else None
    if kind == "gateway":
        return gateway.decode_response(status, headers, body, request)
    if status >= 400 and not ANSWER_MARKS[kind].search(body[:1024]):
        return _http_error(kind, status, call), ()
    body = _xml_body(headers, body)
    if kind == "xmlrpc":
        return xmlrpc.decode_response(body, call), ()
    return fbrest.decode_response(body, ctype, call), ()
