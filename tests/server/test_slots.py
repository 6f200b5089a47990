"""No lost concurrency slots when clients hang up the way Home Assistant does.

HA closes its connection the moment the ``transcript`` arrives, while the
server is still closing the 60db socket (a network round trip, here the
emulator's ``close_delay``). Every slot must come back all the same.
"""

from __future__ import annotations

import asyncio

import pytest
from wyoming.tts import Synthesize

from tests.server.conftest import (
    WAIT,
    RunningServer,
    audio_of,
    eventually,
    ha_stt_events,
    heard,
    read_until,
    running_server,
    speech,
)
from wyoming_60db.emulator import Emulator

PHRASE = "lights on"


async def hang_up_on_transcript(server: RunningServer) -> str:
    async with asyncio.timeout(WAIT), server.client() as client:
        for event in ha_stt_events(speech(PHRASE)):
            await client.write_event(event)
        events = await read_until(client, ["transcript", "error"])
    # The connection is closed here, at once, as HA does.
    assert events[-1].type == "transcript", events[-1].data
    text: str = events[-1].data["text"]
    return text


async def hang_up_on_audio_stop(server: RunningServer) -> str:
    async with asyncio.timeout(WAIT), server.client() as client:
        await client.write_event(Synthesize(text="Hi there.").event())
        events = await read_until(client, ["audio-stop", "error"])
    assert events[-1].type == "audio-stop", events[-1].data
    return heard(audio_of(events))


@pytest.mark.parametrize("counts", ["sessions", "connections"])
async def test_every_slot_comes_back(emulator: Emulator, counts: str) -> None:
    emulator.settings.close_delay = 0.15
    emulator.settings.concurrency_counts = counts  # type: ignore[assignment]
    async with running_server(emulator) as server:
        client = server.backend.client
        assert client is not None
        for _ in range(30):
            assert await hang_up_on_transcript(server) == PHRASE
        for _ in range(5):
            texts = await asyncio.gather(*(hang_up_on_transcript(server) for _ in range(8)))
            assert texts == [PHRASE] * 8
            said = await asyncio.gather(*(hang_up_on_audio_stop(server) for _ in range(5)))
            assert said == ["hi there."] * 5
        await eventually(
            lambda: (client.free_slots("stt"), client.free_slots("tts")) == (8, 5),
            "all 8 STT and 5 TTS slots free",
        )
        # …and 60db is serving all 8 at once again.
        texts = await asyncio.gather(*(hang_up_on_transcript(server) for _ in range(8)))
        assert texts == [PHRASE] * 8
