"""The notification server: logins in every dialect, presence, RL notices, challenges."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from msnsniff.client.connection import ClientError, Connection, Reply
from msnsniff.client.session import NotificationClient
from msnsniff.server.app import ReferenceServer
from tests.msnsniff.server.scenario import exchange, logged_in_raw, login, online, raw, run

A, B, C = "alice@example.com", "bob@example.com", "carol@example.com"


def test_rl_notices_reach_the_other_party_with_trid_zero() -> None:
    async def test(server: ReferenceServer) -> None:
        alice = await online(server, A)
        bob = await online(server, B)
        r = await alice.conn.call("ADD", "FL", B, "Bob")
        assert r.line == f"ADD {r.trid} FL 1 {B} Bob"
        assert (await bob.conn.until("ADD")).line == f"ADD 0 RL 1 {A} Alice"
        r = await alice.conn.call("REM", "FL", B)
        assert r.line == f"REM {r.trid} FL 2 {B}"
        assert (await bob.conn.until("REM")).line == f"REM 0 RL 2 {A}"

    run(test)


def test_add_fl_of_an_online_contact_gives_iln_with_the_add_trid() -> None:
    async def test(server: ReferenceServer) -> None:
        bob = await online(server, B)
        await bob.conn.call("REA", B, "Bobby")
        alice = await online(server, A)
        trid = alice.conn.command("ADD", "FL", B, B, "0")
        await alice.conn.drain()
        got = [(await alice.conn.until("ADD")).line]
        got += [(await alice.conn.read()).line for _ in range(5)]
        assert got == [
            f"ADD {trid} FL 1 {B} {B} 0",
            f"BPR 1 {B} PHH", f"BPR 1 {B} PHW", f"BPR 1 {B} PHM", f"BPR 1 {B} MOB N",
            f"ILN {trid} NLN {B} Bobby 0",
        ]

    run(test)


def test_a_client_that_never_syncs_does_not_appear_online() -> None:
    """Seed 000: sendMsg logs in and goes online without SYN, and nobody sees it."""

    async def test(server: ReferenceServer) -> None:
        bob = await online(server, B)
        await bob.conn.call("ADD", "FL", A, A, "0")
        alice = await login(server, A)
        await alice.set_status("NLN")  # no SYN
        assert await _quiet(bob)
        await alice.sync()  # now it does
        assert (await bob.conn.until("NLN")).line == f"NLN NLN {A} Alice 0"

    run(test)


def test_privacy_block_list_and_blp_decide_who_sees_presence() -> None:
    async def test(server: ReferenceServer) -> None:
        alice = await online(server, A)
        bob = await online(server, B)
        carol = await online(server, C)
        for watcher in (bob, carol):
            await watcher.conn.call("ADD", "FL", A, A, "0")
        # BLP AL: everyone not blocked sees alice
        assert (await bob.conn.until("ILN")).words[3] == A
        assert (await carol.conn.until("ILN")).words[3] == A
        # blocking bob: he sees her go offline; carol notices nothing
        await alice.conn.call("ADD", "BL", B, B)
        assert (await bob.conn.until("FLN")).line == f"FLN {A}"
        assert await _quiet(carol)
        # BLP BL: only the allow list; carol is on no list, so she loses alice too
        r = await alice.conn.call("BLP", "BL")
        assert r.line == f"BLP {r.trid} 4 BL"  # 2 RL additions, 1 BL addition before
        assert (await carol.conn.until("FLN")).line == f"FLN {A}"
        assert (await alice.conn.call("BLP", "BL")).is_error  # 218 already in that mode
        # allowing carol again brings alice back for her
        await alice.conn.call("ADD", "AL", C, C)
        assert (await carol.conn.until("NLN")).line == f"NLN NLN {A} Alice 0"
        # appearing offline: FLN to carol
        await alice.set_status("HDN")
        assert (await carol.conn.until("FLN")).line == f"FLN {A}"

    run(test)


def test_second_login_gets_out_oth_on_the_first() -> None:
    async def test(server: ReferenceServer) -> None:
        first = await online(server, A)
        await online(server, A)
        assert (await first.conn.until("OUT")).line == "OUT OTH"
        assert await first.conn.closed()

    run(test)


def test_gtc_prp_and_reaching_218() -> None:
    async def test(server: ReferenceServer) -> None:
        alice = await online(server, A)
        got = [
            (await alice.conn.call(*command)).line
            for command in (("GTC", "N"), ("GTC", "N"), ("GTC", "X"), ("PRP", "PHH", "555%201"),
                            ("PRP", "PHH"), ("CHG", "FLN"))
        ]
        assert got == ["GTC 7 1 N", "218 8", "201 9", "PRP 10 2 PHH 555%201", "PRP 11 3 PHH",
                       "201 12"]

    run(test)


def test_challenge_answered_right_and_wrong() -> None:
    key = ("msmsgs@msnmsgr.com", "Q1P7W2E4J9R8U3S5")

    async def test(server: ReferenceServer) -> None:
        alice = await login(server, A)
        chl = await alice.conn.until("CHL")
        answer = hashlib.md5((chl.words[2] + key[1]).encode()).hexdigest()
        r = await alice.conn.call("QRY", key[0], payload=answer.encode())
        assert r.line == f"QRY {r.trid}"
        chl = await alice.conn.until("CHL")  # the next one comes after the interval
        r = await alice.conn.call("QRY", key[0], payload=b"0" * 32)
        assert r.line == f"540 {r.trid}"
        assert await alice.conn.closed()

    run(test, chl_interval=0.2)


def test_unanswered_challenge_ends_with_out() -> None:
    async def test(server: ReferenceServer) -> None:
        alice = await login(server, A)
        await alice.conn.until("CHL")
        assert (await alice.conn.until("OUT", timeout=5)).line == "OUT"
        assert await alice.conn.closed()

    run(test, chl_interval=0.1, chl_timeout=0.2)


@pytest.mark.parametrize(("dialect", "qng"), [(8, "QNG"), (9, "QNG 50")])
def test_png_gets_qng(dialect: int, qng: str) -> None:
    async def test(server: ReferenceServer) -> None:
        conn = await logged_in_raw(server, A, dialect)
        await exchange(conn, f">>> PNG\n<<< {qng}")

    run(test)


def test_md5_login_and_counted_syn_msnp2() -> None:
    async def test(server: ReferenceServer) -> None:
        bob = await online(server, B)
        await bob.conn.call("ADD", "FL", A, A, "0")
        alice = await login(server, A, dialect=2)
        got = [r.line for r in await alice.sync()]
        assert got == [
            "SYN 5 1", "GTC 5 1 A", "BLP 5 1 AL",
            "LST 5 FL 1 0 0", "LST 5 AL 1 0 0", "LST 5 BL 1 0 0",
            f"LST 5 RL 1 1 1 {B} Bob",
        ]
        assert alice.conn.transcript[:8] == [
            ">>> VER 1 MSNP2 CVR0", "<<< VER 1 MSNP2", ">>> INF 2", "<<< INF 2 MD5",
            f">>> USR 3 MD5 I {A}", alice.conn.transcript[5], alice.conn.transcript[6],
            f"<<< USR 4 OK {A} Alice",
        ]

    run(test)


def test_counted_syn_msnp7_has_phones_groups_and_bpr() -> None:
    async def test(server: ReferenceServer) -> None:
        bob = await online(server, B)
        await bob.conn.call("PRP", "PHH", "1%202")
        alice = await login(server, A, dialect=7)
        await alice.conn.call("ADG", "Friends", "0")
        await alice.conn.call("ADD", "FL", B, "Bob", "1")
        got = [r.line for r in await alice.sync()]
        assert got == [
            "SYN 7 2", "GTC 7 2 A", "BLP 7 2 AL",
            "PRP 7 2 PHH", "PRP 7 2 PHW", "PRP 7 2 PHM", "PRP 7 2 MOB N", "PRP 7 2 MBE N",
            "LSG 7 2 1 2 0 Other%20Contacts 0", "LSG 7 2 2 2 1 Friends 0",
            f"LST 7 FL 2 1 1 {B} Bob 1", f"BPR 2 {B} PHH 1%202",
            "LST 7 AL 2 0 0", "LST 7 BL 2 0 0", "LST 7 RL 2 0 0",
        ]

    run(test)


def test_lst_and_lsg_requests_answer_one_list_in_the_counted_form() -> None:
    """`LST TrID FL|AL|BL|RL` is a client command since MSNP2 (and `LSG TrID` since MSNP7):
    the server closed the connection on them as unknown commands."""

    async def test(server: ReferenceServer) -> None:
        bob = await online(server, B)
        await bob.conn.call("PRP", "PHH", "1%202")
        conn = await logged_in_raw(server, A, 7)
        await exchange(conn, f"""
            >>> ADG 5 Friends 0
            <<< ADG 5 1 Friends 1 0
            >>> ADD 6 FL {B} Bob 1
            <<< ADD 6 FL 2 {B} Bob 1
            >>> LST 7 FL
            <<< LST 7 FL 2 1 1 {B} Bob 1
            >>> LST 8 RL
            <<< LST 8 RL 2 0 0
            >>> LSG 9
            <<< LSG 9 2 1 2 0 Other%20Contacts 0
            <<< LSG 9 2 2 2 1 Friends 0
            >>> LST 10 XL
            <<< 201 10
            >>> PNG
            <<< QNG
        """)
        conn = await logged_in_raw(server, A, 2)
        await exchange(conn, f"""
            >>> LST 5 FL
            <<< LST 5 FL 2 1 1 {B} Bob
            >>> LSG 6
            <o>
        """)

    run(test)


def test_groups_are_unknown_before_msnp7() -> None:
    async def test(server: ReferenceServer) -> None:
        conn = await logged_in_raw(server, A, 5)
        await exchange(conn, ">>> ADG 9 Friends 0\n<o>")

    run(test)


def test_wrong_passwords_and_tickets_get_911_and_a_close() -> None:
    async def test(server: ReferenceServer) -> None:
        conn = await raw(server)
        await exchange(conn, f"""
            >>> VER 1 MSNP7 CVR0
            <<< VER 1 MSNP7
            >>> USR 2 MD5 I {A}
        """)
        await conn.read()
        await exchange(conn, ">>> USR 3 MD5 S 00000000000000000000000000000000\n<<< 911 3\n<o>")
        conn = await raw(server)
        await exchange(conn, f"""
            >>> VER 1 MSNP8 CVR0
            <<< VER 1 MSNP8
            >>> USR 2 TWN I {A}
        """)
        await conn.read()
        await exchange(conn, ">>> USR 3 TWN S t=forged&p=x\n<<< 911 3\n<o>")
        with pytest.raises(ClientError, match="Passport login refused"):
            await NotificationClient.login(server.config.host, server.ports["ns"], A, "wrong",
                                           nexus=server.nexus_url)

    run(test)


def test_version_negotiation() -> None:
    async def test(server: ReferenceServer) -> None:
        conn = await raw(server)
        await exchange(conn, ">>> VER 1 MSNP9 MSNP8 MSNP7 CVR0\n<<< VER 1 MSNP9")
        conn = await raw(server)
        await exchange(conn, ">>> VER 1 MSNP99 CVR0\n<<< VER 1 0\n<o>")
        conn = await raw(server)
        await exchange(conn, ">>> SYN 1 0\n<o>")  # nothing before VER

    run(test)


def test_commands_before_login_get_302() -> None:
    async def test(server: ReferenceServer) -> None:
        conn = await raw(server)
        await exchange(conn, """
            >>> VER 1 MSNP8 CVR0
            <<< VER 1 MSNP8
            >>> SYN 2 0
            <<< 302 2
            >>> ADD 3 FL bob@example.com bob@example.com
            <<< 302 3
            >>> XYZ 4
            <o>
        """)

    run(test)


def test_dispatch_redirects_msnp2_md5_without_current_address() -> None:
    async def test(server: ReferenceServer) -> None:
        conn = await raw(server, "ds")
        await exchange(conn, f"""
            >>> VER 1 MSNP2 CVR0
            <<< VER 1 MSNP2
            >>> INF 2
            <<< INF 2 MD5
            >>> USR 3 MD5 I {A}
            <<< XFR 3 NS {server.config.host}:{server.ports["ns"]}
        """)

    run(test)


@pytest.mark.parametrize(("dialect", "tail"), [(3, " 0"), (5, " 0"), (6, " 0"), (7, " 0 ds")])
def test_dispatch_redirect_has_the_form_of_the_dialect(dialect: int, tail: str) -> None:
    """XFR NS gained its `0` in MSNP3 and the current server after it only in MSNP7; MSNP3-6
    clients got the MSNP7 form, which `expert` flagged as that dialect's wrong arguments."""

    async def test(server: ReferenceServer) -> None:
        host = server.config.host
        ds = f"{host}:{server.ports['ds']}"
        conn = await raw(server, "ds")
        await exchange(conn, f"""
            >>> VER 1 MSNP{dialect} CVR0
            <<< VER 1 MSNP{dialect}
            >>> USR 2 MD5 I {A}
            <<< XFR 2 NS {host}:{server.ports["ns"]}{tail.replace("ds", ds)}
        """)

    run(test)


