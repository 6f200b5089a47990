"""Text-to-speech through 60db's streaming WebSocket (60db-protocol.md §3).

A streamed answer uses one 60db context: each sentence is sent and flushed the
moment the language model finishes it, and audio is relayed while later
sentences are still being written. Home Assistant hears the first words after
the first sentence, not after the whole answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from homeassistant.components.tts import ATTR_VOICE, TtsAudioType, Voice
from homeassistant.components.tts.entity import (
    # Imported from the entity module: 2025.4 does not re-export TTSAudioResponse.
    TextToSpeechEntity,
    TTSAudioRequest,
    TTSAudioResponse,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from wyoming_60db.pipeline.aio import QuietStream, next_or_quiet
from wyoming_60db.pipeline.speaker import TextStreamSpeaker
from wyoming_60db.sixtydb import (
    MAX_TEXT_CHARS,
    SixtyDbError,
    TtsOptions,
)
from wyoming_60db.sixtydb import Voice as SixtyDbVoice
from wyoming_60db.sixtydb.catalog import Catalog, voice_label

from .audio import wav_file, wav_header
from .const import (
    CONF_SIMILARITY,
    CONF_SPEED,
    CONF_STABILITY,
    CONF_VOICE,
    LOGGER,
    TTS_SAMPLE_RATE,
)
from .coordinator import SixtyDbConfigEntry
from .entity import SixtyDbEntity
from .errors import ha_error, translated_error

# Each request holds its own 60db context; the client queues beyond 60db's limit.
PARALLEL_UPDATES = 0

NUMBER_OPTIONS = (CONF_SPEED, CONF_STABILITY, CONF_SIMILARITY)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SixtyDbConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the TTS entity of a config entry."""
    async_add_entities([SixtyDbTtsEntity(entry)])


class SixtyDbTtsEntity(SixtyDbEntity, TextToSpeechEntity):
    """60db streaming text-to-speech."""

    def __init__(self, entry: SixtyDbConfigEntry) -> None:
        super().__init__(entry, "tts")
        self._attr_supported_options = [ATTR_VOICE, *NUMBER_OPTIONS]

    # Plain properties, not HA's cached _attr_ ones: both follow the catalog
    # refresh and the options at once, without a reload.
    @property
    def supported_languages(self) -> list[str]:
        """Languages with at least one voice in the cached catalog."""
        return self.coordinator.data.tts_languages

    @property
    def default_language(self) -> str:
        """The default voice's language."""
        return default_language(self.coordinator.data, self.option(CONF_VOICE))

    @callback
    def async_get_supported_voices(self, language: str) -> list[Voice] | None:
        """Voices for ``language`` from the cached catalog, the default voice first."""
        # HA lists voices per language already: the label leaves the language out.
        voices = self._catalog().voices_for(language)
        return [Voice(v.voice_id, voice_label(v, with_language=False)) for v in voices] or None

    def _catalog(self) -> Catalog:
        """The cached catalog, with the default voice the options name right now."""
        return self.coordinator.data.with_default_voice(self.option(CONF_VOICE))

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> TtsAudioType:
        """Speak ``message`` and return one WAV file."""
        settings = self._settings(language, options)
        if len(message) > MAX_TEXT_CHARS:
            raise ha_error("text_too_long")
        try:
            # The streaming pipeline, so a dropped connection is resumed here too.
            speaker = TextStreamSpeaker.for_text(self.client, settings, message)
            async with contextlib.aclosing(speaker.audio()) as audio:
                pcm = b"".join([chunk async for chunk in audio])
        except SixtyDbError as err:
            self.report_outcome(err)
            raise translated_error(err) from err
        self.report_outcome()
        return "wav", wav_file(pcm, settings.sample_rate)

    async def async_stream_tts_audio(self, request: TTSAudioRequest) -> TTSAudioResponse:
        """Speak text while it is still being written (HA 2025.4+)."""
        settings = self._settings(request.language, request.options)
        return TTSAudioResponse("wav", self._stream(request.message_gen, settings))

    async def _stream(
        self, message_gen: AsyncGenerator[str, None], settings: TtsOptions
    ) -> AsyncGenerator[bytes, None]:
        # One header of unknown length first, then raw PCM as 60db sends it.
        yield wav_header(settings.sample_rate)
        speaker = TextStreamSpeaker(self.client, settings)
        writer = self.entry.async_create_background_task(
            self.hass,
            _speak_sentences(message_gen, speaker, self.client.config.timeouts.tts_text_idle),
            "sixtydb streamed text-to-speech",
        )
        try:
            async with contextlib.aclosing(speaker.audio()) as audio:
                async for chunk in audio:
                    yield chunk
        except SixtyDbError as err:
            self.report_outcome(err)
            raise translated_error(err) from err
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        self.report_outcome()

    def _settings(self, language: str, options: Mapping[str, Any]) -> TtsOptions:
        """The voice and voice settings of one request, validated before any network call."""
        voice = _choose_voice(self._catalog(), language, options)
        numbers = {key: self._number(options, key) for key in NUMBER_OPTIONS}
        try:
            return TtsOptions(
                voice_id=voice.voice_id,
                encoding="LINEAR16",
                sample_rate=TTS_SAMPLE_RATE,
                speed=numbers[CONF_SPEED],
                stability=numbers[CONF_STABILITY],
                similarity=numbers[CONF_SIMILARITY],
            )
        except SixtyDbError as err:  # out of range
            raise translated_error(err) from err

    def _number(self, options: Mapping[str, Any], key: str) -> float:
        value = options.get(key, self.option(key))
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ha_error("invalid_option", option=key, value=str(value)) from None


def default_language(catalog: Catalog, voice_id: str) -> str:
    """The default voice's language, else English, else the first language there is."""
    languages = catalog.tts_languages
    voice = catalog.voice(voice_id)
    if voice is not None and voice.language in languages:
        return voice.language
    if not languages or "en" in languages:
        return "en"
    return languages[0]


def _choose_voice(catalog: Catalog, language: str, options: Mapping[str, Any]) -> SixtyDbVoice:
    """The voice the request names, else the language's first: the default voice if it fits."""
    if requested := options.get(ATTR_VOICE):
        voice = catalog.voice(str(requested))
        if voice is None:
            raise ha_error("unknown_voice", voice=str(requested))
        return voice
    candidates = catalog.voices_for(language or "")
    if not candidates:
        raise ha_error("unsupported_language", language=str(language))
    return candidates[0]


async def _speak_sentences(
    message_gen: AsyncGenerator[str, None], speaker: TextStreamSpeaker, idle: float
) -> None:
    """Pass the LLM's deltas on; the speaker flushes each sentence the moment it ends.

    Text that stops coming for ``idle`` seconds ends the request with
    ``text_idle_timeout``: a stuck writer must not hold a 60db TTS slot. What
    was flushed before is still spoken.
    """
    try:
        while (delta := await next_or_quiet(message_gen, idle)) is not None:
            speaker.add_text(delta)
    except QuietStream:
        LOGGER.warning("No text for %g s: the 60db text-to-speech request was ended", idle)
        speaker.fail(ha_error("text_idle_timeout", seconds=f"{idle:g}"))
    except Exception as err:  # the language model failed: the audio ends with its error
        speaker.fail(err)
    else:
        speaker.finish()
