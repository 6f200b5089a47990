"""A dropped 60db connection mid-request, through the real server and the real ``wyoming`` client.

Home Assistant's event orders (home-assistant.md); the emulator drops or
stalls 60db's sockets. Faults are one-shot per next connection of a service,
the pool's warm one included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

from tests.conftest import describe
from tests.server.conftest import (
    CHUNK_BYTES,
    WAIT,
    RunningServer,
    eventually,
    ha_stt_events,
    read_until,
    speech,
    started_sessions,
    types,
)
from wyoming_60db.emulator import Emulator, Fault

# --- STT ----------------------------------------------------------------------

# 47 characters of tone code: about 3 s of "speech".
LONG_PHRASE = "turn on the kitchen lights and close the blinds"
ONE_SECOND_OF_CHUNKS = 100  # 10 ms chunks


async def stream_like_ha(
    client: AsyncTcpClient, events: Sequence[Event], *, speed: float = 4.0
) -> None:
    """Write HA's events, the audio chunks at ``speed`` times real time."""
    for event in events:
        await client.write_event(event)
        if event.type == "audio-chunk":
            await asyncio.sleep(CHUNK_BYTES / 32000 / speed)


async def test_stt_survives_a_dropped_socket_mid_utterance(
    server: RunningServer, emulator: Emulator
) -> None:
    """60db's socket drops 1 s into the phrase: HA still gets the exact transcript, no error."""
    events = ha_stt_events(speech(LONG_PHRASE))
    first, rest = events[: 2 + ONE_SECOND_OF_CHUNKS], events[2 + ONE_SECOND_OF_CHUNKS :]
    async with asyncio.timeout(WAIT * 2), server.client() as client:
        await stream_like_ha(client, first)
        await eventually(
            lambda: any(len(record.audio) >= 16000 for record in started_sessions(emulator)),
            "half a second of audio at 60db",
        )
        assert emulator.drop_connections("stt") >= 1
        await stream_like_ha(client, rest)
        answer = await read_until(client, {"transcript", "error"})
    assert "error" not in types(answer)
    assert Transcript.from_event(answer[-1]).text == LONG_PHRASE
    # The replacement's interim results start again from the replayed audio:
    # the transcript-chunks still add up to the phrase, nothing sent twice.
    chunks = [event.data["text"] for event in answer if event.type == "transcript-chunk"]
    assert len(chunks) > 1 and "".join(chunks) == LONG_PHRASE
    assert len(started_sessions(emulator)) == 2  # the dropped session and its replacement
    await describe(server.port)  # and the server carries on


async def test_stt_that_keeps_dropping_reports_connection_lost_once(
    server: RunningServer, emulator: Emulator
) -> None:
    for _ in range(3):
        emulator.inject_fault(Fault(service="stt", kind="drop", after_audio_bytes=16000))
    emulator.drop_connections("stt")  # the warm socket opened before the faults
    async with asyncio.timeout(WAIT * 2), server.client() as client:
        await stream_like_ha(client, ha_stt_events(speech(LONG_PHRASE)))
        answer = await read_until(client, {"transcript", "error"})
        # Nothing follows the error (a second error, a late transcript) before
        # the server ends the connection, as after any failed request.
        after = await read_until(client, set())
    errors = [event for event in answer if event.type == "error"]
    assert len(errors) == 1 and errors[0].data.get("code") == "connection_lost"
    assert "transcript" not in types(answer)
    assert types(after) == []
    assert len(started_sessions(emulator)) == 3  # two recoveries, then the error
    await describe(server.port)


# --- TTS ----------------------------------------------------------------------

# The answer and fault points of the pipeline's own recovery tests.
from wyoming.tts import Synthesize  # noqa: E402 - this section's imports

from tests.pipeline.test_speaker_recovery import (  # noqa: E402
    ANSWER,
    FLUSHED,
    MID_SENTENCE_TWO,
    clean_length,
)
from tests.server.conftest import (  # noqa: E402
    audio_of,
    error_of,
    exchange,
    ha_streaming_tts_events,
    heard,
    running_server,
)
from wyoming_60db.emulator.tonecode import normalize  # noqa: E402

TTS_REQUESTS = {
    "plain": ([Synthesize(text="".join(ANSWER)).event()], ("audio-stop", "error")),
    "streaming": (ha_streaming_tts_events(ANSWER), ("synthesize-stopped", "error")),
}


async def test_tts_survives_a_dropped_socket_mid_answer(emulator: Emulator) -> None:
    """Plain and streaming: the whole answer, no sentence twice, one audio-start/-stop."""
    async with running_server(emulator, warm_connections=0) as server:
        for name, (events, last) in TTS_REQUESTS.items():
            emulator.inject_fault(
                Fault(service="tts", kind="drop", after_messages=MID_SENTENCE_TWO)
            )
            contexts_before = len(emulator.tts_contexts)
            answer = await exchange(server, events, last)
            kinds = types(answer)
            assert "error" not in kinds, name
            assert kinds.count("audio-start") == kinds.count("audio-stop") == 1, name
            assert heard(audio_of(answer)) == normalize("".join(ANSWER)), name
            assert len(audio_of(answer)) == clean_length(FLUSHED), name  # nothing twice
            _broken, resumed = emulator.tts_contexts[contexts_before:]
            assert resumed.texts == FLUSHED[1:], name
        await describe(server.port)


async def test_tts_that_keeps_dropping_reports_connection_lost_once(emulator: Emulator) -> None:
    async with running_server(emulator, warm_connections=0) as server:
        for name, (events, last) in TTS_REQUESTS.items():
            emulator.inject_fault(
                Fault(service="tts", kind="drop", after_messages=MID_SENTENCE_TWO)
            )
            for _ in range(2):  # and both connections it is resumed on
                emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=4))
            async with asyncio.timeout(WAIT), server.client() as client:
                for event in events:
                    await client.write_event(event)
                answer = await read_until(client, last)
                after = await read_until(client, set())  # then the server closes
            assert [e.type for e in answer].count("error") == 1, name
            assert error_of(answer)[1] == "connection_lost", name
            assert types(after) == [], name
        await describe(server.port)
