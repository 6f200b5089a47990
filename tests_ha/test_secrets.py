"""The API key never reaches a log line, whatever happens."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from homeassistant.components import stt
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.components.tts.helper import get_engine_instance
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sixtydb.const import CONF_API_URL, DOMAIN, SECTION_ADVANCED
from wyoming_60db.emulator import Emulator, Fault, tonecode

from .conftest import API_KEY, OTHER_KEY, STT_ENTITY, TTS_ENTITY, bounded


async def _audio() -> object:
    yield tonecode.encode("hello", 16000).astype("<i2").tobytes()
    yield np.zeros(3200, dtype="<i2").tobytes()


async def _text() -> object:
    yield "Hello there."


async def test_key_is_never_logged(
    hass: HomeAssistant,
    cold_entry: MockConfigEntry,
    emulator: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Debug logging through a login, requests, failures and a rejected key."""
    caplog.set_level(logging.DEBUG)
    metadata = stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=stt.AudioChannels.CHANNEL_MONO,
    )
    speech = stt.async_get_speech_to_text_entity(hass, STT_ENTITY)
    assert speech is not None
    assert (await bounded(speech.async_process_audio_stream(metadata, _audio()))).text == "hello"
    voice = get_engine_instance(hass, TTS_ENTITY)
    response = await voice.async_stream_tts_audio(TTSAudioRequest("en", {}, _text()))
    assert b"".join([chunk async for chunk in response.data_gen])

    emulator.inject_fault(Fault(service="tts", kind="error", message=f"echo {API_KEY}"))
    with pytest.raises(HomeAssistantError):
        await bounded(voice.async_get_tts_audio("Hi.", "en", {}))
    emulator.settings.credit_balance = 0
    assert (await bounded(speech.async_process_audio_stream(metadata, _audio()))).text is None
    emulator.settings.credit_balance = 1
    emulator.settings.api_key = OTHER_KEY
    await bounded(cold_entry.runtime_data.coordinator.async_refresh())
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": API_KEY, SECTION_ADVANCED: {CONF_API_URL: emulator.base_url}}
    )
    await hass.async_block_till_done()

    # The emulator stands for 60db's servers: what it logs is not Home Assistant's log.
    logged = "\n".join(
        caplog.handler.format(record)
        for record in caplog.records
        if not record.name.startswith(("wyoming_60db.emulator", "aiohttp.server"))
    )
    assert "custom_components.sixtydb" in logged  # the integration did log
    assert "wyoming_60db.sixtydb" in logged  # and so did the client core
    assert API_KEY not in logged
