"""A byte-exact TCP relay that records every connection it carries to a pcap.

Used to record the loopback runs of services that have no recorder of their own (the stdlib
XML-RPC server, the REST endpoint): clients connect to the relay, which connects to the
service and copies bytes both ways unchanged, writing each direction through the project's
pcap writer (`Recorder`) as it passes. The pcap shows the client and the relay's address.
"""

from __future__ import annotations

import asyncio
import contextlib

from msnsniff.server.record import Recorder


class RecordingRelay:
    """Listens on 127.0.0.1 (port 0: any free port) and relays to `upstream`."""

    def __init__(self, upstream: tuple[str, int], recorder: Recorder,
                 host: str = "127.0.0.1") -> None:  # fmt: skip
        self.upstream = upstream
        self.recorder = recorder
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._relay, self.host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await asyncio.wait_for(task, 2.0)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        key = id(writer)
        peer, local = writer.get_extra_info("peername"), writer.get_extra_info("sockname")
        self.recorder.opened(key, f"{peer[0]}:{peer[1]}", f"{local[0]}:{local[1]}")
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            self.recorder.closed(key)
            return
        try:
            await asyncio.gather(self._copy(reader, up_writer, key, True),
                                 self._copy(up_reader, writer, key, False))  # fmt: skip
        finally:
            self.recorder.closed(key)
            writer.close()
            up_writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _copy(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, key: int,
                    from_client: bool) -> None:  # fmt: skip
        try:
            while data := await src.read(65536):
                self.recorder.data(key, from_client, data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                if dst.can_write_eof():
                    dst.write_eof()
                else:
                    dst.close()
