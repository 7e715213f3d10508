"""The Facebook REST endpoint of seed 002, over a real socket: every error of the table."""

from __future__ import annotations

import asyncio
import json

import pytest

from dissectors.http.apps.fbrest import ERRORS, decode_response
from msnsniff.client.webapi import FacebookClient
from msnsniff.server.fbrest import FB_SECRET, MAX_BODY, FacebookRest


def run_calls(calls: list[dict[str, str | None]], *, forge: bool = False,
              repeat: bool = False) -> list[str]:  # fmt: skip
    async def main() -> list[str]:
        server = FacebookRest()
        port = await server.start()
        assert server.host == "127.0.0.1"
        try:
            client = FacebookClient(("127.0.0.1", port), FB_SECRET)

            def go() -> list[str]:
                out = []
                for change in calls:
                    params = client.params(**change)
                    if forge:
                        params["sig"] = "f" * 32
                    out.append(client.post(params))
                    if repeat:
                        out.append(client.post(params))
                return out

            return await asyncio.to_thread(go)
        finally:
            await server.close()

    return asyncio.run(main())


def code_of(answer: str) -> int | None:
    info = decode_response(answer.encode(), None, None)
    error = info.fields.get("error")
    return error["code"] if isinstance(error, dict) else None


def test_a_signed_call_is_delivered_in_xml_and_json() -> None:
    xml, js = run_calls([{}, {"format": "JSON"}])
    assert "<liveMessage_send_response" in xml and ">1</" in xml
    assert json.loads(js) == 1


@pytest.mark.parametrize(("change", "code"), [
    ({"api_key": "unknown"}, 101),
    ({"session_key": "expired"}, 102),
    ({"event_name": "e" * 129}, 1101),
    ({"event_name": "e" * 128}, None),
    ({"message": json.dumps("m" * 1030)}, 1102),
    ({"message": "{message:1}"}, 1100),
    ({"recipient": "42"}, 292),
    ({"method": "facebook.users.getInfo"}, 1),
])  # fmt: skip
def test_each_error(change: dict[str, str | None], code: int | None) -> None:
    (answer,) = run_calls([change])
    assert code_of(answer) == code
    if code is not None:
        assert ERRORS[code] in answer


def test_bad_signature_and_repeated_call_id() -> None:
    assert code_of(run_calls([{}], forge=True)[0]) == 104
    first, again = run_calls([{}], repeat=True)
    assert (code_of(first), code_of(again)) == (None, 103)


def test_an_oversized_body_or_garbage_drops_only_that_connection() -> None:
    async def main() -> None:
        server = FacebookRest()
        port = await server.start()
        try:
            for junk in (
                b"POST /restserver.php HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                % (MAX_BODY + 1, b"x" * (MAX_BODY + 1)),
                b"\x00\x01 not http\r\n\r\n",
            ):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(junk)
                assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no answer
                writer.close()
            assert server.delivered == []
            client = FacebookClient(("127.0.0.1", port), FB_SECRET)
            answer = await asyncio.to_thread(lambda: client.post(client.params()))
            assert code_of(answer) is None and len(server.delivered) == 1  # still serving
        finally:
            await server.close()

    asyncio.run(main())
