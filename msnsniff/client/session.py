"""A logged-in MSNP user: login in any dialect, SYN, presence, switchboards and messages.

The methods follow the flows of seeds 000 and 003: `login` (VER, CVR, INF for MD5, USR with
a dispatch redirect followed), `sync`, `set_status`, `open_chat` (XFR SB, USR on the
switchboard), `Chat.invite` (CAL, then JOI), `Chat.say` (MSG with the IM format header), and
`answer` for an RNG. Frames a method does not wait for stay in the connection's backlog.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from dissectors.msnp.errors import error_info
from msnsniff.addresses import parse, show
from msnsniff.client.connection import ClientError, Connection, Reply, dropped, is_number
from msnsniff.client.passport import fetch_ticket
from msnsniff.errors import os_reason

Opener = Callable[[str, int, str, float], Awaitable[Connection]]
"""How connections are made: `Connection.open` (TCP), or through the HTTP gateway."""

SYN_REPLIES = frozenset({"GTC", "BLP", "PRP", "LSG", "LST", "BPR"})
CVR_ARGS = ("0x0409", "winnt", "5.1", "i386", "MSNMSGR", "5.0.0540", "MSMSGS")


def split_address(text: str) -> tuple[str, int]:
    """A server's `HOST:PORT` (an XFR or RNG address): ClientError unless the port is 1-65535."""
    address = parse(text)
    if address is None or not address[0] or address[1] < 1:
        raise ClientError(f"bad address {text!r}")
    return address


def refused(what: str, reply: Reply, *, coded: bool = False) -> ClientError:
    """`what refused: ...` for an answer the client cannot go on with: an error code named
    and explained from the error table (the user need not look `911` up), else the line.
    `coded`: the reply's command (the code) is the error's second argument, for callers
    that tell codes apart (`str()` of the error is then no longer the message alone)."""
    if reply.is_error:
        info = error_info(int(reply.cmd))
        text = f"{what} refused: error {info.code} {info.name}: {info.meaning}"
    else:
        text = f"{what} refused: {reply.line}"
    return ClientError(text, reply.cmd) if coded else ClientError(text)


def im_format(font: str = "Microsoft Sans Serif", color: str = "0", effects: str = "") -> str:
    """The `X-MMS-IM-Format` value: font URL-encoded, colour as BGR hex."""
    return f"FN={urllib.parse.quote(font)}; EF={effects}; CO={color}; CS=0; PF=22"


def text_message(text: str, font: str = "Microsoft Sans Serif", color: str = "0") -> bytes:
    """An instant message's MSG payload: MIME headers with font and colour, then the text."""
    return (
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
        f"X-MMS-IM-Format: {im_format(font, color)}\r\n\r\n{text}"
    ).encode()


