"""One Wyoming transcription streamed through one 60db STT session."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.event import Event

from .idle import IdleTimer
from .pcm import FrameChunker, PcmFormat, UnsupportedAudioFormat, frame_bytes_for
from .sixtydb import SixtyDbClient, SttOptions, SttResult, SttSession, Transcription
from .sixtydb.stt import SttEncoding
from .tasks import cancel_and_wait
from .wire import RequestError

_LOGGER = logging.getLogger(__name__)

Send = Callable[[Event], Awaitable[None]]
OnError = Callable[[BaseException], None]

# HA sends 10 ms chunks (ha-and-wyoming.md §2); 60db documents 480 bytes per 60 ms
# of 8 kHz μ-law (60db-protocol.md §2.3.2). 60 ms frames cut the per-frame cost
# sixfold and add at most 60 ms, all of it flushed the moment audio stops.
FRAME_MS: Final = 60
# 60db's smallest interim interval (§2.3.1); interims feed transcript-chunk events.
INTERIM_RESULTS_MS: Final = 300
SAMPLE_RATES: Final[dict[str, int]] = {"linear": 16000, "mulaw": 8000}


class SttStream:
    """Audio in (any PCM format), 60db session, ``transcript`` events out.

    The session connects the moment the stream is created, usually on
    ``transcribe``, so 60db's handshake overlaps with the user speaking.
    """

    def __init__(
        self,
        session: SttSession,
        encoding: SttEncoding,
        send: Send,
        on_error: OnError,
        requested_language: str | None,
        *,
        idle_timeout: float,
    ) -> None:
        self._session = session
        self._encoding = encoding
        self._rate = SAMPLE_RATES[encoding]
        self._send = send
        self._on_error = on_error
        self._language = requested_language
        self._converter: PcmConverter | None = None
        self._chunker = FrameChunker(frame_bytes_for(self._rate, 2, 1, FRAME_MS))
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
            sample_rate=SAMPLE_RATES[encoding],
            interim_results_ms=INTERIM_RESULTS_MS,
        )
        session = client.stt_session(options)
        session.start()
        language = languages[0] if languages else None
        stream = cls(session, encoding, send, on_error, language, idle_timeout=idle_timeout)
        stream._relay_task = asyncio.get_running_loop().create_task(stream._relay_partials())
        return stream

    @property
    def has_audio_format(self) -> bool:
        """True once ``audio-start`` (or a first chunk) fixed the client's format."""
        return self._converter is not None

    def begin_audio(self, source: PcmFormat) -> None:
        """Accept the client's format; converted only when it is not 60db's."""
        try:
            self._converter = _converter_for(source.validate(), self._rate)
        except (UnsupportedAudioFormat, TypeError) as err:
            raise RequestError(str(err), "unsupported_audio_format") from None

    async def add_audio(self, audio: bytes) -> None:
        """Convert, re-frame and stream one chunk while the user speaks."""
        if self._converter is None:
            raise RequestError("audio-chunk before audio-start", "unexpected_event")
        self._idle.touch()
        for frame in self._chunker.push(self._converter.convert(audio)):
            await self._send_frame(frame)

    async def finish(self, timeout: float) -> None:
        """End of speech: flush, wait (bounded) for 60db's final, send the transcript.

        ``timeout`` is a safety net over the client core's own bounds, which
        fire first and say which wait it was.
        """
        self._idle.cancel()
        if self._converter is not None:
            for frame in self._chunker.push(self._converter.flush()):
                await self._send_frame(frame)
            await self._send_frame(self._chunker.flush())
        try:
            async with asyncio.timeout(timeout) as bound:
                result = await self._session.stop()
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
            await self._session.aclose()

    def _on_idle(self) -> None:
        self._on_error(
            RequestError(f"no audio from the client for {self._idle_timeout:g} s", "timeout")
        )

    async def _send_frame(self, frame: bytes) -> None:
        if not frame:
            return
        if self._encoding == "mulaw":
            from .audio import mulaw_encode  # noqa: PLC0415 - numpy only when needed

            frame = mulaw_encode(frame)
        await self._session.send_audio(frame)

    async def _relay_partials(self) -> None:
        """transcript-start/-chunk as 60db's interim results firm up."""
        try:
            async for update in self._session.transcripts():
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


class PcmConverter(Protocol):
    """What the stream needs of a converter (``wyoming_60db.audio.AudioConverter``)."""

    def convert(self, audio: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class Passthrough:
    """HA's 16 kHz, 16-bit mono audio goes to 60db untouched and without numpy."""

    def convert(self, audio: bytes) -> bytes:
        return audio

    def flush(self) -> bytes:
        return b""


def _converter_for(source: PcmFormat, rate: int) -> PcmConverter:
    if (source.rate, source.width, source.channels) == (rate, 2, 1):
        return Passthrough()
    from .audio import AudioConverter  # noqa: PLC0415 - numpy and soxr only when converting

    return AudioConverter(source, rate)


class PartialTranscript:
    """Turns 60db's revisable interim results into append-only text chunks.

    An interim result may still change (60db-protocol.md §2.5), so only whole
    words that extend what was already sent are passed on; the final
    ``transcript`` event always carries the authoritative text.
    """

    def __init__(self) -> None:
        self._finals: list[str] = []
        self.sent = ""

    def update(self, update: Transcription) -> str:
        """The new text to send for one ``transcription``, possibly ""."""
        text = update.text.strip()
        if update.is_canonical:
            if text:
                self._finals.append(text)
            return self._extend(" ".join(self._finals))
        hypothesis = " ".join([*self._finals, text]) if text else ""
        # The last word of an interim result may be cut off ("turn on th").
        return self._extend(hypothesis.rsplit(" ", 1)[0] if " " in hypothesis else "")

    def complete(self, final_text: str) -> str:
        """What is still missing once the final text is known."""
        return self._extend(final_text.strip())

    def _extend(self, stable: str) -> str:
        sent = self.sent
        if len(stable) <= len(sent) or not stable.startswith(sent):
            return ""
        if sent and stable[len(sent)] != " ":
            return ""  # "turn on" → "turn one": the last word changed
        self.sent = stable
        return stable[len(sent) :]
