"""Every analyzer takes whatever frames the dissector yields without raising: random mixes of
real command lines (both directions, odd arguments, error replies, payloads) and junk."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dissectors.api import Direction
from msnsniff.capture import Flow
from msnsniff.session.analysis import Analysis
from msnsniff.session.capture_session import CaptureSession, FrameRecord
from msnsniff.session.stats import Stats
from tests.helpers import frames_of

C2S, S2C = Direction.C2S, Direction.S2C
PLAIN = b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi"
CLIENT = [
    b"VER 1 MSNP8 CVR0\r\n", b"USR 2 TWN I a@b.c\r\n", b"USR 3 TWN S t=x\r\n",
    b"USR 1 a@b.c 12.34\r\n", b"ANS 1 a@b.c 12.34 999\r\n", b"SYN 4 0\r\n",
    b"CHG 5 NLN 0\r\n", b"CHG 5 XYZ\r\n", b"ADD 6 FL b@c.d B 0\r\n", b"ADD 7 RL b@c.d B\r\n",
    b"REM 8 AL b@c.d\r\n", b"REA 9 a@b.c " + b"x" * 400 + b"\r\n", b"ADG 10 g 0\r\n",
    b"RMG 11 0\r\n", b"REG 12 1 n 0\r\n", b"XFR 13 SB\r\n", b"CAL 14 b@c.d\r\n",
    b"MSG 15 A %d\r\n" % len(PLAIN) + PLAIN, b"MSG 16 Z 0\r\n", b"QRY 17 x 32\r\n" + b"0" * 32,
    b"PNG\r\n", b"OUT\r\n", b"BLP 18 BL\r\n", b"GTC 19 N\r\n", b"ADC 20 FL N=b@c.d\r\n",
]  # fmt: skip
SERVER = [
    b"VER 1 MSNP8\r\n", b"USR 2 OK a@b.c A 1 0\r\n", b"USR 1 OK a@b.c A\r\n",
    b"XFR 2 NS 1.2.3.4:1863 0 5.6.7.8:1863\r\n", b"XFR 13 SB 1.2.3.4:1864 CKI 12.34\r\n",
    b"SYN 4 12 1 1\r\n", b"SYN 4 12\r\n", b"GTC A\r\n", b"BLP AL\r\n", b"LSG 0 g 0\r\n",
    b"LSG x y\r\n", b"LST b@c.d B 11 0\r\n", b"LST b@c.d B zz 0,x\r\n",
    b"ADD 6 FL 13 b@c.d B 0\r\n", b"ADD 0 RL 14 c@d.e C\r\n", b"REM 0 RL 15 c@d.e\r\n",
    b"REM 8 AL x b@c.d\r\n", b"ADG 10 16 g 1 0\r\n", b"RMG 11 17 99999999999\r\n",
    b"REG 12 18 1 n 0\r\n", b"CHG 5 NLN 0\r\n", b"ILN 5 NLN b@c.d B 268435492\r\n",
    b"NLN AWY b@c.d B 0\r\n", b"FLN b@c.d\r\n", b"RNG 999 1.2.3.4:1864 CKI 12.34 b@c.d B\r\n",
    b"CAL 14 RINGING 999\r\n", b"JOI b@c.d B\r\n", b"IRO 1 1 1 b@c.d B\r\n", b"ANS 1 OK\r\n",
    b"ACK 15\r\n", b"NAK 15\r\n", b"BYE b@c.d\r\n", b"CHL 0 123\r\n", b"QRY 17\r\n",
    b"201 5\r\n", b"216 8\r\n", b"215 6\r\n", b"224 11\r\n", b"911 2\r\n", b"999 77\r\n",
    b"MSG b@c.d B %d\r\n" % len(PLAIN) + PLAIN, b"MSG Hotmail Hotmail 0\r\n", b"OUT OTH\r\n",
]  # fmt: skip
LINES = st.one_of(
    st.tuples(st.just(C2S), st.sampled_from(CLIENT)),
    st.tuples(st.just(S2C), st.sampled_from(SERVER)),
    st.tuples(st.sampled_from([C2S, S2C]), st.binary(min_size=1, max_size=40)),
)


EXAMPLES = int(os.environ.get("MSNSNIFF_EXAMPLES", "150"))  # raise it for a longer search


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.lists(LINES, max_size=40), min_size=1, max_size=3))
def test_analyzers_never_raise_on_any_frames(
    connections: list[list[tuple[Direction, bytes]]],
) -> None:
    from msnsniff.reports import add_all_analyzers

    analysis = Analysis(CaptureSession({}))
    add_all_analyzers(analysis)
    stats = Stats.attach(analysis)
    no = 0
    for i, lines in enumerate(connections):
        flow = Flow(str(i + 1), f"10.0.0.{i}:4000", "10.9.9.9:1863", opened=True)
        for frame in frames_of(lines):
            no += 1
            record = FrameRecord(no, float(no), flow, "msnp", frame)
            for analyzer in analysis.analyzers:
                analyzer.feed(record)
        for analyzer in analysis.analyzers:
            analyzer.flow_closed(flow)
    for analyzer in analysis.analyzers:
        analyzer.finish()
    assert sum(stats.commands.values()) + stats.malformed + stats.gaps == no
    assert all(f.message for f in analysis.findings)
