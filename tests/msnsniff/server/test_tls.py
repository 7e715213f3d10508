"""The loopback certificate and the server TLS context, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from msnsniff.server.tls import (
    LOOPBACK,
    certificate_names,
    general_name,
    loopback_certificate,
    server_context,
)


def test_certificate_names_the_loopback_addresses(tmp_path: Path) -> None:
    cert_path, key_path = loopback_certificate(tmp_path / "certs")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.issuer == cert.subject
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)
    assert key_path.stat().st_mode & 0o077 == 0


def test_certificate_is_reused_while_valid(tmp_path: Path) -> None:
    first = loopback_certificate(tmp_path)
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in first]
    second = loopback_certificate(tmp_path)
    assert second == first
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in second] == before


def test_certificate_near_expiry_is_regenerated(tmp_path: Path) -> None:
    cert_path, key_path = loopback_certificate(tmp_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    old = x509.load_pem_x509_certificate(cert_path.read_bytes())
    now = dt.datetime.now(dt.UTC)
    expiring = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=360))
        .not_valid_after(now + dt.timedelta(days=6))
        .add_extension(old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
                       critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path.write_bytes(expiring.public_bytes(serialization.Encoding.PEM))
    loopback_certificate(tmp_path)
    renewed = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert renewed.not_valid_after_utc - now > dt.timedelta(days=300)
    assert key_path.read_bytes() != key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip


def test_damaged_or_mismatched_pair_is_regenerated(tmp_path: Path) -> None:
    cert_path, key_path = loopback_certificate(tmp_path)
    cert_path.write_bytes(b"not a certificate")
    loopback_certificate(tmp_path)
    x509.load_pem_x509_certificate(cert_path.read_bytes())
    good_cert = cert_path.read_bytes()
    other = tmp_path / "other"
    _, other_key = loopback_certificate(other)
    key_path.write_bytes(other_key.read_bytes())
    loopback_certificate(tmp_path)
    assert cert_path.read_bytes() != good_cert
    server_context(tmp_path)  # loads: the pair matches again


async def _handshake(directory: Path, client: ssl.SSLContext) -> str | None:
    """Serve one TLS connection with `server_context(directory)`; the negotiated version."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_context(directory))
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        assert await asyncio.wait_for(reader.read(), 5) == b"hello"
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        writer.close()
        return ssl_object.version()
    finally:
        server.close()
        await server.wait_closed()


def test_client_trusting_the_certificate_verifies_it_strictly(tmp_path: Path) -> None:
    cert_path, _ = loopback_certificate(tmp_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    assert asyncio.run(_handshake(tmp_path, client)) in ("TLSv1.2", "TLSv1.3")


def test_untrusting_client_refuses_the_certificate(tmp_path: Path) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        asyncio.run(_handshake(tmp_path, ssl.create_default_context()))


def test_tls_1_0_client_is_accepted_where_openssl_allows(tmp_path: Path) -> None:
    cert_path, _ = loopback_certificate(tmp_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client.minimum_version = ssl.TLSVersion.TLSv1
            client.maximum_version = ssl.TLSVersion.TLSv1
        client.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot make a TLS 1.0 client")
    assert asyncio.run(_handshake(tmp_path, client)) == "TLSv1"


def test_certificate_names_for_a_host_and_names_given() -> None:
    names = certificate_names("192.0.2.5", ["MSN.example.org.", "[2001:db8::1]", "192.0.2.5"])
    assert [str(name.value) for name in names] == [
        "127.0.0.1", "::1", "localhost", "192.0.2.5", "msn.example.org", "2001:db8::1",
    ]  # fmt: skip
    assert certificate_names("127.0.0.1") == LOOPBACK
    for bad in ("two words", "-lead.example", "caf\u00e9.example", "", "a..b"):
        with pytest.raises(ValueError, match="neither an IP address nor a host name"):
            general_name(bad)
