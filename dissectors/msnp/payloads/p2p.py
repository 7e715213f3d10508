"""`application/x-msnmsgrp2p` (MSNP9+): the 48-byte P2Pv1 binary header, data, footer, MSNSLP.

Layout of the MSG body: a little-endian header (session id, identifier, offset, total size,
message length, flags, ack identifier, ack unique id, ack data size), `message_length` bytes
of data, then a 4-byte big-endian application id. When the data is MSNSLP text (`INVITE
MSNMSGR:...`, `MSNSLP/1.0 200 OK`, `BYE`, `ACK`) it is decoded too: start line, headers, and
the `Name: value` body (EUF-GUID, SessionID, AppID, Context). Short or inconsistent input
gives problems, never exceptions.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

from construct import Bytes, Construct, Container, Int32ul, Int64ul, Struct

from dissectors.msnp.payloads import xmldoc
from dissectors.msnp.payloads.findings import Findings
from dissectors.msnp.payloads.mime import Mime, first_of, key_values, split_headers

P2P_HEADER: Final = Struct(
    "session_id" / Int32ul,
    "identifier" / Int32ul,
    "offset" / Int64ul,
    "total_size" / Int64ul,
    "message_length" / Int32ul,
    "flags" / Int32ul,
    "ack_identifier" / Int32ul,
    "ack_unique_id" / Int32ul,
    "ack_data_size" / Int64ul,
)
HEADER_SIZE: Final = 48
_HEADER_PARSER: Final = P2P_HEADER.compile()
"""`P2P_HEADER` compiled by construct into Python code: four times faster than interpreting."""
FOOTER_SIZE: Final = 4


def _parse(struct: Construct, data: bytes) -> Mapping[str, Any]:
    """`struct.parse(data)` without the reference cycles `parse` makes on every call (its
    context names itself as `_params` and `_root`), so a parsed header is freed as soon as it
    is read rather than left for the cycle collector. These structures take no parameters
    and never look at `_root`."""
    context = Container(_parsing=True, _building=False, _sizing=False, _root=None)
    context._params = Container()
    parsed: Mapping[str, Any] = struct._parsereport(io.BytesIO(data), context, "(parsing)")
    return parsed

HEADER_FIELDS: Final = (
    "session_id",
    "identifier",
    "offset",
    "total_size",
    "message_length",
    "flags",
    "ack_identifier",
    "ack_unique_id",
    "ack_data_size",
)

FLAGS: Final = (
    (0x1, "nak"),
    (0x2, "ack"),
    (0x4, "waiting for reply"),
    (0x8, "binary error"),
    (0x10, "file"),
    (0x20, "MSN object data"),
    (0x40, "close session"),
    (0x80, "transport error"),
    (0x100, "direct handshake"),
    (0x1000000, "file data"),
)
"""P2Pv1 flag bits (MSNPiki/imfreedom): e.g. 0x2 ack, 0x20 display picture or emoticon data,
0x1000030 file data."""

APP_IDS: Final = MappingProxyType(
    {
        0: "session negotiation (MSNSLP)",
        1: "MSN object (display picture or emoticon)",
        2: "file transfer",
        4: "webcam",
        11: "custom emoticon",
        12: "display picture",
    }
)
"""The big-endian footer: the application the data belongs to."""

EUF_GUIDS: Final = MappingProxyType(
    {
        "{A4268EEC-FEC5-49E5-95C3-F126696BDBF6}": "MSN object (display picture, emoticon, wink)",
        "{5D3E02AB-6190-11D3-BBBB-00C04F795683}": "file transfer",
        "{4BD96FC0-AB17-4425-A14A-439185962DC8}": "media session (webcam, send)",
        "{1C9AA97E-9C05-4583-A3BD-908A196F1E92}": "media receive only (webcam, view)",
        "{41D3E74E-04A2-4B37-96F8-08ACDB610874}": "photo sharing",
        "{6A13AF9C-5308-4F35-923A-67E8DDA40C2F}": "activity",
    }
)
"""MSNSLP INVITE `EUF-GUID`: which application a session is for."""

MSNOBJ_GUID: Final = "{A4268EEC-FEC5-49E5-95C3-F126696BDBF6}"
FILE_GUID: Final = "{5D3E02AB-6190-11D3-BBBB-00C04F795683}"

FILE_CONTEXT: Final = Struct(
    "length" / Int32ul,
    "version" / Int32ul,
    "file_size" / Int64ul,
    "type" / Int32ul,
    "file_name" / Bytes(520),
)
"""The file-transfer INVITE Context (base64): header length, version, size, type (0: with a
preview, 1: without), then the file name as 260 UTF-16LE characters."""
FILE_CONTEXT_MIN: Final = 20

SLP_START: Final = re.compile(rb"(?:INVITE|BYE|ACK|CANCEL) MSNMSGR:|MSNSLP/\d")
SLP_RESPONSE: Final = re.compile(r"(MSNSLP/\d+\.\d+) (\d{3})(?: (.*))?")
SLP_REQUEST: Final = re.compile(r"([A-Z]+) (\S+) (MSNSLP/\d+\.\d+)")
SLP_INT_HEADERS: Final = ("CSeq", "Max-Forwards", "Content-Length")
SLP_INT_BODY: Final = ("SessionID", "AppID")
SLP_SECRETS: Final = ("Nonce",)
"""An MSNSLP direct-connection Nonce authenticates the peer's handshake: a credential."""


