"""The switchboard: invitations, joining, messages with every acknowledgement mode, limits."""

from __future__ import annotations

from msnsniff.client.session import Chat, NotificationClient
from msnsniff.server.app import ReferenceServer
from tests.msnsniff.server.scenario import exchange, online, raw, run

A, B, C = "alice@example.com", "bob@example.com", "carol@example.com"


async def friends(server: ReferenceServer, *accounts: str) -> list[NotificationClient]:
    """Everyone online with everyone else on their forward list."""
    clients = [await online(server, a) for a in accounts]
    for c in clients:
        for other in accounts:
            if other != c.account:
                await c.conn.call("ADD", "FL", other, other, "0")
    return clients


async def chat(alice: NotificationClient, bob: NotificationClient) -> tuple[Chat, Chat]:
    """alice opens a switchboard and invites bob, who answers."""
    a = await alice.open_chat()
    r = await a.conn.call("CAL", bob.account)
    assert r.words[2] == "RINGING"
    rng = await bob.conn.until("RNG")
    assert rng.words[1] == r.words[3]  # the session id
    assert rng.words[5:] == [alice.account, "Alice"]
    b = await bob.answer(rng)
    assert (await a.conn.until("JOI")).line == f"JOI {bob.account} Bob"
    return a, b


def test_a_whole_chat() -> None:
    async def test(server: ReferenceServer) -> None:
        alice, bob = await friends(server, A, B)
        a, b = await chat(alice, bob)
        iro = [t for t in b.conn.transcript if t.startswith("<<< IRO")]
        assert iro == [f"<<< IRO 1 1 1 {A} Alice"]
        r = await a.say("hello bob", font="Comic Sans MS", color="ff")
        assert r is not None and r.line == "ACK 3"
        msg = await b.conn.until("MSG")
        assert msg.line == f"MSG {A} Alice {len(msg.payload)}"
        assert msg.payload.endswith(b"\r\n\r\nhello bob")
        assert b"X-MMS-IM-Format: FN=Comic%20Sans%20MS; EF=; CO=ff" in msg.payload
        assert await b.say("no ack please", ack="U") is None
        assert (await a.conn.until("MSG")).payload.endswith(b"no ack please")
        await b.leave()
        assert (await a.conn.until("BYE")).line == f"BYE {B}"
        # alone now: an acknowledged message cannot be delivered
        r = await a.say("anyone?")
        assert r is not None and r.line == "NAK 4"

    run(test)


def test_three_people_and_iro_counts() -> None:
    async def test(server: ReferenceServer) -> None:
        alice, bob, carol = await friends(server, A, B, C)
        a, b = await chat(alice, bob)
        await a.conn.call("CAL", C)
        c = await carol.answer(await carol.conn.until("RNG"))
        iro = [t[4:] for t in c.conn.transcript if t.startswith("<<< IRO")]
        assert iro == [f"IRO 1 1 2 {A} Alice", f"IRO 1 2 2 {B} Bob"]
        assert (await b.conn.until("JOI")).line == f"JOI {C} Carol"
        await c.say("hi all", ack="N")
        assert (await a.conn.until("MSG")).payload.endswith(b"hi all")
        assert (await b.conn.until("MSG")).payload.endswith(b"hi all")

    run(test)


def test_cal_errors() -> None:
    async def test(server: ReferenceServer) -> None:
        alice, bob = await friends(server, A, B)
        a = await alice.open_chat()
        await exchange(a.conn, f"""
            >>> CAL 10 a@b
            <<< 208 10
            >>> CAL 11 nobody@example.com
            <<< 208 11
            >>> CAL 12 {A}
            <<< 215 12
            >>> CAL 13 {C}
            <<< 217 13
        """)
        await bob.set_status("HDN")
        await exchange(a.conn, f">>> CAL 14 {B}\n<<< 217 14")
        await bob.set_status("NLN")
        await bob.conn.call("BLP", "BL")  # alice is on no list of bob's: she is kept out
        await exchange(a.conn, f">>> CAL 15 {B}\n<<< 217 15")
        await bob.conn.call("ADD", "AL", A, A)
        r = await a.conn.call("CAL", B)
        assert r.line == f"CAL {r.trid} RINGING {r.words[3]}"

    run(test)


