"""The MSNP (MSN Messenger protocol) dissector, MSNP2 to MSNP18."""

from dissectors.msnp.dissector import MsnpDissector
from dissectors.msnp.frames import (
    CommandFrame,
    ErrorFrame,
    GapFrame,
    MalformedFrame,
    MsnpFrame,
    PartialFrame,
)

__all__ = [
    "CommandFrame",
    "ErrorFrame",
    "GapFrame",
    "MalformedFrame",
    "MsnpDissector",
    "MsnpFrame",
    "PartialFrame",
]