_KNOWN_FLAGS: Final = sum(bit for bit, _ in FLAGS)


@lru_cache(maxsize=256)
def _flag_names(flags: int) -> tuple[str, ...]:
    return tuple(name for bit, name in FLAGS if flags & bit)


def flag_names(flags: int) -> list[str]:
    """The names of the P2P header's flag bits that are set."""
    return list(_flag_names(flags))


def decode_p2p(m: Mime, findings: Findings) -> None:
    """The P2P-Dest header, the binary header fields, the footer and any MSNSLP message."""
    out = findings.fields
    index = m.block.index
    for name, lower in (("P2P-Dest", "p2p-dest"), ("P2P-Src", "p2p-src")):
        value = index.get(lower)
        if value is not None:
            out[name] = value
    if "P2P-Dest" not in out:
        findings.problem("P2P message without a P2P-Dest header")
    body = m.body
    if len(body) < HEADER_SIZE:
        findings.problem(f"P2P header too short: {len(body)} of {HEADER_SIZE} bytes")
        return
    parsed = _parse(_HEADER_PARSER, body[:HEADER_SIZE])
    values = [int(parsed[name]) for name in HEADER_FIELDS]
    out.update(zip(HEADER_FIELDS, values, strict=True))
    offset, total, length, flags = values[2], values[3], values[4], values[5]
    out["flag_names"] = flag_names(flags)
    unknown = flags & ~_KNOWN_FLAGS
    if unknown:
        out["flags_unknown"] = unknown
    available = len(body) - HEADER_SIZE
    if length > available:
        findings.problem(
            f"P2P message length {length} overruns the payload ({available} bytes after the header)"
        )
        data = body[HEADER_SIZE:]
        rest = b""
    else:
        data = body[HEADER_SIZE : HEADER_SIZE + length]
        rest = body[HEADER_SIZE + length :]
    out["data_length"] = len(data)
    if len(rest) < FOOTER_SIZE:
        findings.problem(f"P2P footer missing ({len(rest)} of {FOOTER_SIZE} bytes)")
    else:
        app = int.from_bytes(rest[:FOOTER_SIZE], "big")
        out["app_id"] = app
        app_name = APP_IDS.get(app)
        out["app_name"] = f"application {app}" if app_name is None else app_name
        if len(rest) > FOOTER_SIZE:
            findings.problem(f"{len(rest) - FOOTER_SIZE} bytes after the P2P footer")
    if offset + length > total and not flags & 0x2:
        findings.problem(f"P2P offset {offset} + length {length} exceeds total size {total}")
    if SLP_START.match(data):
        whole = offset == 0 and length == total
        out["slp"] = decode_slp(data, findings, whole)


