"""`decode_payload`: pick a reader by command, and a content decoder by content type.

Two tables drive it: `COMMAND_READERS` (command -> how the payload is framed: MIME, XML,
challenge answer, or text that may be XML) and `MIME_DECODERS` (lower-case content type ->
decoder). Unknown commands and content types still give headers and body, with no fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from dissectors.msnp.payloads import xmldoc
from dissectors.msnp.payloads.findings import Findings
from dissectors.msnp.payloads.mime import NO_HEADERS, HeaderBlock, split_mime, strict_text
from dissectors.msnp.payloads.model import Payload, new_payload
from dissectors.msnp.payloads.p2p import decode_p2p
from dissectors.msnp.payloads.text import TEXT_DECODERS, ContentDecoder

P2P_TYPE: Final = "application/x-msnmsgrp2p"

MIME_DECODERS: Final[Mapping[str, ContentDecoder]] = MappingProxyType(
    {**TEXT_DECODERS, P2P_TYPE: decode_p2p}
)
"""Content decoders by lower-case media type (parameters stripped)."""

BINARY_TYPES: Final = frozenset({P2P_TYPE})
"""Content types whose body is binary: always shown as base64."""

_QRY_ANSWER: Final = re.compile(rb"[0-9a-f]{32}")

Reader = Callable[[str, bytes], Payload]


def _freeze(
    data: bytes,
    findings: Findings,
    kind: str,
    body: bytes,
    block: HeaderBlock,
    text: str | None,
    binary: bool,
) -> Payload:
    """The `Payload`; `text` is `body` strictly decoded (None if binary or undecodable)."""
    if text is None and not binary and body:
        findings.problem(f"body is not valid {block.charset or 'UTF-8'} text (shown as base64)")
    return new_payload(
        len(data),
        block.content_type,
        block.charset,
        block.headers,
        body,
        MappingProxyType(findings.fields),
        findings.final_problems(),
        tuple(findings.credentials),
        kind,
        text,
        binary,
    )


def _payload(data: bytes, findings: Findings, kind: str) -> Payload:
    """A payload without headers: all of `data` is the body, read as UTF-8 text if it is."""
    return _freeze(data, findings, kind, data, NO_HEADERS, strict_text(data, None), False)


def read_mime(cmd: str, data: bytes) -> Payload:
    """MSG/UUM/UBM: MIME headers, blank line, body; then the content type's decoder."""
    findings = Findings()
    mime = split_mime(data, findings, BINARY_TYPES)
    block = mime.block
    decoder = MIME_DECODERS.get(block.content_type or "")
    if decoder is not None:
        decoder(mime, findings)
    for name in block.tickets:
        findings.secret(name)
    binary = block.content_type in BINARY_TYPES
    return _freeze(data, findings, "mime", mime.body, block, mime.text, binary)


def _read_xml(cmd: str, data: bytes, *, strict: bool) -> Payload:
    findings = Findings()
    if not data.strip():
        return _payload(data, findings, "empty")
    if xmldoc.looks_like_xml(data):
        xmldoc.decode_document(data, findings, f"{cmd} payload")
        return _payload(data, findings, "xml")
    if strict:
        findings.problem(f"{cmd} payload is not XML")
    return _payload(data, findings, "text")


def read_xml(cmd: str, data: bytes) -> Payload:
    """NOT, UBX/UUX, ADL/RML/FQY, GCF and MSNP13+ error replies: an XML document."""
    return _read_xml(cmd, data, strict=True)


def read_any(cmd: str, data: bytes) -> Payload:
    """IPG, UUN/UBN, SDC, PAG and unknown commands: XML when it looks like XML, else text."""
    return _read_xml(cmd, data, strict=False)


def read_qry(cmd: str, data: bytes) -> Payload:
    """QRY: the 32 lower-case hex digits answering a CHL challenge (not a credential)."""
    findings = Findings()
    findings.fields["answer"] = data.decode("ascii", "replace")
    if _QRY_ANSWER.fullmatch(data) is None:
        findings.problem("QRY answer is not 32 lower-case hexadecimal digits")
    return _payload(data, findings, "challenge-answer")


COMMAND_READERS: Final[Mapping[str, Reader]] = MappingProxyType(
    {
        "MSG": read_mime,
        "UUM": read_mime,
        "UBM": read_mime,
        "QRY": read_qry,
        "NOT": read_xml,
        "UBX": read_xml,
        "UUX": read_xml,
        "ADL": read_xml,
        "RML": read_xml,
        "FQY": read_xml,
        "GCF": read_xml,
        "IPG": read_any,
        "UUN": read_any,
        "UBN": read_any,
        "SDC": read_any,
        "PAG": read_any,
    }
)
"""How each payload command's bytes are read; three-digit error codes read as XML."""


MIME_COMMANDS: Final = frozenset(c for c, r in COMMAND_READERS.items() if r is read_mime)
"""The commands whose payload `read_mime` reads (it does not look at the command)."""

BODY_AS_TEXT: Final[Mapping[str, str | None]] = MappingProxyType(
    {
        "text/plain": "text",
        "text/x-msmsgscontrol": None,
        "text/x-msmsgsprofile": None,
        "text/x-keepalive": None,
    }
)
"""Content types whose decoder reads the body only as its text, whole, into the named field
(always the first one; None: not into any). When the body decodes, everything else about
such a payload (headers, the other fields, problems, credentials) depends on its header block
alone, so a renderer may work it out once per block (`msnsniff.output` does, for JSON Lines).
A decoder that starts reading anything else of the body must leave this table."""


def reader_for(cmd: str) -> Reader:
    """The payload reader for a command: its own, XML for an error code's, else the generic one."""
    reader = COMMAND_READERS.get(cmd)
    if reader is not None:
        return reader
    if len(cmd) == 3 and cmd.isascii() and cmd.isdigit():
        return read_xml
    return read_any


def decode_payload(cmd: str, body: bytes) -> Payload:
    """Decode the payload `body` carried by command `cmd`. Never raises."""
    data = body if type(body) is bytes else bytes(body)
    try:
        reader = COMMAND_READERS.get(cmd) or reader_for(cmd)
        return reader(cmd, data)
    except Exception as exc:  # the contract is "never raises": keep the bytes, say why
        findings = Findings()
        findings.problem(f"payload decoder failed ({type(exc).__name__}); shown undecoded")
        return _payload(data, findings, "raw")