def test_addresses_of_a_server_on_ipv6_keep_the_port_apart() -> None:
    """On `--listen [::1]:PORT` the XFR NS and SB addresses were written `::1:PORT`, where
    the port cannot be told from the address; they are `[::1]:PORT` now."""

    async def test(server: ReferenceServer) -> None:
        conn = await raw(server, "ds")
        await exchange(conn, f"""
            >>> VER 1 MSNP8 CVR0
            <<< VER 1 MSNP8
            >>> USR 2 TWN I {A}
            <<< XFR 2 NS [::1]:{server.ports["ns"]} 0 [::1]:{server.ports["ds"]}
        """)
        alice = await online(server, A)
        r = await alice.conn.call("XFR", "SB")
        assert r.words[3] == f"[::1]:{server.ports['sb']}", r.line
        chat = await alice.open_chat()  # the client finds the switchboard there
        await chat.leave()

    run(test, host="::1")


async def _quiet(client: NotificationClient, wait: float = 0.3) -> bool:
    """True when no presence frame (ILN, NLN, FLN) arrives within `wait` seconds; the
    frames that do arrive stay readable."""
    conn = client.conn
    seen: list[Reply] = []
    try:
        while True:
            seen.append(await conn.read(wait))
    except TimeoutError:
        pass
    conn.backlog[:0] = seen
    return not any(r.cmd in ("ILN", "NLN", "FLN") for r in seen)


