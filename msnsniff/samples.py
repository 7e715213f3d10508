"""Make the sample captures in `captures/` from real loopback runs of the server and client.

Each scenario starts the reference server on ephemeral 127.0.0.1 ports with `--record`,
drives it with the project's asyncio client, and keeps the recording: real sockets, real
timing, nothing synthesized but the link and TCP framing of the pcap writer. Run through
`python -m tests.golden --recapture`, which also rewrites the golden dissections.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from msnsniff.client.connection import Connection
from msnsniff.client.session import NotificationClient
from msnsniff.server.app import ReferenceServer
from msnsniff.server.config import ServerConfig

A, B, C = "alice@example.com", "bob@example.com", "carol@example.com"
PASSWORDS = {A: "alice-pass", B: "bob-pass", C: "carol-pass"}
Scenario = Callable[[ReferenceServer], Awaitable[None]]


async def _login(server: ReferenceServer, who: str, dialect: int = 8, via: str = "ns"
                 ) -> NotificationClient:
    c = await NotificationClient.login(server.config.host, server.ports[via], who,
                                       PASSWORDS[who], dialect=dialect, nexus=server.nexus_url)
    await c.conn.until("MSG")  # the initial e-mail notification
    return c


async def _online(server: ReferenceServer, who: str, dialect: int = 8) -> NotificationClient:
    c = await _login(server, who, dialect)
    await c.sync()
    await c.set_status("NLN")
    return c


async def _settle() -> None:
    await asyncio.sleep(0.05)


async def login_msnp8(server: ReferenceServer) -> None:
    """Seed 003's flow: DS redirect, TWN login, SYN with lists, presence, PNG, CHL/QRY, OUT."""
    bob = await _online(server, B)
    await bob.conn.call("ADD", "FL", A, "Alice", "0")
    await bob.conn.call("PRP", "PHH", "555%201234")
    alice = await _login(server, A, via="ds")
    await alice.conn.call("ADD", "FL", B, "Bob", "0")
    await alice.conn.call("ADD", "AL", B, "Bob")
    await alice.logout()
    alice = await _login(server, A, via="ds")
    await alice.sync()
    await alice.set_status("NLN")
    await bob.conn.call("CHG", "AWY", "0")
    await alice.conn.until("NLN")
    alice.conn.send_line("PNG")
    await alice.conn.until("QNG")
    chl = await alice.conn.until("CHL", timeout=5)
    answer = hashlib.md5((chl.words[2] + "Q1P7W2E4J9R8U3S5").encode()).hexdigest()
    await alice.conn.call("QRY", "msmsgs@msnmsgr.com", payload=answer.encode())
    await alice.logout()
    await _settle()


async def list_changes(server: ReferenceServer) -> None:
    """Seed 004's list commands and their errors, RL notices, and a disconnect."""
    bob = await _online(server, B)
    alice = await _online(server, A)
    c = alice.conn
    for args in (
        ("ADD", "AL", "a@b", "a@b"),  # 201
        ("ADD", "FL", "nobody@example.com", "nobody@example.com"),  # 205
        ("ADD", "AL", B, B),
        ("ADD", "BL", B, B),  # 219
        ("ADD", "AL", B, B),  # 215
        ("ADG", "Friends", "0"),
        ("ADD", "FL", B, "Bob", "1"),
        ("ADD", "FL", C, "Carol", "15"),  # 224
        ("ADG", "x" * 62, "0"),  # 229
        ("REM", "FL", "nobody@example.com"),  # 216
        ("REM", "FL", B, "0"),  # 225
        ("REA", B, "Bobby"),
        ("REA", A, "msn%20fan"),  # 209
        ("REA", A, "Alice%20W"),
        ("REG", "1", "Best%20Friends", "0"),
        ("REG", "20", "Nope", "0"),  # 224
        ("RMG", "0"),  # 230
        ("BLP", "BL"),
        ("GTC", "N"),
        ("REM", "FL", B, "1"),
        ("RMG", "1"),
        ("RMG", "1"),  # 224
    ):
        await c.call(*args)
    await _settle()
    c.send_line(f"ADD 99 RL {B} {B}")  # seed 004: the server closes the connection
    await c.drain()
    await c.closed()
    await bob.logout()
    await _settle()


