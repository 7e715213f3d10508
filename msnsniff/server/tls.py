"""TLS for the reference server: a self-signed loopback certificate and a server context.

The certificate names 127.0.0.1, ::1 and localhost, is made once with `cryptography` and kept
in a directory so a client that was told to trust it keeps trusting it across runs. It is
RSA 2048 signed with SHA-256 (old Windows clients have no ECDSA), and marked as its own CA
(critical basic constraints, key identifiers) so it can be installed as a trusted root and
passes OpenSSL's strict verification.

What works here (OpenSSL 3.0, CPython 3.11): `minimum_version = TLSv1` plus the cipher string
`DEFAULT:3DES:@SECLEVEL=0` is accepted, and a TLS 1.0 client (AES-SHA suites) completes a
handshake. This OpenSSL build has no 3DES or RC4, so clients that know nothing newer (stock
Windows XP SChannel) still cannot connect; on builds that have 3DES the string picks it up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
import tempfile
import warnings
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_NAME: Final = "cert.pem"
KEY_NAME: Final = "key.pem"
VALIDITY: Final = dt.timedelta(days=365)
"""How long a new certificate is valid."""
RENEW_BEFORE: Final = dt.timedelta(days=7)
"""A certificate this close to expiry (or past it) is replaced."""
LEGACY_CIPHERS: Final = "DEFAULT:3DES:@SECLEVEL=0"
"""Ciphers that let TLS 1.0 clients in; SECLEVEL 0 is what permits TLS < 1.2 on OpenSSL 3."""

_NAMES: Final = (
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
    x509.DNSName("localhost"),
)


def loopback_certificate(directory: Path) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for 127.0.0.1, ::1 and localhost, self-signed; generated with
    cryptography on first use, reused while still valid (regenerated within 7 days of expiry).

    A pair that is unreadable, mismatched or expiring is replaced; each file is written to a
    temporary name and renamed, so a reader never sees half a file. The key is mode 0600.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    if not _usable(cert_path, key_path):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write(key_path, key_pem, mode=0o600)
        _write(cert_path, _self_signed(key).public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert_path, key_path


def server_context(directory: Path) -> ssl.SSLContext:
    """A server SSLContext with the loopback certificate from `directory`, ready for asyncio's
    `ssl=` argument, that also lets TLS 1.0 and 1.1 clients in where OpenSSL allows it."""
    cert_path, key_path = loopback_certificate(directory)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    # TLSv1 is deprecated, and meant; where OpenSSL refuses, its default minimum stays.
    with warnings.catch_warnings(), contextlib.suppress(ValueError, ssl.SSLError):
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers(LEGACY_CIPHERS)
    return ctx


def _usable(cert_path: Path, key_path: Path) -> bool:
    """Whether the pair on disk loads, matches, names all loopback names and is not expiring."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    if key.public_key() != cert.public_key():
        return False
    if any(name not in names for name in _NAMES):
        return False
    now = dt.datetime.now(dt.UTC)
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A certificate for the loopback names, signed by its own key."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "msnsniff reference server"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))  # tolerate a client clock a day behind
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(_NAMES)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to `path` through a temporary file in the same directory and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
