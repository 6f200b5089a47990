"""Speech-to-text through the entity, as the assist pipeline calls it, at real time.

Tone-coded speech is streamed in 10 ms chunks at real time (what a voice
satellite sends through Home Assistant), through what the pipeline calls:
``internal_async_process_audio_stream`` where it exists (2026.x), else
``async_process_audio_stream``.

With endpointing (the default) the entity answers when 60db ends the
utterance; tests of what Home Assistant's own VAD decides switch it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from homeassistant.components import stt
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.components.tts.helper import get_engine_instance
from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import floor_registry as fr
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sixtydb import stt as sixtydb_stt
from custom_components.sixtydb.audio import wav_file
from custom_components.sixtydb.const import (
    CONF_ENDPOINTING,
    CONF_MAX_COMMAND_SECONDS,
    CONF_NO_SPEECH_SECONDS,
    CONF_STT_ENCODING,
    CONF_STT_LANGUAGES,
    CONF_VAD_SENSITIVITY,
    CONF_VOCABULARY,
    DOMAIN,
)
from custom_components.sixtydb.issues import no_credits_issue_id
from wyoming_60db.emulator import Emulator, Fault, SttRecord, tonecode

from .conftest import (
    SHORT_IDLE,
    STT_ENTITY,
    TTS_ENTITY,
    bounded,
    request_tasks,
    wait_for,
)

PHRASE = "turn on the kitchen lights"
SECOND_PHRASE = "and dim them to half"
COMMAND = f"{PHRASE} {SECOND_PHRASE}"
CHUNK_MS = 10  # what the assist pipeline sends: 320 bytes at 16 kHz, 16-bit mono
CLOSE_DELAY = 0.15  # a close handshake as slow as a real network round trip
HAS_PARTIALS = sixtydb_stt.HAS_PARTIAL_RESULTS
HAS_AUDIO_PROCESSING = sixtydb_stt.HAS_AUDIO_PROCESSING
UTTERANCE_END = {"aggressive": 0.3, "default": 0.5, "relaxed": 1.0}  # seconds of silence


def _metadata(
    rate: stt.AudioSampleRates = stt.AudioSampleRates.SAMPLERATE_16000,
    channels: stt.AudioChannels = stt.AudioChannels.CHANNEL_MONO,
) -> stt.SpeechMetadata:
    return stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=rate,
        channel=channels,
    )


def _speech(*phrases: str, rate: int = 16000, pause: float = 1.0) -> bytes:
    """Phrases with ``pause`` seconds between them, 200 ms of silence either side."""
    edge = np.zeros(rate // 5, dtype="<i2")
    gap = np.zeros(round(rate * pause), dtype="<i2")
    parts = [edge]
    for index, phrase in enumerate(phrases):
        if index:
            parts.append(gap)
        parts.append(tonecode.encode(phrase, rate))
    parts.append(edge)
    return np.concatenate(parts).astype("<i2").tobytes()


def _silence(seconds: float, rate: int = 16000) -> bytes:
    return bytes(2 * round(rate * seconds))


def _set_options(hass: HomeAssistant, entry: MockConfigEntry, **options: Any) -> None:
    """Change some options; the entity reads them at its next request."""
    hass.config_entries.async_update_entry(entry, options={**entry.options, **options})


@dataclass
class Feed:
    """Audio as Home Assistant's pipeline delivers it: 10 ms chunks at real time.

    It records how far it got, so results can be placed against the audio:
    ``yielded`` chunks so far, and when the last one was yielded.
    """

    audio: bytes
    rate: int = 16000
    frame_bytes: int = 2  # width * channels
    wait_for_audio: Emulator | None = None  # hold the second half until 60db has audio
    mark: int | None = None  # a byte offset (the end of speech): when was it yielded?
    yielded: int = 0
    last_chunk_at: float | None = None
    mark_at: float | None = None
    chunk_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.chunk_bytes = self.rate * CHUNK_MS // 1000 * self.frame_bytes

    @property
    def chunks(self) -> int:
        return -(-len(self.audio) // self.chunk_bytes)

    async def stream(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index in range(self.chunks):
            # Real time, tolerant of drift: a late chunk goes at once, and after
            # a long stall (a busy machine) the clock restarts instead of bursting.
            late = loop.time() - (start + index * CHUNK_MS / 1000)
            if late > 0.2:
                start += late
            await asyncio.sleep(max(-late, 0))
            if self.wait_for_audio is not None and index >= self.chunks // 2:
                await _audio_arrived(self.wait_for_audio)
                self.wait_for_audio = None
            self.yielded = index + 1
            if self.yielded == self.chunks:
                self.last_chunk_at = loop.time()
            reached = self.mark is not None and self.yielded * self.chunk_bytes >= self.mark
            if reached and self.mark_at is None:
                self.mark_at = loop.time()
            yield self.audio[index * self.chunk_bytes : (index + 1) * self.chunk_bytes]


@dataclass
class Seen:
    """One result the entity yielded, placed against the audio."""

    result: Any
    chunks_yielded: int
    at: float


async def _audio_arrived(emulator: Emulator) -> None:
    await wait_for(
        lambda: any(session.audio for session in emulator.stt_sessions),
        "60db received audio before the stream ended",
    )


def _used_session(emulator: Emulator) -> SttRecord:
    """The last session that started (the pool also keeps an idle one open)."""
    return [session for session in emulator.stt_sessions if session.start is not None][-1]


def _entity(hass: HomeAssistant) -> sixtydb_stt.SixtyDbSttEntity:
    entity = stt.async_get_speech_to_text_entity(hass, STT_ENTITY)
    assert isinstance(entity, sixtydb_stt.SixtyDbSttEntity)
    return entity


async def _process(
    entity: sixtydb_stt.SixtyDbSttEntity,
    metadata: stt.SpeechMetadata,
    stream: AsyncIterable[bytes],
) -> stt.SpeechResult:
    """What the assist pipeline calls."""
    if hasattr(entity, "internal_async_process_audio_stream"):
        result = await entity.internal_async_process_audio_stream(metadata, stream)
    else:
        result = await entity.async_process_audio_stream(metadata, stream)
    assert isinstance(result, stt.SpeechResult)
    return result


async def _process_and_watch(
    entity: sixtydb_stt.SixtyDbSttEntity, metadata: stt.SpeechMetadata, feed: Feed
) -> tuple[stt.SpeechResult, list[Seen]]:
    """``_process``, recording every result the entity yields on the way (2026.11+)."""
    seen: list[Seen] = []
    if not HAS_PARTIALS:
        return await _process(entity, metadata, feed.stream()), seen
    loop = asyncio.get_running_loop()
    original = entity.async_process_audio_stream_with_progress

    async def spy(
        metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> AsyncGenerator[Any, None]:
        async with aclosing(original(metadata, stream)) as results:
            async for result in results:
                seen.append(Seen(result, feed.yielded, loop.time()))
                yield result

    with patch.object(entity, "async_process_audio_stream_with_progress", spy):
        result = await _process(entity, metadata, feed.stream())
    return result, seen


async def test_two_phrase_command_at_real_time(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A command spoken as two phrases with a pause: both phrases, and a stopped session.

    Where Home Assistant takes partial results (2026.11+), the first phrase
    comes back as a PartialSpeechResult while the user is still speaking,
    and the final transcript is the one SpeechResult, last. Home Assistant's
    VAD ends the turn here: 60db's would end it at the 1 s pause.
    """
    _set_options(hass, setup_entry, **{CONF_ENDPOINTING: False})
    feed = Feed(_speech(PHRASE, SECOND_PHRASE))
    result, seen = await bounded(_process_and_watch(_entity(hass), _metadata(), feed), 30)

    assert result == stt.SpeechResult(COMMAND, stt.SpeechResultState.SUCCESS)
    session = _used_session(emulator)
    assert session.transcripts == [PHRASE, SECOND_PHRASE]
    assert session.ended == "stopped", "the 60db session was not finished with stop"
    assert session.start is not None
    assert "interim_results_frequency" not in session.start["config"]  # partials cost nothing
    if not HAS_PARTIALS:
        return
    timeline = [
        (type(s.result).__name__, s.result.text, f"chunk {s.chunks_yielded}/{feed.chunks}", s.at)
        for s in seen
    ]
    assert [s.result for s in seen if isinstance(s.result, stt.SpeechResult)] == [result]
    assert seen[-1].result is result, timeline
    partials = seen[:-1]
    assert all(isinstance(s.result, stt.PartialSpeechResult) for s in partials), timeline
    assert all(COMMAND.startswith(s.result.text) for s in partials), timeline
    assert feed.last_chunk_at is not None
    early = [
        s
        for s in partials
        if s.result.text == PHRASE and s.chunks_yielded < feed.chunks and s.at < feed.last_chunk_at
    ]
    assert early, f"no partial with the first phrase before the audio ended: {timeline}"


