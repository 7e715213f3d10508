"""The decoder's fast paths give exactly what the general paths give, and share no state.

Header blocks, X-MMS-IM-Format values and P2P flag names are decoded once and remembered;
`to_json` copies containers instead of converting them; `new_payload` builds a `Payload`
without the frozen `__setattr__`. None of that may change a result or leak a mutation.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings

from dissectors.msnp.payloads import Payload, decode_payload
from dissectors.msnp.payloads.findings import Findings
from dissectors.msnp.payloads.mime import (
    MAX_HEADERS,
    analyze_headers,
    split_headers,
    split_mime,
    strict_text,
)
from dissectors.msnp.payloads.model import jsonable, new_payload
from dissectors.msnp.payloads.text import _decode_im_format, decode_im_format
from tests.dissectors.msnp.payloads.builders import mime, p2p, slp
from tests.dissectors.msnp.payloads.test_properties import structured

FORMAT = "FN=Arial; EF=BI; CO=ff; CS=0; PF=22"


Split = tuple[object, ...]


def general_split(data: bytes) -> Split:
    """What `split_mime` must give, computed by the general (uncached) reader."""
    findings = Findings()
    headers, body = split_headers(data, findings)
    block = analyze_headers(headers, findings)
    text = strict_text(body, block.charset)
    return (
        block.headers,
        dict(block.index),
        block.content_type,
        dict(block.params),
        block.charset,
        block.tickets,
        body,
        text,
        findings.final_problems(),
    )


def fast_split(data: bytes) -> Split:
    findings = Findings()
    m = split_mime(data, findings)
    block = m.block
    return (
        block.headers,
        dict(block.index),
        block.content_type,
        dict(block.params),
        block.charset,
        block.tickets,
        m.body,
        m.text,
        findings.final_problems(),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structured())
def test_split_mime_matches_the_general_reader(data: bytes) -> None:
    assert fast_split(data) == general_split(data)
    assert fast_split(data) == general_split(data)  # and again, from the cache


@pytest.mark.parametrize(
    "data",
    [
        mime("text/plain", "x"),
        b"\r\nMIME-Version: 1.0\r\n\r\nbody",
        b"MIME-Version: 1.0\r\nContent-Type: text/plain\n\r\n\r\nbody",
        b"MIME-Version: 1.0\nContent-Type: text/plain\r\n\r\nbody",
        b"MIME-Version: 1.0\r\nno colon\r\n: x\r\nA\x7fB: 1\r\nX-\xff: \xfe\r\n\r\nbody",
        b"Content-Type: text/plain; charset=rot13; x\r\nX: t=ABCDEFGHIJKLMNOPQRSTUV\r\n\r\n",
        b"X-A: 1\r\n\r\n" + b"x" * 2000,
        b"X-A: " + b"y" * 3000 + b"\r\n\r\nbody",
    ],
)
def test_split_mime_edge_cases(data: bytes) -> None:
    assert fast_split(data) == general_split(data)


@pytest.mark.parametrize("lines", [MAX_HEADERS - 2, MAX_HEADERS - 1, MAX_HEADERS, MAX_HEADERS + 1])
def test_header_limit_is_the_same_on_both_paths(lines: int) -> None:
    data = b"".join(b"X-%d: %d\r\n" % (i, i) for i in range(lines)) + b"\r\nbody"
    assert fast_split(data) == general_split(data)


def test_many_bad_header_lines_replay_the_same_problems() -> None:
    data = b"MIME-Version: 1.0\r\n" + b"bad line\r\n" * 60 + b"Content-Type: text/plain\r\n\r\nx"
    first, second = decode_payload("MSG", data), decode_payload("MSG", data)
    assert first.problems == second.problems
    assert first.problems[-1] == "20 more problems not shown"
    assert fast_split(data) == general_split(data)


@pytest.mark.parametrize(
    "value",
    [FORMAT, "pf=31; rl=1; EF=SQ; CO=zz; CS=86; FN=%E5%AE%8B; junk", ";" * 5 + "x;" * 60, ""],
)
def test_cached_im_format_matches_the_decoder(value: str) -> None:
    for _ in range(2):
        want, got = Findings({"text": "hi"}), Findings({"text": "hi"})
        _decode_im_format(value, want)
        decode_im_format(value, got)
        assert json.dumps(got.fields) == json.dumps(want.fields)
        assert got.final_problems() == want.final_problems()


def test_repeated_payloads_share_no_mutable_fields() -> None:
    data = mime("text/plain; charset=UTF-8", "hi", X_MMS_IM_Format=FORMAT)
    first = decode_payload("MSG", data)
    first.fields["effects"].append("changed")
    first.fields["format"]["FN"] = "changed"
    second = decode_payload("MSG", data)
    assert second.fields["effects"] == ["bold", "italic"]
    assert second.fields["format"]["FN"] == "Arial"
    assert first.headers == second.headers


def test_to_json_copies_nested_containers() -> None:
    invite = slp("INVITE MSNMSGR:bob@example.com MSNSLP/1.0", {"To": "<msnmsgr:b>"}, "AppID: 1")
    for data in (mime("text/plain", "x", X_MMS_IM_Format=FORMAT), p2p(invite, flags=0x20)):
        p = decode_payload("MSG", data)
        want = json.dumps(p.to_json())
        out = p.to_json()
        for value in out["fields"].values():
            if isinstance(value, list):
                value.append("changed")
            elif isinstance(value, dict):
                value.clear()
        out["headers"][0][1] = "changed"
        assert json.dumps(p.to_json()) == want


def test_jsonable_converts_like_before() -> None:
    value = {1: (b"\x00\x01", {"a": [1, (2,)]}), "s": [None, 1.5, True]}
    assert jsonable(value) == {"1": ["AAE=", {"a": [1, [2]]}], "s": [None, 1.5, True]}


def test_new_payload_is_a_frozen_payload() -> None:
    args = (
        3,
        "text/plain",
        None,
        (("A", "b"),),
        b"abc",
        {"k": 1},
        ("p",),
        (),
        "mime",
        "abc",
        False,
    )
    fast, slow = new_payload(*args), Payload(*args)
    assert type(fast) is Payload
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.length = 4  # type: ignore[misc]  # read only: must raise
    assert dataclasses.replace(fast, length=4).length == 4
