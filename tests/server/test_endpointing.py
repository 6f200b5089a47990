"""Server-side endpointing: the transcript when 60db hears the end, in HA 2026.10+'s order.

Home Assistant 2026.10+ uploads the audio at real time while a reader reads
the answer, and hangs up the moment it has the ``transcript`` (home-assistant.md
§2). These tests do the same with the real ``wyoming`` client, against the real
server and the real emulator, whose endpointing runs in audio time: audio goes
out at real time so that its ``speech_final`` comes when 60db's would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe

from tests.server.conftest import (
    BYTES_PER_SECOND,
    CHUNK_BYTES,
    RATE,
    SERVER_TEST_TIMEOUTS,
    STT_END,
    WAIT,
    HaClient,
    RunningServer,
    Turn,
    describe,
    eventually,
    exchange,
    ha_stt_events,
    ha_turn,
    pcm_of,
    running_server,
    started_sessions,
    types,
)
from wyoming_60db.emulator import Emulator
from wyoming_60db.info import HAS_EXTERNAL_VAD_FIELD

IDLE = 0.5  # the request's idle limit here: a wrongly armed idle timer fires within the test


@pytest.fixture
async def quick_server(emulator: Emulator) -> AsyncIterator[RunningServer]:
    timeouts = dataclasses.replace(SERVER_TEST_TIMEOUTS, stt_audio_idle=IDLE)
    async with running_server(emulator, timeouts=timeouts) as running:
        yield running


def transcribe_1_10(**data: Any) -> Event:
    """A ``transcribe`` with wyoming 1.10's fields, written raw: older wyoming lacks them."""
    return Event("transcribe", data)


def answered_after(turn: Turn, seconds: float, slack: float = 0.3) -> None:
    """The answer came once ``seconds`` of audio had gone out, and soon after.

    A few ms of leeway below: the fade-out of the last tone is already
    silence to 60db's voice detector.
    """
    assert turn.audio_at_answer is not None, "no answer"
    assert seconds - 0.02 <= turn.audio_at_answer < seconds + slack, turn.audio_at_answer


def canonical_sent_at(emulator: Emulator) -> list[float]:
    (session,) = started_sessions(emulator)
    return session.canonical_sent_at


def free_stt_slots(server: RunningServer) -> int:
    assert server.backend.client is not None
    return server.backend.client.free_slots("stt")


# --------------------------------------------------------------------------- the turn


