"""SttFeed survives a dropped 60db session: the utterance is replayed into a fresh one.

Real emulator on loopback. Faults are one-shot per next STT connection (the
pool's warm one included), so "60db keeps dropping" is three injected faults.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import pytest

from tests.conftest import FAST_TIMEOUTS, TEST_KEY, eventually, make_client
from tests.pipeline.test_stt_feed import speech, ten_ms_chunks
from wyoming_60db.emulator import Emulator, Fault
from wyoming_60db.pcm import PcmFormat
from wyoming_60db.pipeline.stt_feed import DEFAULT_SEND_TIMEOUT, MAX_RECOVERIES, SttFeed
from wyoming_60db.sixtydb import (
    AuthenticationError,
    ConnectionLostError,
    InsufficientCreditsError,
    SixtyDbClient,
    SixtyDbError,
    SttOptions,
    SttResult,
    Transcription,
)

# 47 characters of tone code: about 2.8 s of "speech", 3.4 s with its pauses.
LONG_PHRASE = "turn on the kitchen lights and close the blinds"
SECOND_PHRASE = "good night"
SOURCE = PcmFormat(16000, 2, 1)
ONE_SECOND = 32000  # bytes of 16 kHz 16-bit mono
SLOTS = 8


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[SixtyDbClient]:
    async with make_client(emulator) as sixtydb:
        yield sixtydb


async def push_paced(feed: SttFeed, audio: bytes, speed: float = 4.0) -> None:
    """10 ms chunks at ``speed`` times real time, as a satellite would stream them."""
    for chunk in ten_ms_chunks(audio, SOURCE):
        feed.push(chunk)
        await asyncio.sleep(0.01 / speed)


async def transcribe(
    client: SixtyDbClient, audio: bytes, options: SttOptions | None = None
) -> tuple[SttResult, SttFeed, list[Transcription]]:
    """Stream ``audio`` through a feed, finish; the result, the feed and its updates."""
    feed = SttFeed(client, options or SttOptions(interim_results_ms=300), SOURCE, keep_updates=True)
    updates: list[Transcription] = []

    async def read_updates() -> None:
        async for update in feed.updates():
            updates.append(update)

    reader = asyncio.create_task(read_updates())
    try:
        async with asyncio.timeout(30):
            await push_paced(feed, audio)
            result = await feed.finish()
            await reader
        return result, feed, updates
    finally:
        reader.cancel()
        await feed.aclose()


def started_sessions(emulator: Emulator) -> int:
    return sum(1 for record in emulator.stt_sessions if record.start is not None)


def recovery_times_ms(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [
        float(match.group(1))
        for record in caplog.records
        if record.levelno == logging.INFO
        and (match := re.search(r"recovery took (\d+) ms", record.getMessage()))
    ]


async def test_a_drop_mid_utterance_gives_the_undisturbed_transcript(
    client: SixtyDbClient, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """60db drops the socket 1 s into a 3 s phrase: the user still gets the whole phrase."""
    caplog.set_level(logging.INFO, logger="wyoming_60db.pipeline.stt_feed")
    audio = speech(LONG_PHRASE)
    # Another client: this one's first connection must be the one that drops.
    async with make_client(emulator) as other:
        undisturbed, _, _ = await transcribe(other, audio)
    assert undisturbed.text == LONG_PHRASE

    emulator.inject_fault(Fault(service="stt", kind="drop", after_audio_bytes=ONE_SECOND))
    before = started_sessions(emulator)
    result, feed, updates = await transcribe(client, audio)

    assert result.text == undisturbed.text
    assert result.language == undisturbed.language
    assert feed.recoveries == 1
    assert started_sessions(emulator) - before == 2  # the dropped one and its replacement
    assert [u.text for u in updates if u.is_canonical and u.text] == [LONG_PHRASE]
    # One INFO line per recovery, bounded by the new session's ready wait and
    # the replay's send bound; no transcript text and no key in it.
    (took,) = recovery_times_ms(caplog)
    assert took < (FAST_TIMEOUTS.stt_ready + DEFAULT_SEND_TIMEOUT) * 1000
    logged = caplog.text
    assert "kitchen" not in logged and TEST_KEY not in logged
    await eventually(lambda: client.free_slots("stt") == SLOTS, "every STT slot given back")


async def test_a_drop_between_two_phrases_keeps_the_first_final_once(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """Dropped after the first phrase's final: only the second phrase is replayed."""
    options = SttOptions(utterance_end_ms=300)
    feed = SttFeed(client, options, SOURCE, keep_updates=True)
    finals: list[str] = []

    async def read_updates() -> None:
        async for update in feed.updates():
            if update.is_canonical and update.text:
                finals.append(update.text)

    reader = asyncio.create_task(read_updates())
    try:
        async with asyncio.timeout(30):
            await push_paced(feed, speech(LONG_PHRASE, after=0.6))
            await eventually(lambda: feed.heard == LONG_PHRASE, "the first phrase's final")
            assert emulator.drop_connections("stt") >= 1  # the network drops
            await push_paced(feed, speech(SECOND_PHRASE))
            result = await feed.finish()
            await reader
    finally:
        reader.cancel()
        await feed.aclose()
    assert result.text == f"{LONG_PHRASE} {SECOND_PHRASE}"
    assert finals == [LONG_PHRASE, SECOND_PHRASE]
    assert feed.recoveries == 1
    replacement = [record for record in emulator.stt_sessions if record.start is not None][-1]
    assert len(replacement.audio) < len(speech(LONG_PHRASE)), "the first phrase was replayed"
    await eventually(lambda: client.free_slots("stt") == SLOTS, "every STT slot given back")


