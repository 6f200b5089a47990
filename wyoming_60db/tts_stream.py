"""Wyoming text-to-speech on 60db: plain ``synthesize`` and streaming synthesis."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Final

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.tts import SynthesizeStopped

from .pipeline.aio import IdleTimer
from .pipeline.speaker import TextStreamSpeaker
from .sixtydb import SixtyDbClient, TtsOptions
from .sixtydb.limits import TTS_SAMPLE_WIDTH
from .wire import RequestError

Send = Callable[[Event], Awaitable[None]]

SAMPLES_PER_CHUNK: Final = 1024  # the chunk size of wyoming-piper, and what HA expects
CHANNELS: Final = 1


class AudioRelay:
    """60db audio to Wyoming: one ``audio-start``, chunks as they arrive, one ``audio-stop``.

    HA builds one WAV from the first ``audio-start`` (home-assistant.md §2), so
    the format is fixed for the whole request.
    """

    def __init__(self, send: Send, rate: int) -> None:
        self._send = send
        self.rate = rate
        self._max_bytes = SAMPLES_PER_CHUNK * TTS_SAMPLE_WIDTH
        self._odd = b""  # half a sample, if 60db cut a chunk mid-sample
        self._started = False
        self.audio_bytes = 0

    async def start(self) -> None:
        """Send ``audio-start`` (once)."""
        if not self._started:
            self._started = True
            await self._send(AudioStart(self.rate, TTS_SAMPLE_WIDTH, CHANNELS).event())

    async def relay(self, audio: bytes) -> None:
        """Pass one 60db chunk on at once, in pieces of at most 1024 samples."""
        await self.start()
        if self._odd:
            audio, self._odd = self._odd + audio, b""
        if len(audio) % TTS_SAMPLE_WIDTH:
            audio, self._odd = audio[:-1], audio[-1:]
        for start in range(0, len(audio), self._max_bytes):
            piece = audio[start : start + self._max_bytes]
            self.audio_bytes += len(piece)
            await self._send(
                AudioChunk(self.rate, TTS_SAMPLE_WIDTH, CHANNELS, piece, timestamp=None).event()
            )

    async def stop(self) -> None:
        """Send ``audio-stop`` (after ``audio-start``, even if there was no audio)."""
        await self.start()
        await self._send(AudioStop().event())


async def speak(client: SixtyDbClient, text: str, options: TtsOptions, relay: AudioRelay) -> None:
    """Plain ``synthesize``: one 60db request, audio relayed as it arrives.

    Spoken by the streaming pipeline, so a connection that drops mid-answer is
    resumed the same way as a streamed answer's.
    """
    # Checked before audio-start: a refused text must not leave HA an empty WAV.
    speaker = TextStreamSpeaker.for_text(client, options, text)
    await relay.start()
    async with aclosing(speaker.audio()) as audio:
        async for chunk in audio:
            await relay.relay(chunk)
    await relay.stop()


class TtsStream:
    """Streaming synthesis (``synthesize-start`` / ``-chunk`` / ``-stop``).

    Wyoming events over the streaming TTS pipeline (:class:`TextStreamSpeaker`):
    each complete sentence is spoken while the LLM is still writing the next,
    on one 60db context.
    """

    def __init__(
        self,
        client: SixtyDbClient,
        options: TtsOptions,
        relay: AudioRelay,
        send: Send,
        *,
        idle_timeout: float,
        on_idle: Callable[[RequestError], None],
    ) -> None:
        self._speaker = TextStreamSpeaker(client, options)
        self._relay = relay
        self._send = send
        self._received: list[str] = []
        self.finishing = False
        # Until synthesize-stop, the client owes us text: an LLM that went
        # silent must not hold a 60db context (and a slot) forever.
        self._idle = IdleTimer(
            idle_timeout,
            lambda: on_idle(
                RequestError(f"no text from the client for {idle_timeout:g} s", "timeout")
            ),
        )

    def is_duplicate(self, text: str) -> bool:
        """Whether a plain ``synthesize`` repeats this stream rather than asks anew.

        HA sends the streamed text once more as a plain ``synthesize`` before
        ``synthesize-stop`` (home-assistant.md §2). Until the stop, any plain
        ``synthesize`` is that copy; after it, only the same text is.
        """
        return not self.finishing or _words(text) == _words("".join(self._received))

    def add_text(self, text: str) -> None:
        """One ``synthesize-chunk``: any piece of text, not sentence aligned."""
        self._received.append(text)
        self._idle.touch()
        self._speaker.add_text(text)

    def finish(self) -> None:
        """``synthesize-stop``: speak the rest, then end the stream."""
        if self.finishing:
            return
        self.finishing = True
        self._idle.cancel()
        self._speaker.finish()

    async def run(self) -> None:
        """Speak every sentence; ends after ``synthesize-stopped``."""
        try:
            await self._relay.start()
            async with aclosing(self._speaker.audio()) as audio:
                async for chunk in audio:
                    await self._relay.relay(chunk)
            await self._relay.stop()
            await self._send(SynthesizeStopped().event())
        finally:
            self._idle.cancel()


def _words(text: str) -> list[str]:
    return text.split()