def test_list_versions_persist_across_a_restart(tmp_path: object) -> None:
    from pathlib import Path

    db = Path(str(tmp_path)) / "server.db"

    async def first(server: ReferenceServer) -> None:
        alice = await online(server, A)
        await alice.conn.call("ADG", "Friends", "0")
        await alice.conn.call("ADD", "FL", B, "Bob", "1")
        await alice.conn.call("REA", A, "Alice%20W")
        # no clean shutdown of the client: the reply was sent, so it must be on disk
        alice.conn.writer.transport.abort()

    async def second(server: ReferenceServer) -> None:
        alice = await login(server, A)
        assert alice.nick == "Alice%20W"
        got = [r.line for r in await alice.sync()]
        assert got == [
            "SYN 5 3 1 2", "GTC A", "BLP AL", "LSG 0 Other%20Contacts 0", "LSG 1 Friends 0",
            f"LST {B} Bob 1 1",
        ]
        bob = await login(server, B)
        assert [r.line for r in await bob.sync()][-1] == f"LST {A} Alice 8"

    run(first, db=db)
    run(second, db=db)
    assert asyncio  # the module is used by the helpers above


def test_a_refused_chg_changes_nothing() -> None:
    """A CHG refused with 201 (a client id that is not a number) leaves the status as it
    was: the next good CHG is still the first one and brings the ILNs, and a refused HDN does
    not make XFR SB answer 913."""

    async def test(server: ReferenceServer) -> None:
        bob = await online(server, B)
        await bob.conn.call("ADD", "AL", A, A)
        alice = await login(server, A)
        await alice.conn.call("ADD", "FL", B, B, "0")
        await alice.sync()
        r = await alice.conn.call("CHG", "NLN", "abc")
        assert r.line == f"201 {r.trid}"
        r = await alice.conn.call("CHG", "NLN", "0")
        assert r.line == f"CHG {r.trid} NLN 0"
        assert (await alice.conn.read()).line == f"ILN {r.trid} NLN {B} Bob 0"
        r = await alice.conn.call("CHG", "HDN", "x")
        assert r.line == f"201 {r.trid}"
        r = await alice.conn.call("XFR", "SB")
        assert r.cmd == "XFR", r.line

    run(test)


