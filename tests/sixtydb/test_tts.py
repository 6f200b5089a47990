"""Streaming TTS against the emulator over real loopback sockets."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.conftest import make_client
from wyoming_60db.audio import mulaw_decode
from wyoming_60db.emulator import Emulator, Fault, tonecode
from wyoming_60db.sixtydb import (
    DEFAULT_VOICE_ID,
    MAX_TEXT_CHARS,
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionLostError,
    InsufficientCreditsError,
    InvalidRequestError,
    ProtocolError,
    SixtyDbClient,
    SixtyDbTimeoutError,
    TextTooLongError,
    TtsOptions,
    UnknownVoiceError,
    UnsupportedAudioFormatError,
)

OPTIONS = TtsOptions(voice_id=DEFAULT_VOICE_ID)


async def speak(client: SixtyDbClient, text: str, options: TtsOptions = OPTIONS) -> bytes:
    async with asyncio.timeout(10):
        return b"".join([chunk async for chunk in client.synthesize(text, options)])


def heard(pcm: bytes, rate: int = 16000) -> str:
    return tonecode.decode(np.frombuffer(pcm, dtype="<i2"), rate)


async def test_synthesize_returns_real_audio_of_the_text(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    audio = await speak(client, "Hello there.")
    assert heard(audio) == "hello there."
    (context,) = emulator.tts_contexts
    assert context.texts == ["Hello there."] and context.closed
    assert context.audio_bytes == len(audio)
    assert (context.encoding, context.sample_rate) == ("LINEAR16", 16000)


async def test_audio_length_is_proportional_to_text(client: SixtyDbClient) -> None:
    short = await speak(client, "Hi.")
    long = await speak(client, "Hi. " * 10)
    assert len(long) > 5 * len(short)


async def test_mulaw_8k(client: SixtyDbClient) -> None:
    options = TtsOptions(voice_id=DEFAULT_VOICE_ID, encoding="MULAW", sample_rate=8000)
    audio = await speak(client, "Lights on.", options)
    assert heard(mulaw_decode(audio), rate=8000) == "lights on."


@pytest.mark.parametrize("ack_style", ["object", "bool"])
@pytest.mark.parametrize("handshake", ["envelope", "typed", "both"])
async def test_ack_and_handshake_variants(
    emulator: Emulator, ack_style: str, handshake: str
) -> None:
    emulator.settings.tts_ack_style = ack_style  # type: ignore[assignment]
    emulator.settings.handshake = handshake  # type: ignore[assignment]
    emulator.settings.extra_fields = True
    async with make_client(emulator) as client:
        assert heard(await speak(client, "Okay.")) == "okay."


@pytest.mark.parametrize("error_style", ["object", "string"])
async def test_unknown_voice(emulator: Emulator, error_style: str) -> None:
    emulator.settings.tts_error_style = error_style  # type: ignore[assignment]
    async with make_client(emulator) as client:
        with pytest.raises(UnknownVoiceError):
            await speak(client, "Hello.", TtsOptions(voice_id="no-such-voice"))
        # The connection stays usable for the next request.
        assert heard(await speak(client, "Still here.")) == "still here."


async def test_one_connection_carries_request_after_request(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    for text in ("One.", "Two.", "Three."):
        assert heard(await speak(client, text)) == text.lower()
    assert emulator.stats.ws_connections["/ws/tts"] == 1


async def test_reconnects_when_server_closes_after_context(emulator: Emulator) -> None:
    emulator.settings.close_tts_after_context_closed = True
    async with make_client(emulator) as client:
        for text in ("One.", "Two.", "Three."):
            assert heard(await speak(client, text)) == text.lower()
    assert emulator.stats.ws_connections["/ws/tts"] >= 3


async def test_streaming_first_audio_before_all_text_is_sent(client: SixtyDbClient) -> None:
    async with asyncio.timeout(10), client.tts_context(OPTIONS) as context:
        await context.send_text("First sentence.")
        await context.flush()
        stream = context.audio()
        first = await anext(stream)  # audio of sentence one, sentence two not yet written
        await context.send_text(" Second one.")
        await context.flush()
        await context.close()
        rest = b"".join([chunk async for chunk in stream])
    assert heard(first + rest) == "first sentence. second one."


async def test_streaming_waits_for_slow_text_without_timing_out(emulator: Emulator) -> None:
    audio = bytearray()
    async with (
        make_client(emulator) as client,
        asyncio.timeout(10),
        client.tts_context(OPTIONS) as context,
    ):

        async def read() -> None:
            async for chunk in context.audio():
                audio.extend(chunk)

        reader = asyncio.create_task(read())
        await context.send_text("Slow.")
        await context.flush()
        await asyncio.sleep(3.5)  # longer than every client timeout: an idle LLM, not a stall
        await context.send_text(" Writer.")
        await context.flush()
        await context.close()
        await reader
    assert heard(bytes(audio)) == "slow. writer."


async def test_long_text_is_split_but_complete(client: SixtyDbClient, emulator: Emulator) -> None:
    text = " ".join(f"Sentence {i}." for i in range(200))
    audio = await speak(client, text)
    assert sum(len("".join(c.texts)) for c in emulator.tts_contexts) >= len(text) - 200
    assert all(flush > 1 for flush in [c.flush_count for c in emulator.tts_contexts])
    assert heard(audio) == tonecode.normalize(text)


async def test_over_long_text_is_refused(client: SixtyDbClient, emulator: Emulator) -> None:
    with pytest.raises(TextTooLongError):
        await speak(client, "a" * (MAX_TEXT_CHARS + 1))
    assert emulator.tts_contexts == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sample_rate": 44100}, UnsupportedAudioFormatError),
        ({"encoding": "MULAW", "sample_rate": 16000}, UnsupportedAudioFormatError),
        ({"encoding": "MP3"}, UnsupportedAudioFormatError),
        ({"speed": 3.0}, InvalidRequestError),
        ({"stability": 101}, InvalidRequestError),
    ],
)
def test_invalid_options(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        TtsOptions(voice_id=DEFAULT_VOICE_ID, **kwargs)  # type: ignore[arg-type]


async def test_check_account(client: SixtyDbClient, emulator: Emulator) -> None:
    account = await client.check_account()
    assert account.user_id == "43"
    assert account.credit_balance == pytest.approx(9.97)
    # The login connection is kept and carries the next request.
    await speak(client, "Reused.")
    assert emulator.stats.ws_connections["/ws/tts"] == 1


async def test_check_account_wrong_key_and_no_credits(emulator: Emulator) -> None:
    emulator.settings.api_key = "sk_live_someone_else"
    async with make_client(emulator) as client:
        with pytest.raises(AuthenticationError):
            await client.check_account()
    emulator.settings.api_key = None
    emulator.settings.credit_balance = 0
    async with make_client(emulator) as client:
        with pytest.raises(InsufficientCreditsError):
            await client.check_account()


async def test_server_concurrency_limit(emulator: Emulator) -> None:
    emulator.settings.tts_concurrency = 1
    async with make_client(emulator) as client, asyncio.timeout(10):
        async with client.tts_context(OPTIONS):
            with pytest.raises(ConcurrencyLimitError) as caught:
                await speak(client, "Second.")
        assert caught.value.limit == 1
        assert heard(await speak(client, "Free again.")) == "free again."


async def test_client_side_queue(emulator: Emulator) -> None:
    async with (
        make_client(emulator, tts_concurrency=1) as client,
        asyncio.timeout(10),
        client.tts_context(OPTIONS),
    ):
        with pytest.raises(ConcurrencyLimitError, match="all 1 60db TTS"):
            await speak(client, "Queued.")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(service="tts", kind="drop", after_messages=4), ConnectionLostError),
        (Fault(service="tts", kind="drop", after_messages=0), ConnectionLostError),
        (Fault(service="tts", kind="garbage", after_messages=3), ProtocolError),
        (Fault(service="tts", kind="stall", after_messages=3), SixtyDbTimeoutError),
        (Fault(service="tts", kind="stall", after_messages=1), SixtyDbTimeoutError),
    ],
)
async def test_faults(emulator: Emulator, fault: Fault, error: type[Exception]) -> None:
    emulator.inject_fault(fault)
    async with make_client(emulator) as client:
        with pytest.raises(error):
            await speak(client, "Something long enough to take several chunks. " * 3)
        # A failed request never poisons the next one.
        assert heard(await speak(client, "Recovered.")) == "recovered."


async def test_stalled_first_chunk_times_out(emulator: Emulator) -> None:
    emulator.settings.first_chunk_latency = 10
    async with make_client(emulator) as client:
        with pytest.raises(SixtyDbTimeoutError, match="first audio"):
            await speak(client, "Too slow.")
