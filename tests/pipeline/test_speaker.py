"""TextStreamSpeaker: LLM text deltas to one 60db context, against the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import numpy as np
import pytest

from tests.conftest import eventually, make_client
from wyoming_60db.emulator import Emulator, tonecode
from wyoming_60db.pipeline.speaker import TextStreamSpeaker
from wyoming_60db.sixtydb import (
    DEFAULT_VOICE_ID,
    SixtyDbClient,
    TextTooLongError,
    TtsOptions,
)

OPTIONS = TtsOptions(voice_id=DEFAULT_VOICE_ID)
WAIT = 10.0


def heard(pcm: bytes) -> str:
    return tonecode.decode(np.frombuffer(pcm, dtype="<i2"), OPTIONS.sample_rate)


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[SixtyDbClient]:
    async with make_client(emulator) as sixtydb:
        yield sixtydb


async def test_each_sentence_is_flushed_when_it_ends(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """Audio of the first sentence comes before any more text, one context, a flush each."""
    speaker = TextStreamSpeaker(client, OPTIONS)
    speaker.add_text("Hello th")
    speaker.add_text("ere.")  # ends the sentence: no next delta is needed to confirm it
    async with asyncio.timeout(WAIT), aclosing(speaker.audio()) as audio:
        first = await anext(audio)
        assert first
        speaker.add_text(" How are")
        speaker.add_text(" you? Fi")
        speaker.finish()
        rest = b"".join([chunk async for chunk in audio])
    assert heard(first + rest) == "hello there. how are you? fi"
    (context,) = emulator.tts_contexts
    assert context.texts == ["Hello there. ", "How are you? ", "Fi "]
    assert context.flush_count == 3 and context.closed
    assert client.free_slots("tts") == 5


async def test_a_text_side_failure_speaks_what_was_flushed_then_raises(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    speaker = TextStreamSpeaker(client, OPTIONS)
    speaker.add_text("Hello there. And th")
    speaker.fail(LookupError("the language model failed"))
    received: list[bytes] = []
    with pytest.raises(LookupError, match="language model"):
        async with asyncio.timeout(WAIT), aclosing(speaker.audio()) as audio:
            async for chunk in audio:
                received.append(chunk)
    assert heard(b"".join(received)) == "hello there."
    assert emulator.tts_contexts[-1].closed
    await eventually(lambda: client.free_slots("tts") == 5, "the TTS slot given back")


async def test_a_60db_failure_ends_the_audio_at_once(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """More text than a context takes: TextTooLongError, context closed, slot back."""
    speaker = TextStreamSpeaker(client, OPTIONS)
    speaker.add_text("Short. " + "b" * 50_001 + " end.")
    speaker.finish()
    with pytest.raises(TextTooLongError):
        async with asyncio.timeout(WAIT), aclosing(speaker.audio()) as audio:
            async for _ in audio:
                pass
    await eventually(lambda: client.free_slots("tts") == 5, "the TTS slot given back")


@pytest.mark.parametrize("when", ["waiting_for_text", "between_chunks"])
async def test_cancelling_the_listener_closes_the_context(
    client: SixtyDbClient, emulator: Emulator, when: str
) -> None:
    speaker = TextStreamSpeaker(client, OPTIONS)
    if when == "between_chunks":
        speaker.add_text("A sentence long enough to come in several chunks of audio. ")
    got_audio = asyncio.Event()

    async def listen() -> None:
        async with aclosing(speaker.audio()) as audio:
            async for _ in audio:
                got_audio.set()
                await asyncio.sleep(WAIT)  # a slow consumer

    task = asyncio.create_task(listen())
    if when == "between_chunks":
        await asyncio.wait_for(got_audio.wait(), WAIT)
    else:
        await eventually(lambda: emulator.tts_contexts, "the context opened")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: client.free_slots("tts") == 5, "the TTS slot given back")


async def test_add_text_after_finish_is_a_bug(client: SixtyDbClient) -> None:
    speaker = TextStreamSpeaker(client, OPTIONS)
    speaker.finish()
    with pytest.raises(RuntimeError):
        speaker.add_text("late")


async def test_a_plain_text_longer_than_a_context_takes_is_spoken_whole(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """``for_text`` opens the next context when one is full, as ``synthesize`` did."""
    sentence = "This sentence is part of a very long text for one context. "
    text = sentence * 900  # 53,100 characters: more than 50,000
    emulator.settings.tts_seconds_per_char = 0.02  # the shortest audio: 18 minutes of it
    speaker = TextStreamSpeaker.for_text(client, OPTIONS, text)
    async with asyncio.timeout(WAIT), aclosing(speaker.audio()) as audio:
        async for _ in audio:
            pass
    assert len(emulator.tts_contexts) == 2
    assert all(sum(map(len, c.texts)) <= 50_000 for c in emulator.tts_contexts)
    spoken = [text for context in emulator.tts_contexts for text in context.texts]
    assert " ".join(spoken).split() == text.split()
    await eventually(lambda: client.free_slots("tts") == 5, "the TTS slots given back")


async def test_a_plain_text_over_the_limit_is_refused(client: SixtyDbClient) -> None:
    with pytest.raises(TextTooLongError):
        TextStreamSpeaker.for_text(client, OPTIONS, "a " * 50_001)
