"""The feed ends the turn itself: 60db's end of utterance and the guard rails.

The emulator measures silence in audio time, so these tests push audio faster
than real time: a turn of several seconds takes a fraction of one. The
server and Home Assistant tests stream at real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tests.conftest import eventually
from tests.pipeline.test_stt_feed import speech, ten_ms_chunks, used_session
from wyoming_60db.emulator import Emulator
from wyoming_60db.pcm import PcmFormat
from wyoming_60db.pipeline import Endpointing, SttFeed, TurnEnd, utterance_end_ms
from wyoming_60db.pipeline.endpointing import TurnWatch
from wyoming_60db.sixtydb import (
    SixtyDbClient,
    SttOptions,
    SttResult,
    Transcription,
    context_terms,
    stt_context,
)
from wyoming_60db.sixtydb.limits import MAX_CONTEXT_TERMS, MAX_TERM_CHARS

PCM16 = PcmFormat(16000, 2, 1)
COMMAND = "turn on the kitchen light"


def silence(seconds: float) -> bytes:
    return bytes(int(16000 * seconds) * 2)


def feed_for(
    client: SixtyDbClient, endpointing: Endpointing | None = None, **options: object
) -> SttFeed:
    return SttFeed(
        client,
        SttOptions(**options),  # type: ignore[arg-type]
        PCM16,
        endpointing=endpointing or Endpointing(),
    )


async def push_until_over(
    feed: SttFeed, audio: bytes, *, real_time: bool = False
) -> tuple[SttResult, int]:
    """Push ``audio`` in 10 ms chunks until the turn ends: fast, or at ``real_time``.

    Returns the result and how many chunks were pushed before it ended.
    """
    loop = asyncio.get_running_loop()
    turn = asyncio.ensure_future(feed.turn_ended())
    pushed = 0
    started = loop.time()
    try:
        async with asyncio.timeout(10):
            for chunk in ten_ms_chunks(audio, PCM16):
                if turn.done():
                    break
                feed.push(chunk)
                pushed += 1
                if real_time:
                    await asyncio.sleep(max(0.0, started + pushed * 0.01 - loop.time()))
                else:
                    await asyncio.sleep(0.001)
            return await turn, pushed
    finally:
        turn.cancel()


@pytest.fixture
async def feed_cleanup() -> AsyncIterator[list[SttFeed]]:
    feeds: list[SttFeed] = []
    yield feeds
    for feed in feeds:
        await feed.aclose()


async def test_the_turn_ends_on_60dbs_final_before_the_audio_does(
    client: SixtyDbClient, emulator: Emulator, feed_cleanup: list[SttFeed]
) -> None:
    feed = feed_for(client)
    feed_cleanup.append(feed)
    audio = speech(COMMAND, after=0.0) + silence(3.0)
    chunks = len(ten_ms_chunks(audio, PCM16))

    result, pushed = await push_until_over(feed, audio)

    assert result.text == COMMAND
    assert feed.turn_end is TurnEnd.SPEECH_FINAL
    assert pushed < chunks  # it did not wait for the client's end of audio
    # Audio after the turn is dropped, and finish() says the same, at once.
    feed.push(silence(0.01))
    assert await feed.finish() is result
    # The session was stopped in the background: 60db's bill counted, slot back.
    await eventually(lambda: client.usage.stt_sessions == 1, "the billing summary")
    assert client.usage.cost > 0
    assert used_session(emulator).ended == "stopped"
    await eventually(lambda: emulator.active_slots("stt") == 0, "the slot to come back")


async def test_a_short_pause_stays_inside_the_command(
    client: SixtyDbClient, feed_cleanup: list[SttFeed]
) -> None:
    """The issue's rule: a 250 ms pause must not cut the command at the default."""
    feed = feed_for(client, utterance_end_ms=utterance_end_ms(None))
    feed_cleanup.append(feed)
    audio = speech(COMMAND, after=0.25) + speech("and the hallway", before=0.0) + silence(2.0)

    result, _ = await push_until_over(feed, audio)

    assert result.text == f"{COMMAND} and the hallway"