async def test_transcript_comes_before_audio_stop(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    speech_part = pcm_of("turn on the kitchen light")
    turn = await ha_turn(quick_server, speech_part + pcm_of(3.0), then_stop=False)
    assert turn.text == "turn on the kitchen light"
    kinds = types(turn.events)
    assert kinds[0] == "transcript-start" and kinds[-2:] == ["transcript-stop", "transcript"]
    assert "".join(e.data["text"] for e in turn.events if e.type == "transcript-chunk") == (
        turn.text
    )
    # 60db's default pause (500 ms) after the speech, not the 3 s of audio nor an audio-stop.
    spoken = len(speech_part) / BYTES_PER_SECOND
    assert turn.audio_at_answer is not None
    answered_after(turn, spoken + 0.5)
    # The server passes 60db's end of utterance on at once.
    (sent_at,) = canonical_sent_at(emulator)
    assert turn.answered_at is not None
    assert turn.answered_at - sent_at < 0.1  # measured: 3 ms median, 10 ms max


async def test_audio_stop_first_gets_exactly_one_transcript(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    """HA before 2026.10 and other clients: all audio, audio-stop, then they read."""
    async with asyncio.timeout(WAIT), quick_server.client() as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(RATE, 2, 1).event())
        # Speech and a short tail: 60db's pause is not reached before audio-stop.
        pcm = pcm_of("lights off", 0.2)
        for offset in range(0, len(pcm), CHUNK_BYTES):
            await client.write_event(
                AudioChunk(RATE, 2, 1, pcm[offset : offset + CHUNK_BYTES]).event()
            )
        await client.write_event(AudioStop().event())
        events = []
        while (event := await client.read_event()) is not None:
            events.append(event)
            if event.type in STT_END:
                break
        late = await _events_within(client, IDLE * 2)
    assert [e.data["text"] for e in events if e.type == "transcript"] == ["lights off"]
    assert late == []


async def test_the_early_transcript_is_the_only_one_when_audio_stop_follows(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    """An old client that reads only after audio-stop finds the one early answer."""
    ha = HaClient(quick_server.client())
    await ha.client.connect()
    try:
        await ha.start()
        await ha.stream(pcm_of("open the door", 1.5), until_answer=False)
        assert ha.answered.is_set()  # long before the audio ended
        await ha.audio_stop()
        late = await ha.quiet_for(IDLE * 2)  # no second transcript, no idle error
        await ha.describe()
    finally:
        await ha.close()
    assert [e.data["text"] for e in ha.events if e.type == "transcript"] == ["open the door"]
    assert late == []
    assert "error" not in types(ha.events)


async def test_audio_after_the_turn_is_ignored_and_nothing_more_is_sent(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    ha = HaClient(quick_server.client())
    await ha.client.connect()
    try:
        await ha.start()
        # A client that keeps streaming, speech included, after the answer.
        await ha.stream(
            pcm_of("open the door", 1.0, "and close the window", 1.0), until_answer=False
        )
        assert ha.audio_at_answer is not None
        # Answered: no request in flight (a graceful shutdown would not wait for it).
        (connection,) = quick_server.backend.connections
        assert not connection.busy
        late = await ha.quiet_for(IDLE * 2)  # longer than the idle limit: no error either
        await ha.audio_stop()
        late += await ha.quiet_for(0.3)
        info = await ha.describe()
    finally:
        await ha.close()
    assert [e.data["text"] for e in ha.events if e.type == "transcript"] == ["open the door"]
    assert late == []
    assert info.asr[0].name == "60db"
    # 60db got no audio from after the turn: the second phrase never reached it.
    (session,) = started_sessions(emulator)
    assert session.transcripts == ["open the door"]
    assert len(session.audio) / BYTES_PER_SECOND <= ha.audio_at_answer + 0.1


async def test_the_60db_session_is_released_at_once_and_billed(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    client = quick_server.backend.client
    assert client is not None
    ha = HaClient(quick_server.client())
    await ha.client.connect()
    try:
        await ha.start()
        await ha.stream(pcm_of("good night", 3.0))
        await ha.answer()
        answered = time.perf_counter()
        # The client has not hung up, and may stream on: the session goes back anyway.
        await eventually(lambda: emulator.active_slots("stt") == 0, "60db's slot released", 2.0)
        await eventually(lambda: free_stt_slots(quick_server) == 8, "the client's slot", 2.0)
        released = time.perf_counter() - answered
        await eventually(lambda: client.usage.stt_sessions == 1, "the session billed", 2.0)
    finally:
        await ha.close()
    (session,) = started_sessions(emulator)
    assert session.ended == "stopped"  # a `stop` and 60db's session_stopped, not a dropped socket
    assert session.billing is not None
    assert client.usage.cost == pytest.approx(session.billing["total_cost"])
    assert client.usage.stt_seconds == pytest.approx(session.billing["total_duration_seconds"])
    assert released < 0.5


async def test_a_short_pause_does_not_split_the_command(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    pcm = pcm_of("turn on the kitchen light", 0.25, "and the hallway", 2.0)
    turn = await ha_turn(quick_server, pcm, then_stop=False)
    assert turn.text == "turn on the kitchen light and the hallway"
    (session,) = started_sessions(emulator)
    assert (session.config or {})["utterance_end_ms"] == 500
    assert session.transcripts == ["turn on the kitchen light and the hallway"]


async def test_a_longer_pause_ends_the_command(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    """The same audio with a 700 ms pause: the turn ends after the first phrase."""
    pcm = pcm_of("turn on the kitchen light", 0.7, "and the hallway", 2.0)
    turn = await ha_turn(quick_server, pcm, then_stop=False)
    assert turn.text == "turn on the kitchen light"


# --------------------------------------------------------------------------- wyoming 1.10 hints


@pytest.mark.parametrize(
    ("sensitivity", "milliseconds"), [("aggressive", 300), ("default", 500), ("relaxed", 1000)]
)
async def test_vad_sensitivity_reaches_60db(
    quick_server: RunningServer, emulator: Emulator, sensitivity: str, milliseconds: int
) -> None:
    transcribe = transcribe_1_10(language="en", vad_sensitivity=sensitivity)
    speech_part = pcm_of("lights on")
    turn = await ha_turn(quick_server, speech_part + pcm_of(2.0), transcribe, then_stop=False)
    assert turn.text == "lights on"
    (session,) = started_sessions(emulator)
    assert (session.config or {})["utterance_end_ms"] == milliseconds
    spoken = len(speech_part) / BYTES_PER_SECOND
    assert turn.audio_at_answer is not None
    answered_after(turn, spoken + milliseconds / 1000)


async def test_the_server_default_sensitivity_applies_to_requests_without_one(
    emulator: Emulator,
) -> None:
    async with running_server(emulator, vad_sensitivity="relaxed") as server:
        await ha_turn(server, pcm_of("lights on", 0.3))
        await ha_turn(
            server, pcm_of("lights on", 0.3), transcribe_1_10(vad_sensitivity="aggressive")
        )
    first, second = started_sessions(emulator)
    assert (first.config or {})["utterance_end_ms"] == 1000
    assert (second.config or {})["utterance_end_ms"] == 300


async def test_unknown_vad_sensitivity_is_an_error(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    transcribe = Event("transcribe", {"language": "en", "vad_sensitivity": "sleepy"})
    turn = await ha_turn(quick_server, pcm_of("hi"), transcribe)
    (error,) = [e for e in turn.events if e.type == "error"]
    assert error.data["code"] == "unsupported_vad_sensitivity"
    assert "sleepy" in error.data["text"] and "relaxed" in error.data["text"]
    assert started_sessions(emulator) == []  # nothing went to 60db


async def test_names_and_terms_become_60db_context_terms(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    transcribe = transcribe_1_10(
        language="en",
        transcript_names=["Zorbulon lamp", "  Küchen   licht "],
        transcript_terms=["zorbulon LAMP", "dimmer", "", "x" * 61],
        context={"previous": "Wyoming's own context, which is not 60db's"},
    )
    await ha_turn(quick_server, pcm_of("lights on", 0.3), transcribe)
    (session,) = started_sessions(emulator)
    # Names first, cleaned, duplicates and what cannot be a name left out.
    assert session.context_terms == ["Zorbulon lamp", "Küchen licht", "dimmer"]
    assert (session.start or {})["context"] == {
        "terms": ["Zorbulon lamp", "Küchen licht", "dimmer"]
    }


async def test_no_names_no_context(quick_server: RunningServer, emulator: Emulator) -> None:
    transcribe = transcribe_1_10(language="en", transcript_names=[], transcript_terms=[" "])
    await ha_turn(quick_server, pcm_of("lights on", 0.3), transcribe)
    (session,) = started_sessions(emulator)
    assert "context" not in (session.start or {})


@pytest.mark.parametrize(
    "data",
    [
        {"transcript_names": "Zorbulon lamp"},
        {"transcript_terms": ["ok", 7]},
        {"transcript_names": {"a": 1}},
    ],
)
async def test_names_and_terms_must_be_lists_of_strings(
    quick_server: RunningServer, emulator: Emulator, data: dict[str, Any]
) -> None:
    turn = await ha_turn(
        quick_server, pcm_of("hi"), Event("transcribe", {"language": "en", **data})
    )
    (error,) = [e for e in turn.events if e.type == "error"]
    assert error.data["code"] == "malformed_event"
    assert "must be a list of strings" in error.data["text"]
    assert started_sessions(emulator) == []


@pytest.mark.parametrize("name", ["60db", "60db-stt-v01"])
async def test_transcribe_name_of_this_program_or_model(
    quick_server: RunningServer, name: str
) -> None:
    turn = await ha_turn(
        quick_server, pcm_of("hi", 0.3), Transcribe(name=name, language="en").event()
    )
    assert turn.text == "hi"


async def test_transcribe_name_of_another_model_is_an_error(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    turn = await ha_turn(
        quick_server, pcm_of("hi"), Transcribe(name="whisper", language="en").event()
    )
    (error,) = [e for e in turn.events if e.type == "error"]
    assert error.data["code"] == "unknown_model"
    assert "'whisper'" in error.data["text"]
    assert started_sessions(emulator) == []


# --------------------------------------------------------------------------- context: two finals


async def test_with_a_context_the_refined_final_is_used(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    emulator.settings.stt_llm_refine_text = True  # the refined text is sentence-cased
    emulator.settings.stt_llm_latency_ms = 100  # within the 300 ms the server waits
    transcribe = transcribe_1_10(language="en", transcript_names=["Zorbulon lamp"])
    turn = await ha_turn(
        quick_server, pcm_of("turn on zorbulon lamp", 2.0), transcribe, then_stop=False
    )
    assert turn.text == "Turn on zorbulon lamp"
    (session,) = started_sessions(emulator)
    (sent_at,) = session.canonical_sent_at
    assert turn.answered_at is not None
    assert 0 <= turn.answered_at - sent_at < 0.1


async def test_with_a_slow_refinement_the_first_final_is_used(
    quick_server: RunningServer, emulator: Emulator
) -> None:
    emulator.settings.stt_llm_refine_text = True
    emulator.settings.stt_llm_latency_ms = 1500  # far beyond the 300 ms the server waits
    transcribe = transcribe_1_10(language="en", transcript_names=["Zorbulon lamp"])
    turn = await ha_turn(
        quick_server, pcm_of("turn on zorbulon lamp", 3.0), transcribe, then_stop=False
    )
    assert turn.text == "turn on zorbulon lamp"  # the first emit, not the refined text
    (session,) = started_sessions(emulator)
    first_emit = next(final for final in session.finals if not final.speech_final)
    assert turn.answered_at is not None
    waited = turn.answered_at - first_emit.sent_at
    assert 0.3 <= waited < 0.3 + 0.15


# --------------------------------------------------------------------------- guard rails


async def test_a_command_longer_than_the_limit_is_finalised(emulator: Emulator) -> None:
    async with running_server(emulator, max_command_seconds=1.5) as server:
        words = "this command goes on and on without any pause at all"
        pcm = pcm_of(words, 2.0)
        assert len(pcm) / BYTES_PER_SECOND > 3.0
        turn = await ha_turn(server, pcm, then_stop=False)
    assert turn.audio_at_answer is not None
    answered_after(turn, 1.5)
    # What 60db heard up to the limit, finalised: the start of the command.
    assert turn.text and words.startswith(turn.text[:10])
    (session,) = started_sessions(emulator)
    assert session.ended == "stopped"
    assert len(session.audio) / BYTES_PER_SECOND < 1.5 + 0.2


async def test_no_speech_gives_an_empty_transcript(emulator: Emulator) -> None:
    async with running_server(emulator, no_speech_seconds=1.0) as server:
        turn = await ha_turn(server, pcm_of(5.0), then_stop=False)
        await eventually(lambda: emulator.active_slots("stt") == 0, "the slot released", 2.0)
    assert turn.text == ""
    assert turn.audio_at_answer is not None
    answered_after(turn, 1.0)


async def test_speech_after_silence_is_not_cut_by_the_no_speech_guard(emulator: Emulator) -> None:
    async with running_server(emulator, no_speech_seconds=1.0) as server:
        turn = await ha_turn(server, pcm_of(0.6, "lights on", 2.0), then_stop=False)
    assert turn.text == "lights on"


async def test_a_recording_sent_faster_than_real_time_is_not_cut_by_the_no_speech_guard(
    emulator: Emulator,
) -> None:
    """A file client: all audio at once, then audio-stop (wyoming-bench, scripts)."""
    pcm = pcm_of(1.5, "lights on", 0.3)
    async with running_server(emulator, no_speech_seconds=1.0) as server:
        events = await exchange(server, ha_stt_events(pcm), STT_END)
    assert [e.data.get("text") for e in events if e.type in STT_END] == ["lights on"]


# --------------------------------------------------------------------------- off, info, programs


async def test_no_endpointing_waits_for_audio_stop(emulator: Emulator) -> None:
    async with running_server(emulator, endpointing=False) as server:
        info = (await describe(server)).asr[0]
        ha = HaClient(server.client())
        await ha.client.connect()
        try:
            await ha.start()
            await ha.stream(pcm_of("lights on", 1.0), until_answer=False)
            assert not ha.answered.is_set()  # 60db's pause went by: the client's VAD decides
            await ha.audio_stop()
            await ha.answer()
        finally:
            await ha.close()
    assert [e.data["text"] for e in ha.events if e.type == "transcript"] == ["lights on"]
    if HAS_EXTERNAL_VAD_FIELD:
        assert info.requires_external_vad is True


async def test_info_says_no_external_vad_is_needed(quick_server: RunningServer) -> None:
    async with asyncio.timeout(WAIT), quick_server.client() as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
    assert event is not None and event.type == "info"
    (asr,) = event.data["asr"]
    assert asr["supports_transcript_streaming"] is True
    if HAS_EXTERNAL_VAD_FIELD:
        assert asr["requires_external_vad"] is False
    else:  # wyoming before 1.10 cannot say it; its clients would not read it
        assert "requires_external_vad" not in asr


@pytest.mark.parametrize("name", ["60db"])
async def test_select_program_of_this_server(quick_server: RunningServer, name: str) -> None:
    async with asyncio.timeout(WAIT), quick_server.client() as client:
        await client.write_event(Event("select-program", {"name": name}))
        await client.write_event(Describe().event())
        event = await client.read_event()
    assert event is not None and event.type == "info"


@pytest.mark.parametrize(
    ("data", "code"), [({"name": "piper"}, "unknown_program"), ({}, "malformed_event")]
)
async def test_select_program_of_another_name_is_an_error(
    quick_server: RunningServer, emulator: Emulator, data: dict[str, Any], code: str
) -> None:
    async with asyncio.timeout(WAIT), quick_server.client() as client:
        await client.write_event(Event("select-program", data))
        await client.write_event(Transcribe(language="en").event())
        events = []
        while (event := await client.read_event()) is not None:
            events.append(event)
    # The connection's usual failure: one error, then it is closed.
    assert types(events) == ["error"]
    assert events[0].data["code"] == code
    assert started_sessions(emulator) == []


# --------------------------------------------------------------------------- helpers


async def _events_within(client: AsyncTcpClient, seconds: float) -> list[Event]:
    events: list[Event] = []
    try:
        async with asyncio.timeout(seconds):
            while (event := await client.read_event()) is not None:
                events.append(event)
    except TimeoutError:
        pass
    return events
