"""The proxy between the project's client and the reference server: a login through the
dispatch redirect, a chat through a switchboard that also goes through the proxy, byte-exact
relaying except the documented address rewrites, and the recording equal to the live output."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from pathlib import Path

from dissectors.api import Direction
from msnsniff.cli import main
from msnsniff.client.connection import Connection
from tests.msnsniff.proxy.harness import Rig, run, streams

A, B = "alice@example.com", "bob@example.com"


async def chat_through(rig: Rig) -> list[Connection]:
    """alice and bob log in through the proxy, chat over a switchboard, and leave."""
    alice, bob = await rig.friends(A, B)
    a = await alice.open_chat()
    assert (await a.conn.call("CAL", "nobody@example.com")).cmd == "208"  # a finding
    assert (await a.conn.call("CAL", B)).words[2] == "RINGING"
    rng = await bob.conn.until("RNG")
    b = await bob.answer(rng)
    await a.conn.until("JOI")
    ack = await a.say("through the proxy")
    assert ack is not None and ack.cmd == "ACK"
    msg = await b.conn.until("MSG")
    assert msg.payload.endswith(b"through the proxy")
    await b.say("and back", ack="N")
    await a.conn.until("MSG")
    conns = [a.conn, b.conn] + [c.conn for c in rig.clients]
    conns += [r for c in rig.clients for r in c.redirects]
    await a.leave()
    await b.leave()
    await bob.logout()
    alice.conn.send_line(f"ADD 99 RL {B} {B}")  # never answered: the server closes (a finding)
    await alice.conn.drain()
    assert await alice.conn.closed()
    await asyncio.sleep(0.1)
    return conns


def test_everything_goes_through_and_only_addresses_change(tmp_path: Path) -> None:
    async def test(rig: Rig) -> tuple[list[Connection], dict[str, int]]:
        conns = await chat_through(rig)
        # the switchboard addresses the clients got are the proxy's, not the server's
        sb_real = f"127.0.0.1:{rig.server.ports['sb']}"
        for conn in conns:
            assert sb_real.encode() not in conn.received
        return conns, dict(rig.server.ports)

    conns, ports = run(test, tmp_path)
    at_server = streams(tmp_path / "server.pcap")
    # every byte a client sent reached the server unchanged (logins first go to the DS)
    sent = sorted(bytes(c.sent) for c in conns)
    assert sent == at_server[Direction.C2S]
    # every byte the server sent reached the client, except the rewritten addresses
    rewritten = [re.sub(rb"127\.0\.0\.1:\d+", b"ADDR", bytes(c.received)) for c in conns]
    original = [re.sub(rb"127\.0\.0\.1:\d+", b"ADDR", s) for s in at_server[Direction.S2C]]
    assert sorted(rewritten) == sorted(original)
    # and the only differences are those addresses, in XFR and RNG lines
    for c in conns:
        for line in bytes(c.received).split(b"\r\n"):
            if re.search(rb"127\.0\.0\.1:\d+", line):
                assert line.split(b" ")[0] in (b"XFR", b"RNG"), line
    assert ports


def test_recording_and_live_output_hold_the_same_frames(tmp_path: Path) -> None:
    async def test(rig: Rig) -> None:
        await chat_through(rig)

    run(test, tmp_path, analysis=["-T", "jsonl"])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["read", "-T", "jsonl", str(tmp_path / "proxy.pcapng")]) == 0
    recorded = [json.loads(line) for line in buf.getvalue().splitlines()]
    live = [json.loads(line) for line in (tmp_path / "live.out").read_text().splitlines()]
    assert len(live) > 60
    key = lambda f: (f["dir"], f["cmd"], f["trid"], tuple(f["args"]))  # noqa: E731
    assert sorted(map(key, live)) == sorted(map(key, recorded))
    servers = {f["src"] for f in live if f["dir"] == "s2c"}  # the real servers' addresses
    assert servers == {f["src"] for f in recorded if f["dir"] == "s2c"}
    assert len(servers) == 3  # dispatch, notification, switchboard
    notes = (tmp_path / "live.err").read_text()
    assert "rewrote" in notes and "in RNG" in notes and "in XFR" in notes
    findings = [line for line in notes.splitlines() if line.startswith("finding")]
    assert findings and len(findings) == len(set(findings))  # each reported once


def test_a_wildcard_listener_rewrites_to_the_address_the_client_reached(tmp_path: Path) -> None:
    """With --listen 0.0.0.0 the XFR NS, XFR SB and RNG addresses are the one the client
    connected to (127.0.0.1), never 0.0.0.0, which a client cannot reach."""

    async def test(rig: Rig) -> list[bytes]:
        return [bytes(c.received) for c in await chat_through(rig)]

    received = run(test, tmp_path, listen="0.0.0.0")
    redirects = [line for data in received for line in data.split(b"\r\n")
                 if line.startswith((b"XFR ", b"RNG "))]  # fmt: skip
    assert any(b" NS " in line for line in redirects) and any(b" SB " in line for line in redirects)
    assert any(line.startswith(b"RNG ") for line in redirects)
    assert all(b" 127.0.0.1:" in line and b"0.0.0.0" not in line for line in redirects)


def test_the_proxy_listens_on_loopback_only_unless_allowed() -> None:
    """As mock and replay: a non-loopback --listen needs --allow-remote, said in one line."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["proxy", "--listen", "0.0.0.0:0", "--upstream", "127.0.0.1:1863"])
    assert (status, err.getvalue()) == (
        2, "msnsniff: proxy: 0.0.0.0 is not a loopback address (--allow-remote allows it)\n")