async def test_streams_audio_and_returns_the_transcript(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Audio reaches 60db while HA still records; the final text comes back."""
    entity = _entity(hass)
    assert "en" in entity.supported_languages
    assert entity.check_metadata(_metadata())

    feed = Feed(_speech(PHRASE), wait_for_audio=emulator)
    result = await bounded(_process(entity, _metadata(), feed.stream()))
    assert result == stt.SpeechResult(PHRASE, stt.SpeechResultState.SUCCESS)
    session = _used_session(emulator)
    assert session.start is not None
    assert session.start["languages"] is None  # no languages chosen: 60db detects
    assert session.config is not None
    assert session.config["encoding"] == "linear"
    assert session.config["sample_rate"] == 16000
    assert session.transcripts == [PHRASE]
    assert session.ended == "stopped"


async def test_options_choose_languages_and_mulaw(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The options apply to the next request: languages and 8 kHz μ-law."""
    hass.config_entries.async_update_entry(
        setup_entry, options={CONF_STT_LANGUAGES: ["en", "hi"], CONF_STT_ENCODING: "mulaw"}
    )
    result = await bounded(_process(_entity(hass), _metadata(), Feed(_speech(PHRASE)).stream()))
    assert result.text == PHRASE
    session = _used_session(emulator)
    assert session.languages == ["en", "hi"]
    assert session.config is not None
    assert (session.config["encoding"], session.config["sample_rate"]) == ("mulaw", 8000)


async def test_converts_stereo_48k_with_a_wav_header(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Any PCM HA advertises is converted; a WAV header is not sent as audio."""
    mono = np.frombuffer(_speech(PHRASE, rate=48000), dtype="<i2")
    stereo = np.repeat(mono, 2).astype("<i2").tobytes()
    wav = wav_file(stereo, 48000, channels=2)
    metadata = _metadata(stt.AudioSampleRates.SAMPLERATE_48000, stt.AudioChannels.CHANNEL_STEREO)
    feed = Feed(wav, rate=48000, frame_bytes=4)
    result = await bounded(_process(_entity(hass), metadata, feed.stream()))
    assert result.text == PHRASE
    # 16 kHz mono: a third of the 48 kHz samples, half of the stereo bytes.
    sent = len(_used_session(emulator).audio)
    assert abs(sent - len(stereo) // 6) < 2000


async def test_http_api(
    hass: HomeAssistant, setup_entry: MockConfigEntry, hass_client, emulator: Emulator
) -> None:
    """HA's own STT endpoint (a WAV upload) goes through the same streaming path."""
    client = await hass_client()
    response = await bounded(
        client.post(
            f"/api/stt/{STT_ENTITY}",
            data=wav_file(_speech(PHRASE), 16000),
            headers={
                "X-Speech-Content": (
                    "format=wav; codec=pcm; sample_rate=16000; bit_rate=16; channel=1; language=en"
                )
            },
        )
    )
    assert response.status == HTTPStatus.OK
    assert await response.json() == {"text": PHRASE, "result": "success"}
    assert _used_session(emulator).ended == "stopped"


async def test_http_api_transcribes_a_whole_recording(
    hass: HomeAssistant, setup_entry: MockConfigEntry, hass_client, emulator: Emulator
) -> None:
    """A WAV upload is a recording, not a live turn: a long pause does not end it."""
    client = await hass_client()
    recording = _speech(PHRASE, SECOND_PHRASE, pause=1.5) + _silence(1.0)
    response = await bounded(
        client.post(
            f"/api/stt/{STT_ENTITY}",
            data=wav_file(recording, 16000),
            headers={
                "X-Speech-Content": (
                    "format=wav; codec=pcm; sample_rate=16000; bit_rate=16; channel=1; language=en"
                )
            },
        )
    )
    assert response.status == HTTPStatus.OK
    assert await response.json() == {"text": COMMAND, "result": "success"}
    session = _used_session(emulator)
    assert session.transcripts == [PHRASE, SECOND_PHRASE]
    assert len(session.audio) == len(recording)


async def test_no_credits_is_an_error_result_and_a_repair_issue(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """STT failures are reported as ERROR results (HA's contract), and credits as an issue."""
    setup_entry = cold_entry
    issues = ir.async_get(hass)
    emulator.settings.credit_balance = 0
    result = await bounded(_process(_entity(hass), _metadata(), Feed(_speech(PHRASE)).stream()))
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    assert issues.async_get_issue(DOMAIN, no_credits_issue_id(setup_entry)) is not None

    emulator.settings.credit_balance = 3.0
    result = await bounded(_process(_entity(hass), _metadata(), Feed(_speech(PHRASE)).stream()))
    assert result.text == PHRASE
    assert issues.async_get_issue(DOMAIN, no_credits_issue_id(setup_entry)) is None
    await wait_for(lambda: emulator.open_connections == 0, "used connections closed")


@pytest.mark.parametrize("field_name", ["codec", "sample_rate"])
async def test_unsupported_audio_is_an_error_result(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator, field_name: str
) -> None:
    """Audio the entity cannot convert is refused before anything is sent."""
    metadata = _metadata()
    if field_name == "codec":
        metadata.codec = stt.AudioCodecs.OPUS
    else:
        metadata.sample_rate = 96000  # type: ignore[assignment]  # beyond the resampler
    result = await _process(_entity(hass), metadata, Feed(b"\0" * 640).stream())
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    assert not any(session.start for session in emulator.stt_sessions)


@pytest.mark.parametrize("fail_at", ["start", "stream"])
async def test_connection_lost_is_an_error_result(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator, fail_at: str
) -> None:
    """A connection that fails ends the request with an ERROR result, never a hang.

    At the start it is not retried; mid-stream it is, twice, so it fails three times.
    """
    for _ in range(1 if fail_at == "start" else 3):
        emulator.inject_fault(
            Fault(
                service="stt",
                kind="drop",
                after_messages=None if fail_at == "start" else 4,
                after_audio_bytes=None if fail_at == "start" else 3200,
            )
        )
    result = await bounded(_process(_entity(hass), _metadata(), Feed(_speech(PHRASE)).stream()))
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    await wait_for(lambda: cold_entry.runtime_data.client.free_slots("stt") == 8, "slot freed")


def test_partial_results_exactly_where_home_assistant_has_them() -> None:
    """The partial-results method is overridden exactly when HA exports PartialSpeechResult."""
    exported = hasattr(stt, "PartialSpeechResult")
    assert sixtydb_stt.HAS_PARTIAL_RESULTS is exported
    overridden = "async_process_audio_stream_with_progress" in vars(sixtydb_stt.SixtyDbSttEntity)
    assert overridden is exported
    assert "async_process_audio_stream" in vars(sixtydb_stt.SixtyDbSttEntity)


@pytest.mark.skipif(not HAS_PARTIALS, reason="Home Assistant before 2026.11: no partials")
async def test_closing_the_generator_early_ends_everything(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A consumer that stops after the first partial leaves no task and no session behind."""
    _set_options(hass, setup_entry, **{CONF_ENDPOINTING: False})  # one turn, two phrases
    emulator.settings.close_delay = CLOSE_DELAY
    client = setup_entry.runtime_data.client
    feed = Feed(_speech(PHRASE, SECOND_PHRASE))
    results = _entity(hass).async_process_audio_stream_with_progress(_metadata(), feed.stream())
    first = await bounded(anext(results), 20)
    assert first == stt.PartialSpeechResult(PHRASE)
    await bounded(results.aclose())
    stopped_at = feed.yielded
    assert stopped_at < feed.chunks

    session = _used_session(emulator)
    await wait_for(lambda: session.ended is not None, "60db session closed")
    assert session.ended != "stopped"  # abandoned on purpose: nobody wants the rest
    await wait_for(lambda: client.free_slots("stt") == 8, "STT slot given back")
    await wait_for(lambda: not request_tasks(), f"tasks left running: {request_tasks()}")
    await asyncio.sleep(0.05)
    assert feed.yielded == stopped_at  # the audio stream is no longer read


@pytest.mark.parametrize("when", ["streaming", "closing"])
async def test_cancelled_transcription_gives_the_slot_back(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator, when: str
) -> None:
    """The pipeline task cancelled mid-stream, or during the close handshake: slot freed."""
    emulator.settings.close_delay = CLOSE_DELAY
    client = setup_entry.runtime_data.client
    task = asyncio.create_task(_process(_entity(hass), _metadata(), Feed(_speech(PHRASE)).stream()))
    if when == "streaming":
        await _audio_arrived(emulator)
    else:  # 60db has stopped the session; its close takes CLOSE_DELAY
        await wait_for(
            lambda: any(s.ended == "stopped" for s in emulator.stt_sessions), "session stopped"
        )
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await bounded(task)

    await wait_for(lambda: client.free_slots("stt") == 8, "STT slot given back")
    await wait_for(
        lambda: all(s.ended is not None for s in emulator.stt_sessions if s.start is not None),
        "60db session closed",
    )
    await wait_for(lambda: not request_tasks(), f"tasks left running: {request_tasks()}")
    # And the next request is served.
    result = await bounded(_process(_entity(hass), _metadata(), Feed(_speech(PHRASE)).stream()))
    assert result.text == PHRASE


async def test_bursts_of_concurrent_requests_keep_every_slot(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """5 bursts of 8 transcriptions (and 5 syntheses) at once, with a slow close handshake.

    Every request succeeds, and afterwards all 8 STT and 5 TTS slots are free.
    """
    emulator.settings.close_delay = CLOSE_DELAY
    client = setup_entry.runtime_data.client
    entity = _entity(hass)
    tts_entity = get_engine_instance(hass, TTS_ENTITY)
    assert tts_entity is not None
    command = "lights on"
    audio = _speech(command)

    async def speak() -> bytes:
        response = await tts_entity.async_stream_tts_audio(
            TTSAudioRequest("en", {}, _text("Okay."))
        )
        return b"".join([chunk async for chunk in response.data_gen])

    for burst in range(5):
        async with asyncio.timeout(30):
            stt_results, tts_results = await asyncio.gather(
                asyncio.gather(
                    *(_process(entity, _metadata(), Feed(audio).stream()) for _ in range(8))
                ),
                asyncio.gather(*(speak() for _ in range(5))),
            )
        assert [r.text for r in stt_results] == [command] * 8, f"burst {burst}"
        assert all(len(wav) > 44 for wav in tts_results), f"burst {burst}"

    await wait_for(lambda: client.free_slots("stt") == 8, "all 8 STT slots free")
    await wait_for(lambda: client.free_slots("tts") == 5, "all 5 TTS slots free")
    used = [s for s in emulator.stt_sessions if s.start is not None]
    assert len(used) == 40
    assert all(s.ended == "stopped" for s in used)


async def _text(*parts: str) -> AsyncGenerator[str, None]:
    for part in parts:
        yield part


async def test_audio_that_goes_quiet_ends_the_request(
    hass: HomeAssistant,
    impatient_entry: MockConfigEntry,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stream that stops yielding for stt_audio_idle: ERROR, a warning, slot and session freed."""
    client = impatient_entry.runtime_data.client
    assert client.config.timeouts.stt_audio_idle == SHORT_IDLE.stt_audio_idle
    never = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        async for chunk in Feed(_speech(PHRASE)[:9600]).stream():  # 300 ms
            yield chunk
        await never.wait()  # a satellite that went away without a word
        yield b""  # pragma: no cover

    with caplog.at_level(logging.WARNING, logger="custom_components.sixtydb"):
        result = await bounded(_process(_entity(hass), _metadata(), stalls()))
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    assert "No audio for 0.5 s" in caplog.text
    await wait_for(lambda: client.free_slots("stt") == 8, "STT slot given back")
    session = _used_session(emulator)
    await wait_for(lambda: session.ended is not None, "60db session closed")
    await wait_for(lambda: not request_tasks(), f"tasks left running: {request_tasks()}")


async def test_a_stream_that_never_starts_opens_no_session(
    hass: HomeAssistant, impatient_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """No first chunk within stt_audio_idle: ERROR, and no 60db session was started."""
    never = asyncio.Event()

    async def silent() -> AsyncIterator[bytes]:
        await never.wait()
        yield b""  # pragma: no cover

    result = await bounded(_process(_entity(hass), _metadata(), silent()))
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    assert not any(session.start for session in emulator.stt_sessions)
    assert impatient_entry.runtime_data.client.free_slots("stt") == 8
    await wait_for(lambda: not request_tasks(), f"tasks left running: {request_tasks()}")


async def test_sends_60_ms_frames(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """HA's 10 ms chunks reach 60db as 60 ms frames: ~16.7 frames a second, not 100."""
    audio = _speech(PHRASE)
    result = await bounded(_process(_entity(hass), _metadata(), Feed(audio).stream()), 30)
    assert result.text == PHRASE
    session = _used_session(emulator)
    assert bytes(session.audio) == audio  # 16 kHz mono: passed through untouched
    seconds = len(audio) / (16000 * 2)
    frames_per_second = (session.json_frames + session.binary_frames) / seconds
    assert 16 <= frames_per_second <= 20, f"{frames_per_second:.1f} frames per second"


async def _dropped_midway(
    chunks: AsyncIterable[bytes], emulator: Emulator, after_chunks: int
) -> AsyncIterator[bytes]:
    """``chunks``, with every 60db STT socket cut once ``after_chunks`` have gone by."""
    index = 0
    async for chunk in chunks:
        if index == after_chunks:
            await wait_for(
                lambda: any(len(session.audio) >= 16000 for session in emulator.stt_sessions),
                "half a second of audio at 60db",
            )
            assert emulator.drop_connections("stt") >= 1
        index += 1
        yield chunk


async def test_a_dropped_connection_mid_utterance_is_recovered(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """60db's socket drops 1 s into the command: the utterance is replayed into a new
    session and HA gets the exact transcript, with every slot given back."""
    command = "turn on the kitchen lights and close the blinds"  # about 3 s
    audio = Feed(_speech(command)).stream()
    one_second = 1000 // CHUNK_MS
    result = await bounded(
        _process(_entity(hass), _metadata(), _dropped_midway(audio, emulator, one_second)), 30
    )
    assert result == stt.SpeechResult(command, stt.SpeechResultState.SUCCESS)
    started = [session for session in emulator.stt_sessions if session.start is not None]
    assert len(started) == 2  # the dropped session and its replacement
    assert started[-1].transcripts == [command]
    client = setup_entry.runtime_data.client
    await wait_for(lambda: client.free_slots("stt") == 8, "every STT slot given back")


# --------------------------------------------------------------------------- end of speech


@pytest.mark.parametrize("sensitivity", ["aggressive", "default", "relaxed"])
async def test_endpointing_answers_when_60db_ends_the_utterance(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator, sensitivity: str
) -> None:
    """The transcript comes utterance_end_ms after the speech, while the audio goes on.

    The stream (the command, then 3 s of silence) is read no further once the
    result is there, and the session is still stopped and billed.
    """
    _set_options(hass, setup_entry, **{CONF_VAD_SENSITIVITY: sensitivity})
    client = setup_entry.runtime_data.client
    billed = client.usage.stt_sessions
    speech = _speech(PHRASE)
    edge = len(_silence(0.2))  # _speech ends with 200 ms of silence
    feed = Feed(speech + _silence(3.0), mark=len(speech) - edge)
    result = await bounded(_process(_entity(hass), _metadata(), feed.stream()))
    answered_at, answered_perf = asyncio.get_running_loop().time(), time.perf_counter()

    assert result == stt.SpeechResult(PHRASE, stt.SpeechResultState.SUCCESS)
    session = _used_session(emulator)
    assert feed.mark_at is not None
    latency = answered_at - feed.mark_at
    added = answered_perf - session.canonical_sent_at[0]
    silence = UTTERANCE_END[sensitivity]
    print(
        f"{sensitivity}: transcript {latency * 1000:.0f} ms after the end of speech, "
        f"{added * 1000:.1f} ms after 60db sent speech_final"
    )
    # 60db's silence (plus a 60 ms frame), and soon after 60db's final: tens of
    # milliseconds here (printed with -s), bounded loosely for a busy CI machine,
    # yet far from the stream's end 3 s later.
    assert silence - 0.05 <= latency <= silence + 0.75, f"{latency:.3f} s after the speech"
    assert 0 <= added <= 0.5, f"{added * 1000:.1f} ms after 60db's speech_final"
    taken = feed.yielded
    assert taken < feed.chunks, "the entity waited for the end of the stream"
    await asyncio.sleep(0.1)  # 10 chunks' worth of real time
    assert feed.yielded == taken, "the stream was read after the turn ended"

    assert session.config is not None
    assert session.config["utterance_end_ms"] == round(silence * 1000)
    await wait_for(lambda: session.ended == "stopped", "session stopped in the background")
    await wait_for(lambda: client.usage.stt_sessions == billed + 1, "the session's bill counted")
    await wait_for(lambda: client.free_slots("stt") == 8, "STT slot given back")
    await wait_for(lambda: not request_tasks(), f"tasks left running: {request_tasks()}")


async def test_a_short_pause_does_not_cut_the_command(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A 250 ms pause inside a command keeps it one turn at the default 500 ms."""
    speech = _speech(PHRASE, SECOND_PHRASE, pause=0.25)
    feed = Feed(speech + _silence(3.0))
    result, seen = await bounded(_process_and_watch(_entity(hass), _metadata(), feed))
    assert result == stt.SpeechResult(COMMAND, stt.SpeechResultState.SUCCESS)
    assert feed.yielded < feed.chunks
    assert _used_session(emulator).transcripts == [COMMAND]
    if HAS_PARTIALS:  # partials (if any) come first, then exactly one final result
        assert seen[-1].result is result
        partials = [s.result for s in seen[:-1]]
        assert all(isinstance(p, stt.PartialSpeechResult) for p in partials), partials
        assert all(COMMAND.startswith(p.text) for p in partials), partials


async def test_without_endpointing_the_stream_ends_the_turn(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Switched off: 60db's end of utterance is not the answer; the stream's end is."""
    _set_options(hass, setup_entry, **{CONF_ENDPOINTING: False})
    feed = Feed(_speech(PHRASE) + _silence(1.5))
    result = await bounded(_process(_entity(hass), _metadata(), feed.stream()))
    answered_at = asyncio.get_running_loop().time()
    assert result == stt.SpeechResult(PHRASE, stt.SpeechResultState.SUCCESS)
    assert feed.yielded == feed.chunks
    assert feed.last_chunk_at is not None
    assert answered_at >= feed.last_chunk_at
    session = _used_session(emulator)
    assert session.transcripts == [PHRASE]  # 60db's final came long before the end
    assert session.ended == "stopped"


async def test_longest_command_guard_finalises(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A turn still going after max_command_seconds of audio is finalised there."""
    _set_options(hass, setup_entry, **{CONF_MAX_COMMAND_SECONDS: 1.5})
    long_command = "turn on the kitchen lights and close the blinds"  # 2.8 s of speech
    feed = Feed(_speech(long_command) + _silence(2.0))
    result = await bounded(_process(_entity(hass), _metadata(), feed.stream()))
    assert result.result is stt.SpeechResultState.SUCCESS
    # 1.5 s of audio, give or take a 60 ms frame and the 10 ms chunks around it.
    assert 145 <= feed.yielded <= 165, f"{feed.yielded} chunks read"
    session = _used_session(emulator)
    await wait_for(lambda: session.ended == "stopped", "session finalised with stop")
    # What went to 60db: 1.5 s, plus the frames sent while the clock caught up
    # with the audio (the guard needs both) and the frame being cut.
    assert len(session.audio) <= 1.7 * 32000
    assert result.text == " ".join(session.transcripts)


async def test_no_speech_guard_gives_an_empty_transcript(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Silence for no_speech_seconds: an empty text (not an error), and the stream left."""
    _set_options(hass, setup_entry, **{CONF_NO_SPEECH_SECONDS: 1.0})
    client = setup_entry.runtime_data.client
    feed = Feed(_silence(4.0))
    result = await bounded(_process(_entity(hass), _metadata(), feed.stream()))
    assert result == stt.SpeechResult("", stt.SpeechResultState.SUCCESS)
    assert 95 <= feed.yielded <= 115, f"{feed.yielded} chunks read"
    session = _used_session(emulator)
    await wait_for(lambda: session.ended == "stopped", "session stopped in the background")
    await wait_for(lambda: client.free_slots("stt") == 8, "STT slot given back")


async def test_speech_before_the_no_speech_bound_is_heard(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The no-speech guard counts only until 60db hears a voice."""
    _set_options(hass, setup_entry, **{CONF_NO_SPEECH_SECONDS: 1.0})
    feed = Feed(_silence(0.7) + _speech(PHRASE) + _silence(2.0))  # speech starts at 0.9 s
    result = await bounded(_process(_entity(hass), _metadata(), feed.stream()))
    assert result == stt.SpeechResult(PHRASE, stt.SpeechResultState.SUCCESS)


async def test_invalid_sensitivity_is_an_error_result(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An option edited into nonsense fails the request clearly, before any session."""
    _set_options(hass, setup_entry, **{CONF_VAD_SENSITIVITY: "sleepy"})
    used = len([s for s in emulator.stt_sessions if s.start is not None])
    with caplog.at_level(logging.WARNING, logger="custom_components.sixtydb"):
        result = await bounded(_process(_entity(hass), _metadata(), Feed(_speech(PHRASE)).stream()))
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    assert "sleepy" in caplog.text
    assert len([s for s in emulator.stt_sessions if s.start is not None]) == used


@pytest.mark.skipif(not HAS_AUDIO_PROCESSING, reason="Home Assistant before 2026.10")
async def test_audio_processing_follows_the_option(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """With endpointing the pipeline is told to run no VAD; without it, to run its own."""
    entity = _entity(hass)
    assert entity.audio_processing == stt.SpeechAudioProcessing(
        requires_external_vad=False,
        prefers_auto_gain_enabled=True,
        prefers_noise_reduction_enabled=True,
    )
    _set_options(hass, setup_entry, **{CONF_ENDPOINTING: False})
    assert entity.audio_processing.requires_external_vad is True
    assert entity.audio_processing.prefers_auto_gain_enabled is True


def test_audio_processing_exactly_where_home_assistant_has_it() -> None:
    """The property is overridden exactly when HA exports SpeechAudioProcessing."""
    exported = hasattr(stt, "SpeechAudioProcessing")
    assert sixtydb_stt.HAS_AUDIO_PROCESSING is exported
    assert ("audio_processing" in vars(sixtydb_stt.SixtyDbSttEntity)) is exported


# --------------------------------------------------------------------------- vocabulary


async def _home_with_names(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[str, ...]:
    """A floor and an area with names a speech model would get wrong; the terms then."""
    _set_options(hass, entry, **{CONF_VOCABULARY: True})  # off by default
    fr.async_get(hass).async_create("Dachgeschoss")
    ar.async_get(hass).async_create("Küchenlicht")
    vocabulary = entry.runtime_data.vocabulary
    await wait_for(
        lambda: {"Dachgeschoss", "Küchenlicht"} <= set(vocabulary.terms),
        "the home's names in the vocabulary",
    )
    return vocabulary.terms


async def test_vocabulary_reaches_60db_as_context_terms(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The home's names go to 60db on start; the turn ends on the refined final.

    The emulator sentence-cases its refined final: a transcript that starts
    with a capital is the canonical one, not the first emit.
    """
    terms = await _home_with_names(hass, setup_entry)
    emulator.settings.stt_llm_refine_text = True
    feed = Feed(_speech(PHRASE) + _silence(2.0))
    result = await bounded(_process(_entity(hass), _metadata(), feed.stream()))
    assert result == stt.SpeechResult("Turn on the kitchen lights", stt.SpeechResultState.SUCCESS)
    assert feed.yielded < feed.chunks
    session = _used_session(emulator)
    assert session.context_terms == list(terms)


async def test_a_late_refinement_gives_the_first_final(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """With a context, a refined final later than 0.3 s is not waited for."""
    await _home_with_names(hass, setup_entry)
    emulator.settings.stt_llm_refine_text = True
    emulator.settings.stt_llm_latency_ms = 2000
    feed = Feed(_speech(PHRASE) + _silence(4.0))
    result = await bounded(_process(_entity(hass), _metadata(), feed.stream()))
    assert result == stt.SpeechResult(PHRASE, stt.SpeechResultState.SUCCESS)  # the first emit
    # 0.5 s of silence, 0.3 s of waiting for the refinement, then no more reading.
    assert feed.yielded < feed.chunks - 200


async def test_vocabulary_off_sends_no_context(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Switched off, no context goes to 60db (so it sends one final per utterance)."""
    await _home_with_names(hass, setup_entry)
    _set_options(hass, setup_entry, **{CONF_VOCABULARY: False})
    result = await bounded(_process(_entity(hass), _metadata(), Feed(_speech(PHRASE)).stream()))
    assert result.text == PHRASE
    session = _used_session(emulator)
    assert session.start is not None
    assert "context" not in session.start
    assert session.context_terms is None
