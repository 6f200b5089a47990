"""Speech-to-text through the real server, in Home Assistant's order of events."""

from __future__ import annotations

import asyncio

import numpy as np
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.info import Describe

from tests.server.conftest import (
    RATE,
    RunningServer,
    audio_events,
    error_of,
    eventually,
    exchange,
    ha_stt_events,
    running_server,
    speech,
    started_sessions,
    types,
)
from wyoming_60db.audio import frame_bytes_for, mulaw_decode
from wyoming_60db.emulator import Emulator, Fault, tonecode

FINAL = ("transcript", "error")


async def test_ha_order_gives_the_transcript(server: RunningServer, emulator: Emulator) -> None:
    events = await exchange(server, ha_stt_events(speech("Turn on the kitchen lights.")), FINAL)
    assert events[-1].type == "transcript"
    assert events[-1].data == {"text": "turn on the kitchen lights.", "language": "en"}
    (session,) = started_sessions(emulator)
    assert session.languages == ["en"]
    assert (session.config or {})["encoding"] == "linear"


async def test_streaming_transcript_events_come_before_the_final_one(
    server: RunningServer,
) -> None:
    events = await exchange(server, ha_stt_events(speech("Set a timer for ten minutes.")), FINAL)
    kinds = types(events)
    assert kinds[0] == "transcript-start"
    assert kinds[-2:] == ["transcript-stop", "transcript"]
    assert set(kinds[1:-2]) == {"transcript-chunk"}
    chunks = [e.data["text"] for e in events if e.type == "transcript-chunk"]
    # Partial results as they firmed up, not only one chunk at the end.
    assert len(chunks) >= 2
    assert "".join(chunks) == events[-1].data["text"] == "set a timer for ten minutes."


