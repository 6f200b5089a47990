"""The small parts: event reading limits, sentence cutting, partial transcripts, audio relay."""

from __future__ import annotations

import asyncio

import pytest
from wyoming.event import Event

from wyoming_60db.pipeline.aio import cancel_and_wait
from wyoming_60db.pipeline.speaker import SentenceSegmenter
from wyoming_60db.pipeline.transcript import PartialTranscript
from wyoming_60db.sixtydb import Transcription
from wyoming_60db.tts_stream import AudioRelay
from wyoming_60db.wire import EventLimits, MalformedEvent, read_event


async def read(raw: bytes, limits: EventLimits | None = None) -> Event | None:
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    return await read_event(reader, limits or EventLimits())


async def test_read_event_merges_data_and_reads_the_payload() -> None:
    raw = b'{"type": "audio-chunk", "data": {"rate": 1}, "data_length": 11, "payload_length": 3}\n'
    event = await read(raw + b'{"width":2}abc')
    assert event == Event("audio-chunk", {"rate": 1, "width": 2}, b"abc")
    assert await read(b"") is None
    assert await read(b'{"type": "audio-chunk", "payload_length": 10}\nshort') is None


async def test_read_event_limits() -> None:
    limits = EventLimits(max_data_bytes=10, max_payload_bytes=4)
    with pytest.raises(MalformedEvent) as too_big:
        await read(b'{"type": "x", "payload_length": 5}\n12345', limits)
    assert too_big.value.code == "payload_too_large"
    with pytest.raises(MalformedEvent):
        await read(b'{"type": "x", "data_length": true}\n', limits)
    assert await read(b'{"type": "x", "payload_length": 4}\n1234', limits) is not None


def feed(chunks: list[str]) -> list[list[str]]:
    segmenter = SentenceSegmenter()
    out = [segmenter.add(chunk) for chunk in chunks]
    return [*out, [segmenter.finish()]]


def test_sentences_are_released_as_soon_as_they_end() -> None:
    assert feed(["Hello th", "ere.", " How are", " you?", " Fine"]) == [
        [],
        ["Hello there."],
        [],
        ["How are you?"],
        [],
        ["Fine"],
    ]


def test_abbreviations_and_numbers_wait_for_more_text() -> None:
    assert feed(["I met Dr.", " Smith. It cost 3.", "5 euros. Bye."]) == [
        [],
        ["I met Dr. Smith."],
        ["It cost 3.5 euros."],
        ["Bye."],  # a short capitalised word might be "Mr.": it waits
    ]
    assert feed(["Step 3. ", "Done"]) == [["Step 3."], [], ["Done"]]


def test_long_text_without_a_sentence_end_is_cut_between_words() -> None:
    segmenter = SentenceSegmenter()
    pieces = segmenter.add("word " * 300)  # 1,500 characters, no punctuation
    rest = segmenter.finish()
    assert len(pieces) == 1 and len(pieces[0]) <= 1500
    assert (pieces[0] + " " + rest).split() == ["word"] * 300


def transcription(text: str, final: bool = False) -> Transcription:
    return Transcription(text=text, is_final=final, speech_final=final)


def test_partial_transcript_sends_only_settled_words() -> None:
    partial = PartialTranscript()
    assert partial.update(transcription("turn")) == ""  # the word may be cut off
    assert partial.update(transcription("turn on th")) == "turn on"
    assert partial.update(transcription("turn on the lig")) == " the"
    assert partial.update(transcription("turn on the lights.", final=True)) == " lights."
    assert partial.update(transcription("and the")) == " and"
    assert partial.complete("turn on the lights. and the fan.") == " the fan."


def test_partial_transcript_never_contradicts_what_was_sent() -> None:
    partial = PartialTranscript()
    assert partial.update(transcription("turn on the")) == "turn on"
    assert partial.update(transcription("turn one the")) == ""  # "on" became "one"
    assert partial.complete("turn one the light.") == ""
    assert partial.sent == "turn on"


async def test_audio_relay_chunks_and_sample_alignment() -> None:
    sent: list[Event] = []

    async def send(event: Event) -> None:
        sent.append(event)

    relay = AudioRelay(send, 16000)
    await relay.relay(bytes(5001))  # more than 1024 samples, and half a sample
    await relay.relay(bytes(3))
    await relay.stop()
    kinds = [event.type for event in sent]
    assert kinds == [
        "audio-start",
        "audio-chunk",
        "audio-chunk",
        "audio-chunk",
        "audio-chunk",
        "audio-stop",
    ]
    sizes = [len(event.payload or b"") for event in sent if event.type == "audio-chunk"]
    assert sizes == [2048, 2048, 904, 4]  # the odd byte waited for its other half
    assert relay.audio_bytes == 5004


async def test_cancel_and_wait_cancels_again_when_a_cancel_is_swallowed() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            swallowed += 1  # what 3.11's wait_for does in a race (gh-86296)
        await asyncio.sleep(10)

    task = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(2):
        await cancel_and_wait([task])
    assert task.cancelled() and swallowed == 1
