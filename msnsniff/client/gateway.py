"""MSNP through the HTTP gateway, client side: a `Connection` whose bytes travel in POSTs.

Theory of operation
-------------------
`GatewayPipe` stands where a socket's writer would: `write` queues MSNP bytes and wakes a
pump task. The pump keeps one keep-alive HTTP connection to the gateway and runs one
request at a time (the gateway answers 400 to a second one in flight): the first is
`Action=open&Server=NS|SB&IP=host:port` with the first bytes, the next carry queued bytes with
`SessionID=id`, and when nothing is queued for `poll_interval` seconds it polls with
`Action=poll&SessionID=id`. Every answer's body goes into the `StreamReader` the `Connection`
reads frames from, and its `X-MSN-Messenger` header gives the next SessionID; `Session=close`
ends the reader like a closed socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final, cast

import h11

from msnsniff.client.connection import MAX_LINE, ClientError, Connection

PATH: Final = "/gateway/gateway.dll"
CONTENT_TYPE: Final = "application/x-msn-messenger"


def _session_header(value: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in value.split(";"):
        key, sep, val = part.strip().partition("=")
        if sep:
            out[key.strip()] = val.strip()
    return out


class GatewayPipe:
    """The writer half of a tunnelled connection, and the pump that moves the bytes."""

    def __init__(self, gateway: tuple[str, int], kind: str, ip: str, *,
                 poll_interval: float = 0.05) -> None:  # fmt: skip
        self.gateway = gateway
        self.kind, self.ip = kind, ip
        self.poll_interval = poll_interval
        self.reader = asyncio.StreamReader(limit=MAX_LINE)
        self.session_id: str | None = None
        self._out = bytearray()
        self._wake = asyncio.Event()
        self._closing = False
        self._pump: asyncio.Task[None] | None = None
        self._http: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def start(self, timeout: float) -> None:
        """Connect to the gateway and start the pump task."""
        self._http = await asyncio.wait_for(asyncio.open_connection(*self.gateway), timeout)
        self._pump = asyncio.create_task(self._run())

    # -- the StreamWriter methods `Connection` uses --------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue MSNP bytes for the next POST and wake the pump."""
        self._out += data
        self._wake.set()

    async def drain(self) -> None:
        """Yield once: bytes only leave in the pump's next POST, so there is nothing to wait for."""
        await asyncio.sleep(0)

    def close(self) -> None:
        """Ask the pump to send what is queued and then stop."""
        self._closing = True
        self._wake.set()

    async def wait_closed(self) -> None:
        """Give the pump two seconds to finish (then cancel it) and close the HTTP connection."""
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await asyncio.wait_for(asyncio.shield(self._pump), 2.0)
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
        if self._http is not None:
            self._http[1].close()

    # -- the pump ------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._http is not None
        reader, writer = self._http
        conn = h11.Connection(h11.CLIENT)
        host = f"{self.gateway[0]}:{self.gateway[1]}"
        try:
            while True:
                if not self._out and not self._closing:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                self._wake.clear()
                if self._closing and not self._out:
                    break
                body, self._out = bytes(self._out), bytearray()
                if self.session_id is None:
                    query = f"Action=open&Server={self.kind}&IP={self.ip}"
                elif body:
                    query = f"SessionID={self.session_id}"
                else:
                    query = f"Action=poll&SessionID={self.session_id}"
                status, headers, answer = await self._exchange(conn, reader, writer, host,
                                                               query, body)  # fmt: skip
                if status != 200:
                    raise ClientError(f"the gateway answered HTTP {status}")
                session = _session_header(headers.get("x-msn-messenger", ""))
                self.session_id = session.get("SessionID", self.session_id)
                if answer:
                    self.reader.feed_data(answer)
                if session.get("Session", "").lower() == "close":
                    break
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, ClientError, OSError) as exc:
            self.reader.set_exception(ClientError(f"gateway: {exc}"))
            return
        finally:
            writer.close()
        self.reader.feed_eof()

    async def _exchange(self, conn: h11.Connection, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, host: str, query: str, body: bytes
                        ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        headers = [("Host", host), ("User-Agent", "MSMSGS"), ("Content-Type", CONTENT_TYPE),
                   ("Content-Length", str(len(body)))]  # fmt: skip
        data = conn.send(h11.Request(method="POST", target=f"{PATH}?{query}", headers=headers))
        data = (data or b"") + (conn.send(h11.Data(data=body)) or b"" if body else b"")
        data += conn.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await writer.drain()
        status, got, answer = 0, {}, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(65536)
                conn.receive_data(chunk)
                if not chunk and conn.their_state is not h11.SEND_BODY:
                    raise ConnectionError("the gateway closed the connection")
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                got = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                answer += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, got, bytes(answer)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the gateway closed the connection")


class GatewayOpener:
    """Opens MSNP connections through a gateway, in `Connection.open`'s shape: the kind (NS
    or SB) is read from the connection's name, which the client sets to "NS ..." / "SB ..."."""

    def __init__(self, gateway: tuple[str, int], *, poll_interval: float = 0.05) -> None:
        self.gateway = gateway
        self.poll_interval = poll_interval

    async def __call__(self, host: str, port: int, name: str = "", timeout: float = 10.0
                       ) -> Connection:  # fmt: skip
        kind = "SB" if name.startswith("SB") else "NS"
        pipe = GatewayPipe(self.gateway, kind, f"{host}:{port}",
                           poll_interval=self.poll_interval)  # fmt: skip
        await pipe.start(timeout)
        return Connection(pipe.reader, cast(asyncio.StreamWriter, pipe), name)
