"""Text-to-speech through the real server, in Home Assistant's order of events."""

from __future__ import annotations

import asyncio

from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from tests.server.conftest import (
    STREAM_END,
    RunningServer,
    audio_of,
    error_of,
    eventually,
    exchange,
    ha_streaming_tts_events,
    heard,
    read_until,
    running_server,
    types,
)
from wyoming_60db.emulator import DEFAULT_VOICE_ID, Emulator, Fault
from wyoming_60db.emulator.tonecode import normalize

PLAIN_END = ("audio-stop", "error")
ARJUN = "2b6c1c1e-3f0a-4c55-9d1e-7a4f5b9e0c01"
LUCIA = "9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e04"


def spoken_texts(emulator: Emulator) -> list[str]:
    """Everything 60db was asked to speak, over every context."""
    return [text for context in emulator.tts_contexts for text in context.texts]


async def test_plain_synthesize(server: RunningServer, emulator: Emulator) -> None:
    events = await exchange(server, [Synthesize(text="Hello there.").event()], PLAIN_END)
    kinds = types(events)
    assert kinds[0] == "audio-start" and kinds[-1] == "audio-stop"
    assert set(kinds[1:-1]) == {"audio-chunk"}
    assert events[0].data == {"rate": 16000, "width": 2, "channels": 1, "timestamp": None}
    assert all(len(e.payload or b"") <= 2048 for e in events[1:-1])  # ≤ 1024 samples
    assert heard(audio_of(events)) == "hello there."
    (context,) = emulator.tts_contexts  # one backend request, billed once
    assert context.create["voice_id"] == DEFAULT_VOICE_ID


async def test_streaming_with_has_duplicate_synthesize_speaks_once(
    server: RunningServer, emulator: Emulator
) -> None:
    chunks = ["Hello th", "ere. How are", " you today? I am", " fine, thanks."]
    events = await exchange(server, ha_streaming_tts_events(chunks), STREAM_END)
    kinds = types(events)
    assert kinds.count("audio-start") == 1 and kinds[0] == "audio-start"
    assert kinds[-2:] == ["audio-stop", "synthesize-stopped"]
    full = "".join(chunks)
    assert heard(audio_of(events)) == normalize(full)
    assert len(emulator.tts_contexts) == 1
    assert normalize(" ".join(spoken_texts(emulator))) == normalize(full)
    # Sentence by sentence, not all at the end.
    assert emulator.tts_contexts[0].flush_count == 3


async def test_first_sentence_is_spoken_while_the_llm_still_writes(
    server: RunningServer,
) -> None:
    async with asyncio.timeout(10), server.client() as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="The first sentence.").event())
        # No more text and no stop yet: the first audio must come anyway.
        first = await read_until(client, ["audio-chunk"])
        assert types(first) == ["audio-start", "audio-chunk"]
        await client.write_event(SynthesizeChunk(text=" And the second one.").event())
        await client.write_event(SynthesizeStop().event())
        rest = await read_until(client, STREAM_END)
    assert heard(audio_of(first + rest)) == "the first sentence. and the second one."


async def test_voice_by_id_name_speaker_or_language(
    server: RunningServer, emulator: Emulator
) -> None:
    for voice in (
        {"name": ARJUN},
        {"name": "arjun"},
        {"speaker": "Arjun"},  # wyoming's SynthesizeVoice would drop this one
        {"name": ARJUN, "speaker": "ignored: one speaker per 60db voice"},
        {"language": "es-ES"},
    ):
        event = Event("synthesize", {"text": "Hi.", "voice": voice})
        events = await exchange(server, [event], PLAIN_END)
        assert types(events)[-1] == "audio-stop", voice
    assert [c.create["voice_id"] for c in emulator.tts_contexts] == [ARJUN] * 4 + [LUCIA]


async def test_configured_default_voice(emulator: Emulator) -> None:
    async with running_server(emulator, voice="Lucia") as server:
        await exchange(server, [Synthesize(text="Hola.").event()], PLAIN_END)
    assert emulator.tts_contexts[0].create["voice_id"] == LUCIA


async def test_unknown_voice_is_an_error(server: RunningServer, emulator: Emulator) -> None:
    voice = SynthesizeVoice(name="no-such-voice")
    events = await exchange(server, [Synthesize(text="Hi.", voice=voice).event()], PLAIN_END)
    text, code = error_of(events)
    assert code == "unknown_voice" and "no-such-voice" in text
    assert emulator.tts_contexts == []
    stream = await exchange(server, ha_streaming_tts_events(["Hi."], voice="nope"), STREAM_END)
    assert error_of(stream)[1] == "unknown_voice"