def test_the_ninth_switchboard_in_a_minute_gets_800() -> None:
    """Seed 000: 8 sessions in any 60 seconds; the 9th XFR SB gets error 800."""

    async def test(server: ReferenceServer) -> None:
        alice = await online(server, A)
        got = [(await alice.conn.call("XFR", "SB")).cmd for _ in range(9)]
        assert got == ["XFR"] * 8 + ["800"]

    run(test)


def test_xfr_sb_while_hidden_or_before_chg_gets_913() -> None:
    async def test(server: ReferenceServer) -> None:
        alice = await online(server, A)
        await alice.set_status("HDN")
        assert (await alice.conn.call("XFR", "SB")).cmd == "913"

    run(test)


def test_messages_reach_only_those_who_allow_the_sender() -> None:
    async def test(server: ReferenceServer) -> None:
        alice, bob, carol = await friends(server, A, B, C)
        a, b = await chat(alice, bob)
        await a.conn.call("CAL", C)
        c = await carol.answer(await carol.conn.until("RNG"))
        await carol.conn.call("ADD", "BL", A, A)  # carol blocks alice inside the chat
        r = await a.say("partial")
        assert r is not None and r.cmd == "NAK"  # not delivered to everyone
        assert (await b.conn.until("MSG")).payload.endswith(b"partial")
        assert await c.conn.closed(0.3) is False
        assert not any(t.startswith("<<< MSG") for t in c.conn.transcript)

    run(test)


def test_bad_cookies_and_bad_commands_close_the_connection() -> None:
    async def test(server: ReferenceServer) -> None:
        await friends(server, A)
        conn = await raw(server, "sb")
        await exchange(conn, f">>> USR 1 {A} 123.456\n<<< 911 1\n<o>")
        conn = await raw(server, "sb")
        await exchange(conn, f">>> ANS 1 {A} 123.456 99\n<<< 911 1\n<o>")
        conn = await raw(server, "sb")
        await exchange(conn, f">>> CAL 1 {B}\n<o>")  # nothing before USR/ANS

    run(test)


def test_invalid_ack_mode_and_oversized_payload_disconnect() -> None:
    async def test(server: ReferenceServer) -> None:
        alice, bob = await friends(server, A, B)
        a, _ = await chat(alice, bob)
        a.conn.send_line("MSG 5 X 2", b"hi")
        await a.conn.drain()
        assert await a.conn.closed()
        a, _ = await chat(alice, bob)
        a.conn.send_line("MSG 5 A 1665")  # MSN's limit is 1664 bytes
        await a.conn.drain()
        assert await a.conn.closed()

    run(test)


def test_on_a_wildcard_address_xfr_and_rng_name_the_address_the_client_reached() -> None:
    """`serve --listen 0.0.0.0:1863`: the dispatch redirect, XFR SB and RNG name the
    server's address each client connected to (127.0.0.1 here), never 0.0.0.0, which a
    client on another machine cannot connect to; the whole chat then goes through."""

    async def test(server: ReferenceServer) -> None:
        nexus = server.nexus_url
        people = []
        for account in (A, B):
            c = await NotificationClient.login("127.0.0.1", server.ports["ds"], account,
                                               f"{account.split('@')[0]}-pass", nexus=nexus)
            await c.conn.until("MSG")
            await c.sync()
            await c.set_status("NLN")
            await c.conn.call("ADD", "FL", "bob@example.com" if account == A else A,
                              "x", "0")  # fmt: skip
            people.append(c)
        alice, bob = people
        ds = alice.redirects[0]
        xfr_ns = next(t for t in ds.transcript if t.startswith("<<< XFR"))
        assert xfr_ns.split()[4] == f"127.0.0.1:{server.ports['ns']}", xfr_ns
        assert xfr_ns.split()[6] == f"127.0.0.1:{server.ports['ds']}", xfr_ns
        a, _b = await chat(alice, bob)  # opened from XFR SB's address, joined from RNG's
        xfr_sb = next(t for t in alice.conn.transcript if t.startswith("<<< XFR"))
        rng = next(t for t in bob.conn.transcript if t.startswith("<<< RNG"))
        assert xfr_sb.split()[4] == rng.split()[3] == f"127.0.0.1:{server.ports['sb']}"
        r = await a.say("hello")
        assert r is not None and r.cmd == "ACK"

    run(test, host="0.0.0.0")