@dataclass
class NotificationClient:
    """A login on the notification server."""

    conn: Connection
    account: str
    dialect: int
    nick: str = ""
    lists: list[Reply] = field(default_factory=list)
    profile: Reply | None = None
    redirects: list[Connection] = field(default_factory=list)  # the DS connections before
    opener: Opener = field(default=Connection.open, repr=False)

    @classmethod
    async def login(cls, host: str, port: int, account: str, password: str, *,
                    dialect: int = 8, nexus: str | None = None, timeout: float = 10.0,
                    cafile: str | None = None,
                    opener: Opener = Connection.open) -> NotificationClient:
        """Log in (following an XFR NS redirect); ClientError with the reason on failure."""
        redirects: list[Connection] = []
        for _hop in range(3):
            try:
                conn = await opener(host, port, f"NS {account}", timeout)
            except TimeoutError:
                raise  # the caller knows the timeout it gave
            except OSError as e:  # asyncio's words ("Connect call failed") hide the errno's
                raise ClientError(f"cannot connect to {show(host, port)}: {os_reason(e)}"
                                  ) from e
            try:
                result = await cls._handshake(conn, account, password, dialect, nexus, timeout,
                                              cafile)
            except BaseException as e:
                await conn.close()
                said = dropped(conn, e, "during the login")
                if said is not None:
                    raise said from e
                raise
            if isinstance(result, tuple):
                await conn.close()
                redirects.append(conn)
                host, port = result
                continue
            result.redirects = redirects
            result.opener = opener
            return result
        raise ClientError("too many XFR NS redirects")

    @classmethod
    async def _handshake(cls, conn: Connection, account: str, password: str, dialect: int,
                         nexus: str | None, timeout: float, cafile: str | None = None
                         ) -> NotificationClient | tuple[str, int]:
        r = await conn.call("VER", f"MSNP{dialect}", "CVR0", timeout=timeout)
        if r.words[2:3] != [f"MSNP{dialect}"]:
            raise ClientError(f"server refused MSNP{dialect}: {r.line}")
        md5 = dialect <= 7
        if md5:
            await conn.call("INF", timeout=timeout)
        else:
            await conn.call("CVR", *CVR_ARGS, account, timeout=timeout)
        r = await conn.call("USR", "MD5" if md5 else "TWN", "I", account, timeout=timeout)
        if r.cmd == "XFR" and r.words[2:3] == ["NS"]:
            return split_address(r.words[3])
        if r.cmd != "USR" or len(r.words) < 5:
            raise refused("login", r)
        if md5:
            answer = hashlib.md5((r.words[4] + password).encode()).hexdigest()
        else:
            if nexus is None:
                raise ClientError("an MSNP8+ login needs the Passport nexus URL")
            answer = await fetch_ticket(nexus, account, password, r.words[4], timeout, cafile)
        r = await conn.call("USR", "MD5" if md5 else "TWN", "S", answer, timeout=timeout)
        if r.cmd != "USR" or r.words[2:3] != ["OK"]:
            raise refused("login", r)
        client = cls(conn, account, dialect, r.words[4] if len(r.words) > 4 else account)
        client.profile = await conn.until("MSG", timeout)  # always right after USR OK
        return client

    async def sync(self, version: int = 0, timeout: float = 10.0) -> list[Reply]:
        """SYN and read the whole answer (the MSNP8 burst or the counted form)."""
        trid = self.conn.command("SYN", str(version))
        await self.conn.drain()
        first = await self.conn.expect(trid, timeout)
        out = [first]
        w = first.words
        if not first.is_error and not all(is_number(n) for n in w[2:5]):
            raise ClientError(f"SYN answered with a malformed line: {first.line[:80]!r}")
        if first.is_error or len(w) < 3 or (int(w[2]) == version and version):
            self.lists = out
            return out
        kept: list[Reply] = []
        # MSNP8 counts LST and LSG lines (GTC, BLP and PRP come first; BPR follow an LST)
        remaining = int(w[3]) + int(w[4]) if len(w) >= 5 else -1
        try:
            while remaining:
                r = await self.conn.read(timeout)
                foreign = remaining < 0 and r.cmd != "BPR" and r.trid not in (None, trid)
                if r.cmd not in SYN_REPLIES or foreign:
                    kept.append(r)  # not part of the list burst
                    continue
                out.append(r)
                rw = r.words
                if remaining > 0:
                    remaining -= r.cmd in ("LST", "LSG")
                elif r.cmd == "LST" and len(rw) > 5 and rw[2] == "RL" and rw[4] == rw[5]:
                    break  # MSNP2-7: the last LST of the RL ends it
        finally:
            self.conn.backlog[:0] = kept
        self.lists = out
        return out

    async def set_status(self, status: str = "NLN", timeout: float = 10.0) -> Reply:
        """Send CHG with `status` (and client id 0 from MSNP8 on); return the reply."""
        args = [status, "0"] if self.dialect >= 8 else [status]
        return await self.conn.call("CHG", *args, timeout=timeout)

    async def open_chat(self, timeout: float = 10.0) -> Chat:
        """XFR SB and log in to the switchboard; ClientError (with the code) when refused,
        and naming the switchboard when it cannot be reached or does not answer."""
        r = await self.conn.call("XFR", "SB", timeout=timeout)
        if r.is_error:
            raise refused("XFR SB", r, coded=True)
        host, port = split_address(r.words[3])
        where = show(host, port)
        silent = f"no answer within {timeout:g} s from the switchboard {where}"
        try:
            sb = await self.opener(host, port, f"SB {self.account}", timeout)
        except TimeoutError as e:
            raise ClientError(silent) from e
        except OSError as e:  # asyncio's words ("Connect call failed") hide the errno's
            raise ClientError(f"cannot connect to the switchboard {where}: {os_reason(e)}"
                              ) from e
        try:
            u = await sb.call("USR", self.account, r.words[5], timeout=timeout)
        except TimeoutError as e:
            await sb.close()
            raise ClientError(silent) from e
        if u.cmd != "USR":
            await sb.close()
            raise ClientError(f"switchboard login refused: {u.line}", u.cmd)
        return Chat(sb, self.account)

    async def answer(self, rng: Reply, timeout: float = 10.0) -> Chat:
        """Join the switchboard an RNG invites to."""
        w = rng.words
        host, port = split_address(w[2])
        sb = await self.opener(host, port, f"SB {self.account}", timeout)
        trid = sb.command("ANS", self.account, w[4], w[1])
        await sb.drain()
        while True:
            r = await sb.expect(trid, timeout)
            if r.cmd == "ANS" or r.is_error:
                break
        if r.is_error:
            await sb.close()
            raise ClientError(f"ANS refused: {r.line}", r.cmd)
        return Chat(sb, self.account)

    async def logout(self, timeout: float = 5.0) -> None:
        """OUT, then read what the server still sends until it closes (kept in the backlog)."""
        await _out(self.conn, timeout)


@dataclass
class Chat:
    """A switchboard session."""

    conn: Connection
    account: str

    async def invite(self, who: str, timeout: float = 10.0) -> Reply:
        """CAL; on RINGING, wait for the JOI (or an error) and return it."""
        r = await self.conn.call("CAL", who, timeout=timeout)
        if r.is_error:
            return r
        while True:
            j = await self.conn.read(timeout)
            if j.cmd in ("JOI", "BYE") or j.is_error:
                return j

    async def say(self, text: str, *, font: str = "Microsoft Sans Serif", color: str = "0",
                  ack: str = "A", timeout: float = 10.0) -> Reply | None:
        """Send an instant message; the ACK/NAK for modes A and D (None for U and N)."""
        trid = self.conn.command("MSG", ack, payload=text_message(text, font, color))
        await self.conn.drain()
        if ack in ("A", "D"):
            return await self.conn.expect(trid, timeout)
        return None

    async def leave(self, timeout: float = 5.0) -> None:
        """OUT, then read what the switchboard still sends until it closes."""
        await _out(self.conn, timeout)


async def _out(conn: Connection, timeout: float) -> None:
    try:
        conn.send_line("OUT")
        await conn.drain()
        await conn.closed(timeout)
    except (ConnectionError, OSError):
        pass  # already gone
    await conn.close()
