"""Seed 003's MSNP8 login, line for line: dispatch, redirect, TWN login, profile, SYN, CHG."""

from __future__ import annotations

import asyncio

from msnsniff.client.connection import Connection
from msnsniff.client.passport import fetch_ticket
from msnsniff.server.app import ReferenceServer
from msnsniff.server.model import Contact
from msnsniff.server.store import Store
from tests.msnsniff.server.scenario import exchange, run

CVR = "CVR 2 0x0409 win 4.10 i386 MSNMSGR 5.0.0537 MSMSGS example@hotmail.com"
CVR_REPLY = (
    "5.0.0537 5.0.0537 1.0.0863"
    " http://download.microsoft.com/download/msnmessenger/install/5.0/w98nt42kmexp/en-us/"
    "setupdl.exe http://messenger.microsoft.com"
)


def seed_store() -> Store:
    store = Store()
    me = store.add_account("example@hotmail.com", "secret", "example%20user")
    other = store.add_account("anotheruser@hotmail.com", "pw2", "another%20user")
    with store.transaction():
        me.version = 15  # the client has 14 cached: one change behind
        me.phones["PHH"] = "123%20(4567)"
        store.save_phone(me, "PHH")
        store.save_account(me)
        other.version = 15
        store.save_account(other)
        store.save_contact(me, Contact("anotheruser@hotmail.com", "another%20user", 11, [0]))
        store.save_contact(other, Contact("example@hotmail.com", "example%20user", 11, [0]))
        other.phones["PHH"] = "1%20(222)%20333%204444"
        store.save_phone(other, "PHH")
    return store


def test_msnp8_login_as_in_seed_003() -> None:
    async def test(server: ReferenceServer) -> None:
        host = server.config.host
        ds = await Connection.open(host, server.ports["ds"])
        await exchange(ds, f"""
            >>> VER 1 MSNP8 CVR0
            <<< VER 1 MSNP8
            >>> {CVR}
            <<< CVR 2 {CVR_REPLY}
            >>> USR 3 TWN I example@hotmail.com
            <<< XFR 3 NS {host}:{server.ports["ns"]} 0 {host}:{server.ports["ds"]}
        """)
        await ds.close()

        # the contact is online first, with client id 28
        other = await Connection.open(host, server.ports["ns"])
        await _login(server, other, "anotheruser@hotmail.com", "pw2", 1)
        await exchange(other, ">>> SYN 10 15\n<<< SYN 10 15\n>>> CHG 11 NLN 28\n<<< CHG 11 NLN 28")

        ns = await Connection.open(host, server.ports["ns"])
        await exchange(ns, f"""
            >>> VER 4 MSNP8 CVR0
            <<< VER 4 MSNP8
            >>> {CVR.replace("CVR 2", "CVR 5")}
            <<< CVR 5 {CVR_REPLY}
        """)
        ns.send_line("USR 6 TWN I example@hotmail.com")
        r = await ns.read()
        assert r.line.startswith("USR 6 TWN S ") and "lc=1033" in r.line and "id=507" in r.line
        ticket = await fetch_ticket(server.nexus_url, "example@hotmail.com", "secret",
                                    r.words[4])
        ns.send_line(f"USR 7 TWN S {ticket}")
        await exchange(ns, "<<< USR 7 OK example@hotmail.com example%20user 1 0")
        profile = await ns.read()
        assert profile.line == f"MSG Hotmail Hotmail {len(profile.payload)}"
        head = profile.payload.decode().split("\r\n")
        assert head[:2] == [
            "MIME-Version: 1.0", "Content-Type: text/x-msmsgsprofile; charset=UTF-8"
        ]
        names = [h.split(":")[0] for h in head[2:] if h]
        assert names == [
            "LoginTime", "EmailEnabled", "MemberIdHigh", "MemberIdLow", "lang_preference",
            "PreferredEmail", "country", "PostalCode", "Gender", "Kid", "Age", "BDayPre",
            "Birthday", "Wallet", "Flags", "sid", "kv", "MSPAuth", "ClientIP", "ClientPort",
        ]
        assert f"MSPAuth: {ticket.split('&')[0][2:]}$" in head
        # the client's port, written byte-swapped as MSN's servers did (the dissector's
        # ClientPort_decoded gives it back)
        client_port = ns.writer.get_extra_info("sockname")[1]
        assert f"ClientPort: {((client_port & 0xFF) << 8) | (client_port >> 8)}" in head
        mail = await ns.read()
        assert b"text/x-msmsgsinitialemailnotification" in mail.payload
        await exchange(ns, """
            >>> SYN 8 14
            <<< SYN 8 15 1 1
            <<< GTC A
            <<< BLP AL
            <<< PRP PHH 123%20(4567)
            <<< LSG 0 Other%20Contacts 0
            <<< LST anotheruser@hotmail.com another%20user 11 0
            <<< BPR PHH 1%20(222)%20333%204444
            >>> CHG 9 NLN 0
            <<< CHG 9 NLN 0
            <<< ILN 9 NLN anotheruser@hotmail.com another%20user 28
        """)
        # the contact sees example come online once it has synchronised and changed status
        await exchange(other, "<<< NLN NLN example@hotmail.com example%20user 0")
        await exchange(other, ">>> CHG 12 NLN 2\n<<< CHG 12 NLN 2")
        await exchange(ns, "<<< NLN NLN anotheruser@hotmail.com another%20user 2")
        await exchange(other, ">>> CHG 13 NLN 28\n<<< CHG 13 NLN 28")
        await exchange(ns, "<<< NLN NLN anotheruser@hotmail.com another%20user 28")
        ns.send_line("OUT")
        await ns.drain()
        assert await ns.closed()
        await exchange(other, "<<< FLN example@hotmail.com")

    run(test, store=seed_store(), https_port=0)  # the Passport login over HTTPS, as real


async def _login(server: ReferenceServer, conn: Connection, account: str, password: str,
                 trid: int) -> None:
    conn.send_line(f"VER {trid} MSNP8 CVR0")
    conn.send_line(f"USR {trid + 1} TWN I {account}")
    await conn.drain()
    await conn.expect(trid)
    r = await conn.expect(trid + 1)
    ticket = await fetch_ticket(server.nexus_url, account, password, r.words[4])
    conn.send_line(f"USR {trid + 2} TWN S {ticket}")
    await conn.drain()
    assert (await conn.expect(trid + 2)).words[2] == "OK"
    await conn.until("MSG")
    await conn.until("MSG")
    await asyncio.sleep(0)
