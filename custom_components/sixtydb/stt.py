"""Speech-to-text through 60db's streaming WebSocket (60db-protocol.md §2).

Audio goes to 60db chunk by chunk while Home Assistant is still recording, so
the transcript is ready a moment after the user stops speaking instead of
after an upload of the whole recording.

On Home Assistant 2026.11+ the entity also reports partial results: the
phrases 60db has finished so far (its canonical finals, sent at each pause
anyway), joined. No interim results are asked for: nothing in Home Assistant
shows partials yet, so they must cost nothing.

The end of the user's turn: 60db detects it (``utterance_end_ms`` of silence,
then its canonical final), and with the ``endpointing`` option on (the
default) the entity answers at that moment and stops reading the audio. On
Home Assistant 2026.10+ it also says it needs no VAD, so the pipeline runs
none of its own; older releases keep theirs, and whichever ends the turn first
wins. Two guards bound a turn 60db never ends: a longest command and a wait
for speech. A WAV file posted to Home Assistant's STT HTTP API is a whole
recording rather than a live turn, and is always transcribed to its end.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing

from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from wyoming_60db.pcm import MAX_RATE, MIN_RATE, PcmFormat, UnsupportedAudioFormat
from wyoming_60db.pipeline.aio import QuietStream, cancel_and_wait, next_or_quiet
from wyoming_60db.pipeline.endpointing import Endpointing, utterance_end_ms
from wyoming_60db.pipeline.stt_feed import SttFeed
from wyoming_60db.sixtydb import SixtyDbError, SttOptions, SttResult, stt_context
from wyoming_60db.sixtydb.limits import STT_RATE_FOR_ENCODING, SttEncoding

from .audio import WavHeaderStripper
from .const import (
    CONF_ENDPOINTING,
    CONF_MAX_COMMAND_SECONDS,
    CONF_NO_SPEECH_SECONDS,
    CONF_STT_ENCODING,
    CONF_STT_LANGUAGES,
    CONF_VAD_SENSITIVITY,
    CONF_VOCABULARY,
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

try:  # Home Assistant 2026.10+: the entity says whether the pipeline must run a VAD
    from homeassistant.components.stt import (  # type: ignore[attr-defined,unused-ignore]
        SpeechAudioProcessing,
    )
except ImportError:  # earlier releases always run their own VAD
    HAS_AUDIO_PROCESSING = False
else:
    HAS_AUDIO_PROCESSING = True

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

    if HAS_AUDIO_PROCESSING:

        @property
        def audio_processing(self) -> SpeechAudioProcessing:
            """No VAD from the pipeline while 60db detects the end of speech.

            Gain and noise preferences stay at Home Assistant's defaults: 60db
            documents nothing that would argue for other audio.
            """
            defaults = super().audio_processing  # type: ignore[misc,unused-ignore]  # 2026.10+ only
            return dataclasses.replace(defaults, requires_external_vad=not self._endpointing_on())

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

        The session opens with the first chunk. Then one task reads Home
        Assistant's stream into the feed, which sends 60 ms frames from a task
        of its own (:meth:`_turn`). Closing the generator early (Home
        Assistant does once it has the final result) ends the tasks and closes
        the 60db session in the ``finally``.
        """
        try:
            source = _source_format(metadata)
            options = self._options()
            endpointing = self._endpointing()
        except UnsupportedAudioFormat as err:
            LOGGER.warning("60db cannot take this audio: %s", err)
            yield _error()
            return
        except ValueError as err:  # an option edited into something unusable
            LOGGER.warning("The 60db speech-to-text options are invalid: %s", err)
            yield _error()
            return
        chunks = aiter(stream)
        feed: SttFeed | None = None
        stopped = False
        try:
            first = await next_or_quiet(chunks, self.client.config.timeouts.stt_audio_idle)
            if first is not None and first.startswith(b"RIFF"):
                # A WAV file (Home Assistant's HTTP API; the pipeline sends raw
                # PCM) is a whole recording, not a live turn: all of it counts.
                endpointing = None
            # The feed opens the session, and a fresh one if 60db drops it mid-request.
            feed = SttFeed(self.client, options, source, endpointing=endpointing)
            turn = self._turn(
                first, chunks, feed, ends_itself=endpointing is not None, partials=partials
            )
            async with aclosing(turn):
                async for item in turn:
                    if isinstance(item, str):
                        yield item
                    else:
                        result = item
            stopped = True
        except SixtyDbError as err:
            self.report_outcome(err)
            LOGGER.warning("60db speech-to-text failed (%s): %s", err.code, err)
            outcome = _error()
        except QuietStream as err:
            LOGGER.warning(
                "No audio for %g s: the 60db speech-to-text request was ended", err.seconds
            )
            outcome = _error()
        else:
            self.report_outcome()
            LOGGER.debug(
                "60db heard %d characters in %s (turn ended by %s)",
                len(result.text),
                result.language,
                feed.turn_end,
            )
            outcome = stt.SpeechResult(result.text, stt.SpeechResultState.SUCCESS)
        finally:
            # No feed: no audio came, so no session was opened.
            if feed is not None and stopped:
                # 60db has said all it will: the transcript need not wait for
                # the close handshake (a network round trip).
                self.entry.async_create_background_task(
                    self.hass, feed.aclose(), "sixtydb STT session close"
                )
            elif feed is not None:
                await feed.aclose()
        yield outcome

    async def _turn(
        self,
        first: bytes | None,
        chunks: AsyncIterator[bytes],
        feed: SttFeed,
        *,
        ends_itself: bool,
        partials: bool,
    ) -> AsyncGenerator[str | SttResult, None]:
        """The text heard so far after each new phrase (if ``partials``), then the turn's result.

        The result is the feed's turn once 60db ends it (``ends_itself``), or
        its ``finish()`` once Home Assistant's stream ends, whichever comes
        first. Every task ends in the ``finally``, the reader first: once the
        turn is over the stream is not read any further.
        """
        changed = asyncio.Event()  # 60db finished a phrase (seen between chunks)
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(first, chunks, feed, changed if partials else None))
        turn = loop.create_task(feed.turn_ended()) if ends_itself else None
        news = loop.create_task(changed.wait()) if partials else None
        try:
            heard = ""
            while True:
                waiting = [task for task in (reader, turn, news) if task is not None]
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if turn is not None and turn.done():
                    yield turn.result()  # 60db ended the turn, or a guard did
                    return
                if reader.done():
                    reader.result()  # the stream's failure, if any
                    # The stream ended first: Home Assistant's VAD, or an upload's end.
                    yield await feed.finish()
                    return
                assert news is not None  # nothing else wakes the loop
                changed.clear()
                news = loop.create_task(changed.wait())
                if feed.heard != heard:
                    heard = feed.heard  # only the latest, and only when it changed
                    yield heard
        finally:
            await cancel_and_wait(task for task in (reader, turn, news) if task is not None)

    async def _read(
        self,
        first: bytes | None,
        chunks: AsyncIterator[bytes],
        feed: SttFeed,
        changed: asyncio.Event | None,
    ) -> None:
        """``first`` and the rest of Home Assistant's audio into ``feed``, until the stream ends.

        ``changed`` is set when 60db finished a phrase. ``QuietStream`` when
        the stream stalls; the feed's failure, raised by ``push``, ends it too.
        """
        idle = self.client.config.timeouts.stt_audio_idle
        wav = WavHeaderStripper()  # a WAV file's header is not audio
        heard = feed.heard
        chunk = first
        while chunk is not None:
            feed.push(wav.feed(chunk))
            if changed is not None and feed.heard != heard:
                heard = feed.heard
                changed.set()
            chunk = await next_or_quiet(chunks, idle)
        feed.push(wav.flush())

    def _options(self) -> SttOptions:
        """This request's session options, from the options as they are now.

        ``ValueError`` for a VAD sensitivity that is none of the three.
        """
        encoding: SttEncoding = (
            "mulaw" if self.option(CONF_STT_ENCODING) == STT_ENCODING_MULAW else "linear"
        )
        return SttOptions(
            languages=self._languages(),
            encoding=encoding,
            sample_rate=STT_RATE_FOR_ENCODING[encoding],
            interim_results_ms=None,  # partials come from the finals 60db sends anyway
            # 60db's silence before a final: also where the turn ends with endpointing.
            utterance_end_ms=utterance_end_ms(self.option(CONF_VAD_SENSITIVITY)),
            context=stt_context(self._vocabulary()),
        )

    def _endpointing_on(self) -> bool:
        return bool(self.option(CONF_ENDPOINTING))

    def _endpointing(self) -> Endpointing | None:
        """How 60db ends the turn, or ``None`` when Home Assistant's VAD does.

        ``ValueError`` for bounds that are not positive.
        """
        if not self._endpointing_on():
            return None
        return Endpointing(
            max_command_seconds=float(self.option(CONF_MAX_COMMAND_SECONDS)),
            no_speech_seconds=float(self.option(CONF_NO_SPEECH_SECONDS)),
        )

    def _vocabulary(self) -> tuple[str, ...]:
        """The home's names for ``context.terms`` (already bounded), or none when switched off."""
        if not self.option(CONF_VOCABULARY):
            return ()
        # Kept up to date by the entry from the registries, never built per request.
        return self.entry.runtime_data.vocabulary.terms

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
