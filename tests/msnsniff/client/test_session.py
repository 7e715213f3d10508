"""The client's own message and address helpers, read back by the project's dissector."""

from __future__ import annotations

import pytest

from dissectors.msnp.payloads import decode_payload
from msnsniff.client.connection import ClientError
from msnsniff.client.session import im_format, split_address, text_message


@pytest.mark.parametrize("text", ["hello", "naïve ☃", "", "two\r\nlines"])
def test_a_text_message_decodes_as_the_im_it_says(text: str) -> None:
    """What `send` puts in MSG is a text/plain IM whose text, font and colour the dissector
    reads back as given (the font URL-encoded on the wire, as MSN's clients wrote it)."""
    payload = decode_payload("MSG", text_message(text, font="Comic Sans MS", color="ff"))
    assert payload.content_type == "text/plain"
    assert payload.text == text
    fields = payload.fields
    assert fields["text"] == text
    assert (fields["font"], fields["color_bgr"], fields["color_rgb"]) == ("Comic Sans MS", "ff",
                                                                     "#ff0000")
    assert "FN=Comic%20Sans%20MS" in im_format("Comic Sans MS")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:1863", ("127.0.0.1", 1863)), ("[::1]:1864", ("::1", 1864)),
     ("host:0", None), ("host", None), (":1863", None), ("host:99999", None)],
)  # fmt: skip
def test_split_address_takes_what_xfr_and_rng_write(
    text: str, expected: tuple[str, int] | None
) -> None:
    if expected is None:
        with pytest.raises(ClientError, match="bad address"):
            split_address(text)
    else:
        assert split_address(text) == expected
