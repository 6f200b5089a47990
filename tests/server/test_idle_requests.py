"""Requests whose client goes quiet end with ``error(timeout)`` and give their slot back."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.tts import SynthesizeChunk, SynthesizeStart, SynthesizeStop

from tests.server.conftest import (
    CHUNK_BYTES,
    RATE,
    SERVER_TEST_TIMEOUTS,
    STREAM_END,
    STT_END,
    WAIT,
    RunningServer,
    error_of,
    eventually,
    read_until,
    running_server,
    speech,
    types,
)
from wyoming_60db.emulator import Emulator

IDLE = 0.5  # seconds: far shorter than the defaults (10 s / 30 s), same code path
SHORT_IDLE = dataclasses.replace(SERVER_TEST_TIMEOUTS, stt_audio_idle=IDLE, tts_text_idle=IDLE)


def slots_free(server: RunningServer) -> tuple[int, int]:
    client = server.backend.client
    assert client is not None
    return client.free_slots("stt"), client.free_slots("tts")


async def all_slots_free(server: RunningServer) -> None:
    await eventually(lambda: slots_free(server) == (8, 5), "every slot given back")


@pytest.mark.parametrize("sent", ["transcribe", "audio-start", "some audio"])
async def test_quiet_transcription_times_out(emulator: Emulator, sent: str) -> None:
    """transcribe (and maybe some audio), then nothing: an error, not a held session."""
    async with running_server(emulator, timeouts=SHORT_IDLE) as server:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(WAIT), server.client() as client:
            await client.write_event(Transcribe(language="en").event())
            if sent != "transcribe":
                await client.write_event(AudioStart(RATE, 2, 1).event())
            if sent == "some audio":
                pcm = speech("Hi.")[: CHUNK_BYTES * 20]
                for offset in range(0, len(pcm), CHUNK_BYTES):
                    await client.write_event(
                        AudioChunk(RATE, 2, 1, pcm[offset : offset + CHUNK_BYTES]).event()
                    )
            quiet_since = loop.time()
            events = await read_until(client, STT_END)
            waited = loop.time() - quiet_since
        text, code = error_of(events)
        assert code == "timeout"
        assert text == "no audio from the client for 0.5 s"
        assert IDLE * 0.9 <= waited < WAIT
        await all_slots_free(server)


async def test_audio_at_real_time_for_longer_than_the_idle_limit_is_not_idle(
    emulator: Emulator,
) -> None:
    """The limit is on silence from the client, not on the length of the request."""
    async with running_server(emulator, timeouts=SHORT_IDLE) as server:
        pcm = speech("turn on the lights", silence=0.5)
        assert len(pcm) / (RATE * 2) > 3 * IDLE
        async with asyncio.timeout(WAIT), server.client() as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(RATE, 2, 1).event())
            for offset in range(0, len(pcm), CHUNK_BYTES):
                chunk = pcm[offset : offset + CHUNK_BYTES]
                await client.write_event(AudioChunk(RATE, 2, 1, chunk).event())
                await asyncio.sleep(0.01)  # 10 ms chunks at real time
            await client.write_event(AudioStop().event())
            events = await read_until(client, STT_END)
        assert events[-1].type == "transcript", types(events)
        assert events[-1].data["text"] == "turn on the lights"
        await all_slots_free(server)


async def test_quiet_streaming_synthesis_times_out(emulator: Emulator) -> None:
    """synthesize-start and a sentence, then the LLM goes silent: error, slot back."""
    async with running_server(emulator, timeouts=SHORT_IDLE) as server:
        async with asyncio.timeout(WAIT), server.client() as client:
            await client.write_event(SynthesizeStart().event())
            await client.write_event(SynthesizeChunk(text="Hello there. ").event())
            events = await read_until(client, STREAM_END)
        text, code = error_of(events)
        assert (text, code) == ("no text from the client for 0.5 s", "timeout")
        assert "audio-start" in types(events)  # the first sentence was spoken meanwhile
        await all_slots_free(server)
        assert emulator.tts_contexts[-1].texts == ["Hello there. "]


async def test_slow_but_steady_text_is_not_idle(emulator: Emulator) -> None:
    """Deltas that keep coming, each within the limit, make one answer however long."""
    async with running_server(emulator, timeouts=SHORT_IDLE) as server:
        async with asyncio.timeout(WAIT), server.client() as client:
            await client.write_event(SynthesizeStart().event())
            for word in ["It ", "is ", "sunny ", "today."]:
                await client.write_event(SynthesizeChunk(text=word).event())
                await asyncio.sleep(IDLE / 2)
            await client.write_event(SynthesizeStop().event())
            events = await read_until(client, STREAM_END)
        assert events[-1].type == "synthesize-stopped", types(events)
        await all_slots_free(server)


async def test_our_own_bug_is_an_internal_error_with_a_traceback(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the client's undecodable events are malformed_event; our bug says so and is logged."""

    def broken(*args: object) -> None:
        raise KeyError("a bug of ours")

    async with running_server(emulator) as server:
        monkeypatch.setattr(server.backend.catalog, "resolve_language", broken)
        async with asyncio.timeout(WAIT), server.client() as client:
            await client.write_event(Transcribe(language="en").event())
            events = await read_until(client, STT_END)
    assert error_of(events) == ("internal server error", "internal_error")
    bugs = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert bugs and bugs[0].exc_info is not None, "no traceback logged"
    assert "a bug of ours" in caplog.text
