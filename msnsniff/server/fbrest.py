"""A Facebook Platform REST endpoint implementing seed 002's `LiveMessage.send` rules.

`POST /restserver.php` (form body or query) with `method=facebook.liveMessage.send`. The
checks run in the order Facebook documented its errors: the api_key must be known (101), the
`sig` right for the application secret (104: MD5 over the sorted `name=value` pairs but sig,
then the secret), the session_key known (102), the call_id greater than the session's last
(103), event_name at most 128 bytes (1101), message at most 1,024 bytes (1102) and JSON
(1100), the recipient a user who accepted the application (292). The answer is the XML of the
seed (`<liveMessage_send_response>1</...>`), or JSON with `format=JSON`; errors are
`error_response` with the code, the seed's message and the request's arguments (not `sig`).
asyncio and h11 on 127.0.0.1; nothing is logged (requests carry session keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from typing import Final
from xml.sax.saxutils import escape

import h11

from dissectors.http.apps.fbrest import (
    ERRORS,
    EVENT_NAME_MAX,
    MESSAGE_MAX,
    method_key,
    params_of,
    signature,
)
from msnsniff.server.h11io import BodyTooLarge, read_request, response_bytes

PATH: Final = "/restserver.php"
MAX_BODY: Final = 64 * 1024  # bytes of one request body
FB_SECRET: Final = "0123456789abcdef0123456789abcdef"  # the loopback application's secret
API_KEY: Final = "msnsniff-demo-api-key"
SESSION_KEY: Final = "2.msnsniffdemo.3600.1200000000-563683308"
USERS: Final = frozenset({"563683308", "100000001"})  # users who accepted the application
NS: Final = "http://api.facebook.com/1.0/"


class FbError(Exception):
    """A Facebook REST error answer with its error code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _xml_answer(method: str, value: str) -> bytes:
    tag = method_key(method).replace(".", "_") + "_response"
    name = "liveMessage_send_response" if tag == "livemessage_send_response" else tag
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{name} xmlns="{NS}">{escape(value)}'
            f"</{name}>").encode()  # fmt: skip


def _xml_error(code: int, params: dict[str, str]) -> bytes:
    args = "".join(f"<arg><key>{escape(k)}</key><value>{escape(v)}</value></arg>"
                   for k, v in params.items() if k != "sig")  # fmt: skip
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<error_response xmlns="{NS}">'
            f"<error_code>{code}</error_code><error_msg>{escape(ERRORS[code])}</error_msg>"
            f'<request_args list="true">{args}</request_args></error_response>').encode()


class FacebookRest:
    """The endpoint and its small state: the last call_id of each session."""

    def __init__(self, secret: str = FB_SECRET, *, api_keys: Iterable[str] = (API_KEY,),
                 sessions: Iterable[str] = (SESSION_KEY,), users: Iterable[str] = USERS,
                 host: str = "127.0.0.1") -> None:  # fmt: skip
        self.secret = secret
        self.api_keys, self.sessions, self.users = set(api_keys), set(sessions), set(users)
        self.host = host
        self.port = 0
        self.last_call: dict[str, float] = {}
        self.delivered: list[tuple[str, str, str]] = []  # (recipient, event_name, message)
        self._server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        try:
            while True:
                got = await read_request(conn, reader, MAX_BODY)
                if got is None:
                    return
                status, ctype, payload = self.answer(*got)
                head = [("Content-Type", ctype), ("Content-Length", str(len(payload)))]
                reason = b"OK" if status == 200 else b"Not Found"
                writer.write(response_bytes(conn, status, reason, head, payload))
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, BodyTooLarge):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def answer(self, request: h11.Request, body: bytes) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        if path != PATH:
            return 404, "text/plain", b"not found"
        ctype = dict(request.headers).get(b"content-type", b"").decode("latin-1")
        params = params_of(query, body, ctype.split(";")[0].strip().lower() or None)
        as_json = params.get("format", "").upper() == "JSON"
        method = params.get("method", "")
        try:
            value = self._call(method, params)
        except FbError as exc:
            if as_json:
                text = {"error_code": exc.code, "error_msg": ERRORS[exc.code],
                        "request_args": [{"key": k, "value": v} for k, v in params.items()
                                         if k != "sig"]}  # fmt: skip
                return 200, "application/json", json.dumps(text).encode()
            return 200, "text/xml; charset=utf-8", _xml_error(exc.code, params)
        if as_json:
            return 200, "application/json", json.dumps(value).encode()
        return 200, "text/xml; charset=utf-8", _xml_answer(method, str(value))

    def _call(self, method: str, p: dict[str, str]) -> int:
        if p.get("api_key") not in self.api_keys:
            raise FbError(101)
        if signature(p, self.secret) != p.get("sig", "").lower():
            raise FbError(104)
        if method_key(method) != "livemessage.send":
            raise FbError(1)
        key = p.get("session_key", "")
        if key not in self.sessions:
            raise FbError(102)
        try:
            call_id = float(p.get("call_id", ""))
        except ValueError:
            raise FbError(103) from None
        if call_id <= self.last_call.get(key, float("-inf")):
            raise FbError(103)
        self.last_call[key] = call_id
        event, message = p.get("event_name", ""), p.get("message", "")
        if len(event.encode("utf-8", "surrogateescape")) > EVENT_NAME_MAX:
            raise FbError(1101)
        if len(message.encode("utf-8", "surrogateescape")) > MESSAGE_MAX:
            raise FbError(1102)
        try:
            json.loads(message)
        except ValueError:
            raise FbError(1100) from None
        if p.get("recipient") not in self.users:
            raise FbError(292)
        self.delivered.append((p["recipient"], event, message))
        return 1