def test_ipv6_clients_are_recorded_and_shown_in_brackets(tmp_path: Path) -> None:
    """A proxy on [::1]: every connection is in the -w recording (IPv6 packets, the IPv4
    server IPv4-mapped), and the live output writes the client as [::1]:PORT."""

    async def test(rig: Rig) -> list[Connection]:
        return await chat_through(rig)

    conns = run(test, tmp_path, listen="::1", analysis=["-T", "jsonl"])
    recorded = streams(tmp_path / "proxy.pcapng")
    assert recorded[Direction.C2S] == sorted(bytes(c.sent) for c in conns)
    assert recorded[Direction.S2C] == streams(tmp_path / "server.pcap")[Direction.S2C]
    live = (tmp_path / "live.out").read_text()
    assert re.search(r'"src":"\[::1\]:\d+"', live), live[:500]


def test_a_listen_name_with_two_addresses_gets_redirects_on_both(tmp_path: Path) -> None:
    """`--listen NAME:0` where NAME is 127.0.0.1 and ::1: the main listener had both, but the
    NS and SB listeners for the rewritten XFR/RNG only 127.0.0.1, so a client that came in on
    ::1 was sent to a [::1]:PORT where nothing listened. Now each has both, on one port."""
    from tests.msnsniff.test_listeners import dual

    async def test(rig: Rig) -> list[bytes]:
        rig.client_host = "::1"
        alice = await rig.login(A)
        rig.client_host = "127.0.0.1"
        bob = await rig.login(B)
        for me, other in ((alice, B), (bob, A)):
            await me.sync()
            await me.set_status("NLN")
            await me.conn.call("ADD", "FL", other, other, "0")
        a = await alice.open_chat()
        assert (await a.conn.call("CAL", B)).words[2] == "RINGING"
        b = await bob.answer(await bob.conn.until("RNG"))
        await a.conn.until("JOI")
        await a.say("over ::1")
        assert (await b.conn.until("MSG")).payload.endswith(b"over ::1")
        core = rig.proxy.core
        assert core is not None
        for servers in core.listeners.values():
            assert servers is not None
            names = sorted(s.getsockname()[:2] for server in servers for s in server.sockets)
            assert [host for host, _ in names] == ["127.0.0.1", "::1"], names
            assert len({port for _, port in names}) == 1, names
        received = alice.conn.received + a.conn.received
        received += b"".join(c.received for c in alice.redirects)
        await a.leave()
        await b.leave()
        return [bytes(line) for line in received.split(b"\r\n") if line.startswith(b"XFR ")]

    xfrs = run(test, tmp_path, listen="dual.test", resolver=dual)
    assert sorted(bytes(line.split()[2]) for line in xfrs) == [b"NS", b"SB"]
    assert all(line.split()[3].startswith(b"[::1]:") for line in xfrs), xfrs
