"""Text deltas in, one 60db TTS context, audio out: the streaming TTS pipeline of both front ends.

An LLM writes its answer in deltas that end anywhere. Each sentence is sent to
one 60db context and flushed the moment it is complete, so the first sentence
is spoken while the LLM still writes the next, and 60db bills one request.

A TTS connection that drops mid-answer is recovered here, for both front ends:
the speaker knows which flushes 60db has completed and how much audio of the
one in progress it has passed on, so it resumes on a new context from the
first incomplete sentence and skips the audio already heard.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import Final

from sentence_stream import SentenceBoundaryDetector

from wyoming_60db.sixtydb import (
    ConnectionLostError,
    SixtyDbClient,
    SixtyDbError,
    SixtyDbTimeoutError,
    TextTooLongError,
    TtsContext,
    TtsOptions,
)
from wyoming_60db.sixtydb.limits import (
    FLUSH_CHARS,
    MAX_CONTEXT_CHARS,
    MAX_TEXT_CHARS,
    TTS_SAMPLE_WIDTH,
)
from wyoming_60db.sixtydb.text import split_text

from .aio import cancel_and_wait, run_together

_LOGGER = logging.getLogger(__name__)

MAX_RECOVERIES: Final = 2
"""New contexts one answer may resume on after a dropped or stalled connection."""
# Faults of the connection, not of the request: a new context may succeed.
# Auth, credits, concurrency and validation errors would fail again.
_DROPS: Final = (ConnectionLostError, SixtyDbTimeoutError)
# Bytes per sample of the encodings whose audio can be cut by duration; an
# OGG_OPUS stream cannot be spliced, so it is not resumed.
_SAMPLE_WIDTHS: Final = {
    "LINEAR16": TTS_SAMPLE_WIDTH,
    "PCM": TTS_SAMPLE_WIDTH,
    "MULAW": 1,
    "ULAW": 1,
}


class TextStreamSpeaker:
    """Speaks text as it is written: :meth:`add_text` and :meth:`finish` in, :meth:`audio` out.

    The text side may push (the server, from Wyoming events) or pull in a task
    of its own (the integration, from Home Assistant's ``message_gen``); a
    failure there is passed to :meth:`fail`. The 60db context opens when
    :meth:`audio` is first iterated and is closed, and its slot given back, on
    every path: iterate it under ``contextlib.aclosing``.

    If the connection drops or stalls mid-answer, the answer goes on on a new
    context (at most :data:`MAX_RECOVERIES` times): the flushes whose audio was
    not complete are sent again, and as much of the interrupted one's audio as
    was already passed on is skipped, by duration, since 60db's second
    rendering is not byte-identical. The listener hears at most a short overlap.
    """

    def __init__(
        self, client: SixtyDbClient, options: TtsOptions, *, split_contexts: bool = False
    ) -> None:
        self._client = client
        self._options = options
        # A plain text may be longer than one context takes: then the next
        # context opens when one is full, as `SixtyDbClient.synthesize` does.
        self._split_contexts = split_contexts
        self._segmenter = SentenceSegmenter()
        self._flushes: asyncio.Queue[str | None] = asyncio.Queue()
        self._flushes_added = 0
        self._ended = False
        self._text_error: BaseException | None = None
        self._progress = _Progress(_SAMPLE_WIDTHS.get(options.encoding), options.sample_rate)

    @classmethod
    def for_text(cls, client: SixtyDbClient, options: TtsOptions, text: str) -> TextStreamSpeaker:
        """A plain ``synthesize``: the whole text at once, up to ``MAX_TEXT_CHARS``."""
        text = text.strip()
        if len(text) > MAX_TEXT_CHARS:
            raise TextTooLongError(f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
        speaker = cls(client, options, split_contexts=True)
        speaker.add_text(text)
        speaker.finish()
        return speaker

    def add_text(self, delta: str) -> None:
        """Any piece of text, not sentence aligned; complete sentences go out at once."""
        if self._ended:
            raise RuntimeError("TextStreamSpeaker.add_text after finish or fail")
        for sentence in self._segmenter.add(delta):
            self._add_sentence(sentence)

    def finish(self) -> None:
        """The text is complete: speak the rest, then end :meth:`audio` (idempotent)."""
        if self._ended:
            return
        self._ended = True
        if rest := self._segmenter.finish():
            self._add_sentence(rest)
        self._flushes.put_nowait(None)

    def fail(self, error: BaseException) -> None:
        """The text side failed: what was flushed is still spoken, then :meth:`audio` raises."""
        if self._text_error is None:
            self._text_error = error
        if not self._ended:
            self._ended = True
            self._flushes.put_nowait(None)

    def _add_sentence(self, sentence: str) -> None:
        for piece in split_text(sentence):
            # The trailing space keeps the last word of one flush apart
            # from the first word of the next.
            self._flushes.put_nowait(piece + " ")
            self._flushes_added += 1

    async def audio(self) -> AsyncGenerator[bytes, None]:
        """60db's audio as it arrives; ends after the last sentence, or with the first failure."""
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        work = asyncio.ensure_future(self._speak(chunks))
        work.add_done_callback(lambda _: chunks.put_nowait(None))
        try:
            while (chunk := await chunks.get()) is not None:
                yield chunk
            work.result()  # the first failure, if any
        finally:
            await cancel_and_wait([work])
        if self._text_error is not None:
            raise self._text_error

    async def _speak(self, chunks: asyncio.Queue[bytes | None]) -> None:
        """Context after context until the answer is spoken: more than one after a drop."""
        if self._ended and not self._flushes_added:
            return  # nothing to say: no 60db context for it
        opened = False
        while True:
            try:
                async with self._client.tts_context(self._options) as context:
                    opened = True
                    self._progress.begin_context()
                    if not await self._speak_on(context, chunks):
                        return
            except _DROPS as err:
                if not (opened and self._progress.may_recover(self._client, err)):
                    raise

    async def _speak_on(self, context: TtsContext, chunks: asyncio.Queue[bytes | None]) -> bool:
        """Send and relay on one context; whether the answer goes on on a new one."""
        rollover = asyncio.Event()
        await run_together(
            self._send_flushes(context, rollover), self._relay_audio(context, chunks)
        )
        return rollover.is_set()

    async def _send_flushes(self, context: TtsContext, rollover: asyncio.Event) -> None:
        progress = self._progress
        chars = 0
        while (text := await self._next_flush()) is not None:
            if self._split_contexts and chars and chars + len(text) > MAX_CONTEXT_CHARS:
                progress.backlog.appendleft(text)  # the first flush of the next context
                rollover.set()
                break
            progress.unfinished.append(text)
            chars += len(text)
            await context.send_text(text)
            await context.flush()
        await context.close()

    async def _next_flush(self) -> str | None:
        """A flush to send again after a drop, else the next new one (``None``: the end)."""
        if self._progress.backlog:
            return self._progress.backlog.popleft()
        if self._progress.input_done:
            return None
        text = await self._flushes.get()
        if text is None:
            self._progress.input_done = True
        return text

    async def _relay_audio(self, context: TtsContext, chunks: asyncio.Queue[bytes | None]) -> None:
        progress = self._progress
        try:
            async for chunk in context.audio():
                progress.settle(context.flushes_completed)
                if audio := progress.unheard(chunk):
                    chunks.put_nowait(audio)
        finally:
            # `flush_completed`s that came after the last chunk, or before a drop.
            progress.settle(context.flushes_completed)


class _Progress:
    """How far one answer got: what to send again, and how much audio to skip, after a drop."""

    def __init__(self, sample_width: int | None, sample_rate: int) -> None:
        self._sample_width = sample_width
        self._sample_rate = sample_rate
        self.unfinished: deque[str] = deque()  # flushed on this context, audio not complete
        self.backlog: deque[str] = deque()  # to send first on the next context
        self.input_done = False
        self._completed = 0  # flushes whose audio is complete, over all contexts
        self._settled = 0  # `flushes_completed` of the current context already counted
        self._position = 0  # audio bytes of the first unfinished flush received
        self._skip = 0  # audio bytes at its start that the listener has heard
        self._recoveries = 0
        self._first_drop: float | None = None
        self._dropped_at: float | None = None
        self._drop_code = ""

    def begin_context(self) -> None:
        """A context is open: its first flushes are the ones the last one did not complete."""
        self.backlog.extendleft(reversed(self.unfinished))
        self.unfinished.clear()
        self._settled = 0
        # Exactly the bytes passed on, not rounded to samples: the listener's
        # stream stays sample-aligned even if 60db cut a chunk mid-sample.
        self._skip = max(self._skip, self._position)
        self._position = 0
        if self._dropped_at is not None:
            took_ms = (time.monotonic() - self._dropped_at) * 1000
            self._dropped_at = None
            _LOGGER.info(
                "60db TTS connection lost (%s): resumed on a new context at sentence %d, "
                "skipping %.0f ms of audio already played; reconnected in %.0f ms",
                self._drop_code,
                self._completed + 1,
                self._skip_ms(),
                took_ms,
            )

    def settle(self, flushes_completed: int) -> None:
        """Count the flushes 60db has completed on the current context."""
        while self._settled < flushes_completed:
            self._settled += 1
            if self.unfinished:
                self.unfinished.popleft()
            self._completed += 1
            self._position = 0
            self._skip = 0

    def unheard(self, chunk: bytes) -> bytes:
        """The part of a chunk of the first unfinished flush the listener has not heard."""
        start = self._position
        self._position += len(chunk)
        if start >= self._skip:
            return chunk
        return chunk[self._skip - start :]

    def may_recover(self, client: SixtyDbClient, error: SixtyDbError) -> bool:
        """Whether to resume on a new context after ``error`` (and note the drop if so)."""
        now = time.monotonic()
        if self._first_drop is None:
            self._first_drop = now
        # A resumed flush is a new wait for first audio: all recoveries of one
        # answer fit in that one wait, so a failing 60db ends the request in time.
        budget = client.config.timeouts.tts_first_audio
        if (
            self._sample_width is None
            or self._recoveries >= MAX_RECOVERIES
            or now - self._first_drop > budget
        ):
            return False
        self._recoveries += 1
        self._dropped_at = now
        self._drop_code = error.code
        return True

    def _skip_ms(self) -> float:
        samples = self._skip / (self._sample_width or 1)
        return samples * 1000 / self._sample_rate


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
