"""Facebook Platform REST calls and answers, and seed 002's `LiveMessage.send` rules.

A call's parameters come from the query and an url-encoded form body (URL-decoding never
raises: undecodable bytes stay as surrogate escapes, so the signature is computed over the
bytes sent). Per-method checks are a table keyed by the normalised method name; the error
codes and their meanings are the seed's table (`ERRORS`). The signature itself
(`signature()`) is checked by the analysis when the application secret is known, and the
call_id order per session_key there too, because both need more than one message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import parse_qsl

from dissectors.http.apps.xml import MAX_DEPTH, Node, parse
from dissectors.http.frames import AppInfo

PATHS: Final = ("/restserver.php",)
EVENT_NAME_MAX: Final = 128  # bytes (seed 002; else error 1101)
MESSAGE_MAX: Final = 1024  # bytes (seed 002; else error 1102)
VERSION: Final = "1.0"
SECRETS: Final = ("sig", "session_key")
ANSWER_SECRETS: Final = ("session_key", "secret")
"""What an answer may hand out: `auth.getSession` gives the session key and, to desktop
applications, the session secret they sign later calls with."""
ERRORS: Final[Mapping[int, str]] = MappingProxyType({
    1: "An unknown error occurred. Please resubmit the request.",
    2: "The service is not available at this time.",
    4: "The application has reached the maximum number of requests allowed. More requests "
    "are allowed once the time window has completed.",
    5: "The request came from a remote address not allowed by this application.",
    101: "The API key submitted is not associated with any known application.",
    102: "The session key was improperly submitted or has reached its timeout. Direct the "
    "user to log in again to obtain another key.",
    103: "The submitted call_id was not greater than the previous call_id for this session.",
    104: "Incorrect signature.",
    292: "Either the sender or the recipient has not accepted the TOS for the application.",
    1100: "An unknown (but specific to LiveMessage) error occurred when sending the "
    "LiveMessage.",
    1101: "The event_name parameter is too long.",
    1102: "The message parameter is too long.",
})
"""Seed 002's error table: code -> meaning."""

Problem = tuple[str, str]

JSON_STARTS: Final = (b"{", b"[", b'"', b"-")
"""How a JSON answer starts (besides a digit, true, false and null): an object, a list, a
string (auth.createToken answers its token as one) or a negative number. XML starts with <."""


