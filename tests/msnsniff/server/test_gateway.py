"""The reference server's MSNP HTTP gateway, over real sockets: sessions through it work, its
refusals, and MSNP through the gateway analyses exactly like the same sessions over TCP."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import h11
import pytest

from msnsniff.capture.sources import open_source
from msnsniff.registry import load_dissectors
from msnsniff.reports import add_all_analyzers
from msnsniff.samples_http import record_gateway
from msnsniff.server.app import ReferenceServer
from msnsniff.server.config import ServerConfig
from msnsniff.server.gateway import MAX_BODY
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.contacts import ContactLists
from msnsniff.session.conversations import Conversations
from msnsniff.session.pairing import run_paired
from tests.helpers import ipv6_loopback

VOLATILE = {"frame": None, "request": None, "ts": None, "flow": None}


def analyse(path: Path) -> dict[str, Any]:
    """Everything the analysis says about the MSNP in a capture, with what must differ between
    a TCP flow and a gateway session (flow ids, addresses, times, frame numbers) taken out."""
    analysis = Analysis(CaptureSession(load_dissectors()))
    lists = analysis.add(lambda sink: ContactLists(sink, keep_history_for="all"))
    chats = analysis.add(lambda sink: Conversations(sink, keep=True))
    add_all_analyzers(analysis)
    paired = [p for p in run_paired(analysis, open_source(path)) if p.record.proto == "msnp"]
    # a frame is named by its direction and stream offset: the order of the two directions
    # between each other is timing (the gateway hands the server's bytes over at each poll)
    name = {p.record.no: (p.record.frame.direction.value, p.record.frame.offset) for p in paired}

    def where(no: int | None) -> tuple[str, int] | None:
        return None if no is None else name[no]

    flows: dict[str, list[Any]] = {}
    for p in paired:
        r: FrameRecord = p.record
        pairing = p.pairing
        flows.setdefault(r.flow.id, []).append((
            *name[r.no], r.frame.raw,
            None if pairing is None else where(pairing.request),
            None if pairing is None or pairing.replies is None
            else tuple(where(n) for n in pairing.replies),
        ))  # fmt: skip
    msnp_frames = {r.no for r in (p.record for p in paired)}
    return {
        "flows": sorted(tuple(sorted(v)) for v in flows.values()),
        "lists": {a: [c.to_json() | VOLATILE for c in lists.history(a).timeline()]
                  for a in lists.accounts},
        "chats": sorted(str(sorted((m.sender, m.text) for m in c.messages))
                        for c in chats.conversations()),  # (the two sides' order is timing)
        "findings": Counter((f.severity, f.code) for f in analysis.findings
                            if f.frame is None or f.frame in msnp_frames),
    }  # fmt: skip


def test_msnp_through_the_gateway_analyses_like_the_same_sessions_over_tcp(tmp_path: Path
                                                                           ) -> None:
    http, tcp = tmp_path / "gateway.pcap", tmp_path / "tcp.pcap"
    asyncio.run(record_gateway(http, tcp_copy=tcp))
    through_gateway, over_tcp = analyse(http), analyse(tcp)
    assert len(through_gateway["flows"]) == 4  # alice's and bob's NS, and one SB each
    assert sum(len(f) for f in through_gateway["flows"]) > 60
    assert through_gateway["flows"] == over_tcp["flows"]
    assert through_gateway["lists"] == over_tcp["lists"] and through_gateway["lists"]
    assert through_gateway["chats"] == over_tcp["chats"]
    assert any("hello through the gateway" in c for c in through_gateway["chats"])
    assert through_gateway["findings"] == over_tcp["findings"]


async def _post(port: int, target: str, body: bytes = b"", method: str = "POST",
                host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    conn = h11.Connection(h11.CLIENT)
    data = conn.send(h11.Request(method=method, target=target, headers=[
        ("Host", "x"), ("Content-Length", str(len(body)))])) or b""
    writer.write(data + (conn.send(h11.Data(data=body)) or b"" if body else b"")
                 + (conn.send(h11.EndOfMessage()) or b""))
    status, headers, out = 0, {}, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Response):
            status = event.status_code
            headers = {k.decode(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            out += event.data
        else:
            break
    writer.close()
    return status, headers, bytes(out)


@contextlib.asynccontextmanager
async def _gateway(host: str = "127.0.0.1") -> AsyncIterator[tuple[ReferenceServer, int]]:
    """A reference server on free ports with its HTTP gateway; the gateway's port."""
    config = ServerConfig(host=host, ds_port=0, ns_port=0, sb_port=0, http_port=None,
                          https_port=None)
    server = ReferenceServer(config)
    await server.start()
    try:
        yield server, await server.start_gateway()
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("target", "method", "status"),
    [
        ("/elsewhere", "POST", 404),
        ("/gateway/gateway.dll?SessionID=1.1", "POST", 400),  # no such session
        ("/gateway/gateway.dll?Action=open&Server=NS&IP=10.0.0.1:1863", "POST", 400),  # not ours
        ("/gateway/gateway.dll?Action=open&Server=XX&IP=127.0.0.1", "POST", 400),
        ("/gateway/gateway.dll?Action=poll&SessionID=1.1", "GET", 405),
        ("/gateway/gateway.dll?Action=open&Server=NS&IP=127.0.0.1:%C2%B2", "POST", 400),  # ²
    ],
)  # fmt: skip
def test_gateway_refusals(target: str, method: str, status: int) -> None:
    async def run() -> None:
        async with _gateway() as (_server, port):
            assert (await _post(port, target, method=method))[0] == status

    asyncio.run(run())


