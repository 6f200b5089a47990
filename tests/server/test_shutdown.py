"""Graceful stop: requests in flight finish (or are cancelled), 60db sockets are closed."""

from __future__ import annotations

import asyncio

from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart

from tests.server.conftest import (
    WAIT,
    audio_of,
    eventually,
    heard,
    read_until,
    refused,
    running_server,
    types,
)
from wyoming_60db.emulator import Emulator


async def test_a_request_in_flight_finishes_during_shutdown(emulator: Emulator) -> None:
    emulator.settings.first_chunk_latency = 0.3
    stopping = asyncio.Event()

    async def request(port: int) -> list[str]:
        async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text="Almost done.").event())
            await read_until(client, ["audio-start"])
            stopping.set()
            rest = await read_until(client, ["audio-stop"])
            return [heard(audio_of(rest))]

    async with running_server(emulator, shutdown_grace=3.0) as server:
        task = asyncio.create_task(request(server.port))
        async with asyncio.timeout(WAIT):
            await stopping.wait()
    # Leaving the block shut the server down; the request still completed.
    assert await task == ["almost done."]


async def test_a_request_beyond_the_grace_is_cancelled_and_60db_released(
    emulator: Emulator,
) -> None:
    async with running_server(emulator, shutdown_grace=0.2) as server:
        client = server.client()
        await client.connect()
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="A stream that never stops").event())
        await eventually(lambda: emulator.tts_contexts, "the 60db context")
    async with asyncio.timeout(WAIT):
        events = await read_until(client, ["error"])  # ends with the connection
    assert "synthesize-stopped" not in types(events)
    connection = emulator.tts_connections[emulator.tts_contexts[0].connection]
    await eventually(lambda: connection.ended is not None, "the 60db socket to close")
    await client.disconnect()


async def test_no_new_connections_once_stopping(emulator: Emulator) -> None:
    async with running_server(emulator) as server:
        assert not await refused(server.port)
        server.backend.accepting = False
        assert await refused(server.port)
