"""Speech-to-text through 60db's streaming WebSocket (60db-protocol.md §2).

Audio goes to 60db chunk by chunk while Home Assistant is still recording, so
the transcript is ready a moment after the user stops speaking instead of
after an upload of the whole recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterable, Callable

from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from wyoming_60db.audio import MAX_RATE, MIN_RATE, PcmFormat, UnsupportedAudioFormat
from wyoming_60db.sixtydb import SixtyDbError, SttOptions, SttResult, SttSession

from .audio import SttEncoder
from .const import (
    CONF_STT_ENCODING,
    CONF_STT_LANGUAGES,
    LOGGER,
    MAX_STT_LANGUAGES,
    STT_ENCODING_MULAW,
)
from .coordinator import SixtyDbConfigEntry
from .entity import SixtyDbEntity

# Each request opens its own 60db session; 60db allows 8 at once per account.
PARALLEL_UPDATES = 0

# Interim results are only asked for when someone listens to them (HA 2026.11+).
INTERIM_RESULTS_MS = 300

PROGRESS_METHOD = "async_process_audio_stream_with_progress"


def progress_api_matches(base: type) -> bool:
    """Whether ``base`` has HA 2026.11's partial-results method in the shape used here.

    That release is newer than anything testable here, so the override is
    installed only if the method is an async generator of ``(metadata, stream)``,
    as this code assumes. Anything else keeps Home Assistant's own default,
    which still gets the final transcript from ``async_process_audio_stream``.
    """
    method = getattr(base, PROGRESS_METHOD, None)
    if method is None or not inspect.isasyncgenfunction(method):
        return False
    return list(inspect.signature(method).parameters) == ["self", "metadata", "stream"]


HAS_PROGRESS = progress_api_matches(stt.SpeechToTextEntity)

PartialCallback = Callable[[str], None]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SixtyDbConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the STT entity of a config entry."""
    async_add_entities([SixtyDbSttEntity(entry)])


class SixtyDbSttEntity(SixtyDbEntity, stt.SpeechToTextEntity):
    """60db streaming speech-to-text."""

    def __init__(self, entry: SixtyDbConfigEntry) -> None:
        super().__init__(entry, "stt")

    @property
    def supported_languages(self) -> list[str]:
        """The languages 60db recognises, from the cached list."""
        return [language.code for language in self.coordinator.data.stt_languages]

    @property
    def supported_formats(self) -> list[stt.AudioFormats]:
        """WAV (a header, if any, is skipped)."""
        return [stt.AudioFormats.WAV]

    @property
    def supported_codecs(self) -> list[stt.AudioCodecs]:
        """Linear PCM."""
        return [stt.AudioCodecs.PCM]

    @property
    def supported_bit_rates(self) -> list[stt.AudioBitRates]:
        """Every PCM width; audio is converted to 16-bit before it is sent."""
        return list(stt.AudioBitRates)

    @property
    def supported_sample_rates(self) -> list[stt.AudioSampleRates]:
        """Every rate the resampler takes; 60db gets 16 kHz (or 8 kHz μ-law)."""
        return [rate for rate in stt.AudioSampleRates if MIN_RATE <= rate.value <= MAX_RATE]

    @property
    def supported_channels(self) -> list[stt.AudioChannels]:
        """Mono, and stereo mixed down to mono."""
        return [stt.AudioChannels.CHANNEL_MONO, stt.AudioChannels.CHANNEL_STEREO]

    async def async_process_audio_stream(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> stt.SpeechResult:
        """Stream the audio to 60db and return the final transcript."""
        return await self._transcribe(metadata, stream)

    async def _stream_partial_results(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> AsyncGenerator[stt.SpeechResult, None]:
        """Partial transcripts while the user speaks, then the final one."""
        partials: asyncio.Queue[str] = asyncio.Queue()
        task = asyncio.create_task(self._transcribe(metadata, stream, partials.put_nowait))
        try:
            while not task.done():
                waiter = asyncio.ensure_future(partials.get())
                await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    yield stt.SpeechResult(waiter.result(), stt.SpeechResultState.SUCCESS)
                else:
                    waiter.cancel()
            yield task.result()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    if HAS_PROGRESS:
        # Partial results first, the final one last (see progress_api_matches).
        async_process_audio_stream_with_progress = _stream_partial_results

    async def _transcribe(
        self,
        metadata: stt.SpeechMetadata,
        stream: AsyncIterable[bytes],
        on_partial: PartialCallback | None = None,
    ) -> stt.SpeechResult:
        try:
            encoder = self._encoder(metadata)
        except UnsupportedAudioFormat as err:
            LOGGER.warning("60db cannot take this audio: %s", err)
            return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
        try:
            result = await self._run_session(encoder, stream, on_partial)
        except SixtyDbError as err:
            self.report_outcome(err)
            LOGGER.warning("60db speech-to-text failed (%s): %s", err.code, err)
            return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
        self.report_outcome()
        LOGGER.debug("60db heard %d characters in %s", len(result.text), result.language)
        return stt.SpeechResult(result.text, stt.SpeechResultState.SUCCESS)

    async def _run_session(
        self,
        encoder: SttEncoder,
        stream: AsyncIterable[bytes],
        on_partial: PartialCallback | None,
    ) -> SttResult:
        options = SttOptions(
            languages=self._languages(),
            encoding="mulaw" if encoder.mulaw else "linear",
            sample_rate=encoder.sample_rate,
            interim_results_ms=INTERIM_RESULTS_MS if on_partial else None,
        )
        async with self.client.stt_session(options) as session:
            relay = None
            if on_partial is not None:
                relay = asyncio.create_task(_relay_partials(session, on_partial))
            try:
                async for chunk in stream:
                    if audio := encoder.encode(chunk):
                        await session.send_audio(audio)
                if audio := encoder.flush():
                    await session.send_audio(audio)
                return await session.stop()
            finally:
                if relay is not None:
                    relay.cancel()
                    await asyncio.gather(relay, return_exceptions=True)

    def _encoder(self, metadata: stt.SpeechMetadata) -> SttEncoder:
        if metadata.codec != stt.AudioCodecs.PCM:
            raise UnsupportedAudioFormat(f"{metadata.codec} is not linear PCM")
        source = PcmFormat(
            rate=int(metadata.sample_rate),
            width=int(metadata.bit_rate) // 8,
            channels=int(metadata.channel),
        )
        return SttEncoder(source, mulaw=self.option(CONF_STT_ENCODING) == STT_ENCODING_MULAW)

    def _languages(self) -> list[str] | None:
        """The configured languages, or ``None`` to let 60db detect the language."""
        chosen = list(self.option(CONF_STT_LANGUAGES) or [])
        return chosen[:MAX_STT_LANGUAGES] or None


async def _relay_partials(session: SttSession, on_partial: PartialCallback) -> None:
    """Report the text heard so far: finished utterances plus the current guess."""
    finals: list[str] = []
    async for update in session.transcripts():
        text = update.text.strip()
        if update.is_canonical:
            if text:
                finals.append(text)
            current = ""
        elif update.is_final:
            continue  # the first emit of a two-phase final (§2.5): the canonical follows
        else:
            current = text
        if heard := " ".join([*finals, current]).strip():
            on_partial(heard)
