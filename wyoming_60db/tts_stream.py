"""Wyoming text-to-speech on 60db: plain ``synthesize`` and streaming synthesis."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Final

from sentence_stream import SentenceBoundaryDetector
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.tts import SynthesizeStopped

from .idle import IdleTimer
from .sixtydb import SixtyDbClient, TtsContext, TtsOptions
from .sixtydb.text import FLUSH_CHARS, split_text
from .tasks import cancel_and_wait
from .wire import RequestError

Send = Callable[[Event], Awaitable[None]]

SAMPLES_PER_CHUNK: Final = 1024  # the chunk size of wyoming-piper, and what HA expects
SAMPLE_WIDTH: Final = 2  # 60db LINEAR16 (60db-protocol.md §3.3)
CHANNELS: Final = 1


class AudioRelay:
    """60db audio to Wyoming: one ``audio-start``, chunks as they arrive, one ``audio-stop``.

    HA builds one WAV from the first ``audio-start`` (ha-and-wyoming.md §2), so
    the format is fixed for the whole request.
    """

    def __init__(self, send: Send, rate: int) -> None:
        self._send = send
        self.rate = rate
        self._max_bytes = SAMPLES_PER_CHUNK * SAMPLE_WIDTH
        self._odd = b""  # half a sample, if 60db cut a chunk mid-sample
        self._started = False
        self.audio_bytes = 0

    async def start(self) -> None:
        """Send ``audio-start`` (once)."""
        if not self._started:
            self._started = True
            await self._send(AudioStart(self.rate, SAMPLE_WIDTH, CHANNELS).event())

    async def relay(self, audio: bytes) -> None:
        """Pass one 60db chunk on at once, in pieces of at most 1024 samples."""
        await self.start()
        if self._odd:
            audio, self._odd = self._odd + audio, b""
        if len(audio) % SAMPLE_WIDTH:
            audio, self._odd = audio[:-1], audio[-1:]
        for start in range(0, len(audio), self._max_bytes):
            piece = audio[start : start + self._max_bytes]
            self.audio_bytes += len(piece)
            await self._send(
                AudioChunk(self.rate, SAMPLE_WIDTH, CHANNELS, piece, timestamp=None).event()
            )

    async def stop(self) -> None:
        """Send ``audio-stop`` (after ``audio-start``, even if there was no audio)."""
        await self.start()
        await self._send(AudioStop().event())


async def speak(client: SixtyDbClient, text: str, options: TtsOptions, relay: AudioRelay) -> None:
    """Plain ``synthesize``: one 60db request, audio relayed as it arrives."""
    await relay.start()
    async for audio in client.synthesize(text, options):
        await relay.relay(audio)
    await relay.stop()


class TtsStream:
    """Streaming synthesis (``synthesize-start`` / ``-chunk`` / ``-stop``).

    Text is cut into sentences as it arrives; each complete sentence is sent to
    one 60db context and flushed at once, so the first sentence is spoken while
    the LLM is still writing the next, and 60db bills one request.
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
        self._client = client
        self._options = options
        self._relay = relay
        self._send = send
        self._segmenter = SentenceSegmenter()
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
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
        ``synthesize-stop`` (ha-and-wyoming.md §2). Until the stop, any plain
        ``synthesize`` is that copy; after it, only the same text is.
        """
        return not self.finishing or _words(text) == _words("".join(self._received))

    def add_text(self, text: str) -> None:
        """One ``synthesize-chunk``: any piece of text, not sentence aligned."""
        self._received.append(text)
        self._idle.touch()
        for sentence in self._segmenter.add(text):
            self._sentences.put_nowait(sentence)

    def finish(self) -> None:
        """``synthesize-stop``: speak the rest, then end the stream."""
        if self.finishing:
            return
        self.finishing = True
        self._idle.cancel()
        rest = self._segmenter.finish()
        if rest:
            self._sentences.put_nowait(rest)
        self._sentences.put_nowait(None)

    async def run(self) -> None:
        """Speak every sentence; ends after ``synthesize-stopped``."""
        try:
            await self._relay.start()
            async with self._client.tts_context(self._options) as context:
                await _together(self._send_sentences(context), self._relay_audio(context))
            await self._relay.stop()
            await self._send(SynthesizeStopped().event())
        finally:
            self._idle.cancel()

    async def _send_sentences(self, context: TtsContext) -> None:
        while (sentence := await self._sentences.get()) is not None:
            for piece in split_text(sentence):
                await context.send_text(piece + " ")
                await context.flush()
        await context.close()

    async def _relay_audio(self, context: TtsContext) -> None:
        async for audio in context.audio():
            await self._relay.relay(audio)


async def _together(first: Awaitable[None], second: Awaitable[None]) -> None:
    """Run both; the first failure cancels the other and is raised."""
    tasks = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # raise the failure, if any
        await asyncio.gather(*tasks)
    finally:
        await cancel_and_wait(tasks)


# A sentence end at the very end of the text so far: punctuation, closing
# quotes or brackets, optional whitespace.
_END: Final = re.compile("([.!?\u2026\u3002\uff01\uff1f]+)[\"'\u201d\u2019\u00bb)\\]]*\\s*$")
# A final "." that may not end the sentence: "Dr." "St." "J." "e.g."
_ABBREVIATION: Final = re.compile(r"\b(?:[A-Z][a-z]{0,2}|e\.g|i\.e|etc|vs|approx)\.$")


class SentenceSegmenter:
    """Complete sentences from LLM text deltas, as early as it is safe.

    ``sentence-stream`` confirms a sentence only when the next one starts, which
    holds the first sentence back until the LLM's next delta. The text so far is
    also taken as complete when it ends in "!" or "?", or in a "." that does not
    end an abbreviation, nor a number unless a space follows ("3." may become
    "3.5"). A wrong guess only moves a pause; no text is lost.
    """

    def __init__(self) -> None:
        self._detector = SentenceBoundaryDetector()

    def add(self, text: str) -> list[str]:
        """Sentences completed by ``text``."""
        sentences = list(self._detector.add_chunk(text))
        pending = self._detector.current_sentence + self._detector.remaining_text
        if _ends_sentence(pending):
            sentences.append(self._detector.finish())
        elif len(pending) > FLUSH_CHARS:
            sentences.extend(self._cut_long(pending))
        return [sentence for sentence in sentences if sentence]

    def finish(self) -> str:
        """Whatever text is left."""
        return self._detector.finish()

    def _cut_long(self, pending: str) -> list[str]:
        # No sentence end for a long while (a list, a code block): speak what
        # is there up to the last space instead of waiting for the stop.
        self._detector.finish()
        head, _, tail = pending.rpartition(" ")
        if not head:
            return [pending]
        self._detector.add_chunk(tail)
        return [head.strip()]


def _words(text: str) -> list[str]:
    return text.split()


def _ends_sentence(text: str) -> bool:
    match = _END.search(text)
    if match is None:
        return False
    if match.group(1)[-1] != ".":
        return True
    before = text[: match.end(1)]
    if _ABBREVIATION.search(before):
        return False
    if before[-2:-1].isdigit():
        return text[-1].isspace()
    return True