def test_an_ipv6_gateway_opens_the_address_its_redirects_name() -> None:
    """On `[::1]` XFR writes `[::1]:port`, and a client opens the gateway session with that
    (the brackets made the gateway refuse it as another host)."""

    async def run() -> None:
        async with _gateway("::1") as (server, port):
            ns = server.ports["ns"]
            status, _h, body = await _post(
                port, f"/gateway/gateway.dll?Action=open&Server=NS&IP=[::1]:{ns}",
                b"VER 1 MSNP8 CVR0\r\n", host="::1")  # fmt: skip
            assert (status, body) == (200, b"VER 1 MSNP8\r\n")

    missing = ipv6_loopback()
    if missing is not None:
        pytest.skip(missing)
    asyncio.run(run())


def test_a_wildcard_gateway_names_the_address_the_client_reached() -> None:
    """`serve --listen 0.0.0.0:1863 --gateway-port P`: the answer's `GW-IP=0.0.0.0` told
    the client to send its next requests to an address nobody can connect to; it is the
    gateway's address the client reached (127.0.0.2 here), and a session opened with the
    address XFR gives (on a wildcard, the one its client reached) is accepted."""

    async def run() -> None:
        async with _gateway("0.0.0.0") as (server, port):
            ns = server.ports["ns"]
            status, h, body = await _post(
                port, f"/gateway/gateway.dll?Action=open&Server=NS&IP=127.0.0.2:{ns}",
                b"VER 1 MSNP8 CVR0\r\n", host="127.0.0.2")  # fmt: skip
            assert (status, body) == (200, b"VER 1 MSNP8\r\n")
            assert h["x-msn-messenger"].endswith("; GW-IP=127.0.0.2"), h

    asyncio.run(run())


