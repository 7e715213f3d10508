"""TLS for the reference server: a self-signed certificate and a server context.

The certificate names 127.0.0.1, ::1 and localhost, plus the address the server listens on
(on a wildcard, 0.0.0.0 or ::, every address of the machine and its host name, since a
client may reach any of them) and the names an operator adds (`serve --cert-name`). It is
made once with `cryptography` and kept in a directory so a client that was told to trust it
keeps trusting it across runs; it is made again only when it lacks a name now wanted. It is
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
import re
import socket
import ssl
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from msnsniff.addresses import UNSPECIFIED

CERT_NAME: Final = "cert.pem"
KEY_NAME: Final = "key.pem"
VALIDITY: Final = dt.timedelta(days=365)
"""How long a new certificate is valid."""
RENEW_BEFORE: Final = dt.timedelta(days=7)
"""A certificate this close to expiry (or past it) is replaced."""
LEGACY_CIPHERS: Final = "DEFAULT:3DES:@SECLEVEL=0"
"""Ciphers that let TLS 1.0 clients in; SECLEVEL 0 is what permits TLS < 1.2 on OpenSSL 3."""

LOOPBACK: Final[tuple[x509.GeneralName, ...]] = (
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
    x509.DNSName("localhost"),
)
_LABEL: Final = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_IF_INET6: Final = Path("/proc/net/if_inet6")
_FIB_TRIE: Final = Path("/proc/net/fib_trie")
_IPV6_UNSTABLE: Final = 0x01 | 0x20  # IFA_F_TEMPORARY, IFA_F_DEPRECATED: they come and go


def general_name(text: str) -> x509.GeneralName:
    """An IP address or a DNS name (ASCII, `*.` allowed first) as a certificate name;
    ValueError naming what is wrong otherwise."""
    try:
        return x509.IPAddress(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    if labels[:1] == ["*"] and len(labels) > 2:
        labels = labels[1:]
    if len(text) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{text!r} is neither an IP address nor a host name")
    return x509.DNSName(text.rstrip(".").lower())


def certificate_names(listen_host: str, extra: Iterable[str] = ()) -> tuple[x509.GeneralName, ...]:
    """What a certificate for a server listening on `listen_host` names: the loopback names,
    the host itself, on a wildcard every address of the machine and its host name, and
    `extra` (see `general_name`), each once."""
    texts: list[str] = []
    if listen_host in UNSPECIFIED:
        texts += machine_addresses()
        texts.append(socket.gethostname())
    else:
        texts.append(listen_host)
    names = list(LOOPBACK)
    for text in (*texts, *extra):
        with contextlib.suppress(ValueError):  # a host name that is no DNS name: left out
            name = general_name(text)
            if name not in names:
                names.append(name)
    return tuple(names)


def machine_addresses() -> list[str]:
    """This machine's IP addresses a client could connect to: every local IPv4 address and
    every stable IPv6 one (Linux, from /proc), and those its host name resolves to; link-local
    and temporary IPv6 addresses are left out (they change, and would renew the certificate)."""
    found: list[str] = []
    with contextlib.suppress(OSError, ValueError):  # no such file, or not its usual form
        for line in _IF_INET6.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 5 and not int(fields[4], 16) & _IPV6_UNSTABLE:
                found.append(str(ipaddress.IPv6Address(bytes.fromhex(fields[0]))))
    with contextlib.suppress(OSError):
        last = ""
        for line in _FIB_TRIE.read_text().splitlines():
            text = line.strip()
            if text.startswith(("|--", "+--")):
                last = text[3:].strip()
            elif text == "/32 host LOCAL":
                found.append(last)
    with contextlib.suppress(OSError, UnicodeError):
        for *_, sockaddr in socket.getaddrinfo(socket.gethostname(), None, 0, socket.SOCK_STREAM):
            found.append(str(sockaddr[0]))
    addresses: list[str] = []
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if not address.is_link_local and str(address) not in addresses:
            addresses.append(str(address))
    return addresses


def loopback_certificate(
    directory: Path, names: Sequence[x509.GeneralName] = LOOPBACK
) -> tuple[Path, Path]:
    """(cert.pem, key.pem) for `names` (by default 127.0.0.1, ::1 and localhost), self-signed;
    generated with cryptography on first use, reused while still valid and naming all of
    `names` (regenerated within 7 days of expiry).

    A pair that is unreadable, mismatched, expiring or missing a name is replaced; each file
    is written to a temporary name and renamed, so a reader never sees half a file. The key
    is mode 0600.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    if not _usable(cert_path, key_path, names):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write(key_path, key_pem, mode=0o600)
        cert = _self_signed(key, names)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert_path, key_path


def server_context(
    directory: Path, names: Sequence[x509.GeneralName] = LOOPBACK
) -> ssl.SSLContext:
    """A server SSLContext with the certificate for `names` from `directory`, ready for
    asyncio's `ssl=` argument, that also lets TLS 1.0 and 1.1 clients in where OpenSSL
    allows it."""
    cert_path, key_path = loopback_certificate(directory, names)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    # TLSv1 is deprecated, and meant; where OpenSSL refuses, its default minimum stays.
    with warnings.catch_warnings(), contextlib.suppress(ValueError, ssl.SSLError):
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers(LEGACY_CIPHERS)
    return ctx


def _usable(cert_path: Path, key_path: Path, wanted: Sequence[x509.GeneralName]) -> bool:
    """Whether the pair on disk loads, matches, names all `wanted` names and is not expiring."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    if key.public_key() != cert.public_key():
        return False
    if any(name not in names for name in wanted):
        return False
    now = dt.datetime.now(dt.UTC)
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


def _self_signed(key: rsa.RSAPrivateKey, names: Sequence[x509.GeneralName]) -> x509.Certificate:
    """A certificate for `names`, signed by its own key."""
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
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
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
