"""HTTP wire units: a request, a response (paired with its request) and a malformed run.

Each message keeps its head (start line and headers), its body as decoded (de-chunked,
decompressed, cut at the body cap) and what the sub-dissector chosen by path and content
type made of it (`app`). `length` is how many bytes of the stream the message spans; `raw`
holds them up to the raw cap, so a message with a huge body does not keep it twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dissectors.api import Carried, Frame


@dataclass(frozen=True, slots=True)
class AppInfo:
    """What a sub-dissector (XML-RPC, Facebook REST, the MSNP gateway) decoded from a body.

    `fields` are JSON-ready named values; `problems` are (code, sentence) pairs the expert
    reports; `credentials` name the fields holding secrets (passwords, hpassword, sig,
    session keys), kept as sent so a later export can redact them by name.
    """

    kind: str  # "xmlrpc", "fbrest", "gateway"
    fields: Mapping[str, Any]
    problems: tuple[tuple[str, str], ...] = ()
    credentials: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the decoded fields, problems and credential field names."""
        return {
            "kind": self.kind,
            "fields": dict(self.fields),
            "problems": [{"code": c, "message": m} for c, m in self.problems],
            "credentials": list(self.credentials),
        }


@dataclass(frozen=True, slots=True)
class HttpFrame(Frame):
    """Base of every HTTP frame."""

    proto: ClassVar[str] = "http"


@dataclass(frozen=True, slots=True)
class HttpMessage(HttpFrame):
    """What requests and responses share."""

    length: int
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes  # decoded: de-chunked and decompressed, at most the body cap
    wire_body_length: int  # body bytes on the wire (after chunking, before decoding)
    problems: tuple[tuple[str, str], ...] = ()  # (code, sentence): caps, bad encodings
    app: AppInfo | None = None
    carried: tuple[Carried, ...] = field(default=(), repr=False)

    def header(self, name: str) -> str | None:
        """The first header called `name` (case-insensitive), or None."""
        low = name.lower()
        for key, value in self.headers:
            if key == low:
                return value
        return None

    @property
    def content_type(self) -> str | None:
        """The media type from Content-Type, lower-case and without parameters, or None."""
        value = self.header("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None


@dataclass(frozen=True, slots=True)
class HttpRequest(HttpMessage):
    """One request; `target` as sent, `path` and `query` split from it."""

    method: str = ""
    target: str = ""
    path: str = ""
    query: str = ""


@dataclass(frozen=True, slots=True)
class HttpResponse(HttpMessage):
    """One response; `request_offset` is the C2S offset of the request it answers (None for
    one whose request the capture missed). An informational (1xx) response names its
    request too, as an interim reply: the final response is still the request's answer."""

    status: int = 0
    reason: str = ""
    request_offset: int | None = None
    request_method: str | None = None
    request_target: str | None = None

    @property
    def interim(self) -> bool:
        """An informational (1xx) response: a reply to its request, never its answer."""
        return 100 <= self.status < 200


@dataclass(frozen=True, slots=True)
class HttpMalformed(HttpFrame):
    """Bytes that are not HTTP: why, and how many (`offset` says where they start).
    `method` is set when they are a request whose head was read and whose body went bad
    (a bad chunk line, a capture gap): the server's answer still names this offset;
    `request_offset` when they are a response so read: the request it answers."""

    reason: str
    length: int
    method: str | None = None
    request_offset: int | None = None

    @property
    def message(self) -> str | None:
        """What the run is when a head was read before it went bad ("POST request",
        "response"), else None: bytes that are not HTTP at all."""
        if self.method is not None:
            return f"{self.method} request"
        return "response" if self.request_offset is not None else None
