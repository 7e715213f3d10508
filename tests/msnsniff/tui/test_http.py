"""The TUI on the HTTP captures: the stream in words, the detail of a call, the gateway's MSNP
flows alongside, and the API findings marked."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Tree

from dissectors.api import Direction
from msnsniff.session.describe import describe
from msnsniff.session.paired import Pairing
from msnsniff.tui.widgets.detail import DetailView
from tests.msnsniff.tui.test_app import SIZE, app_for, loaded, tree_labels


def test_xmlrpc_call_in_the_stream_and_the_detail() -> None:
    async def main() -> None:
        app = app_for("http_xmlrpc")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            index = app.workspace.index
            assert stream.row_count == index.count == 30
            first = describe(index.record(1).frame)
            assert first.startswith("POST /interface/xmlrpc  XML-RPC LJ.XMLRPC.sendmessage")
            assert 1 in index.findings  # the clear-text password
            await pilot.press("down", "up")
            detail = app.query_one(DetailView)
            assert detail.number == 1
            labels = " ".join(tree_labels(detail.query_one("#fields", Tree)))
            assert "LJ.XMLRPC.sendmessage" in labels and "credentials" in labels
            assert "password" in labels
            await pilot.press("p")  # from the call to its answer, as for MSNP
            assert stream.selected == 2 and index.pairing(2) is not None

    asyncio.run(main())


def test_gateway_msnp_flows_show_beside_the_http() -> None:
    async def main() -> None:
        app = app_for("http_gateway")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            index = app.workspace.index
            assert len([f for f in index.flows if "/gw" in f.id]) == 4  # 2 NS and 2 SB
            words = [describe(index.record(n).frame) for n in range(1, index.count + 1)]
            assert any(w.startswith("MSG Alice: hello through the gateway") for w in words)

    asyncio.run(main())


def test_the_stats_view_has_an_http_section() -> None:
    async def main() -> None:
        app = app_for("http_fbrest")
        async with app.run_test(size=SIZE) as pilot:
            await loaded(app, pilot)
            web = app.workspace.web_stats
            assert web.calls[("fbrest", "facebook.liveMessage.send")] == 11
            assert "HTTP:" in web.render()

    asyncio.run(main())


def test_http_headers_read_name_colon_value() -> None:
    """The headers of an HTTP frame were leaves like `0: content-type, application/json`
    (a list of pairs written as words); they read `content-type: application/json`, as an
    MSG's MIME headers do, a repeated header once per line."""

    async def main() -> None:
        app = app_for("http_fbrest")
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            stream.select_frame(2)
            await pilot.pause(0.1)
            labels = tree_labels(app.query_one(DetailView).query_one("#fields", Tree))
            assert "headers (3)" in labels
            assert "content-type: text/xml; charset=utf-8" in labels
            assert "connection: close" in labels
            assert not any(label.startswith("0: ") for label in labels)

    asyncio.run(main())


def test_a_100_continue_before_its_request_pairs_in_the_tui(tmp_path: Path) -> None:
    """Expect: 100-continue puts the 100 before its request's frame: indexing it (its
    request a frame not indexed yet) raised IndexError and the TUI died. Now `p` goes from
    the 100 to its request and from the request to its final response, its only reply."""
    from msnsniff.capture.write import PcapWriter, TcpConversation
    from msnsniff.session.workspace import Workspace
    from msnsniff.tui.app import MsnsniffApp

    head = b"POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    path = tmp_path / "continue.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("127.0.0.1", 3000), ("127.0.0.1", 80))
        conv.open(1.0)
        conv.send(1.1, True, head)
        conv.send(1.2, False, b"HTTP/1.1 100 Continue\r\n\r\n")
        conv.send(1.3, True, b"abc")
        conv.send(1.4, False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conv.close(1.5)

    async def main() -> None:
        app = MsnsniffApp(Workspace(), source=path)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            index = app.workspace.index
            assert index.count == 3
            assert (index.pairing(1), index.replies_of(2)) == (Pairing(2, None, None), (3,))
            stream.select_frame(1)
            await pilot.press("p")
            assert stream.selected == 2
            await pilot.press("p")
            assert stream.selected == 3

    asyncio.run(main())


def test_an_answer_before_its_request_s_frame_pairs_in_the_tui(tmp_path: Path) -> None:
    """A 417 before the body (which never comes) is frame 1 and names frame 2, its request:
    indexing it raised IndexError (the TUI died); `p` now goes between the two."""
    from msnsniff.capture.write import PcapWriter, TcpConversation
    from msnsniff.session.workspace import Workspace
    from msnsniff.tui.app import MsnsniffApp

    head = b"POST /b HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n"
    path = tmp_path / "refused.pcap"
    with path.open("wb") as fh:
        conv = TcpConversation(PcapWriter(fh), ("127.0.0.1", 3000), ("127.0.0.1", 80))
        conv.open(1.0)
        conv.send(1.1, True, head)
        conv.send(1.2, False, b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n")
        conv.close(1.5)

    async def main() -> None:
        app = MsnsniffApp(Workspace(), source=path)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            index = app.workspace.index
            assert (index.pairing(1), index.replies_of(2)) == (Pairing(2, None, None), (1,))
            stream.select_frame(1)
            await pilot.press("p")
            assert stream.selected == 2
            await pilot.press("p")
            assert stream.selected == 1

    asyncio.run(main())


def test_u_goes_to_an_http_request_never_answered() -> None:
    """`u` walked the MSNP transaction findings only: on the gateway capture whose session
    moved to a second connection, the POST left unanswered on the first (frame 5) was out
    of its reach ("no more unanswered requests")."""
    from msnsniff.capture import Flow, FlowEnd, SourceEvent, StreamChunk
    from msnsniff.session.workspace import Workspace
    from msnsniff.tui.app import MsnsniffApp
    from tests.msnsniff.session.test_tunnels import answer, post

    one = Flow("1", "10.0.0.2:4000", "10.0.0.1:80")
    c2s, s2c = Direction.C2S, Direction.S2C
    opened = post("Action=open&Server=NS&IP=10.0.0.5", b"VER 1 MSNP8 CVR0\r\n")
    events: list[SourceEvent] = [
        StreamChunk(one, c2s, 0, opened, 1.0),
        StreamChunk(one, s2c, 0, answer("SessionID=7.1", b"VER 1 MSNP8\r\n"), 1.1),
        StreamChunk(one, c2s, len(opened), post("SessionID=7.1", b"CVR 2 x\r\n"), 1.2),
        FlowEnd(one, c2s, 1.3), FlowEnd(one, s2c, 1.3),
    ]
    ws = Workspace()
    for event in events:
        ws.push(event)
    ws.finish()
    unanswered = [n for n, fs in ws.index.findings.items()
                  if any(f.code == "http.unanswered" for f in fs)]  # fmt: skip
    assert unanswered == [5]

    async def main() -> None:
        app = MsnsniffApp(ws)
        async with app.run_test(size=SIZE) as pilot:
            stream = await loaded(app, pilot)
            stream.select_frame(1)
            await pilot.press("u")
            assert stream.selected == 5

    asyncio.run(main())
