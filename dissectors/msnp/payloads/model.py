"""The decoded payload (`Payload`): immutable and JSON-ready through `to_json`, frozen from
the `Findings` (findings.py) one decoder call builds up. Decoders store only JSON types
(dict, list, str, int, float, bool, None) in fields, so `to_json` copies containers rather
than converting. Nothing here holds state between calls.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

_ATOMS: Final = frozenset({str, int, bool, float, type(None)})
"""Immutable JSON scalar types: `jsonable` returns them as they are."""
_STR: Final = frozenset({str})


def _copy_containers(out: dict[str, Any]) -> dict[str, Any]:
    """Replace the container values of a fresh dict copy by deep copies of their own."""
    for key, item in out.items():
        if type(item) not in _ATOMS:
            out[key] = jsonable(item)
    return out


def fields_json(fields: Mapping[str, Any]) -> dict[str, Any]:
    """`jsonable` for a fields mapping, whose keys are `str`: a copy with containers copied."""
    # copy() is much faster than dict() on a read-only view, and gives a dict if it wraps one
    out = fields.copy() if type(fields) is MappingProxyType else None
    if type(out) is not dict:
        out = dict(fields)
    return _copy_containers(out)


def jsonable(value: Any) -> Any:
    """A deep, plain (dict/list/str/int/...) copy of a decoded value, safe to mutate."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is list:
        if _ATOMS.issuperset(map(type, value)):
            return list(value)
        return [jsonable(v) for v in value]
    if kind is dict and _STR.issuperset(map(type, value)):
        out = value.copy()
        if _ATOMS.issuperset(map(type, out.values())):
            return out
        return _copy_containers(out)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _redact_value(value: Any, names: frozenset[str], marker: str, found: list[str]) -> Any:
    """Replace the values of credential keys anywhere in a decoded tree; collect the secrets."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in names and v is not None and v != "":
                if isinstance(v, str):
                    found.append(v)
                out[k] = marker
            else:
                out[k] = _redact_value(v, names, marker, found)
        return out
    if isinstance(value, list):
        return [_redact_value(v, names, marker, found) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Payload:
    """One command payload, decoded.

    `kind` says how it was read: "mime" (headers, blank line, body), "xml", "text",
    "challenge-answer" (QRY) or "empty". `body` is the part after the blank line for MIME
    payloads and the whole payload otherwise; `text` is `body` decoded with `charset`
    (UTF-8 by default), None when it does not decode or when the body is `binary` (P2P).
    `fields` are the content type's decoded fields; `credentials` names the headers and
    field keys that hold secrets.
    """

    length: int
    content_type: str | None
    charset: str | None
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fields: Mapping[str, Any] = field(hash=False)
    problems: tuple[str, ...]
    credentials: tuple[str, ...]
    kind: str = "mime"
    text: str | None = None
    binary: bool = False

    def header(self, name: str) -> str | None:
        """The first header of that name (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def to_json(self, *, redact: str | None = None) -> dict[str, Any]:
        """The payload as plain JSON data (a fresh copy every call).

        Shape: `length`, `content_type`, `charset`, `headers` ([name, value] pairs), `body`
        (text, or None when binary or undecodable), `body_base64` (None, or the body in
        base64), `fields`, `problems`, `credentials`. With `redact` set to a marker string,
        credential headers and fields are replaced by it, and so is every occurrence of their
        values in the body.
        """
        fields = fields_json(self.fields)
        headers = list(map(list, self.headers))
        text = None if self.binary else self.text
        raw = self.body
        if redact is not None and self.credentials:
            names = frozenset(self.credentials)
            secrets: list[str] = []
            fields = _redact_value(fields, names, redact, secrets)
            lowered = {n.lower() for n in names}
            for pair in headers:
                if pair[0].lower() in lowered:
                    secrets.append(pair[1])
                    pair[1] = redact
            for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
                if text is not None:
                    text = text.replace(secret, redact)
                raw = raw.replace(secret.encode("utf-8", "replace"), redact.encode("utf-8"))
        body_base64 = None
        if text is None:
            body_base64 = binascii.b2a_base64(raw, newline=False).decode("ascii")
        return {
            "length": self.length,
            "content_type": self.content_type,
            "charset": self.charset,
            "headers": headers,
            "body": text,
            "body_base64": body_base64,
            "fields": fields,
            "problems": list(self.problems),
            "credentials": list(self.credentials),
        }


class _PayloadDraft:
    """`Payload`'s slot layout without its frozen `__setattr__` (see `new_payload`)."""

    __slots__ = Payload.__slots__


def new_payload(
    length: int,
    content_type: str | None,
    charset: str | None,
    headers: tuple[tuple[str, str], ...],
    body: bytes,
    fields: Mapping[str, Any],
    problems: tuple[str, ...],
    credentials: tuple[str, ...],
    kind: str,
    text: str | None,
    binary: bool,
) -> Payload:
    """The same as `Payload(...)` with these arguments, for the decoder's hot path.

    A frozen dataclass sets each field through `object.__setattr__`, which is most of the
    cost of building a small payload. The draft has the very same slots, so its plain slot
    writes are cheap, and assigning `__class__` then turns it into the frozen `Payload`.
    """
    draft: Any = _PayloadDraft()
    draft.length = length
    draft.content_type = content_type
    draft.charset = charset
    draft.headers = headers
    draft.body = body
    draft.fields = fields
    draft.problems = problems
    draft.credentials = credentials
    draft.kind = kind
    draft.text = text
    draft.binary = binary
    draft.__class__ = Payload
    payload: Payload = draft
    return payload
