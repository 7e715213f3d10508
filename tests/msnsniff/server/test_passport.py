"""Passport 1.4 nexus and login over real HTTP and HTTPS sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import h11
import pytest

from msnsniff.client.passport import fetch_ticket
from msnsniff.server.passport import MAX_HEAD, Passport, parse_authorization
from msnsniff.server.tls import loopback_certificate

ACCOUNTS = {"alice@example.com": "secret"}
MSN_AUTH = (
    "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,"
    "sign-in=alice%40example.com,pwd={pwd},lc=1033,id=507,tw=40,fs=1,"
    "ru=http%3A%2F%2Fmessenger%2Emsn%2Ecom,ct=1062764229,kpp=1,kv=5,ver=2.1.0173.1,tpf=abc123"
)
TWISTED_AUTH = (
    "Passport1.4 OrgVerb=GET,OrgURL=http://messenger.msn.com,sign-in=Alice%40Example.com,"
    "pwd=secret,ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"
)

Scenario = Callable[[Passport], Awaitable[None]]
JUNK = (
    b"\x00\x01\x02garbage\r\n\r\n",
    b"GET  / HTTP/1.1\r\n\r\n",
    b"GET /rdr/pprdr.asp HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /rdr/pprdr.asp HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"GET http://[::1/rdr/pprdr.asp HTTP/1.1\r\nHost: x\r\n\r\n",
)
"""Requests that are not HTTP, or not HTTP this server can read: each gets a 400."""


def check(account: str, password: str) -> bool:
    return ACCOUNTS.get(account.lower()) == password


def run(scenario: Scenario, passport: Passport | None = None, *, https_port: int | None = 0,
        cert_dir: Path | None = None, dalogin: str | None = None) -> None:
    """Start `passport` (default: one checking ACCOUNTS) with `start`, run `scenario`, close."""

    async def main() -> None:
        server = passport or Passport(check)
        await server.start(https_port=https_port, cert_dir=cert_dir, dalogin=dalogin)
        try:
            await asyncio.wait_for(scenario(server), 10)
        finally:
            await server.close()

    asyncio.run(main())


class Client:
    """An HTTP/1.1 client on one connection, parsing responses with h11."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int, context: ssl.SSLContext | None = None) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port, ssl=context))

    async def get(self, target: str, *headers: tuple[str, str]) -> h11.Response:
        if self.conn.our_state is h11.DONE:
            self.conn.start_next_cycle()
        request = h11.Request(method="GET", target=target, headers=[("Host", "x"), *headers])
        self.writer.write(self.conn.send(request) + self.conn.send(h11.EndOfMessage()))
        response: h11.Response | None = None
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.reader.read(4096))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return response

    def close(self) -> None:
        self.writer.close()