async def test_aggressive_ends_sooner_than_relaxed(
    client: SixtyDbClient, emulator: Emulator, feed_cleanup: list[SttFeed]
) -> None:
    pushed: dict[str, int] = {}
    for sensitivity in ("aggressive", "relaxed"):
        feed = feed_for(client, utterance_end_ms=utterance_end_ms(sensitivity))
        feed_cleanup.append(feed)
        _, pushed[sensitivity] = await push_until_over(feed, speech(COMMAND) + silence(3.0))
    # 300 ms against 1,000 ms of trailing silence: about 70 chunks fewer.
    assert pushed["relaxed"] - pushed["aggressive"] >= 50
    sent = [(r.config or {}).get("utterance_end_ms") for r in emulator.stt_sessions if r.start]
    assert sent == [300, 1000]


async def test_no_speech_gives_an_empty_transcript(
    client: SixtyDbClient, feed_cleanup: list[SttFeed]
) -> None:
    feed = feed_for(client, Endpointing(no_speech_seconds=1.0))
    feed_cleanup.append(feed)

    result, pushed = await push_until_over(feed, silence(5.0), real_time=True)

    assert (result.text, feed.turn_end) == ("", TurnEnd.NO_SPEECH)
    assert 100 <= pushed <= 108  # 1 s of audio, counted in whole 60 ms frames
    await eventually(lambda: client.usage.stt_sessions == 1, "the session's summary")


async def test_a_command_that_never_ends_is_finalised_at_the_limit(
    client: SixtyDbClient, emulator: Emulator, feed_cleanup: list[SttFeed]
) -> None:
    feed = feed_for(client, Endpointing(max_command_seconds=1.2))
    feed_cleanup.append(feed)
    # Speech running on past the limit, never followed by silence.
    long_speech = speech(f"{COMMAND} and the hallway and the porch", before=0.1, after=0.0)

    result, pushed = await push_until_over(feed, long_speech, real_time=True)

    assert feed.turn_end is TurnEnd.MAX_LENGTH
    assert 120 <= pushed <= 128  # 1.2 s, counted in whole 60 ms frames
    assert result.text  # 60db finalised what it had
    assert result.billing is not None  # a real stop, with its summary
    assert used_session(emulator).ended == "stopped"


async def test_the_clients_end_of_audio_may_come_first(
    client: SixtyDbClient, feed_cleanup: list[SttFeed]
) -> None:
    """Old Home Assistant and other clients stop the audio themselves."""
    feed = feed_for(client)
    feed_cleanup.append(feed)
    turn = asyncio.ensure_future(feed.turn_ended())
    for chunk in ten_ms_chunks(speech(COMMAND, after=0.1), PCM16):
        feed.push(chunk)
    result = await feed.finish()

    assert await asyncio.wait_for(turn, 5) is result
    assert (result.text, feed.turn_end) == (COMMAND, TurnEnd.CLIENT)


async def test_a_context_reaches_60db_and_its_refined_final_is_used(
    client: SixtyDbClient, emulator: Emulator, feed_cleanup: list[SttFeed]
) -> None:
    emulator.settings.stt_llm_refine_text = True  # refined text is sentence-cased
    emulator.settings.stt_llm_latency_ms = 100
    terms = context_terms(["Küchenlicht"], ["Zorbulon lamp"])
    feed = feed_for(client, context=stt_context(terms))
    feed_cleanup.append(feed)

    result, _ = await push_until_over(feed, speech(COMMAND) + silence(2.0))

    assert (result.text, feed.turn_end) == ("Turn on the kitchen light", TurnEnd.SPEECH_FINAL)
    assert used_session(emulator).context_terms == ["Küchenlicht", "Zorbulon lamp"]


async def test_a_late_refinement_is_not_waited_for(
    client: SixtyDbClient, emulator: Emulator, feed_cleanup: list[SttFeed]
) -> None:
    emulator.settings.stt_llm_refine_text = True
    emulator.settings.stt_llm_latency_ms = 3000
    feed = feed_for(client, Endpointing(refine_wait_seconds=0.2), context=stt_context(["x"]))
    feed_cleanup.append(feed)

    loop = asyncio.get_running_loop()
    started = loop.time()
    result, _ = await push_until_over(feed, speech(COMMAND) + silence(2.0))

    assert (result.text, feed.turn_end) == (COMMAND, TurnEnd.FIRST_FINAL)
    assert loop.time() - started < 2.5  # did not wait the 3 s refinement


