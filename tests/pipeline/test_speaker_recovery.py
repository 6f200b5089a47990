"""TextStreamSpeaker resumes an answer on a new context when 60db's TTS socket drops.

The emulator renders the same text to the same tone-coded audio, so what the
listener gets can be transcribed back and measured against a clean rendering.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Final

import numpy as np
import pytest

from tests.conftest import FAST_TIMEOUTS, eventually, make_client
from wyoming_60db.emulator import Emulator, Fault, tonecode
from wyoming_60db.emulator.tts import speakable
from wyoming_60db.pipeline.speaker import TextStreamSpeaker
from wyoming_60db.sixtydb import (
    DEFAULT_VOICE_ID,
    AuthenticationError,
    ConnectionLostError,
    InsufficientCreditsError,
    SixtyDbClient,
    SixtyDbError,
    TtsOptions,
)

OPTIONS = TtsOptions(voice_id=DEFAULT_VOICE_ID)
WAIT = 10.0
BYTES_PER_MS = OPTIONS.sample_rate * 2 // 1000
ANSWER = ["The first sentence is here.", " The second one is a bit longer than that.", " Third."]
FLUSHED = [sentence.strip() + " " for sentence in ANSWER]
# Messages on a TTS connection, counted from a run: connecting,
# connection_established and context_created, then 28 audio chunks (2,048
# bytes each) and flush_completed for the first sentence.
SENTENCE_ONE_DONE: Final = 3 + 28 + 1
MID_SENTENCE_TWO: Final = SENTENCE_ONE_DONE + 20


def heard(pcm: bytes) -> str:
    return tonecode.decode(np.frombuffer(pcm, dtype="<i2"), OPTIONS.sample_rate)


def clean_length(texts: list[str]) -> int:
    """Audio bytes of ``texts`` flushed one by one, without any fault."""
    rate, seconds = OPTIONS.sample_rate, tonecode.DEFAULT_SECONDS_PER_CHAR
    return sum(len(tonecode.encode_symbols(speakable(text), rate, seconds)) * 2 for text in texts)


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[SixtyDbClient]:
    async with make_client(emulator) as sixtydb:
        yield sixtydb


async def speak_streamed(client: SixtyDbClient) -> bytes:
    """The answer in LLM deltas: the rest is written while the first sentence plays."""
    speaker = TextStreamSpeaker(client, OPTIONS)
    speaker.add_text(ANSWER[0])
    received: list[bytes] = []
    async with asyncio.timeout(WAIT), aclosing(speaker.audio()) as audio:
        received.append(await anext(audio))
        for sentence in ANSWER[1:]:
            speaker.add_text(sentence)
        speaker.finish()
        received += [chunk async for chunk in audio]
    return b"".join(received)


async def test_a_drop_mid_sentence_resumes_at_that_sentence(
    client: SixtyDbClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_60db.pipeline.speaker")
    emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=MID_SENTENCE_TWO))
    pcm = await speak_streamed(client)

    assert heard(pcm) == tonecode.normalize("".join(ANSWER))
    broken, resumed = emulator.tts_contexts
    assert clean_length(FLUSHED[:1]) < len(broken.audio) < clean_length(FLUSHED[:2])
    assert resumed.texts == FLUSHED[1:]  # nothing of the complete first sentence again
    duplicated_ms = (len(pcm) - clean_length(FLUSHED)) / BYTES_PER_MS
    assert 0 <= duplicated_ms < 300
    (line,) = [r.getMessage() for r in caplog.records if "resumed" in r.getMessage()]
    assert "sentence 2" in line
    assert all(word not in line for word in ("second one", "longer"))  # never the text
    await eventually(lambda: client.free_slots("tts") == 5, "the TTS slots given back")


async def test_a_drop_after_a_flush_completed_sends_nothing_of_it_again(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=SENTENCE_ONE_DONE))
    pcm = await speak_streamed(client)

    assert heard(pcm) == tonecode.normalize("".join(ANSWER))
    broken, resumed = emulator.tts_contexts
    assert len(broken.audio) == clean_length(FLUSHED[:1])
    assert resumed.texts == FLUSHED[1:]
    assert len(pcm) == clean_length(FLUSHED)  # not a sample twice


async def test_a_connection_that_keeps_dropping_ends_in_connection_lost(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=MID_SENTENCE_TWO))
    for _ in range(2):  # both connections it is resumed on: after their first audio chunk
        emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=4))
    with pytest.raises(ConnectionLostError):
        await speak_streamed(client)
    assert len(emulator.tts_contexts) == 3
    await eventually(lambda: client.free_slots("tts") == 5, "the TTS slots given back")


async def test_a_stalled_connection_is_resumed(emulator: Emulator) -> None:
    timeouts = dataclasses.replace(FAST_TIMEOUTS, tts_first_audio=2.0, tts_chunk_gap=0.3)
    emulator.inject_fault(Fault(service="tts", kind="stall", after_messages=MID_SENTENCE_TWO))
    async with make_client(emulator, timeouts=timeouts) as client:
        pcm = await speak_streamed(client)
        assert heard(pcm) == tonecode.normalize("".join(ANSWER))
        assert emulator.tts_contexts[-1].texts == FLUSHED[1:]
        await eventually(lambda: client.free_slots("tts") == 5, "the TTS slots given back")


@pytest.mark.parametrize(
    ("code", "message", "error"),
    [
        ("UNAUTHORIZED", "Unauthorized", AuthenticationError),
        ("INSUFFICIENT_CREDITS", "Insufficient credits", InsufficientCreditsError),
    ],
)
async def test_auth_and_credit_failures_are_not_retried(
    client: SixtyDbClient,
    emulator: Emulator,
    code: str,
    message: str,
    error: type[SixtyDbError],
) -> None:
    emulator.inject_fault(
        Fault(
            service="tts",
            kind="error",
            after_messages=MID_SENTENCE_TWO,
            code=code,
            message=message,
        )
    )
    with pytest.raises(error):
        await speak_streamed(client)
    assert len(emulator.tts_contexts) == 1
    await eventually(lambda: client.free_slots("tts") == 5, "the TTS slot given back")


async def test_no_credits_when_resuming_ends_the_answer(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """The new connection's refusal is the answer's error: no second try."""
    emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=MID_SENTENCE_TWO))
    emulator.settings.credit_balance = 0  # read at the next handshake: the resume's
    with pytest.raises(InsufficientCreditsError):
        await speak_streamed(client)
    await eventually(lambda: client.free_slots("tts") == 5, "the TTS slot given back")


async def test_a_plain_text_is_resumed_too(client: SixtyDbClient, emulator: Emulator) -> None:
    emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=MID_SENTENCE_TWO))
    speaker = TextStreamSpeaker.for_text(client, OPTIONS, "".join(ANSWER))
    async with asyncio.timeout(WAIT), aclosing(speaker.audio()) as audio:
        pcm = b"".join([chunk async for chunk in audio])
    assert heard(pcm) == tonecode.normalize("".join(ANSWER))
    assert emulator.tts_contexts[-1].texts == FLUSHED[1:]
    assert len(pcm) == clean_length(FLUSHED)
