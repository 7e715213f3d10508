"""The client's Passport side against the reference server's Passport, over real sockets."""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest

from msnsniff.client.passport import default_nexus, fetch_ticket
from msnsniff.server.passport import Passport
from tests.helpers import ipv6_loopback


def test_the_default_nexus_of_an_ipv6_server_keeps_its_host_apart_from_its_port() -> None:
    """`send --server '[::1]:1863'` built `https://::1:8443/rdr/pprdr.asp`: a URL whose host
    is not `::1`, so the reference server's loopback certificate was checked as a stranger's
    and the login failed (CERTIFICATE_VERIFY_FAILED). The default is bracketed now, and a
    ticket comes through a URL built that way from a Passport on ::1."""
    url = default_nexus("::1", "https")
    assert url == "https://[::1]:8443/rdr/pprdr.asp"
    parts = urllib.parse.urlsplit(url)
    assert (parts.hostname, parts.port) == ("::1", 8443)
    assert default_nexus("127.0.0.1", "http") == "http://127.0.0.1:8081/rdr/pprdr.asp"

    async def main() -> str:
        passport = Passport(lambda account, password: password == "alice-pass")
        await passport.start("::1", http_port=0, https_port=0)
        try:
            nexus = default_nexus("::1", "https", passport.https_port)
            return await fetch_ticket(nexus, "alice@example.com", "alice-pass", "lc=1033")
        finally:
            await passport.close()

    missing = ipv6_loopback()
    if missing is not None:
        pytest.skip(missing)
    ticket = asyncio.run(asyncio.wait_for(main(), 20))
    assert ticket.startswith("t=")


def test_a_nexus_or_dalogin_that_is_no_http_url_is_a_client_error() -> None:
    """`send --nexus notaurl` ended in urllib's ValueError traceback ('unknown url type'),
    and `replay --nexus notaurl --allow-remote` logged 'Task exception was never retrieved'
    and then waited out --timeout. A nexus given, or a DALogin a server names, that is not
    an http(s) URL with a host is a ClientError saying so; an ftp:// one is refused too
    (urllib would have spoken FTP)."""
    from msnsniff.client.connection import ClientError
    from msnsniff.client.passport import nexus_problem

    assert nexus_problem("https://127.0.0.1:8443/rdr/pprdr.asp") is None
    assert nexus_problem("http://[::1]/rdr/pprdr.asp") is None
    for bad in ("notaurl", "ftp://127.0.0.1/x", "http:///x", "127.0.0.1:8081/rdr/pprdr.asp"):
        assert nexus_problem(bad) == "an http:// or https:// URL with a host", bad
    for bad in ("http://127.0.0.1:99999/x", "http://127.0.0.1:0/x", "http://127.0.0.1:x/"):
        assert nexus_problem(bad) == "a port 1-65535", bad

    async def dalogin_ftp() -> str:
        async def nexus(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nPassportURLs: DALogin=ftp://127.0.0.1/login\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(nexus, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await fetch_ticket(f"http://127.0.0.1:{port}/rdr/pprdr.asp",
                                      "alice@example.com", "pw", "lc=1033", 5)  # fmt: skip
        finally:
            server.close()

    with pytest.raises(ClientError, match=r"^Passport: 'notaurl' is not an http:// or https:"):
        asyncio.run(fetch_ticket("notaurl", "alice@example.com", "pw", "lc=1033", 5))
    with pytest.raises(ClientError, match=r"^Passport: 'ftp://127\.0\.0\.1/login' is not an"):
        asyncio.run(asyncio.wait_for(dalogin_ftp(), 20))


def test_a_passport_that_cannot_be_reached_is_said_in_plain_words() -> None:
    """`send` and `replay` with a nexus nobody listens on said "Passport: URL: <urlopen
    error [Errno 111] Connection refused>", urllib's repr; one that never answered, "<urlopen
    error timed out>". They say what failed and why in words now."""
    import socket

    from msnsniff.client.connection import ClientError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts (the kernel does) and never answers
    quiet = silent.getsockname()[1]
    nexus = "http://127.0.0.1:{}/rdr/pprdr.asp"
    said = []
    try:
        for port, timeout in ((dead, 5.0), (quiet, 0.5)):
            with pytest.raises(ClientError) as caught:
                asyncio.run(fetch_ticket(nexus.format(port), "alice@example.com", "pw",
                                         "lc=1033", timeout))  # fmt: skip
            said.append(str(caught.value))
    finally:
        silent.close()
    assert said == [
        f"Passport: cannot reach {nexus.format(dead)}: Connection refused",
        f"Passport: cannot reach {nexus.format(quiet)}: no answer within 0.5 s",
    ]


def test_an_https_nexus_that_is_plain_http_is_said_to_be() -> None:
    """`send --nexus https://HOST:8081/...` (serve's HTTP Passport port) said "[SSL:
    WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)": true, and opaque to most.
    It says the other end does not speak TLS, and which URL to try."""
    from msnsniff.client.connection import ClientError

    async def main() -> str:
        passport = Passport(lambda account, password: True)
        await passport.start("127.0.0.1", http_port=0, https_port=None)
        try:
            nexus = f"https://127.0.0.1:{passport.http_port}/rdr/pprdr.asp"
            with pytest.raises(ClientError) as caught:
                await fetch_ticket(nexus, "alice@example.com", "pw", "lc=1033", 5)
            return str(caught.value).replace(str(passport.http_port), "P")
        finally:
            await passport.close()

    said = asyncio.run(asyncio.wait_for(main(), 20))
    assert said == ("Passport: cannot reach https://127.0.0.1:P/rdr/pprdr.asp: it does not "
                    "speak TLS there (a plain HTTP Passport? try "
                    "http://127.0.0.1:P/rdr/pprdr.asp)"), said
