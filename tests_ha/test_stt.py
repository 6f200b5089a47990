"""Speech-to-text through the entity, with tone-coded speech streamed in real chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from http import HTTPStatus

import numpy as np
import pytest
from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sixtydb import stt as sixtydb_stt
from custom_components.sixtydb.audio import wav_file
from custom_components.sixtydb.const import CONF_STT_ENCODING, CONF_STT_LANGUAGES, DOMAIN
from custom_components.sixtydb.issues import no_credits_issue_id
from wyoming_60db.emulator import Emulator, Fault, SttRecord, tonecode

from .conftest import STT_ENTITY, bounded, wait_for

PHRASE = "turn on the kitchen lights"
CHUNK_MS = 20


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


def _speech(text: str, rate: int = 16000) -> bytes:
    silence = np.zeros(rate // 5, dtype="<i2")  # 200 ms either side, like a real command
    return np.concatenate([silence, tonecode.encode(text, rate), silence]).astype("<i2").tobytes()


def _used_session(emulator: Emulator) -> SttRecord:
    """The last session that started (the pool also keeps an idle one open)."""
    return [session for session in emulator.stt_sessions if session.start is not None][-1]


def _entity(hass: HomeAssistant) -> sixtydb_stt.SixtyDbSttEntity:
    entity = stt.async_get_speech_to_text_entity(hass, STT_ENTITY)
    assert isinstance(entity, sixtydb_stt.SixtyDbSttEntity)
    return entity


async def _chunks(
    audio: bytes, rate: int = 16000, width: int = 2, *, emulator: Emulator | None = None
) -> AsyncIterator[bytes]:
    """Audio as HA's pipeline delivers it: small chunks, one at a time.

    With ``emulator``, the second half waits until 60db has received audio:
    that proves the entity streams while HA is still sending.
    """
    size = rate * width * CHUNK_MS // 1000
    half = len(audio) // 2
    for offset in range(0, len(audio), size):
        if emulator is not None and offset >= half:
            await _audio_arrived(emulator)
            emulator = None
        yield audio[offset : offset + size]
        await asyncio.sleep(0)


async def _audio_arrived(emulator: Emulator) -> None:
    await wait_for(
        lambda: any(session.audio for session in emulator.stt_sessions),
        "60db received audio before the stream ended",
    )


async def test_streams_audio_and_returns_the_transcript(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Audio reaches 60db while HA still records; the final text comes back."""
    entity = _entity(hass)
    assert "en" in entity.supported_languages
    assert entity.check_metadata(_metadata())

    result = await bounded(
        entity.async_process_audio_stream(_metadata(), _chunks(_speech(PHRASE), emulator=emulator))
    )
    assert result == stt.SpeechResult(PHRASE, stt.SpeechResultState.SUCCESS)
    session = _used_session(emulator)
    assert session.start is not None
    assert session.start["languages"] is None  # no languages chosen: 60db detects
    assert session.config is not None
    assert session.config["encoding"] == "linear"
    assert session.config["sample_rate"] == 16000
    assert session.transcripts == [PHRASE]


