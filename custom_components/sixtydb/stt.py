"""Speech-to-text through 60db's streaming WebSocket (60db-protocol.md §2).

Audio goes to 60db chunk by chunk while Home Assistant is still recording, so
the transcript is ready a moment after the user stops speaking instead of
after an upload of the whole recording.

On Home Assistant 2026.11+ the entity also reports partial results: the
phrases 60db has finished so far (its canonical finals, sent at each pause
anyway), joined. No interim results are asked for: nothing in Home Assistant
shows partials yet, so they must cost nothing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import aclosing

from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from wyoming_60db.pcm import MAX_RATE, MIN_RATE, PcmFormat, UnsupportedAudioFormat
from wyoming_60db.pipeline.aio import QuietStream, next_or_quiet
from wyoming_60db.pipeline.stt_feed import SttFeed
from wyoming_60db.sixtydb import SixtyDbError, SttOptions
from wyoming_60db.sixtydb.limits import STT_RATE_FOR_ENCODING, SttEncoding

from .audio import WavHeaderStripper
from .const import (
    CONF_STT_ENCODING,
    CONF_STT_LANGUAGES,
    LOGGER,
    MAX_STT_LANGUAGES,
    STT_ENCODING_MULAW,
)
from .coordinator import SixtyDbConfigEntry
from .entity import SixtyDbEntity

try:  # Home Assistant 2026.11+: partial results while the user speaks
    from homeassistant.components.stt import (  # type: ignore[attr-defined,unused-ignore]
        PartialSpeechResult,
    )
except ImportError:  # earlier releases: the final result only
    HAS_PARTIAL_RESULTS = False
else:
    HAS_PARTIAL_RESULTS = True

# Each request opens its own 60db session; 60db allows 8 at once per account.
PARALLEL_UPDATES = 0


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
        async with aclosing(self._results(metadata, stream, partials=False)) as results:
            result = await anext(results)
        assert isinstance(result, stt.SpeechResult)  # without partials: the one and only item
        return result

    if HAS_PARTIAL_RESULTS:

        async def async_process_audio_stream_with_progress(
            self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
        ) -> AsyncGenerator[PartialSpeechResult | stt.SpeechResult, None]:
            """Partial transcripts while the user speaks, then exactly one final result."""
            async with aclosing(self._results(metadata, stream, partials=True)) as results:
                async for result in results:
                    yield PartialSpeechResult(result) if isinstance(result, str) else result

    async def _results(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes], *, partials: bool
    ) -> AsyncGenerator[str | stt.SpeechResult, None]:
        """The text heard so far after each new phrase (if ``partials``), then the result.

        Each chunk goes to the feed, which sends 60 ms frames from a task of
        its own, and the text heard so far is read between chunks. Closing the
        generator early (Home Assistant does once it has the final result)
        closes the 60db session in the ``finally``.
        """
        try:
            source = _source_format(metadata)
        except UnsupportedAudioFormat as err:
            LOGGER.warning("60db cannot take this audio: %s", err)
            yield _error()
            return
        idle = self.client.config.timeouts.stt_audio_idle
        # The feed opens the session, and a fresh one if 60db drops it mid-request.
        feed = SttFeed(self.client, self._options(), source)
        # Only HA's HTTP API sends a WAV header; the pipeline sends raw PCM.
        wav = WavHeaderStripper()
        stopped = False
        try:
            heard = ""
            chunks = aiter(stream)
            while (chunk := await next_or_quiet(chunks, idle)) is not None:
                feed.push(wav.feed(chunk))
                if partials and feed.heard != heard:
                    heard = feed.heard  # only the latest, and only when it changed
                    yield heard
            feed.push(wav.flush())
            result = await feed.finish()
            stopped = True
        except SixtyDbError as err:
            self.report_outcome(err)
            LOGGER.warning("60db speech-to-text failed (%s): %s", err.code, err)
            outcome = _error()
        except QuietStream:
            LOGGER.warning("No audio for %g s: the 60db speech-to-text request was ended", idle)
            outcome = _error()
        else:
            self.report_outcome()
            LOGGER.debug("60db heard %d characters in %s", len(result.text), result.language)
            outcome = stt.SpeechResult(result.text, stt.SpeechResultState.SUCCESS)
        finally:
            if stopped:
                # 60db has said all it will: the transcript need not wait for
                # the close handshake (a network round trip).
                self.entry.async_create_background_task(
                    self.hass, feed.aclose(), "sixtydb STT session close"
                )
            else:
                await feed.aclose()
        yield outcome

    def _options(self) -> SttOptions:
        encoding: SttEncoding = (
            "mulaw" if self.option(CONF_STT_ENCODING) == STT_ENCODING_MULAW else "linear"
        )
        return SttOptions(
            languages=self._languages(),
            encoding=encoding,
            sample_rate=STT_RATE_FOR_ENCODING[encoding],
            interim_results_ms=None,  # partials come from the finals 60db sends anyway
        )

    def _languages(self) -> list[str] | None:
        """The configured languages, or ``None`` to let 60db detect the language."""
        chosen = list(self.option(CONF_STT_LANGUAGES) or [])
        return chosen[:MAX_STT_LANGUAGES] or None


def _source_format(metadata: stt.SpeechMetadata) -> PcmFormat:
    """HA's audio format, refused before any network call when it cannot be converted."""
    if metadata.codec != stt.AudioCodecs.PCM:
        raise UnsupportedAudioFormat(f"{metadata.codec} is not linear PCM")
    return PcmFormat(
        rate=int(metadata.sample_rate),
        width=int(metadata.bit_rate) // 8,
        channels=int(metadata.channel),
    ).validate()


def _error() -> stt.SpeechResult:
    return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
