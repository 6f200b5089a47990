"""The connection over the real server: the lean audio path, its failures, the listener."""

from __future__ import annotations

import asyncio
import logging

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.server import AsyncTcpServer

from tests.conftest import TEST_KEY
from tests.server.conftest import (
    CHUNK_BYTES,
    RATE,
    WAIT,
    RunningServer,
    eventually,
    free_port,
    read_until,
    speech,
    types,
)
from wyoming_60db.emulator import Emulator
from wyoming_60db.handler import SixtyDbEventHandler
from wyoming_60db.server import serving
from wyoming_60db.settings import ServerSettings
from wyoming_60db.startup import start_backend, stop_backend
from wyoming_60db.stt_stream import SttStream
from wyoming_60db.wire import RequestError


async def stream_like_a_satellite(client: AsyncTcpClient, pcm: bytes) -> None:
    """HA's STT order, the chunks spread out as a speaking user's are."""
    await client.write_event(Transcribe(language="en").event())
    await client.write_event(AudioStart(RATE, 2, 1).event())
    await asyncio.sleep(0.05)  # the server has opened the transcription
    for index in range(0, len(pcm), CHUNK_BYTES):
        await client.write_event(AudioChunk(RATE, 2, 1, pcm[index : index + CHUNK_BYTES]).event())
        if index % (10 * CHUNK_BYTES) == 0:
            await asyncio.sleep(0.005)
    await client.write_event(AudioStop().event())


async def test_chunks_of_a_streaming_client_take_the_lean_path(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    routed: list[Event] = []
    on_audio_chunk = SixtyDbEventHandler._on_audio_chunk

    async def counting(self: SixtyDbEventHandler, event: Event) -> None:
        routed.append(event)
        await on_audio_chunk(self, event)

    monkeypatch.setattr(SixtyDbEventHandler, "_on_audio_chunk", counting)
    pcm = speech("Lights on.")
    async with asyncio.timeout(WAIT), server.client() as client:
        await stream_like_a_satellite(client, pcm)
        events = await read_until(client, ["transcript", "error"])
    assert events[-1].type == "transcript"
    assert events[-1].data["text"] == "lights on."
    chunks = len(range(0, len(pcm), CHUNK_BYTES))
    # A chunk is routed only when it arrives behind an event still being routed.
    assert len(routed) < chunks / 10


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (RequestError("the pipeline refused it", "audio_failed"), "audio_failed"),
        (RuntimeError("a bug"), "internal_error"),
    ],
)
async def test_a_failure_on_the_lean_path_is_one_error_and_a_drain(
    server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Exception,
    code: str,
) -> None:
    pushed = 0
    push_audio = SttStream.push_audio

    def failing(self: SttStream, audio: bytes) -> None:
        nonlocal pushed
        pushed += 1
        if pushed == 20:
            raise failure
        push_audio(self, audio)

    monkeypatch.setattr(SttStream, "push_audio", failing)
    caplog.set_level(logging.WARNING)
    async with asyncio.timeout(WAIT), server.client() as client:
        # All the audio is written after the error: the drain keeps it from a TCP reset.
        await stream_like_a_satellite(client, speech("Lights on."))
        events = await read_until(client, [])  # to the end, without ConnectionResetError
    assert [(e.type, e.data.get("code")) for e in events] == [("error", code)]
    assert pushed == 20  # nothing was pushed after the failure
    assert ("failed (" + code + ")") in caplog.text
    await eventually(lambda: not server.backend.connections, "the server to hang up")


async def test_the_listener_is_wyomings_tcp_server_to_its_users(emulator: Emulator) -> None:
    """``app.py`` and ``--zeroconf`` take the bound port from it; its stop() ends connections."""
    port = free_port()
    settings = ServerSettings(
        uri=f"tcp://127.0.0.1:{port}", api_key=TEST_KEY, api_url=emulator.base_url
    )
    backend = await start_backend(settings)
    try:
        async with serving(settings, backend) as listener:
            assert isinstance(listener, AsyncTcpServer)
            assert (listener.host, listener.port) == ("127.0.0.1", port)
            async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Event("describe"))
                assert types(await read_until(client, ["info"])) == ["info"]
                await client.write_event(Transcribe(language="en").event())
                busy = lambda: any(c.busy for c in backend.connections)  # noqa: E731
                await eventually(busy, "the transcription to open")
                await listener.stop()
                assert await read_until(client, []) == []  # closed by the server
            await eventually(lambda: not backend.connections, "the handler to finish")
    finally:
        await stop_backend(backend)
