"""MSNP command payloads: MIME headers, content-type decoders, the P2P header, XML documents.

`decode_payload(cmd, body)` is the one entry point (used lazily by `CommandFrame.payload`);
it never raises. Decoders live in tables keyed by content type (`MIME_DECODERS`), by command
(`COMMAND_READERS`) and by XML root tag (`ROOT_DECODERS`), so adding a type is one entry.
"""

from dissectors.msnp.payloads.decode import (
    COMMAND_READERS,
    MIME_DECODERS,
    decode_payload,
)
from dissectors.msnp.payloads.model import Payload
from dissectors.msnp.payloads.xmldoc import ROOT_DECODERS

__all__ = [
    "COMMAND_READERS",
    "MIME_DECODERS",
    "ROOT_DECODERS",
    "Payload",
    "decode_payload",
]