# ---------------------------------------------------------------- the rules alone


def final(text: str, *, canonical: bool = True) -> Transcription:
    return Transcription(text=text, is_final=True, speech_final=canonical)


async def test_empty_finals_do_not_end_the_turn() -> None:
    watch = TurnWatch(Endpointing(no_speech_seconds=1.0), bytes_per_second=100)
    watch.transcription(final(""))
    watch.transcription(Transcription(text="tu", is_final=False, speech_final=False))
    assert not watch.over.done()
    watch.audio(150, speech_started=False)  # text was heard: not "no speech"
    assert not watch.over.done()
    watch.transcription(final("turn on"))
    assert watch.over.result() is TurnEnd.SPEECH_FINAL
    assert watch.text(["turn on"]) == "turn on"


async def test_a_guard_needs_its_bound_in_audio_and_on_the_clock() -> None:
    bounds = Endpointing(max_command_seconds=0.2, no_speech_seconds=0.1)
    watch = TurnWatch(bounds, bytes_per_second=1000)
    watch.audio(99, speech_started=False)
    await asyncio.sleep(0.15)
    assert not watch.over.done()  # the clock has passed, the audio has not
    watch.audio(1, speech_started=False)
    assert watch.over.result() is TurnEnd.NO_SPEECH

    # A recording uploaded at once: the audio is there, the clock is not yet.
    uploaded = TurnWatch(bounds, bytes_per_second=1000)
    uploaded.audio(5000, speech_started=False)
    assert not uploaded.over.done()
    uploaded.heard_speech = True  # 60db hears the voice meanwhile: no "no speech"
    # ... and with no more audio, the clock alone ends the overlong command.
    assert await asyncio.wait_for(uploaded.over, 1) is TurnEnd.MAX_LENGTH

    speaking = TurnWatch(bounds, bytes_per_second=1000)
    speaking.audio(150, speech_started=True)
    await asyncio.sleep(0.25)
    assert not speaking.over.done()  # 0.15 s of audio: not too long yet
    speaking.audio(50, speech_started=True)
    assert speaking.over.result() is TurnEnd.MAX_LENGTH


async def test_the_first_final_is_used_when_the_refined_one_is_late() -> None:
    watch = TurnWatch(Endpointing(refine_wait_seconds=0.05), 100)
    watch.transcription(final("turn on the light", canonical=False))
    assert not watch.over.done()
    assert await asyncio.wait_for(watch.over, 1) is TurnEnd.FIRST_FINAL
    assert watch.text([]) == "turn on the light"


def test_sensitivities_map_to_60db_milliseconds() -> None:
    assert [utterance_end_ms(name) for name in (None, "aggressive", "default", "relaxed")] == [
        500,
        300,
        500,
        1000,
    ]
    assert utterance_end_ms(None, default="relaxed") == 1000
    with pytest.raises(ValueError, match="valid: aggressive, default, relaxed"):
        utterance_end_ms("eager")


def test_context_terms_are_clean_bounded_and_names_first() -> None:
    names = [f"name {i}" for i in range(MAX_CONTEXT_TERMS - 1)]
    terms = context_terms(
        names, ["  Zorbulon   lamp ", "NAME 1", "", "x" * (MAX_TERM_CHARS + 1), "y"]
    )
    assert terms[-1] == "Zorbulon lamp"
    assert len(terms) == MAX_CONTEXT_TERMS  # "y" did not fit
    assert stt_context([]) is None
    assert stt_context(["a"]) == {"terms": ["a"]}


def test_a_tone_command_is_what_the_emulator_hears() -> None:
    """Guard for the tests above: the audio helper really makes one utterance."""
    audio = np.frombuffer(speech(COMMAND), dtype="<i2")
    assert audio.size > 16000