async def test_ha_audio_passes_through_untouched_in_frames(
    server: RunningServer, emulator: Emulator
) -> None:
    pcm = speech("Hello.")
    await exchange(server, ha_stt_events(pcm), FINAL)
    (session,) = started_sessions(emulator)
    assert bytes(session.audio) == pcm
    # 10 ms chunks are coalesced into 60 ms frames (40-100 ms asked for).
    frame = frame_bytes_for(RATE, 2, 1, 60)
    frames = session.json_frames + session.binary_frames
    assert frames == -(-len(pcm) // frame)


async def test_language_is_mapped_from_home_assistants_code(
    server: RunningServer, emulator: Emulator
) -> None:
    events = await exchange(server, ha_stt_events(speech("Hallo."), language="de-DE"), FINAL)
    assert events[-1].data["language"] == "de"
    assert started_sessions(emulator)[0].languages == ["de"]


async def test_unsupported_language_is_an_error_not_another_language(
    server: RunningServer, emulator: Emulator
) -> None:
    events = await exchange(server, ha_stt_events(speech("Hello."), language="ja"), FINAL)
    text, code = error_of(events)
    assert code == "unsupported_language"
    assert "ja" in text
    assert started_sessions(emulator) == []  # nothing was sent to 60db, nothing billed


async def test_silence_gives_an_empty_transcript(server: RunningServer) -> None:
    events = await exchange(server, ha_stt_events(bytes(RATE * 2)), FINAL)
    assert events[-1].type == "transcript"
    assert events[-1].data["text"] == ""


async def test_no_transcribe_event_uses_detection(
    server: RunningServer, emulator: Emulator
) -> None:
    events = await exchange(server, audio_events(speech("Good morning.")), FINAL)
    assert events[-1].data["text"] == "good morning."
    start = started_sessions(emulator)[0].start or {}
    assert start["languages"] is None  # JSON null, never "auto" (60db-protocol.md §2.3.1)


async def test_other_formats_are_converted(server: RunningServer) -> None:
    mono = np.frombuffer(speech("Open the door.", rate=48000), dtype="<i2")
    stereo = np.repeat(mono, 2).astype("<i2").tobytes()
    events = [Transcribe(language="en").event(), *audio_events(stereo, 48000, 2, 2, 3840)]
    result = await exchange(server, events, FINAL)
    assert result[-1].data["text"] == "open the door."


async def test_mulaw_mode_sends_8_khz_telephony_audio(emulator: Emulator) -> None:
    async with running_server(emulator, stt_encoding="mulaw") as server:
        events = await exchange(server, ha_stt_events(speech("Lights off.")), FINAL)
    assert events[-1].data["text"] == "lights off."
    (session,) = started_sessions(emulator)
    assert (session.config or {})["encoding"] == "mulaw"
    assert (session.config or {})["sample_rate"] == 8000
    assert session.binary_frames > 0
    assert tonecode.decode(np.frombuffer(mulaw_decode(bytes(session.audio)), "<i2"), 8000) == (
        "lights off."
    )


async def test_configured_languages_are_sent_when_the_request_has_none(
    emulator: Emulator,
) -> None:
    async with running_server(emulator, languages=("en", "hi")) as server:
        await exchange(server, ha_stt_events(speech("Hello."), language=None), FINAL)
    assert started_sessions(emulator)[0].languages == ["en", "hi"]


async def test_unsupported_audio_format_is_an_error(server: RunningServer) -> None:
    events = [
        Transcribe(language="en").event(),
        AudioStart(rate=4000, width=2, channels=1).event(),
        AudioChunk(rate=4000, width=2, channels=1, audio=bytes(80)).event(),
        AudioStop().event(),
    ]
    _, code = error_of(await exchange(server, events, FINAL))
    assert code == "unsupported_audio_format"
    # The server is still there for the next request.
    info = await exchange(server, [Describe().event()], ["info"])
    assert types(info) == ["info"]


async def test_slow_finalisation_is_time_boxed(emulator: Emulator) -> None:
    emulator.settings.finalize_latency = 30.0
    async with running_server(emulator) as server:
        events = await exchange(server, ha_stt_events(speech("Hi.")), FINAL)
    _, code = error_of(events)
    assert code == "timeout"


async def test_stalled_60db_gets_an_error_not_a_hang(emulator: Emulator) -> None:
    async with running_server(emulator, warm_connections=0) as server:
        # connecting, connection_established, connected, session_started: then silence,
        # also in the session that replaces it (no time is left for a third).
        for _ in range(3):
            emulator.inject_fault(Fault(service="stt", kind="stall", after_messages=4))
        events = await exchange(server, ha_stt_events(speech("Hi.")), FINAL)
    text, code = error_of(events)
    assert code == "timeout"
    # The bound that fired is named, not the handler's looser safety net.
    assert text == "60db did not finish the transcript within 2 s"


async def test_dropped_60db_connection_is_reported_while_the_user_speaks(
    emulator: Emulator,
) -> None:
    async with running_server(emulator, warm_connections=0) as server:
        for _ in range(3):  # one drop is recovered; the third in a row is reported
            emulator.inject_fault(Fault(service="stt", kind="drop", after_audio_bytes=3200))
        async with asyncio.timeout(10), server.client() as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStart(RATE, 2, 1).event())
            pcm = speech("This is a long sentence that keeps going.")
            error = None
            # No audio-stop: the error must arrive while audio is still flowing.
            for start in range(0, len(pcm), 320):
                await client.write_event(AudioChunk(RATE, 2, 1, pcm[start : start + 320]).event())
                await asyncio.sleep(0)
            while (event := await client.read_event()) is not None:
                if event.type == "error":
                    error = event
                    break
        assert error is not None
        assert error.data["code"] == "connection_lost"
        # Still serving.
        events = await exchange(server, ha_stt_events(speech("Again.")), FINAL)
        assert events[-1].data["text"] == "again."


async def test_client_vanishing_mid_stream_releases_the_60db_session(
    server: RunningServer, emulator: Emulator
) -> None:
    async with asyncio.timeout(10):
        client = server.client()
        await client.connect()
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(RATE, 2, 1).event())
        for _ in range(30):
            await client.write_event(AudioChunk(RATE, 2, 1, bytes(320)).event())
        await eventually(lambda: started_sessions(emulator), "the 60db session to start")
        await client.disconnect()
    session = started_sessions(emulator)[0]
    await eventually(lambda: session.ended is not None, "the 60db session to close")
    await eventually(lambda: not server.backend.connections, "the handler to finish")
    events = await exchange(server, ha_stt_events(speech("Still here.")), FINAL)
    assert events[-1].data["text"] == "still here."


async def test_many_concurrent_requests(server: RunningServer) -> None:
    texts = [f"Request number {word}." for word in ("one", "two", "three", "four", "five", "six")]
    results = await asyncio.gather(
        *(exchange(server, ha_stt_events(speech(text)), FINAL) for text in texts)
    )
    assert [events[-1].data["text"] for events in results] == [text.lower() for text in texts]