def decode_slp(data: bytes, findings: Findings, whole: bool) -> dict[str, Any]:
    """An MSNSLP message: start line, headers, and the `Name: value` body.

    `whole` is false when the P2P message is one chunk of a larger one; a body shorter than
    Content-Length is then expected rather than a problem.
    """
    slp: dict[str, Any] = {}
    nl = data.find(b"\n")
    start = (data if nl < 0 else data[:nl]).rstrip(b"\r").decode("utf-8", "replace")
    slp["start_line"] = start
    response = SLP_RESPONSE.fullmatch(start)
    request = SLP_REQUEST.fullmatch(start)
    if response is not None:
        slp.update(kind="response", version=response[1], status=int(response[2]))
        slp["reason"] = response[3] or ""
    elif request is not None:
        slp.update(kind="request", method=request[1], uri=request[2], version=request[3])
    else:
        findings.problem(f"MSNSLP start line not understood: {start[:60]!r}")
    if nl < 0:
        findings.problem("MSNSLP message has no headers")
        return slp
    sub = Findings()
    pairs, body = split_headers(data[nl + 1 :], sub)
    for problem in sub.problems:
        findings.problem(f"MSNSLP: {problem}")
    headers = first_of(list(pairs), findings, "MSNSLP")
    slp["headers"] = headers
    for name in SLP_INT_HEADERS:
        raw = headers.get(name)
        if raw is not None:
            if raw.isascii() and raw.isdigit() and len(raw) <= 10:
                slp[name] = int(raw)
            else:
                findings.problem(f"MSNSLP {name}: expected an integer, got {raw[:20]!r}")
    declared = slp.get("Content-Length")
    if isinstance(declared, int):
        if len(body) < declared and whole:
            findings.problem(f"MSNSLP Content-Length {declared} but {len(body)} bytes follow")
        body = body[:declared]
    slp["content_type"] = headers.get("Content-Type")
    text = body.decode("utf-8", "replace").rstrip("\x00")
    values = first_of(key_values(text, findings, "MSNSLP body"), findings, "MSNSLP body")
    fields: dict[str, Any] = dict(values)
    for name in SLP_INT_BODY:
        raw = values.get(name)
        if raw is not None and raw.isascii() and raw.isdigit() and len(raw) <= 10:
            fields[name] = int(raw)
    slp["body"] = fields
    for name in SLP_SECRETS:
        if name in fields:
            findings.secret(name)
    guid = values.get("EUF-GUID")
    if guid is not None:
        slp["application"] = EUF_GUIDS.get(guid.upper(), "unknown application")
        context = values.get("Context")
        if context:
            _context(guid.upper(), context, slp, findings)
    return slp


def _context(guid: str, context: str, slp: dict[str, Any], findings: Findings) -> None:
    """Decode the base64 INVITE Context: an MSN object, or the file-transfer header."""
    try:
        raw = base64.b64decode(context, validate=True)
    except (binascii.Error, ValueError):
        findings.problem("MSNSLP Context is not base64")
        return
    if guid == MSNOBJ_GUID:
        obj = xmldoc.msnobj(raw.decode("utf-8", "replace"), findings, "MSNSLP Context")
        if obj is not None:
            slp["context_msnobj"] = obj
    elif guid == FILE_GUID:
        slp["context_file"] = file_context(raw, findings)


def file_context(raw: bytes, findings: Findings) -> dict[str, Any]:
    """The file-transfer Context: size, name and whether a preview follows."""
    if len(raw) < FILE_CONTEXT_MIN:
        findings.problem(f"file transfer Context too short: {len(raw)} bytes")
        return {}
    padded = raw[: FILE_CONTEXT_MIN + 520].ljust(FILE_CONTEXT_MIN + 520, b"\x00")
    parsed = _parse(FILE_CONTEXT, padded)
    name = bytes(parsed["file_name"]).decode("utf-16-le", "replace").split("\x00", 1)[0]
    return {
        "header_length": int(parsed["length"]),
        "version": int(parsed["version"]),
        "file_size": int(parsed["file_size"]),
        "type": int(parsed["type"]),
        "has_preview": int(parsed["type"]) == 0,
        "file_name": name,
    }
