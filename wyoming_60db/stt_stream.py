"""One Wyoming transcription: Wyoming events over the STT pipeline (``SttFeed``).

With endpointing (the default) the turn ends when 60db says the utterance is
over, and the transcript goes out at once, before the client's ``audio-stop``:
Home Assistant 2026.10+ reads while it uploads and returns on the first
``transcript`` (home-assistant.md §2). A client that sends ``audio-stop``
first gets its one transcript then, as without endpointing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.event import Event

from .info import PROGRAM_NAME
from .pcm import PcmFormat, UnsupportedAudioFormat
from .pipeline.aio import IdleTimer, cancel_and_wait
from .pipeline.endpointing import Endpointing, utterance_end_ms
from .pipeline.stt_feed import SttFeed
from .pipeline.transcript import PartialTranscript
from .sixtydb import SixtyDbClient, SttOptions, SttResult, context_terms, stt_context
from .sixtydb.catalog import STT_MODEL_ID
from .sixtydb.limits import INTERIM_RESULTS_MS, STT_RATE_FOR_ENCODING, SttEncoding, VadSensitivity
from .wire import MalformedEvent, RequestError

_LOGGER = logging.getLogger(__name__)

Send = Callable[[Event], Awaitable[None]]
OnError = Callable[[BaseException], None]


@dataclass(frozen=True, slots=True)
class SttHints:
    """What a ``transcribe`` asks of 60db besides the language (wyoming 1.10's fields)."""

    utterance_end_ms: int
    """From ``vad_sensitivity``: the pause that ends a command."""
    context: Mapping[str, Any] | None = None
    """From ``transcript_names`` and ``transcript_terms``: 60db's ``context.terms``."""

    @classmethod
    def default(cls, sensitivity: VadSensitivity) -> SttHints:
        """A request that says nothing (no ``transcribe``, or an old client)."""
        return cls(utterance_end_ms(None, sensitivity))

    @classmethod
    def of_transcribe(cls, data: Mapping[str, Any], sensitivity: VadSensitivity) -> SttHints:
        """Read from a ``transcribe``'s data; ``sensitivity``: the server's default.

        The raw data, not ``wyoming.asr.Transcribe``: wyoming before 1.10
        (the pin allows 1.7.2) drops these fields. Its ``context`` (earlier
        interactions) is not 60db's ``context`` and is left alone.
        """
        name = data.get("name")
        if name is not None and name not in (PROGRAM_NAME, STT_MODEL_ID):
            raise RequestError(
                f"transcribe: there is no model {name!r} here; use {PROGRAM_NAME!r} "
                f"or {STT_MODEL_ID!r}, or none",
                "unknown_model",
            )
        requested = data.get("vad_sensitivity")
        if requested is not None and not isinstance(requested, str):
            raise MalformedEvent("transcribe: vad_sensitivity is not a string")
        try:
            end_ms = utterance_end_ms(requested, sensitivity)
        except ValueError as err:
            raise RequestError(f"transcribe: {err}", "unsupported_vad_sensitivity") from None
        names = _strings(data, "transcript_names")
        terms = _strings(data, "transcript_terms")
        # Names first: 60db's list is bounded, and wyoming ranks names above terms.
        return cls(end_ms, stt_context(context_terms(names, terms)))


def _strings(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise MalformedEvent(f"transcribe: {key} must be a list of strings")
    return value


class SttStream:
    """Audio in (any PCM format), 60db session, ``transcript`` events out.

    The session connects the moment the stream is created, usually on
    ``transcribe``, so 60db's handshake overlaps with the user speaking.
    With ``endpointing`` the stream answers by itself when the turn ends
    (:attr:`answered`); after that it takes no audio and sends nothing.
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
        self._turn_task: asyncio.Task[None] | None = None
        self.answered = False
        """The turn is over and its transcript is being or has been sent."""
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
        hints: SttHints,
        endpointing: Endpointing | None = None,
    ) -> SttStream:
        """Start a 60db session for ``languages`` (None: detect the language).

        A client that sends no audio for ``idle_timeout`` seconds before
        ``audio-stop`` gets an ``error`` (code ``timeout``) and the session ends.
        ``endpointing``: the turn ends on 60db's end of utterance (or a
        guard), not only on ``audio-stop``.
        """
        options = SttOptions(
            languages=languages,
            encoding=encoding,
            sample_rate=STT_RATE_FOR_ENCODING[encoding],
            interim_results_ms=INTERIM_RESULTS_MS,
            utterance_end_ms=hints.utterance_end_ms,
            context=hints.context,
        )
        language = languages[0] if languages else None
        # Interim results become transcript-chunks; a dropped session is replaced inside.
        feed = SttFeed(client, options, keep_updates=True, endpointing=endpointing)
        stream = cls(
            feed,
            send,
            on_error,
            language,
            idle_timeout=idle_timeout,
            finalize_timeout=client.config.timeouts.stt_finalize,
        )
        loop = asyncio.get_running_loop()
        stream._relay_task = loop.create_task(stream._relay_partials())
        if endpointing is not None:
            stream._turn_task = loop.create_task(stream._answer_at_turn_end())
        return stream

    @property
    def in_flight(self) -> bool:
        """True until the request has been answered (its transcript or error sent)."""
        turn = self._turn_task
        return not self.answered or (turn is not None and not turn.done())

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
        if self.answered:
            return  # the turn is over: what the client still sends is not heard
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
        fire first and say which wait it was. With endpointing the turn may
        have ended already, and then nothing more is sent.
        """
        self._idle.cancel()
        turn = self._turn_task
        if turn is not None and self.answered:
            await turn  # sent, or being sent: never a second transcript
            return
        # A new session after a drop needs at least its finalize wait: one
        # that cannot have it within `timeout` would only be cut short.
        recover_until = asyncio.get_running_loop().time() + timeout - self._finalize_timeout
        try:
            async with asyncio.timeout(timeout) as bound:
                result = await self._feed.finish(recover_until=recover_until)
                if turn is not None:
                    # The feed hands the same result to turn_ended(): the turn
                    # task, the one sender of this request's final, answers.
                    await turn
                    return
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
            await cancel_and_wait(task for task in (self._turn_task, self._relay_task) if task)
        finally:
            await self._feed.aclose()

    def _on_idle(self) -> None:
        if self.answered:
            return
        self._on_error(
            RequestError(f"no audio from the client for {self._idle_timeout:g} s", "timeout")
        )

    async def _answer_at_turn_end(self) -> None:
        """Endpointing: the transcript the moment the turn ends, whoever ended it."""
        try:
            result = await self._feed.turn_ended()
            self.answered = True
            self._idle.cancel()
            _LOGGER.debug("Turn ended (%s)", self._feed.turn_end)
            if self._relay_task is not None:
                # updates() ends with the turn; its last chunks go out first.
                async with asyncio.timeout(self._finalize_timeout):
                    await self._relay_task
            await self._send_final(result)
        except Exception as err:  # every failure ends the request
            self.answered = True  # the error is the answer
            self._on_error(err)

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