async def raw(port: int, data: bytes) -> bytes:
    """Send `data` on a fresh connection; everything the server says before closing it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def header(response: h11.Response, name: str) -> str | None:
    values = [v.decode() for k, v in response.headers if k == name.lower().encode()]
    assert len(values) <= 1
    return values[0] if values else None


def passport_urls(response: h11.Response) -> dict[str, str]:
    value = header(response, "PassportURLs")
    assert value is not None
    return dict(part.split("=", 1) for part in value.split(","))


def from_pp(response: h11.Response) -> str:
    info = header(response, "Authentication-Info")
    assert info is not None and info.startswith("Passport1.4 da-status=success,")
    return info.split("from-PP='", 1)[1].split("'", 1)[0]


def trusting(cert_dir: Path) -> ssl.SSLContext:
    cert, _ = loopback_certificate(cert_dir)
    return ssl.create_default_context(cafile=str(cert))


def test_parse_authorization() -> None:
    fields = parse_authorization(MSN_AUTH.format(pwd="p%2Cw%25d").encode())
    assert fields is not None
    assert (fields["sign-in"], fields["pwd"]) == ("alice@example.com", "p,w%d")
    assert fields["lc"] == "1033"
    assert fields["orgurl"] == "http%3A%2F%2Fmessenger%2Emsn%2Ecom"  # only sign-in/pwd decoded
    unencoded = parse_authorization(b"passport1.4 sign-in=a@b.c,pwd=x,y,lc=1")
    assert unencoded is not None and unencoded["pwd"] == "x,y"
    for garbled in (
        None,
        b"",
        b"Basic YWxpY2U6c2VjcmV0",
        b"Passport1.4",
        b"Passport1.4 junk",
        b"Passport1.4 =x",
        b"Passport1.4 pwd=%ff",
        b"Passport1.4 pwd=\xff",
    ):
        assert parse_authorization(garbled) is None, garbled


def test_nexus_over_http() -> None:
    async def scenario(passport: Passport) -> None:
        assert passport.https_port is None
        port = passport.http_port
        assert passport.nexus_url == f"http://127.0.0.1:{port}/rdr/pprdr.asp"
        client = await Client.open(port)
        response = await client.get("/rdr/pprdr.asp")
        client.close()
        assert response.status_code == 200
        urls = passport_urls(response)
        assert urls["DALogin"] == f"127.0.0.1:{port}/login2.srf"
        assert urls["DARealm"] == "Passport.Net"
        assert urls["DAReg"] == f"http://127.0.0.1:{port}/reg"
        assert urls["ConfigVersion"] == "11"

    run(scenario, https_port=None)


def test_nexus_and_login_over_https(tmp_path: Path) -> None:
    async def scenario(passport: Passport) -> None:
        port = passport.https_port
        assert port is not None and port != passport.http_port
        assert passport.nexus_url == f"https://127.0.0.1:{port}/rdr/pprdr.asp"
        client = await Client.open(port, trusting(tmp_path))
        urls = passport_urls(await client.get("/rdr/pprdr.asp"))
        assert urls["DALogin"] == f"127.0.0.1:{port}/login2.srf"
        response = await client.get("/login2.srf", ("Authorization", MSN_AUTH.format(pwd="secret")))
        client.close()
        assert response.status_code == 200
        info = header(response, "Authentication-Info")
        assert info is not None
        assert "tname=MSPAuth,tname=MSPProf,tname=MSPSec," in info
        assert info.endswith(",ru=http://messenger.msn.com")
        ticket = from_pp(response)
        assert ticket.startswith("t=") and "&p=" in ticket and " " not in ticket
        assert passport.ticket_valid("alice@example.com", ticket)
        assert passport.ticket_valid("ALICE@example.COM", ticket)
        assert passport.ticket_valid("alice@example.com", ticket)  # reusable
        assert not passport.ticket_valid("bob@example.com", ticket)
        token, profile = ticket.split("&")
        assert passport.ticket_valid("alice@example.com", token)  # only t= is checked
        assert not passport.ticket_valid("alice@example.com", token[:-2] + "&" + profile)
        assert not passport.ticket_valid("alice@example.com", "t=forged&p=x")
        assert not passport.ticket_valid("alice@example.com", "")

    run(scenario, cert_dir=tmp_path)


def test_dalogin_names_the_listener_the_nexus_was_asked_on(tmp_path: Path) -> None:
    """With HTTPS on, a nexus asked over plain HTTP names the HTTP login (a client keeping
    the nexus's scheme reaches it: `msnsniff send --nexus http://...` failed before), and one
    asked over HTTPS the HTTPS login."""

    async def scenario(passport: Passport) -> None:
        http, https = passport.http_port, passport.https_port
        assert https is not None
        plain = await Client.open(http)
        assert passport_urls(await plain.get("/rdr/pprdr.asp"))["DALogin"] == (
            f"127.0.0.1:{http}/login2.srf")
        plain.close()
        secure = await Client.open(https, trusting(tmp_path))
        assert passport_urls(await secure.get("/rdr/pprdr.asp"))["DALogin"] == (
            f"127.0.0.1:{https}/login2.srf")
        secure.close()
        ticket = await fetch_ticket(f"http://127.0.0.1:{http}/rdr/pprdr.asp",
                                    "alice@example.com", "secret", "lc=1033,id=507")
        assert passport.ticket_valid("alice@example.com", ticket)

    run(scenario, cert_dir=tmp_path)


def test_on_a_wildcard_address_the_nexus_names_the_address_the_client_reached() -> None:
    """`serve --listen 0.0.0.0:1863`: the nexus named 127.0.0.1 in DALogin and the other
    URLs whatever address a client had asked it on, so a client on another machine was
    sent to its own loopback to log in. It names the address the client connected to
    (127.0.0.2 here: another loopback address), and the login there works."""

    async def main() -> tuple[dict[str, str], str]:
        passport = Passport(check)
        await passport.start("0.0.0.0", http_port=0, https_port=None)
        try:
            port = passport.http_port
            reader, writer = await asyncio.open_connection("127.0.0.2", port)
            client = Client(reader, writer)
            urls = passport_urls(await client.get("/rdr/pprdr.asp"))
            client.close()
            ticket = await fetch_ticket(f"http://127.0.0.2:{port}/rdr/pprdr.asp",
                                        "alice@example.com", "secret", "lc=1033")
            return urls, f"{port} {ticket}"
        finally:
            await passport.close()

    urls, said = asyncio.run(asyncio.wait_for(main(), 10))
    port, ticket = said.split(" ", 1)
    assert urls["DALogin"] == f"127.0.0.2:{port}/login2.srf"
    assert urls["DAReg"] == f"http://127.0.0.2:{port}/reg"
    assert ticket.startswith("t=")


def test_twisted_style_login_on_every_login_path() -> None:
    async def scenario(passport: Passport) -> None:
        nexus = await Client.open(passport.http_port)
        urls = passport_urls(await nexus.get("/rdr/pprdr.asp"))
        nexus.close()
        assert urls["DALogin"] == f"127.0.0.1:{passport.http_port}/login2.srf"
        tickets = set()
        for path in ("/login2.srf", "/login", "/ppsecure/login.srf?lc=1033"):
            client = await Client.open(passport.http_port)
            response = await client.get(path, ("Authorization", TWISTED_AUTH))
            client.close()
            assert response.status_code == 200, path
            tickets.add(from_pp(response))
        assert len(tickets) == 3
        assert all(passport.ticket_valid("alice@example.com", t) for t in tickets)

    run(scenario, dalogin="http")


def test_wrong_password_unknown_account_and_bad_authorization_get_401() -> None:
    async def scenario(passport: Passport) -> None:
        client = await Client.open(passport.http_port)
        refusals = [
            ("Authorization", MSN_AUTH.format(pwd="wrong")),
            ("Authorization", MSN_AUTH.format(pwd="secret").replace("alice", "mallory")),
            ("Authorization", "Passport1.4 sign-in=alice%40example.com"),
            ("Authorization", "Basic YWxpY2U6c2VjcmV0"),
            ("Authorization", "Passport1.4 ,,,"),
            ("X-Nothing", "1"),
        ]
        for extra in refusals:
            response = await client.get("/login2.srf", extra)  # one keep-alive connection
            assert response.status_code == 401, extra
            assert header(response, "Authentication-Info") is None
            challenge = header(response, "WWW-Authenticate")
            assert challenge is not None
            assert challenge.startswith("Passport1.4 da-status=failed,srealm=Passport.NET,")
        client.close()
        assert passport._grants == {}  # no ticket issued

    run(scenario, https_port=None)


def test_expired_ticket_is_rejected() -> None:
    now = [1000.0]
    passport = Passport(check, ticket_ttl=60.0, clock=lambda: now[0])
    ticket = passport.issue("alice@example.com")
    now[0] += 59.9
    assert passport.ticket_valid("alice@example.com", ticket)
    now[0] += 0.1
    assert not passport.ticket_valid("alice@example.com", ticket)
    fresh = passport.issue("alice@example.com")  # issuing also drops the expired one
    assert passport.ticket_valid("alice@example.com", fresh)
    assert len(passport._grants) == 1


def test_keep_alive_serves_two_requests_on_one_connection() -> None:
    async def scenario(passport: Passport) -> None:
        client = await Client.open(passport.http_port)
        first = await client.get("/rdr/pprdr.asp")
        second = await client.get("/login2.srf", ("Authorization", TWISTED_AUTH))
        client.close()
        assert (first.status_code, second.status_code) == (200, 200)
        assert passport.ticket_valid("alice@example.com", from_pp(second))

    run(scenario, https_port=None)


def test_garbage_gets_400_and_the_server_keeps_serving() -> None:
    async def scenario(passport: Passport) -> None:
        for junk in JUNK:
            answer = await raw(passport.http_port, junk)
            assert answer.startswith(b"HTTP/1.1 400 "), junk
        answer = await raw(passport.http_port, b"GET / HTTP/9.9\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 505 ")
        answer = await raw(passport.http_port, b"GET /rdr/pprdr.asp HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 ") and b"PassportURLs: " in answer

    run(scenario, https_port=None)


def test_plaintext_on_the_https_port_does_not_hurt_it(tmp_path: Path) -> None:
    async def scenario(passport: Passport) -> None:
        assert passport.https_port is not None
        await raw(passport.https_port, b"GET /rdr/pprdr.asp HTTP/1.1\r\n\r\n")
        client = await Client.open(passport.https_port, trusting(tmp_path))
        assert (await client.get("/rdr/pprdr.asp")).status_code == 200
        client.close()

    run(scenario, cert_dir=tmp_path)


def test_oversized_head_and_body_are_refused() -> None:
    async def scenario(passport: Passport) -> None:
        pad = b"a" * 2 * MAX_HEAD
        big = b"GET /rdr/pprdr.asp HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad + b"\r\n\r\n"
        assert (await raw(passport.http_port, big)).startswith(b"HTTP/1.1 431 ")
        body = b"x" * 100_000
        post = b"GET /login2.srf HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        assert (await raw(passport.http_port, post + body)).startswith(b"HTTP/1.1 413 ")

    run(scenario, https_port=None)


def test_unknown_path_gets_404_and_other_methods_405() -> None:
    async def scenario(passport: Passport) -> None:
        client = await Client.open(passport.http_port)
        assert (await client.get("/nothing/here")).status_code == 404
        assert (await client.get("/rdr/pprdr.asp?x=1")).status_code == 200
        client.close()
        post = b"POST /login2.srf HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        assert (await raw(passport.http_port, post)).startswith(b"HTTP/1.1 405 ")

    run(scenario, https_port=None)


def test_silent_and_slow_clients_are_dropped() -> None:
    async def scenario(passport: Passport) -> None:
        silent = await raw(passport.http_port, b"")
        slow = await raw(passport.http_port, b"GET /rdr/pprdr.asp HTTP/1.1\r\nHost")
        assert (silent, slow) == (b"", b"")  # closed without an answer, well within 5 s

    run(scenario, Passport(check, read_timeout=0.2), https_port=None)


def test_failing_password_check_gets_500_not_a_crash() -> None:
    def broken(account: str, password: str) -> bool:
        raise RuntimeError("database is gone")

    async def scenario(passport: Passport) -> None:
        client = await Client.open(passport.http_port)
        response = await client.get("/login2.srf", ("Authorization", TWISTED_AUTH))
        assert response.status_code == 500
        assert (await client.get("/rdr/pprdr.asp")).status_code == 200
        client.close()

    run(scenario, Passport(broken), https_port=None)


def test_credentials_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    tickets: list[str] = []

    async def scenario(passport: Passport) -> None:
        client = await Client.open(passport.http_port)
        for pwd in ("secret", "hunter2wrong"):
            response = await client.get("/login2.srf", ("Authorization", MSN_AUTH.format(pwd=pwd)))
            if response.status_code == 200:
                tickets.append(from_pp(response))
        client.close()

    with caplog.at_level(logging.DEBUG, logger="msnsniff.server.passport"):
        run(scenario, https_port=None)
    assert len(tickets) == 1 and caplog.records
    for secret in ("secret", "hunter2wrong", tickets[0].split("&")[0][2:]):
        assert secret not in caplog.text


def test_lifecycle_errors(tmp_path: Path) -> None:
    passport = Passport(check)
    with pytest.raises(RuntimeError):
        _ = passport.http_port
    with pytest.raises(ValueError):
        Passport(check, ticket_ttl=0)

    async def scenario(passport: Passport) -> None:
        with pytest.raises(RuntimeError):
            await passport.start()

    run(scenario, passport, cert_dir=tmp_path)
    assert (tmp_path / "cert.pem").exists()  # a given cert_dir is kept
    made: list[Path] = []

    async def note_temporary_dir(passport: Passport) -> None:
        assert passport._tempdir is not None
        made.append(Path(passport._tempdir.name))
        assert (made[0] / "cert.pem").exists()

    run(note_temporary_dir)
    assert made and not made[0].exists()  # a temporary one is removed by close


async def _nexus_over_tls(passport: Passport, host: str, server_hostname: str,
                          context: ssl.SSLContext) -> dict[str, str]:  # fmt: skip
    """The PassportURLs of a nexus asked over HTTPS at `host`, verifying `server_hostname`."""
    port = passport.https_port
    assert port is not None
    reader, writer = await asyncio.open_connection(host, port, ssl=context,
                                                   server_hostname=server_hostname)
    client = Client(reader, writer)
    try:
        return passport_urls(await client.get("/rdr/pprdr.asp"))
    finally:
        client.close()


def test_https_certificate_names_the_listen_address_and_the_names_given(tmp_path: Path) -> None:
    """`serve --listen 127.0.0.2:1863`: the certificate named only 127.0.0.1, ::1 and
    localhost, so a client verifying it at 127.0.0.2 refused it. It names the listen host,
    and each `cert_names` (`serve --cert-name`), and the one kept in `cert_dir` from an
    earlier run without them is made again."""
    loopback_certificate(tmp_path)  # an earlier run's, for loopback only

    async def main() -> list[dict[str, str]]:
        passport = Passport(check)
        await passport.start("127.0.0.2", http_port=0, https_port=0, cert_dir=tmp_path,
                             cert_names=["msn.example.org", "192.0.2.77"])
        try:
            trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
            return [await _nexus_over_tls(passport, "127.0.0.2", name, trust)
                    for name in ("127.0.0.2", "msn.example.org", "192.0.2.77", "localhost")]
        finally:
            await passport.close()

    answers = asyncio.run(asyncio.wait_for(main(), 20))
    assert [urls["DALogin"].split(":")[0] for urls in answers] == ["127.0.0.2"] * 4


def test_https_on_a_wildcard_names_every_address_of_the_machine(tmp_path: Path) -> None:
    """`serve --listen 0.0.0.0:1863`: a client at the machine's own address got a name
    mismatch from the loopback-only certificate. Every address of the machine is named."""
    from msnsniff.server.tls import machine_addresses

    addresses = [a for a in machine_addresses() if a not in ("127.0.0.1", "::1")]
    if not addresses:
        pytest.skip("this machine has no address besides loopback")
    host = next((a for a in addresses if "." in a), addresses[0])

    async def main() -> dict[str, str]:
        passport = Passport(check)
        await passport.start("::" if ":" in host else "0.0.0.0", http_port=0, https_port=0,
                             cert_dir=tmp_path)
        try:
            trust = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
            assert set(addresses) <= set(passport.certificate_names)
            return await _nexus_over_tls(passport, host, host, trust)
        finally:
            await passport.close()

    urls = asyncio.run(asyncio.wait_for(main(), 20))
    assert urls["DALogin"].rsplit(":", 1)[0].strip("[]") == host


def test_http_off_listens_for_https_only(tmp_path: Path) -> None:
    """`serve --http-port off --https-port 8443` still listened for HTTP on a port of its
    choosing (and printed it): Passport always opened its HTTP listener. With HTTP off it
    opens none, and the nexus's other URLs are on the HTTPS listener."""

    async def main() -> tuple[int, dict[str, str], bool]:
        passport = Passport(check)
        await passport.start(http_port=None, https_port=0, cert_dir=tmp_path)
        try:
            https = passport.https_port
            assert https is not None
            client = await Client.open(https, trusting(tmp_path))
            urls = passport_urls(await client.get("/rdr/pprdr.asp"))
            client.close()
            with pytest.raises(RuntimeError, match="HTTP is off"):
                passport.http_port  # noqa: B018
            return https, urls, passport.has_http
        finally:
            await passport.close()

    https, urls, has_http = asyncio.run(asyncio.wait_for(main(), 20))
    assert not has_http
    assert urls["DALogin"] == f"127.0.0.1:{https}/login2.srf"
    assert urls["DAReg"] == f"https://127.0.0.1:{https}/reg"
    with pytest.raises(ValueError, match="an HTTP or an HTTPS listener"):
        asyncio.run(Passport(check).start(http_port=None, https_port=None))
