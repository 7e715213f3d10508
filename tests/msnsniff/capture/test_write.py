"""The pcap and pcapng writers' headers."""

from __future__ import annotations

import io
import struct

from msnsniff.capture.write import SNAPLEN, PcapngWriter, PcapWriter


def test_the_files_sniff_writes_declare_the_snapshot_length_it_captures_with() -> None:
    """`sniff -w` keeps each packet whole up to the live capture's snapshot length, and the
    file's header says how much a packet may hold: the two are one constant, so a packet the
    capture kept whole is never longer than its file says a packet can be."""
    pcap = io.BytesIO()
    PcapWriter(pcap)
    assert struct.unpack_from("<I", pcap.getvalue(), 16)[0] == SNAPLEN == 262144
    ng = io.BytesIO()
    PcapngWriter(ng)
    shb_length = struct.unpack_from("<I", ng.getvalue(), 4)[0]
    assert struct.unpack_from("<I", ng.getvalue(), shb_length + 12)[0] == SNAPLEN
