"""The MSNP HTTP gateway: `/gateway/gateway.dll` requests and responses carrying MSNP.

The client opens a session with `?Action=open&Server=NS|SB&IP=host` (the body is its first
MSNP bytes), then sends with `?SessionID=id` and polls with `?Action=poll&SessionID=id`;
every response names the session in `X-MSN-Messenger: SessionID=id; GW-IP=ip` (the id changes
from one response to the next; `Session=close` ends it) and carries the server's MSNP bytes.
The frames carry those bytes (`Carried`) keyed by SessionID, so the capture layer can run one
MSNP dissector per logical session. An open's own bytes travel with its response, the first
to name the session.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final
from urllib.parse import parse_qsl

from dissectors.api import Carried, Direction
from dissectors.http.frames import AppInfo, HttpRequest

PATH: Final = "/gateway/gateway.dll"
CONTENT_TYPE: Final = "application/x-msn-messenger"
HEADER: Final = "x-msn-messenger"
ACTIONS: Final = frozenset({"open", "poll"})
SERVERS: Final = frozenset({"NS", "SB"})
MSNP_PORT: Final = 1863

Problem = tuple[str, str]


def session_header(value: str) -> dict[str, str]:
    """`SessionID=1.2; GW-IP=10.0.0.1; Session=close` as a dict (keys as sent)."""
    out: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep and key:
            out[key.strip()] = val.strip()
    return out


def _server(ip: str | None) -> str | None:
    if not ip:
        return None
    return ip if ":" in ip else f"{ip}:{MSNP_PORT}"


def decode_request(query: str, body: bytes, content_type: str | None
                   ) -> tuple[AppInfo, tuple[Carried, ...]]:  # fmt: skip
    """A gateway request's action, session and server, and the MSNP its body carries."""
    q = dict(parse_qsl(query, keep_blank_values=True, errors="replace"))
    action = q.get("Action", "").lower() or ("send" if "SessionID" in q else "")
    fields: dict[str, Any] = {"type": "request", "action": action or None,
                              "session_id": q.get("SessionID"), "server": q.get("Server"),
                              "ip": q.get("IP"), "msnp_bytes": len(body)}  # fmt: skip
    problems: list[Problem] = []
    if action == "open":
        if q.get("Server") not in SERVERS:
            problems.append(("gateway.bad_open", "an open without Server=NS or Server=SB"))
        if not q.get("IP"):
            problems.append(("gateway.bad_open", "an open without the IP of the MSNP server"))
    elif not q.get("SessionID"):
        problems.append(("gateway.no_session", "a gateway request with neither Action=open "
                         "nor a SessionID"))  # fmt: skip
    elif action not in ACTIONS and action != "send":
        problems.append(("gateway.bad_action", f"unknown Action={q.get('Action')!r}"))
    if action == "poll" and body:
        problems.append(("gateway.poll_body", f"a poll carrying {len(body)} MSNP bytes"))
    if body and content_type != CONTENT_TYPE:
        problems.append(("gateway.content_type", f"MSNP bytes sent as {content_type!r}, not "
                         f"{CONTENT_TYPE}"))  # fmt: skip
    carried: tuple[Carried, ...] = ()
    sid = q.get("SessionID")
    if action != "open" and sid and body:
        carried = (Carried("msnp", sid, Direction.C2S, body),)
    return AppInfo("gateway", fields, tuple(problems), _secret(fields)), carried


def decode_response(status: int, headers: tuple[tuple[str, str], ...], body: bytes,
                    request: HttpRequest | None) -> tuple[AppInfo, tuple[Carried, ...]]:
    """A gateway answer's session (X-MSN-Messenger), and the MSNP its body carries."""
    raw = next((v for k, v in headers if k == HEADER), None)
    session = session_header(raw) if raw is not None else {}
    sid = session.get("SessionID")
    closing = session.get("Session", "").lower() == "close"
    ask = request.app.fields if request is not None and request.app is not None else {}
    fields: dict[str, Any] = {"type": "response", "action": ask.get("action"),
                              "session_id": sid, "gw_ip": session.get("GW-IP"),
                              "session": session.get("Session"), "msnp_bytes": len(body)}
    problems: list[Problem] = []
    if status != 200:
        problems.append(("gateway.http_error", f"the gateway answered HTTP {status}"))
    if raw is None and status == 200:
        problems.append(("gateway.no_session_header", "a gateway answer without X-MSN-Messenger"))
    carried: list[Carried] = []
    asked = ask.get("session_id")
    if status == 200 and ask.get("action") == "open" and sid and request is not None:
        server = _server(ask.get("ip"))
        carried.append(Carried("msnp", sid, Direction.C2S, request.body, server=server,
                               sent_with=request.offset))  # (sent when the request was)
        carried.append(Carried("msnp", sid, Direction.S2C, body, server=server))
    elif status == 200 and isinstance(asked, str):
        rename = sid if sid and sid != asked else None
        carried.append(Carried("msnp", asked, Direction.S2C, body, rename=rename))
    elif status == 200 and sid and body:  # the request was missed: the new id names it
        carried.append(Carried("msnp", sid, Direction.S2C, body))
    if closing and carried:
        carried[-1] = replace(carried[-1], end=True)
    return AppInfo("gateway", fields, tuple(problems), _secret(fields)), tuple(carried)


def _secret(fields: dict[str, Any]) -> tuple[str, ...]:
    """The session id is a credential: whoever holds it sends and polls as the session's user."""
    return ("session_id",) if fields.get("session_id") else ()
