"""XML-RPC calls, responses and faults, and the LiveJournal/Dreamwidth rules of seed 001.

A call decodes to its method and parameters (XML-RPC values as JSON-ready values: strings,
numbers, booleans, lists, dicts; base64 as {"base64": text}); a response to its value or its
fault (faultCode, faultString). Per-method checks are a table (`CALL_CHECKS`,
`RESPONSE_CHECKS`) keyed by method name; each returns (code, sentence) problems. Checks that
need other messages (getchallenge linkage, challenge-response verification) live in the
analysis, which sees every connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from dissectors.api import is_redacted
from dissectors.http.apps.xml import MAX_DEPTH, Node, parse
from dissectors.http.frames import AppInfo

PATH: Final = "/interface/xmlrpc"
SUBJECT_MAX: Final = 255  # characters, no newlines (seed 001)
BODY_MAX: Final = 5000  # characters for free accounts (paid: 10,000); seed 001
BODY_MAX_PAID: Final = 10000
AUTH_METHODS: Final = frozenset({"clear", "cookie", "challenge"})
REQUIRED: Final = ("username", "to", "subject", "body")
SECRETS: Final = ("password", "hpassword", "auth_response")
ANSWER_SECRETS: Final = ("ljsession",)  # sessiongenerate's answer: a login session cookie
HTML: Final = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
MD5_HEX: Final = re.compile(r"[0-9a-fA-F]{32}")

Problem = tuple[str, str]
BOOLEANS: Final[Mapping[str, bool]] = MappingProxyType(
    {"1": True, "0": False, "true": True, "false": False}
)


def value_of(node: Node | None, depth: int = 0) -> Any:
    """An XML-RPC <value> as a JSON-ready value (None for nil or a missing value)."""
    if node is None or depth > MAX_DEPTH:
        return None
    typed = node.children[0] if node.children else None
    if typed is None:
        return node.text  # no type element: a string
    kind, text = typed.tag, typed.text.strip()
    if kind in ("int", "i4", "i8"):
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "boolean":  # 1 or 0 by the spec; true/false as some clients send; else as sent
        return BOOLEANS.get(text.lower(), text)
    if kind == "double":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "string":
        return typed.text
    if kind == "base64":
        return {"base64": text}
    if kind == "nil":
        return None
    if kind == "array":
        data = typed.find("data") or typed
        return [value_of(v, depth + 1) for v in data.children if v.tag == "value"]
    if kind == "struct":
        out: dict[str, Any] = {}
        for member in typed.children:
            name = member.find("name")
            if member.tag == "member" and name is not None:
                out[name.text.strip()] = value_of(member.find("value"), depth + 1)
        return out
    return typed.text  # dateTime.iso8601 and unknown types: as text


def _repeated_members(value: Node | None) -> list[Problem]:
    """Each member name a <struct> value holds more than once: a server reads the struct as a
    map, so only the last value counts and the others are lost (said by name and count only:
    the member may be a password)."""
    typed = value.children[0] if value is not None and value.children else None
    if typed is None or typed.tag != "struct":
        return []
    counts: dict[str, int] = {}
    for member in typed.children:
        name = member.find("name")
        if member.tag == "member" and name is not None:
            key = name.text.strip()
            counts[key] = counts.get(key, 0) + 1
    return [("xmlrpc.repeated_member", f"{key} sent {n} times; only the last value is read")
            for key, n in counts.items() if n > 1]  # fmt: skip


def _chars(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _sendmessage_call(args: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    missing = [m for m in REQUIRED if m not in args]
    if missing:
        out.append(("xmlrpc.missing_member", f"sendmessage without {', '.join(missing)}"))
    method = args.get("auth_method", "clear")
    if method not in AUTH_METHODS:
        out.append(("xmlrpc.bad_auth_method", f"auth_method {method!r} is not clear, cookie "
                    "or challenge"))  # fmt: skip
    if method == "clear" and "password" not in args and "hpassword" not in args:
        out.append(("xmlrpc.no_password", "clear authentication without password or hpassword"))
    if method == "challenge" and not ("auth_challenge" in args and "auth_response" in args):
        out.append(("xmlrpc.no_challenge", "challenge authentication without auth_challenge "
                    "and auth_response"))  # fmt: skip
    to = args.get("to")
    if "to" in args and not isinstance(to, list):
        out.append(("xmlrpc.to_not_array", "`to` is not an array of user names"))
    elif isinstance(to, list) and not to:
        out.append(("xmlrpc.to_empty", "`to` names no recipient"))
    elif isinstance(to, list) and not all(isinstance(t, str | int) for t in to):
        out.append(("xmlrpc.to_not_scalars", "`to` holds something other than user names"))
    subject = args.get("subject")
    if _chars(subject) > SUBJECT_MAX:
        out.append(("xmlrpc.subject_too_long", f"subject of {_chars(subject)} characters; "
                    f"the limit is {SUBJECT_MAX}"))  # fmt: skip
    if isinstance(subject, str) and ("\n" in subject or "\r" in subject):
        out.append(("xmlrpc.subject_newline", "the subject contains a newline"))
    body = args.get("body")
    if _chars(body) > BODY_MAX:
        paid = "" if _chars(body) <= BODY_MAX_PAID else f" (and the paid {BODY_MAX_PAID})"
        out.append(("xmlrpc.body_too_long", f"body of {_chars(body)} characters; over the "
                    f"{BODY_MAX} a client must assume{paid}"))  # fmt: skip
    if isinstance(body, str) and HTML.search(body):
        out.append(("xmlrpc.body_html", "the body contains HTML, which is shown as plain text"))
    for name in ("parent", "ver"):
        if name in args and not isinstance(args[name], int):
            out.append(("xmlrpc.not_int", f"`{name}` is not an integer"))
    return out


def _credentials_problems(args: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    if "password" in args:
        out.append(("xmlrpc.cleartext_password", "the password is sent in clear text"))
    if "hpassword" in args:
        value = args["hpassword"]  # (a redacted copy's placeholder is not the hash it hid)
        good = isinstance(value, str) and (MD5_HEX.fullmatch(value) or is_redacted(value))
        out.append(("xmlrpc.hpassword", "hpassword (an unsalted MD5 of the password) is sent; "
                    "it logs in as well as the password" + ("" if good else
                    ", and it is not 32 hex digits")))  # fmt: skip
    return out


def _sendmessage_response(value: Any, call: Mapping[str, Any] | None) -> list[Problem]:
    if not isinstance(value, dict):
        return [("xmlrpc.bad_response", "the response is not a struct")]
    out: list[Problem] = []
    count, ids = value.get("sent_count"), value.get("msgid")
    if not isinstance(count, int):
        out.append(("xmlrpc.missing_member", "the response has no integer sent_count"))
    if not isinstance(ids, list):
        out.append(("xmlrpc.missing_member", "the response has no msgid array"))
    elif isinstance(count, int) and count != len(ids):
        out.append(("xmlrpc.count_mismatch", f"sent_count {count} but {len(ids)} msgid"))
    to = call.get("to") if call is not None else None
    if isinstance(ids, list) and isinstance(to, list) and len(ids) != len(to):
        out.append(("xmlrpc.recipients_mismatch",
                    f"{len(ids)} msgid for {len(to)} recipients in `to`"))  # fmt: skip
    errors = value.get("last_errors")
    if errors:
        shown = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors)
        out.append(("xmlrpc.last_errors", f"the server reported after sending: {shown}"))
    return out


def _getchallenge_response(value: Any, call: Mapping[str, Any] | None) -> list[Problem]:
    if not isinstance(value, dict) or not isinstance(value.get("challenge"), str):
        return [("xmlrpc.missing_member", "getchallenge answered without a challenge")]
    return []


CALL_CHECKS: Final[Mapping[str, Callable[[Mapping[str, Any]], list[Problem]]]] = MappingProxyType({
    "lj.xmlrpc.sendmessage": _sendmessage_call,
})
RESPONSE_CHECKS: Final[
    Mapping[str, Callable[[Any, Mapping[str, Any] | None], list[Problem]]]
] = MappingProxyType({
    "lj.xmlrpc.sendmessage": _sendmessage_response,
    "lj.xmlrpc.getchallenge": _getchallenge_response,
})


def decode_call(body: bytes) -> AppInfo:
    """A <methodCall>: method, params, and the checks of its method."""
    root, trouble = parse(body)
    problems: list[Problem] = [("xmlrpc.not_well_formed", trouble)] if trouble else []
    if root is None or root.tag != "methodcall":
        problems.append(("xmlrpc.not_a_call", "the body is not an XML-RPC methodCall"))
        return AppInfo("xmlrpc", {"type": "call"}, tuple(problems))
    name = root.find("methodname")
    method = name.text.strip() if name is not None else ""
    params_node = root.find("params")
    values = [p.find("value") for p in (params_node.children if params_node else [])
              if p.tag == "param"]  # fmt: skip
    params = [value_of(v) for v in values]
    for value in values:
        problems += _repeated_members(value)
    fields: dict[str, Any] = {"type": "call", "method": method}
    args = params[0] if len(params) == 1 and isinstance(params[0], dict) else {}
    if args:
        fields["members"] = args  # the one struct LiveJournal methods take
    else:
        fields["params"] = params
    credentials = tuple(f"members.{s}" for s in SECRETS if s in args)
    problems += _credentials_problems(args)
    check = CALL_CHECKS.get(method.lower())
    if check is not None:
        problems += check(args)
    return AppInfo("xmlrpc", fields, tuple(problems), credentials)


def decode_response(body: bytes, call: AppInfo | None) -> AppInfo:
    """A <methodResponse>: its value or fault, checked against the call it answers."""
    root, trouble = parse(body)
    problems: list[Problem] = [("xmlrpc.not_well_formed", trouble)] if trouble else []
    method = str(call.fields.get("method", "")) if call is not None else ""
    fields: dict[str, Any] = {"type": "response", "method": method or None}
    if root is None or root.tag != "methodresponse":
        problems.append(("xmlrpc.not_a_response", "the body is not an XML-RPC methodResponse"))
        return AppInfo("xmlrpc", fields, tuple(problems))
    fault = root.find("fault")
    if fault is not None:
        value = value_of(fault.find("value"))
        code = value.get("faultCode") if isinstance(value, dict) else None
        text = value.get("faultString") if isinstance(value, dict) else None
        fields.update(type="fault", fault={"code": code, "string": text})
        problems.append(("xmlrpc.fault", f"fault {code}: {text}"))
        return AppInfo("xmlrpc", fields, tuple(problems))
    params = root.find("params")
    param = params.find("param") if params is not None else None
    value = value_of(param.find("value") if param is not None else None)
    fields["value"] = value
    check = RESPONSE_CHECKS.get(method.lower())
    if check is not None:
        members = call.fields.get("members") if call is not None else None
        problems += check(value, members if isinstance(members, dict) else None)
    credentials = tuple(f"value.{s}" for s in ANSWER_SECRETS
                        if isinstance(value, dict) and s in value)  # fmt: skip
    return AppInfo("xmlrpc", fields, tuple(problems), credentials)