async def test_sample_rate_and_speed_flags_reach_60db(emulator: Emulator) -> None:
    async with running_server(emulator, tts_sample_rate=24000, tts_speed=1.25) as server:
        events = await exchange(server, [Synthesize(text="Fast.").event()], PLAIN_END)
    assert events[0].data["rate"] == 24000
    assert heard(audio_of(events), 24000) == "fast."
    (context,) = emulator.tts_contexts
    assert context.sample_rate == 24000
    assert context.create["speed"] == 1.25


async def test_long_text_is_split_at_sentences(server: RunningServer, emulator: Emulator) -> None:
    sentence = "This sentence is part of a long answer. "
    text = sentence * 40  # 1,600 characters: more than one 1,000-character piece
    events = await exchange(server, [Synthesize(text=text).event()], PLAIN_END)
    assert types(events)[-1] == "audio-stop"
    (context,) = emulator.tts_contexts
    texts = context.texts  # a flush per sentence: a dropped connection resumes at one
    assert len(texts) == 40
    assert all(piece.strip().endswith(".") and len(piece) <= 1000 for piece in texts)
    assert normalize(" ".join(texts)) == normalize(text)


async def test_failure_mid_stream_is_an_error_then_the_connection_closes(
    emulator: Emulator,
) -> None:
    async with running_server(emulator, warm_connections=0) as server:
        # connecting, connection_established, context_created, one audio chunk: then drop,
        # on the first connection and on both it resumes on.
        for _ in range(3):
            emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=4))
        async with asyncio.timeout(10), server.client() as client:
            await client.write_event(Synthesize(text="A sentence long enough. " * 3).event())
            events = await read_until(client, ["error"])
            assert error_of(events)[1] == "connection_lost"
            assert await client.read_event() is None  # then closed
        # Other requests are unaffected.
        events = await exchange(server, [Synthesize(text="Fine.").event()], PLAIN_END)
        assert heard(audio_of(events)) == "fine."


async def test_stalled_60db_is_an_error_not_a_hang(emulator: Emulator) -> None:
    emulator.settings.first_chunk_latency = 30.0
    async with running_server(emulator) as server:
        events = await exchange(server, ha_streaming_tts_events(["Hello."]), STREAM_END)
    assert error_of(events)[1] == "timeout"


async def test_describe_and_ping_answer_while_a_request_waits(emulator: Emulator) -> None:
    emulator.settings.first_chunk_latency = 0.5
    async with running_server(emulator) as server, server.client() as client:
        await client.write_event(Synthesize(text="Slow.").event())
        await client.write_event(Describe().event())
        await client.write_event(Ping(text="hi").event())
        events = await read_until(client, PLAIN_END)
    kinds = types(events)
    assert kinds.index("info") < kinds.index("audio-chunk")
    assert kinds.index("pong") < kinds.index("audio-chunk")


async def test_client_vanishing_mid_stream_closes_the_60db_context(
    server: RunningServer, emulator: Emulator
) -> None:
    async with asyncio.timeout(10):
        client = server.client()
        await client.connect()
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeChunk(text="Half a sent").event())
        await eventually(lambda: emulator.tts_contexts, "the 60db context to open")
        await client.disconnect()
    connection = emulator.tts_connections[emulator.tts_contexts[0].connection]
    await eventually(lambda: connection.ended is not None, "the 60db connection to close")
    events = await exchange(server, [Synthesize(text="Next.").event()], PLAIN_END)
    assert heard(audio_of(events)) == "next."


async def test_requests_beyond_the_limit_wait_in_a_queue(emulator: Emulator) -> None:
    emulator.settings.first_chunk_latency = 0.1
    async with running_server(emulator, tts_concurrency=2) as server:
        texts = [f"Answer {word}." for word in ("one", "two", "three", "four", "five")]
        results = await asyncio.gather(
            *(exchange(server, [Synthesize(text=t).event()], PLAIN_END) for t in texts)
        )
    assert [heard(audio_of(events)) for events in results] == [normalize(t) for t in texts]


async def test_plain_requests_on_one_connection_do_not_overlap(server: RunningServer) -> None:
    async with asyncio.timeout(10), server.client() as client:
        await client.write_event(Synthesize(text="First.").event())
        await client.write_event(Synthesize(text="Second.").event())
        first = await read_until(client, PLAIN_END)
        second = await read_until(client, PLAIN_END)
    assert heard(audio_of(first)) == "first."
    assert heard(audio_of(second)) == "second."
    assert types(second)[0] == "audio-start"