async def test_options_choose_languages_and_mulaw(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The options apply to the next request: languages and 8 kHz μ-law."""
    hass.config_entries.async_update_entry(
        setup_entry, options={CONF_STT_LANGUAGES: ["en", "hi"], CONF_STT_ENCODING: "mulaw"}
    )
    result = await bounded(
        _entity(hass).async_process_audio_stream(_metadata(), _chunks(_speech(PHRASE)))
    )
    assert result.text == PHRASE
    session = _used_session(emulator)
    assert session.languages == ["en", "hi"]
    assert session.config is not None
    assert (session.config["encoding"], session.config["sample_rate"]) == ("mulaw", 8000)


async def test_converts_stereo_48k_with_a_wav_header(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Any PCM HA advertises is converted; a WAV header is not sent as audio."""
    mono = np.frombuffer(_speech(PHRASE, 48000), dtype="<i2")
    stereo = np.repeat(mono, 2).astype("<i2").tobytes()
    wav = wav_file(stereo, 48000, channels=2)
    metadata = _metadata(stt.AudioSampleRates.SAMPLERATE_48000, stt.AudioChannels.CHANNEL_STEREO)
    result = await bounded(
        _entity(hass).async_process_audio_stream(metadata, _chunks(wav, 48000, 4))
    )
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


async def test_no_credits_is_an_error_result_and_a_repair_issue(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """STT failures are reported as ERROR results (HA's contract), and credits as an issue."""
    setup_entry = cold_entry
    issues = ir.async_get(hass)
    emulator.settings.credit_balance = 0
    result = await bounded(
        _entity(hass).async_process_audio_stream(_metadata(), _chunks(_speech(PHRASE)))
    )
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    assert issues.async_get_issue(DOMAIN, no_credits_issue_id(setup_entry)) is not None

    emulator.settings.credit_balance = 3.0
    result = await bounded(
        _entity(hass).async_process_audio_stream(_metadata(), _chunks(_speech(PHRASE)))
    )
    assert result.text == PHRASE
    assert issues.async_get_issue(DOMAIN, no_credits_issue_id(setup_entry)) is None


@pytest.mark.parametrize("field", ["codec", "sample_rate"])
async def test_unsupported_audio_is_an_error_result(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator, field: str
) -> None:
    """Audio the entity cannot convert is refused before anything is sent."""
    metadata = _metadata()
    if field == "codec":
        metadata.codec = stt.AudioCodecs.OPUS
    else:
        metadata.sample_rate = 96000  # type: ignore[assignment]  # beyond the resampler
    result = await _entity(hass).async_process_audio_stream(metadata, _chunks(b"\0" * 640))
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    assert not any(session.start for session in emulator.stt_sessions)


async def test_partial_results(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Partial transcripts arrive while the audio is still streaming, the final one last."""
    entity = _entity(hass)
    results = [
        result
        async for result in entity._stream_partial_results(
            _metadata(), _chunks(_speech(PHRASE), emulator=emulator)
        )
    ]
    assert results[-1] == stt.SpeechResult(PHRASE, stt.SpeechResultState.SUCCESS)
    partials = [result.text for result in results[:-1]]
    assert partials, "no partial result"
    assert all(PHRASE.startswith(text) for text in partials)
    session = _used_session(emulator)
    assert session.config is not None
    assert session.config["interim_results_frequency"] == sixtydb_stt.INTERIM_RESULTS_MS


def test_partial_results_only_where_home_assistant_has_them() -> None:
    """The 2026.11 method is overridden exactly when HA's base class has it, in that shape."""
    has_it = sixtydb_stt.progress_api_matches(stt.SpeechToTextEntity)
    assert sixtydb_stt.HAS_PROGRESS is has_it
    assert (sixtydb_stt.PROGRESS_METHOD in vars(sixtydb_stt.SixtyDbSttEntity)) is has_it
    if not hasattr(stt.SpeechToTextEntity, sixtydb_stt.PROGRESS_METHOD):
        assert not has_it  # 2025.4 … 2026.10


def test_progress_feature_check() -> None:
    """Only an async generator of (metadata, stream) is taken for the assumed API."""

    class Assumed:
        async def async_process_audio_stream_with_progress(self, metadata, stream):  # type: ignore[no-untyped-def]
            yield None

    class WithCallback:
        async def async_process_audio_stream_with_progress(self, metadata, stream, on_partial):  # type: ignore[no-untyped-def]
            return None

    assert sixtydb_stt.progress_api_matches(Assumed)
    assert not sixtydb_stt.progress_api_matches(WithCallback)
    assert not sixtydb_stt.progress_api_matches(object)


@pytest.mark.parametrize("fail_at", ["start", "stream"])
async def test_connection_lost_is_an_error_result(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator, fail_at: str
) -> None:
    """A dropped connection ends the request with an ERROR result, never a hang."""
    emulator.inject_fault(
        Fault(
            service="stt",
            kind="drop",
            after_messages=None if fail_at == "start" else 4,
            after_audio_bytes=None if fail_at == "start" else 3200,
        )
    )
    result = await bounded(
        _entity(hass).async_process_audio_stream(_metadata(), _chunks(_speech(PHRASE)))
    )
    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