def test_open_poll_and_close_session_ids_change_each_time() -> None:
    async def run() -> None:
        async with _gateway() as (server, port):
            ns = server.ports["ns"]
            status, h, body = await _post(
                port, f"/gateway/gateway.dll?Action=open&Server=NS&IP=127.0.0.1:{ns}",
                b"VER 1 MSNP8 CVR0\r\n")  # fmt: skip
            assert (status, body) == (200, b"VER 1 MSNP8\r\n")
            first = h["x-msn-messenger"].split(";")[0].split("=")[1]
            assert h["content-type"] == "application/x-msn-messenger"
            status, h, body = await _post(port, f"/gateway/gateway.dll?Action=poll&SessionID="
                                          f"{first}")  # fmt: skip
            second = h["x-msn-messenger"].split(";")[0].split("=")[1]
            assert (status, body) == (200, b"") and second != first
            assert (await _post(port, f"/gateway/gateway.dll?SessionID={first}"))[0] == 400
            status, h, body = await _post(port, f"/gateway/gateway.dll?SessionID={second}",
                                          b"OUT\r\n")  # fmt: skip
            while "Session=close" not in h["x-msn-messenger"]:
                sid = h["x-msn-messenger"].split(";")[0].split("=")[1]
                status, h, body = await _post(port, f"/gateway/gateway.dll?Action=poll&"
                                              f"SessionID={sid}")  # fmt: skip
            assert server.gateway is not None and server.gateway.sessions == {}

    asyncio.run(run())


def test_an_oversized_body_gets_413_and_garbage_a_closed_connection() -> None:
    async def run() -> None:
        async with _gateway() as (_server, port):
            big = b"x" * (MAX_BODY + 1)
            target = "/gateway/gateway.dll?Action=open&Server=NS&IP=127.0.0.1"
            assert (await _post(port, target, big))[0] == 413
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x00\x01 not http\r\n\r\n")
            assert await asyncio.wait_for(reader.read(), 5) == b""  # dropped, no answer
            writer.close()
            assert (await _post(port, "/elsewhere"))[0] == 404  # and it still serves

    asyncio.run(run())


def test_a_silent_or_slow_http_connection_is_closed() -> None:
    """A client that connected to the gateway and sent nothing, or half a request, or went
    quiet after an answer on a keep-alive connection, held its connection for as long as it
    liked (the NS drops a silent client after 60 s, Passport after 10): each one is closed
    once `read_timeout` passes without a whole request, and the gateway goes on serving."""

    async def run() -> list[bytes]:
        async with _gateway() as (server, port):
            assert server.gateway is not None
            server.gateway.read_timeout = 0.3
            silent = await asyncio.open_connection("127.0.0.1", port)
            slow = await asyncio.open_connection("127.0.0.1", port)
            slow[1].write(b"POST /gateway/gateway.dll?Action=open&Server=NS HTTP/1.1\r\n")
            idle = await asyncio.open_connection("127.0.0.1", port)
            idle[1].write(b"POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            ends = [await asyncio.wait_for(reader.read(), 5)
                    for reader, _ in (silent, slow, idle)]  # fmt: skip
            for _, writer in (silent, slow, idle):
                writer.close()
            assert (await _post(port, "/elsewhere"))[0] == 404
            return ends

    silent, slow, idle = asyncio.run(asyncio.wait_for(run(), 20))
    assert (silent, slow) == (b"", b"")
    assert idle.startswith(b"HTTP/1.1 404 ")  # its answer, then the close


def test_a_session_nobody_polls_any_more_is_dropped() -> None:
    """A client that vanished (no more polls) kept its session, and its connection to the
    NS, for good: its contacts saw it online until the NS's 10-minute idle timeout, and the
    session stayed in the gateway's table after that. A session no request names for
    `session_timeout` seconds is dropped, its server connection with it."""

    async def run() -> tuple[int, int]:
        async with _gateway() as (server, port):
            gateway = server.gateway
            assert gateway is not None
            gateway.session_timeout = 0.3
            ns = server.ports["ns"]
            status, h, _ = await _post(
                port, f"/gateway/gateway.dll?Action=open&Server=NS&IP=127.0.0.1:{ns}",
                b"VER 1 MSNP8 CVR0\r\n")  # fmt: skip
            assert status == 200
            sid = h["x-msn-messenger"].split(";")[0].split("=")[1]
            held = len(gateway.sessions)
            await asyncio.sleep(1.0)
            gone = await _post(port, f"/gateway/gateway.dll?Action=poll&SessionID={sid}")
            return held, len(gateway.sessions) + gone[0]

    held, after = asyncio.run(asyncio.wait_for(run(), 20))
    assert held == 1
    assert after == 400  # none left, and its id is void
