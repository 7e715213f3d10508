"""Interop: Twisted 15.5's real MSNP8 client against `msnsniff mock` serving a session
recorded through the proxy (login over the mock's HTTPS Passport, sync, a chat)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from msnsniff.registry import load_dissectors
from msnsniff.replay.mock import MockServer
from msnsniff.replay.recording import load_recording
from msnsniff.session.capture_session import CaptureSession
from tests.interop.test_twisted_client import start, tw27  # noqa: F401  (tw27: the fixture)
from tests.msnsniff.replay.helpers import ALICE, BOB, record_chat_session
from tests.msnsniff.server.scenario import LoopThread


class MockThread(LoopThread):
    """A `MockServer` on its own thread and event loop, with `.ns` and `.nexus` as the
    interop harness's `start` expects of a server."""

    def __init__(self, recording_path: Path) -> None:
        super().__init__()
        self.recording = load_recording(recording_path, CaptureSession(load_dissectors()))
        self.mock = MockServer(self.recording, ("127.0.0.1", 0))

    def __enter__(self) -> MockThread:
        self.start_loop()
        self.run(self.mock.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self.mock.close())
        self.stop_loop()

    @property
    def ns(self) -> str:
        return self.mock.address

    @property
    def nexus(self) -> str:
        return self.mock.nexus_url


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockThread]:
    path = record_chat_session(tmp_path_factory.mktemp("twisted-mock") / "session.pcapng")
    with MockThread(path) as served:
        yield served


def test_twisted_chats_against_the_mock(tw27: Path, mock: MockThread) -> None:  # noqa: F811
    served: Any = mock  # start() reads only .ns and .nexus of the server it is given
    run = start(tw27, served, ALICE, "chat-initiator", "--peer", BOB, "--message", "hello",
                "--no-wait-online").wait(40)  # fmt: skip
    context = run.describe() + "\n--- mock log\n" + "\n".join(mock.mock.logs)
    assert run.rc == 0 and run.result.get("ok"), context
    assert run.all("sb_referral"), context
    assert run.all("sb_joined", handle=BOB), context
    assert run.all("message_acked", body="hello"), context
    got = [e["body"] for e in run.all("message", sender=BOB)]
    assert got == ["hi alice"], context  # bob's reply, as recorded
    syn = run.all("syn_reply")
    assert syn, context