async def chat(server: ReferenceServer) -> None:
    """A switchboard conversation: XFR SB, CAL, RNG, ANS, IRO, JOI, messages, acks, BYE."""
    alice = await _online(server, A)
    bob = await _online(server, B)
    carol = await _online(server, C)
    a = await alice.open_chat()
    await a.conn.call("CAL", "nobody@example.com")  # 208
    await a.conn.call("CAL", B)
    b = await bob.answer(await bob.conn.until("RNG"))
    await a.conn.until("JOI")
    await a.conn.call("CAL", C)
    cc = await carol.answer(await carol.conn.until("RNG"))
    await a.conn.until("JOI")
    typing = b"MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: " + (
        A.encode() + b"\r\n\r\n\r\n"
    )
    a.conn.command("MSG", "U", payload=typing)
    await a.say("hello both", font="Comic Sans MS", color="ff")
    await b.say("hi alice", ack="N")
    await cc.say("hey", ack="U")
    await b.leave()
    await cc.leave()
    await a.say("anyone there?")  # NAK: alone
    await a.leave()
    for client in (alice, bob, carol):
        await client.logout()
    await _settle()


async def switchboard_limit(server: ReferenceServer) -> None:
    """Seed 000: eight switchboards a minute, and error 800 for the ninth."""
    alice = await _online(server, A)
    for _ in range(9):
        await alice.conn.call("XFR", "SB")
    await alice.logout()
    await _settle()


async def md5_logins(server: ReferenceServer) -> None:
    """MSNP2 and MSNP7 MD5 logins with the counted SYN form, and a wrong password."""
    bob = await _online(server, B)
    await bob.conn.call("ADD", "FL", A, "Alice", "0")
    for dialect in (2, 7):
        alice = await _login(server, A, dialect=dialect)
        await alice.sync()
        await alice.set_status("NLN")
        await alice.logout()
    conn = await Connection.open(server.config.host, server.ports["ns"])
    await conn.call("VER", "MSNP5", "CVR0")
    await conn.call("INF")
    await conn.call("USR", "MD5", "I", A)
    await conn.call("USR", "MD5", "S", "0" * 32)  # 911, then the server closes
    await conn.closed()
    await bob.logout()
    await _settle()


SCENARIOS: dict[str, tuple[Scenario, dict[str, float]]] = {
    "server_login_msnp8": (login_msnp8, {"chl_interval": 0.3}),
    "server_list_changes": (list_changes, {}),
    "server_chat": (chat, {}),
    "server_switchboard_limit": (switchboard_limit, {}),
    "server_md5_logins": (md5_logins, {}),
}


async def record(name: str, directory: Path) -> Path:
    """Run one scenario against a fresh server recording to `directory/name.pcap`."""
    scenario, options = SCENARIOS[name]
    path = directory / f"{name}.pcap"
    config = ServerConfig(ds_port=0, ns_port=0, sb_port=0, http_port=0, https_port=0,
                          chl_interval=0.0, record=path)
    config = ServerConfig(**{**{f: getattr(config, f) for f in config.__slots__}, **options})
    server = ReferenceServer(config)
    server.add_demo_accounts()
    await server.start()
    try:
        await asyncio.wait_for(scenario(server), 60)
    finally:
        await server.close()
    return path


def main(argv: list[str]) -> int:
    """`python -m msnsniff.samples [DIR]`: record the server captures (default captures/)."""
    directory = Path(argv[0]) if argv else Path("captures")
    for name in SCENARIOS:
        print(f"recorded {asyncio.run(record(name, directory))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
