"""One HTTP/1.1 request in and one response out over h11 and asyncio streams, for the small
HTTP servers beside the MSNP ones (the MSNP gateway, the Facebook REST endpoint)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import h11

READ_CHUNK = 65536


class BodyTooLarge(Exception):
    """The request's body went past the caller's bound (the rest was not read)."""


async def read_request(
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    max_body: int,
    on_bytes: Callable[[bytes], None] | None = None,
) -> tuple[h11.Request, bytes] | None:
    """The next whole request on `conn` and its body; None when the client closed (or h11
    paused). `on_bytes` sees every chunk read from the socket (a recorder)."""
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(READ_CHUNK)
            if on_bytes is not None and data:
                on_bytes(data)
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_body:
                raise BodyTooLarge
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            return request, bytes(body)
        else:  # ConnectionClosed, PAUSED
            return None


def response_bytes(conn: h11.Connection, status: int, reason: bytes,
                   headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    """A whole response (headers, body, end) as the bytes to write."""
    data = conn.send(h11.Response(status_code=status, headers=list(headers), reason=reason)) or b""
    if body:
        data += conn.send(h11.Data(data=body)) or b""
    return data + (conn.send(h11.EndOfMessage()) or b"")