def test_a_trid_is_echoed_as_the_client_wrote_it() -> None:
    """hypothetic.org: the server "only responds using the same TrID you sent it": `VER 01`
    is answered `VER 01`, not `VER 1`, on the DS, the NS (replies, errors, the ILN of a CHG)
    and the switchboard (USR, CAL, ACK)."""

    async def test(server: ReferenceServer) -> None:
        ds = await raw(server, "ds")
        await exchange(ds, ">>> VER 01 MSNP8 CVR0\n<<< VER 01 MSNP8")
        ns = await raw(server)
        await exchange(ns, ">>> VER 007 MSNP8 CVR0\n<<< VER 007 MSNP8\n"
                           ">>> SYN 0008 0\n<<< 302 0008")
        bob = await online(server, B)
        await bob.conn.call("ADD", "FL", A, A, "0")
        await bob.conn.call("ADD", "AL", A, A)
        alice = await logged_in_raw(server, A)
        await exchange(alice, f">>> ADD 010 AL {B} {B}\n<<< ADD 010 AL 2 {B} {B}\n"
                              f">>> ADD 011 FL {B} {B} 0\n<<< ADD 011 FL 3 {B} {B} 0")
        alice.send_line("CHG 00012 NLN 0")
        await alice.drain()
        assert (await alice.until("CHG")).line == "CHG 00012 NLN 0"
        assert (await alice.until("ILN")).line == f"ILN 00012 NLN {B} Bob 0"
        await exchange(alice, ">>> REM 013 FL nobody@example.com\n<<< 216 013")
        alice.send_line("XFR 014 SB")
        await alice.drain()
        xfr = await alice.until("XFR")
        assert xfr.words[:3] == ["XFR", "014", "SB"]
        host, _, port = xfr.words[3].rpartition(":")
        sb = await Connection.open(host, int(port), "sb")
        await exchange(sb, f">>> USR 01 {A} {xfr.words[5]}\n<<< USR 01 OK {A} Alice\n"
                           ">>> CAL 02 nobody@example.com\n<<< 208 02")
        sb.send_line("MSG 03 A 2", b"hi")
        await sb.drain()
        assert (await sb.read()).line == "NAK 03"  # alone: nobody to deliver to

    run(test)


