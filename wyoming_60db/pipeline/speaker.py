"""Text deltas in, one 60db TTS context, audio out: the streaming TTS pipeline of both front ends.

An LLM writes its answer in deltas that end anywhere. Each sentence is sent to
one 60db context and flushed the moment it is complete, so the first sentence
is spoken while the LLM still writes the next, and 60db bills one request.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from typing import Final

from sentence_stream import SentenceBoundaryDetector

from wyoming_60db.sixtydb import SixtyDbClient, TtsContext, TtsOptions
from wyoming_60db.sixtydb.limits import FLUSH_CHARS
from wyoming_60db.sixtydb.text import split_text

from .aio import cancel_and_wait, run_together


class TextStreamSpeaker:
    """Speaks text as it is written: :meth:`add_text` and :meth:`finish` in, :meth:`audio` out.

    The text side may push (the server, from Wyoming events) or pull in a task
    of its own (the integration, from Home Assistant's ``message_gen``); a
    failure there is passed to :meth:`fail`. The 60db context opens when
    :meth:`audio` is first iterated and is closed, and its slot given back, on
    every path: iterate it under ``contextlib.aclosing``.
    """

    def __init__(self, client: SixtyDbClient, options: TtsOptions) -> None:
        self._client = client
        self._options = options
        self._segmenter = SentenceSegmenter()
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._ended = False
        self._text_error: BaseException | None = None

    def add_text(self, delta: str) -> None:
        """Any piece of text, not sentence aligned; complete sentences go out at once."""
        if self._ended:
            raise RuntimeError("TextStreamSpeaker.add_text after finish or fail")
        for sentence in self._segmenter.add(delta):
            self._sentences.put_nowait(sentence)

    def finish(self) -> None:
        """The text is complete: speak the rest, then end :meth:`audio` (idempotent)."""
        if self._ended:
            return
        self._ended = True
        if rest := self._segmenter.finish():
            self._sentences.put_nowait(rest)
        self._sentences.put_nowait(None)

    def fail(self, error: BaseException) -> None:
        """The text side failed: what was flushed is still spoken, then :meth:`audio` raises."""
        if self._text_error is None:
            self._text_error = error
        if not self._ended:
            self._ended = True
            self._sentences.put_nowait(None)

    async def audio(self) -> AsyncGenerator[bytes, None]:
        """60db's audio as it arrives; ends after the last sentence, or with the first failure."""
        async with self._client.tts_context(self._options) as context:
            chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
            work = asyncio.ensure_future(
                run_together(self._send_sentences(context), _read_audio(context, chunks))
            )
            work.add_done_callback(lambda _: chunks.put_nowait(None))
            try:
                while (chunk := await chunks.get()) is not None:
                    yield chunk
                work.result()  # the first failure of either side, if any
            finally:
                await cancel_and_wait([work])
        if self._text_error is not None:
            raise self._text_error

    async def _send_sentences(self, context: TtsContext) -> None:
        while (sentence := await self._sentences.get()) is not None:
            for piece in split_text(sentence):
                # The trailing space keeps the last word of one flush apart
                # from the first word of the next.
                await context.send_text(piece + " ")
                await context.flush()
        await context.close()


async def _read_audio(context: TtsContext, chunks: asyncio.Queue[bytes | None]) -> None:
    async for chunk in context.audio():
        chunks.put_nowait(chunk)


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
