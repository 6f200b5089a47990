"""One Wyoming transcription: Wyoming events over the STT pipeline (``SttFeed``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.event import Event

from .pcm import PcmFormat, UnsupportedAudioFormat
from .pipeline.aio import IdleTimer, cancel_and_wait
from .pipeline.stt_feed import SttFeed
from .pipeline.transcript import PartialTranscript
from .sixtydb import SixtyDbClient, SttOptions, SttResult
from .sixtydb.limits import INTERIM_RESULTS_MS, STT_RATE_FOR_ENCODING, SttEncoding
from .wire import RequestError

_LOGGER = logging.getLogger(__name__)

Send = Callable[[Event], Awaitable[None]]
OnError = Callable[[BaseException], None]


class SttStream:
    """Audio in (any PCM format), 60db session, ``transcript`` events out.

    The session connects the moment the stream is created, usually on
    ``transcribe``, so 60db's handshake overlaps with the user speaking.
    """

    def __init__(
        self,
        feed: SttFeed,
        send: Send,
        on_error: OnError,
        requested_language: str | None,
        *,
        idle_timeout: float,
        finalize_timeout: float,
    ) -> None:
        self._feed = feed
        self._finalize_timeout = finalize_timeout
        self._send = send
        self._on_error = on_error
        self._language = requested_language
        self._partial = PartialTranscript()
        self._started = False
        self._relay_task: asyncio.Task[None] | None = None
        self._idle_timeout = idle_timeout
        self._idle = IdleTimer(idle_timeout, self._on_idle)

    @classmethod
    def open(
        cls,
        client: SixtyDbClient,
        *,
        encoding: SttEncoding,
        languages: Sequence[str] | None,
        send: Send,
        on_error: OnError,
        idle_timeout: float,
    ) -> SttStream:
        """Start a 60db session for ``languages`` (None: detect the language).

        A client that sends no audio for ``idle_timeout`` seconds before
        ``audio-stop`` gets an ``error`` (code ``timeout``) and the session ends.
        """
        options = SttOptions(
            languages=languages,
            encoding=encoding,
            sample_rate=STT_RATE_FOR_ENCODING[encoding],
            interim_results_ms=INTERIM_RESULTS_MS,
        )
        language = languages[0] if languages else None
        # Interim results become transcript-chunks; a dropped session is replaced inside.
        feed = SttFeed(client, options, keep_updates=True)
        stream = cls(
            feed,
            send,
            on_error,
            language,
            idle_timeout=idle_timeout,
            finalize_timeout=client.config.timeouts.stt_finalize,
        )
        stream._relay_task = asyncio.get_running_loop().create_task(stream._relay_partials())
        return stream

    @property
    def has_audio_format(self) -> bool:
        """True once ``audio-start`` (or a first chunk) fixed the client's format."""
        return self._feed.has_audio_format

    def begin_audio(self, source: PcmFormat) -> None:
        """Accept the client's format; converted only when it is not 60db's."""
        try:
            self._feed.begin_audio(source)
        except (UnsupportedAudioFormat, TypeError) as err:
            raise RequestError(str(err), "unsupported_audio_format") from None

    def push_audio(self, audio: bytes) -> None:
        """One chunk while the user speaks: synchronous, the per-chunk hot path."""
        if not self._feed.has_audio_format:
            raise RequestError("audio-chunk before audio-start", "unexpected_event")
        self._idle.touch()
        self._feed.push(audio)

    async def add_audio(self, audio: bytes) -> None:
        """:meth:`push_audio`, for callers that await."""
        self.push_audio(audio)

    async def finish(self, timeout: float) -> None:
        """End of speech: flush, wait (bounded) for 60db's final, send the transcript.

        ``timeout`` is a safety net over the client core's own bounds, which
        fire first and say which wait it was.
        """
        self._idle.cancel()
        # A new session after a drop needs at least its finalize wait: one
        # that cannot have it within `timeout` would only be cut short.
        recover_until = asyncio.get_running_loop().time() + timeout - self._finalize_timeout
        try:
            async with asyncio.timeout(timeout) as bound:
                result = await self._feed.finish(recover_until=recover_until)
                if self._relay_task is not None:
                    await self._relay_task
        except TimeoutError:
            if not bound.expired():
                raise  # the client core's own, more precise timeout (a TimeoutError too)
            raise RequestError(
                f"60db did not finish the transcript within {timeout:.0f} s", "timeout"
            ) from None
        await self._send_final(result)

    async def aclose(self) -> None:
        """Release the 60db session and its concurrency slot (idempotent).

        The session is closed even if this is cancelled while the relay task
        winds down: the client hangs up the moment it has its transcript.
        """
        self._idle.cancel()
        try:
            if self._relay_task is not None:
                await cancel_and_wait([self._relay_task])
        finally:
            await self._feed.aclose()

    def _on_idle(self) -> None:
        self._on_error(
            RequestError(f"no audio from the client for {self._idle_timeout:g} s", "timeout")
        )

    async def _relay_partials(self) -> None:
        """transcript-start/-chunk as 60db's interim results firm up."""
        try:
            async for update in self._feed.updates():
                delta = self._partial.update(update)
                if delta:
                    await self._send_chunk(delta)
        except Exception as err:  # every failure ends the request
            # 60db failed while the user is still speaking: report it now,
            # not at audio-stop (HA has no timeout of its own).
            self._on_error(err)

    async def _send_chunk(self, text: str) -> None:
        if not self._started:
            self._started = True
            await self._send(TranscriptStart(language=self._language).event())
        await self._send(TranscriptChunk(text=text).event())

    async def _send_final(self, result: SttResult) -> None:
        delta = self._partial.complete(result.text)
        if delta:
            await self._send_chunk(delta)
        elif not self._started:
            self._started = True
            await self._send(TranscriptStart(language=self._language).event())
        await self._send(TranscriptStop().event())
        # Last: HA returns on the first `transcript` and may hang up at once.
        language = result.language or self._language
        await self._send(Transcript(text=result.text, language=language).event())
        _LOGGER.debug("Transcript (%s): %r", language, result.text)