def _pairs_of(query: str, body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    """Every (name, value) of a call in the order sent: the query's, then a form body's."""
    out = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    if body and (content_type is None or content_type == "application/x-www-form-urlencoded"):
        text = body.decode("latin-1")
        out += parse_qsl(text, keep_blank_values=True, encoding="utf-8",
                         errors="surrogateescape")  # fmt: skip
    return out


def params_of(query: str, body: bytes, content_type: str | None) -> dict[str, str]:
    """Every parameter of a call, from the query and a form body (later names win)."""
    return dict(_pairs_of(query, body, content_type))


def _repeated(pairs: list[tuple[str, str]]) -> list[Problem]:
    """A parameter sent more than once: only the last value is read (and signed), so the
    others are silently lost; said by name and count (values may be credentials)."""
    counts: dict[str, int] = {}
    for name, _value in pairs:
        counts[name] = counts.get(name, 0) + 1
    return [("fbrest.repeated_param", f"{name} sent {n} times; only the last value is read")
            for name, n in counts.items() if n > 1]  # fmt: skip


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def signature(params: Mapping[str, str], secret: str) -> str:
    """MD5 hex over the sorted `name=value` pairs (all but sig), then the secret."""
    text = b"".join(_bytes(f"{k}={v}") for k, v in sorted(params.items()) if k != "sig")
    return hashlib.md5(text + _bytes(secret)).hexdigest()


def method_key(method: str) -> str:
    """`facebook.liveMessage.send` and `LiveMessage.send` -> `livemessage.send`."""
    low = method.lower()
    return low.removeprefix("facebook.")


def _livemessage_send(p: Mapping[str, str]) -> list[Problem]:
    out: list[Problem] = []
    missing = [n for n in ("api_key", "call_id", "sig", "v", "recipient", "event_name",
                           "message") if n not in p]  # fmt: skip
    if missing:
        out.append(("fbrest.missing_param", f"LiveMessage.send without {', '.join(missing)}"))
    if "session_key" not in p:
        out.append(("fbrest.no_session_key", "no session_key: the call is not on behalf of a "
                    "logged-in user"))  # fmt: skip
    recipient = p.get("recipient")
    if recipient is not None and not recipient.isdigit():
        out.append(("fbrest.bad_recipient", f"recipient {recipient!r} is not a user id"))
    event = p.get("event_name")
    if event is not None and len(_bytes(event)) > EVENT_NAME_MAX:
        out.append(("fbrest.event_name_too_long", f"event_name of {len(_bytes(event))} bytes; "
                    f"over {EVENT_NAME_MAX} the answer is error 1101"))  # fmt: skip
    message = p.get("message")
    if message is not None:
        if len(_bytes(message)) > MESSAGE_MAX:
            out.append(("fbrest.message_too_long", f"message of {len(_bytes(message))} bytes; "
                        f"over {MESSAGE_MAX} the answer is error 1102"))  # fmt: skip
        try:
            json.loads(message)
        except ValueError as exc:
            out.append(("fbrest.message_not_json", f"message is not valid JSON ({exc})"))
    return out


CALL_CHECKS: Final[Mapping[str, Callable[[Mapping[str, str]], list[Problem]]]] = MappingProxyType({
    "livemessage.send": _livemessage_send,
})


def is_call(params: Mapping[str, str]) -> bool:
    """A REST call by its parameters: a method and an api_key or a sig."""
    return "method" in params and ("api_key" in params or "sig" in params)


def decode_call(query: str, body: bytes, content_type: str | None) -> AppInfo:
    """A REST call's parameters (query and form), checked against the API's rules."""
    pairs = _pairs_of(query, body, content_type)
    p = dict(pairs)
    method = p.get("method", "")
    problems = _repeated(pairs)
    if not method:
        problems.append(("fbrest.missing_param", "a REST call without a method"))
    if "v" in p and p["v"] != VERSION:
        problems.append(("fbrest.bad_version", f"v={p['v']!r}; this API version is {VERSION}"))
    call_id = p.get("call_id")
    if call_id is not None:
        try:
            float(call_id)
        except ValueError:
            problems.append(("fbrest.bad_call_id", f"call_id {call_id!r} is not a number"))
    check = CALL_CHECKS.get(method_key(method))
    if check is not None:
        problems += check(p)
    fields: dict[str, Any] = {"type": "call", "method": method, "params": dict(p)}
    credentials = tuple(f"params.{s}" for s in SECRETS if s in p)
    return AppInfo("fbrest", fields, tuple(problems), credentials)


def _error(code: Any, message: Any) -> tuple[dict[str, Any], list[Problem]]:
    try:
        number: int | None = int(code)
    except (TypeError, ValueError):
        number = None
    meaning = ERRORS.get(number) if number is not None else None
    fields = {"code": number if number is not None else code, "message": message,
              "meaning": meaning}  # fmt: skip
    text = meaning or "a code the seed's table does not list"
    return fields, [("fbrest.error", f"error {code}: {text}")]


def _child_text(node: Node, tag: str) -> str | None:
    child = node.find(tag)
    return child.text.strip() if child is not None else None


def decode_response(body: bytes, content_type: str | None, call: AppInfo | None) -> AppInfo:
    """An XML or JSON answer: the result, or `error_response` decoded with the error table."""
    method = str(call.fields.get("method", "")) if call is not None else ""
    fields: dict[str, Any] = {"type": "response", "method": method or None}
    problems: list[Problem] = []
    text = body.strip()
    if text[:1] in JSON_STARTS or text[:1].isdigit() or text in (b"true", b"false", b"null"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            problems.append(("fbrest.bad_response", f"the JSON answer does not parse ({exc})"))
            return AppInfo("fbrest", fields, tuple(problems))
        fields["format"] = "json"
        if isinstance(value, dict) and "error_code" in value:
            fields["error"], more = _error(value.get("error_code"), value.get("error_msg"))
            args = value.get("request_args")
            if isinstance(args, list):
                fields["request_args"] = {
                    str(a.get("key", "")): a.get("value") for a in args if isinstance(a, dict)
                }
            problems += more
        else:
            fields["result"] = value
        return AppInfo("fbrest", fields, tuple(problems), _secrets_of_answer(fields))
    root, trouble = parse(body)
    fields["format"] = "xml"
    if trouble:
        problems.append(("fbrest.not_well_formed", trouble))
    if root is None:
        problems.append(("fbrest.bad_response", "the answer is neither XML nor JSON"))
        return AppInfo("fbrest", fields, tuple(problems))
    fields["element"] = root.tag
    if root.tag == "error_response":
        fields["error"], more = _error(_child_text(root, "error_code"),
                                       _child_text(root, "error_msg"))  # fmt: skip
        args = root.find("request_args")
        if args is not None:
            fields["request_args"] = {
                (_child_text(a, "key") or ""): _child_text(a, "value") for a in args.children
            }
        problems += more
    else:
        fields["result"] = _xml_value(root)
        expected = method_key(method).replace(".", "_") + "_response" if method else None
        if expected and root.tag != expected:
            problems.append(("fbrest.unexpected_response",
                             f"<{root.tag}> answers {method}; expected <{expected}>"))
    return AppInfo("fbrest", fields, tuple(problems), _secrets_of_answer(fields))


def _xml_value(node: Node, depth: int = 0) -> Any:
    """An answer element as a value: its text, or for an element with elements inside a
    dict of them by name (a name that repeats, as the uids of a list answer, a list)."""
    if not node.children or depth >= MAX_DEPTH:
        return node.text.strip()
    out: dict[str, Any] = {}
    for child in node.children:
        value = _xml_value(child, depth + 1)
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], list):
            out[child.tag].append(value)
        else:
            out[child.tag] = [out[child.tag], value]
    return out


def _secrets_of_answer(fields: dict[str, Any]) -> tuple[str, ...]:
    """The credentials an answer holds: a session key and secret handed out, and those the
    call's arguments echoed by an error answer carry."""
    result = fields.get("result")
    handed = tuple(f"result.{s}" for s in ANSWER_SECRETS
                   if isinstance(result, dict) and s in result)  # fmt: skip
    return handed + _echoed_secrets(fields)


def _echoed_secrets(fields: dict[str, Any]) -> tuple[str, ...]:
    """An error answer echoes the call's arguments (`request_args`), its session key and
    signature among them: credentials as much as in the call."""
    args = fields.get("request_args")
    if not isinstance(args, dict):
        return ()
    return tuple(f"request_args.{s}" for s in SECRETS if s in args)