async def test_a_connection_that_keeps_dropping_ends_after_two_recoveries(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    for _ in range(MAX_RECOVERIES + 1):
        emulator.inject_fault(Fault(service="stt", kind="drop", after_audio_bytes=ONE_SECOND))
    feed = SttFeed(client, SttOptions(), SOURCE, keep_updates=True)
    try:
        with pytest.raises(ConnectionLostError):
            async with asyncio.timeout(30):
                await push_paced(feed, speech(LONG_PHRASE, after=1.0))
                await feed.finish()
        with pytest.raises(ConnectionLostError):
            async for _ in feed.updates():
                pass
        assert feed.recoveries == MAX_RECOVERIES
    finally:
        await feed.aclose()
    assert started_sessions(emulator) == MAX_RECOVERIES + 1
    await eventually(lambda: client.free_slots("stt") == SLOTS, "every STT slot given back")


async def test_a_stalled_session_is_replaced(client: SixtyDbClient, emulator: Emulator) -> None:
    """60db stops answering: the final does not come in time, a new session gives it."""
    emulator.inject_fault(Fault(service="stt", kind="stall", after_audio_bytes=ONE_SECOND))
    loop = asyncio.get_running_loop()
    started = loop.time()
    result, feed, _ = await transcribe(client, speech(LONG_PHRASE))
    took = loop.time() - started
    assert result.text == LONG_PHRASE
    assert feed.recoveries == 1
    # The stall costs the finalize wait once; the new session its ready wait at most.
    assert took < 4.0 + FAST_TIMEOUTS.stt_finalize + FAST_TIMEOUTS.stt_ready
    await eventually(lambda: client.free_slots("stt") == SLOTS, "every STT slot given back")


@pytest.mark.parametrize(
    ("code", "error"),
    [("UNAUTHORIZED", AuthenticationError), ("INSUFFICIENT_CREDITS", InsufficientCreditsError)],
)
async def test_a_refusal_is_not_retried(
    client: SixtyDbClient, emulator: Emulator, code: str, error: type[SixtyDbError]
) -> None:
    emulator.inject_fault(
        Fault(service="stt", kind="error", code=code, message=code, after_audio_bytes=ONE_SECOND)
    )
    feed = SttFeed(client, SttOptions(), SOURCE)
    try:
        with pytest.raises(error):
            async with asyncio.timeout(30):
                await push_paced(feed, speech(LONG_PHRASE))
                await feed.finish()
        assert feed.recoveries == 0
    finally:
        await feed.aclose()
    assert started_sessions(emulator) == 1
    await eventually(lambda: client.free_slots("stt") == SLOTS, "every STT slot given back")


async def test_a_client_hanging_up_during_a_recovery_leaks_no_session(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    """The feed is closed while the replacement session is still logging in."""
    feed = SttFeed(client, SttOptions(), SOURCE)
    try:
        async with asyncio.timeout(30):
            await push_paced(feed, speech(LONG_PHRASE)[:ONE_SECOND])
            await eventually(lambda: started_sessions(emulator) == 1, "the first session")
            emulator.settings.connect_latency = 1.0  # the replacement logs in slowly
            emulator.drop_connections("stt")  # the warm socket goes too
            await eventually(lambda: feed.recoveries == 1, "a recovery under way")
            await feed.aclose()
    finally:
        await feed.aclose()
    await eventually(lambda: client.free_slots("stt") == SLOTS, "every STT slot given back")
