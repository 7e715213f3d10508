"""Builders for payload tests: CRLF text and P2P messages."""

from __future__ import annotations

import struct


def crlf(text: str) -> bytes:
    """Text written with LF line ends, as the wire's CRLF bytes."""
    return text.replace("\n", "\r\n").encode("utf-8")


def mime(content_type: str, body: bytes | str = b"", **headers: str) -> bytes:
    """A MSG payload: MIME-Version, Content-Type, extra headers (`_` becomes `-`), body."""
    lines = ["MIME-Version: 1.0", f"Content-Type: {content_type}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + raw


def p2p_header(
    *,
    session: int = 0,
    ident: int = 0x3F0A0001,
    offset: int = 0,
    total: int = 0,
    length: int = 0,
    flags: int = 0,
    ack_id: int = 0,
    ack_uid: int = 0,
    ack_size: int = 0,
) -> bytes:
    return struct.pack(
        "<IIQQIIIIQ", session, ident, offset, total, length, flags, ack_id, ack_uid, ack_size
    )


def p2p(data: bytes = b"", *, footer: int = 0, dest: str = "bob@example.com", **kw: int) -> bytes:
    """A complete P2P MSG payload whose header lengths match `data` unless overridden."""
    kw.setdefault("total", len(data))
    kw.setdefault("length", len(data))
    head = mime("application/x-msnmsgrp2p", P2P_Dest=dest)
    return head + p2p_header(**kw) + data + struct.pack(">I", footer)


def slp(start: str, headers: dict[str, str], body: str) -> bytes:
    """An MSNSLP message with Content-Length computed over the body plus its NUL."""
    raw_body = body.encode("utf-8") + b"\x00"
    lines = [start] + [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(raw_body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + raw_body