def test_serve_on_a_name_with_two_addresses_has_one_port_per_listener_on_both() -> None:
    """`serve --listen localhost:0` where localhost is 127.0.0.1 and ::1: each listener had
    a free port of its own per address, so the printed `localhost:PORT` reached only one."""
    from msnsniff.server.config import ServerConfig
    from tests.msnsniff.test_listeners import DUAL, dual

    async def main() -> None:
        server = ReferenceServer(ServerConfig(host="dual.test", ds_port=0, ns_port=0, sb_port=0,
                                              http_port=0, https_port=0), resolver=dual)
        await server.start()
        await server.start_gateway(0)
        try:
            servers = [*server._servers, *server.passport._servers]
            assert server.gateway is not None and server.gateway._server is not None
            servers.append(server.gateway._server)
            for listener in servers:
                names = sorted(s.getsockname()[:2] for s in listener.sockets)
                assert [host for host, _ in names] == sorted(DUAL)
                assert len({port for _, port in names}) == 1
            assert server.hub.address("ds") == f"dual.test:{server.ports['ds']}"
            for host in DUAL:
                conn = await Connection.open(host, server.ports["ds"])
                reply = await conn.call("VER", "MSNP8", "CVR0")
                assert reply.line == f"VER {reply.trid} MSNP8"
                await conn.close()
        finally:
            await server.close()

    asyncio.run(main())


def test_serve_on_the_ipv6_wildcard_takes_ipv4_clients_too() -> None:
    """`serve --listen [::]:1863`: asyncio makes an IPv6 socket IPv6-only, so every IPv4
    client (all MSN clients) was refused, and so was the nexus printed as 127.0.0.1. Each
    listener now has 0.0.0.0 beside ::, on the same port; an IPv4 client is sent on by its
    IPv4 address."""
    import urllib.request

    from msnsniff.server.config import ServerConfig

    async def main() -> None:
        server = ReferenceServer(ServerConfig(host="::", ds_port=0, ns_port=0, sb_port=0,
                                              http_port=0, https_port=None))
        server.add_demo_accounts()
        await server.start()
        try:
            for listener in [*server._servers, *server.passport._servers]:
                names = sorted(s.getsockname()[:2] for s in listener.sockets)
                assert [host for host, _ in names] == ["0.0.0.0", "::"]
                assert len({port for _, port in names}) == 1
            conn = await Connection.open("127.0.0.1", server.ports["ds"])
            await conn.call("VER", "MSNP8", "CVR0")
            await conn.call("CVR", "0x0409", "winnt", "5.1", "i386", "MSNMSGR", "5.0.0540",
                            "MSMSGS", A)  # fmt: skip
            xfr = await conn.call("USR", "TWN", "I", A)
            assert xfr.words[2:4] == ["NS", f"127.0.0.1:{server.ports['ns']}"], xfr.line
            await conn.close()
            assert server.passport.http_nexus_url.startswith("http://127.0.0.1:")
            status = await asyncio.to_thread(
                lambda: urllib.request.urlopen(server.passport.http_nexus_url, timeout=5).status)
            assert status == 200
        finally:
            await server.close()

    asyncio.run(main())
