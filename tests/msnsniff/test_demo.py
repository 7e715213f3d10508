"""The bundled demo capture is what `python -m msnsniff.demo` writes, and says what it shows."""

from __future__ import annotations

from pathlib import Path

from dissectors.msnp.frames import CommandFrame
from msnsniff.demo import main
from tests.helpers import read_frames

DEMO = Path(__file__).resolve().parents[2] / "captures" / "msnp8_demo.pcap"


def test_the_bundled_demo_is_what_the_module_writes(tmp_path: Path) -> None:
    out = tmp_path / "demo.pcap"
    assert main([str(out)]) == 0
    assert out.read_bytes() == DEMO.read_bytes()


def test_the_profile_client_port_is_byte_swapped_as_msn_wrote_it() -> None:
    """Seed 003's ClientPort 18183 is port 1863 with its bytes swapped: the demo's profile
    reads back as the NS connection's own client port once swapped again."""
    from msnsniff.capture.sources import open_source
    from msnsniff.registry import load_dissectors
    from msnsniff.session.capture_session import CaptureSession

    records = list(CaptureSession(load_dissectors()).run(open_source(DEMO)))
    profiles = [r for r in records if isinstance(r.frame, CommandFrame) and r.frame.payload
                and r.frame.payload.content_type == "text/x-msmsgsprofile"]  # fmt: skip
    assert len(profiles) == 1
    record = profiles[0]
    assert isinstance(record.frame, CommandFrame) and record.flow.client is not None
    payload = record.frame.payload
    assert payload is not None
    client_port = int(record.flow.client.rpartition(":")[2])
    assert payload.fields["ClientPort"] != client_port
    assert payload.fields["ClientPort_decoded"] == client_port
    assert len(read_frames(DEMO)) == 63


def test_usage_without_a_path() -> None:
    assert main([]) == 2
