"""Streaming STT against the emulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from tests.conftest import TEST_KEY, make_client
from wyoming_60db.audio import mulaw_encode
from wyoming_60db.emulator import Emulator, Fault, SttRecord, tonecode
from wyoming_60db.sixtydb import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionLostError,
    InsufficientCreditsError,
    ProtocolError,
    ServerError,
    SixtyDbClient,
    SixtyDbTimeoutError,
    SttOptions,
    SttResult,
    UnsupportedAudioFormatError,
    UnsupportedLanguageError,
)

PHRASE = "turn on the kitchen lights"


def speech(text: str, rate: int = 16000, silence: float = 0.3) -> bytes:
    """Tone-coded "speech" the emulator transcribes back, padded with silence."""
    pad = np.zeros(int(rate * silence), dtype=np.int16)
    return np.concatenate([pad, tonecode.encode(text, rate), pad]).astype("<i2").tobytes()


def started(emulator: Emulator) -> list[SttRecord]:
    """Sessions that got a ``start``: the pool also keeps an unused one warm."""
    return [record for record in emulator.stt_sessions if record.start is not None]


def chunks(audio: bytes, size: int) -> list[bytes]:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


async def transcribe(
    client: SixtyDbClient, audio: bytes, options: SttOptions | None = None, frame: int = 1920
) -> SttResult:
    async with asyncio.timeout(10), client.stt_session(options or SttOptions()) as session:
        for chunk in chunks(audio, frame):
            await session.send_audio(chunk)
        return await session.stop()


async def test_linear_json_frames_arrive_intact(client: SixtyDbClient, emulator: Emulator) -> None:
    audio = speech(PHRASE)
    result = await transcribe(client, audio, SttOptions(languages=["en"]))
    assert result.text == PHRASE
    assert result.language == "en"
    (record,) = started(emulator)
    assert bytes(record.audio) == audio
    assert (record.json_frames, record.binary_frames) == (len(chunks(audio, 1920)), 0)
    assert record.start is not None and record.start["languages"] == ["en"]


async def test_mulaw_binary_frames_telephony_mode(
    client: SixtyDbClient, emulator: Emulator
) -> None:
    audio = mulaw_encode(speech(PHRASE, rate=8000))
    options = SttOptions(encoding="mulaw", sample_rate=8000)
    result = await transcribe(client, audio, options, frame=480)
    assert result.text == PHRASE
    (record,) = started(emulator)
    assert bytes(record.audio) == audio
    assert record.binary_frames == len(chunks(audio, 480)) and record.json_frames == 0


@pytest.mark.parametrize("handshake", ["envelope", "typed", "both"])
@pytest.mark.parametrize("connected", ["after_start", "before_established", "omitted"])
async def test_every_handshake_variant(emulator: Emulator, handshake: str, connected: str) -> None:
    emulator.settings.handshake = handshake  # type: ignore[assignment]
    emulator.settings.stt_connected = connected  # type: ignore[assignment]
    emulator.settings.extra_fields = True
    async with make_client(emulator) as client:
        result = await transcribe(client, speech("hello"))
    assert result.text == "hello"


async def test_audio_before_ready_is_buffered_not_lost(emulator: Emulator) -> None:
    emulator.settings.connect_latency = 0.2
    audio = speech(PHRASE)
    async with make_client(emulator) as client:
        result = await transcribe(client, audio)
    assert result.text == PHRASE
    assert bytes(started(emulator)[0].audio) == audio


async def test_auto_detect_sends_null_languages(client: SixtyDbClient, emulator: Emulator) -> None:
    emulator.settings.detected_language = "de"
    result = await transcribe(client, speech("guten tag"), SttOptions(languages=["auto"]))
    assert result.text == "guten tag"
    assert result.language == "de"
    assert started(emulator)[0].start["languages"] is None  # type: ignore[index]


async def test_interim_results_stream_before_the_final(client: SixtyDbClient) -> None:
    updates = []
    async with (
        asyncio.timeout(10),
        client.stt_session(SttOptions(interim_results_ms=300)) as session,
    ):
        for chunk in chunks(speech("this is a longer sentence to hear"), 1920):
            await session.send_audio(chunk)
        result = await session.stop()
        updates = [update async for update in session.transcripts()]
    partials = [u for u in updates if not u.is_final]
    assert partials, "interim results were asked for"
    assert updates[-1].is_canonical and updates[-1].text == result.text
    assert "this is a longer sentence to hear".startswith(partials[0].text.strip())


async def test_two_phase_final_with_context_counts_once(client: SixtyDbClient) -> None:
    options = SttOptions(context={"text": "smart home", "terms": ["kitchen"]})
    result = await transcribe(client, speech(PHRASE), options)
    assert result.text == PHRASE
    first_emits = [u for u in result.utterances if u.is_final and not u.speech_final]
    assert len(first_emits) == 1 and len(result.utterances) == 2


async def test_two_utterances_are_joined(client: SixtyDbClient) -> None:
    audio = speech("first part", silence=0.8) + speech("second part", silence=0.8)
    result = await transcribe(client, audio, SttOptions(utterance_end_ms=500))
    assert result.text == "first part second part"


@pytest.mark.parametrize("empty_final", [True, False])
async def test_silence_gives_empty_text(emulator: Emulator, empty_final: bool) -> None:
    emulator.settings.stt_empty_final_on_silence = empty_final
    async with make_client(emulator) as client:
        result = await transcribe(client, bytes(32000))
    assert result.text == ""


async def test_billing_summary_reflects_audio_sent(client: SixtyDbClient) -> None:
    audio = speech(PHRASE)
    result = await transcribe(client, audio)
    assert result.billing is not None
    assert result.billing.total_duration_seconds == pytest.approx(len(audio) / 32000, abs=0.01)
    assert result.billing.total_cost is not None and result.billing.total_cost > 0


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sample_rate": 11025}, UnsupportedAudioFormatError),
        ({"encoding": "mulaw", "sample_rate": 16000}, UnsupportedAudioFormatError),
        ({"encoding": "flac"}, UnsupportedAudioFormatError),
        ({"languages": ["en", "de", "fr", "es", "it", "pt"]}, UnsupportedLanguageError),
    ],
)
def test_invalid_options_fail_before_any_network(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        SttOptions(**kwargs)  # type: ignore[arg-type]


async def test_unsupported_language_is_reported(client: SixtyDbClient) -> None:
    with pytest.raises(UnsupportedLanguageError) as caught:
        await transcribe(client, speech("konnichiwa"), SttOptions(languages=["ja"]))
    assert "ja" in str(caught.value)


async def test_wrong_key(emulator: Emulator) -> None:
    emulator.settings.api_key = "sk_live_the_right_one"
    async with make_client(emulator) as client:
        with pytest.raises(AuthenticationError):
            await transcribe(client, speech("hello"))


@pytest.mark.parametrize("error_frame", [True, False])
async def test_no_credits(emulator: Emulator, error_frame: bool) -> None:
    emulator.settings.credit_balance = 0
    emulator.settings.credits_error_frame = error_frame
    async with make_client(emulator) as client:
        with pytest.raises(InsufficientCreditsError):
            await transcribe(client, speech("hello"))


async def test_server_concurrency_limit(emulator: Emulator) -> None:
    emulator.settings.stt_concurrency = 1
    async with make_client(emulator) as client, asyncio.timeout(10):
        first = client.stt_session(SttOptions())
        await first.__aenter__()
        await first.send_audio(speech("one"))
        await asyncio.sleep(0.1)  # let the first session start on the server
        with pytest.raises(ConcurrencyLimitError) as caught:
            await transcribe(client, speech("two"))
        assert caught.value.limit == 1
        assert (await first.stop()).text == "one"
        await first.aclose()


async def test_client_queues_then_refuses_beyond_its_limit(emulator: Emulator) -> None:
    async with make_client(emulator, stt_concurrency=1) as client, asyncio.timeout(10):
        async with client.stt_session(SttOptions()) as first:
            await first.send_audio(speech("one"))
            with pytest.raises(ConcurrencyLimitError, match="all 1 60db STT"):
                await transcribe(client, speech("two"))
            await first.stop()
        # The slot is free again once the first session is closed.
        assert (await transcribe(client, speech("three"))).text == "three"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(service="stt", kind="drop", after_messages=3), ConnectionLostError),
        (Fault(service="stt", kind="drop", after_audio_bytes=4000), ConnectionLostError),
        (Fault(service="stt", kind="garbage", after_messages=3), ProtocolError),
        (Fault(service="stt", kind="error", after_messages=3, message="Audio processing error"),
         ServerError),
        (Fault(service="stt", kind="stall", after_messages=3), SixtyDbTimeoutError),
        (Fault(service="stt", kind="stall", after_messages=0), SixtyDbTimeoutError),
    ],
)  # fmt: skip
async def test_faults_give_typed_errors_not_hangs(
    emulator: Emulator, fault: Fault, error: type[Exception]
) -> None:
    emulator.inject_fault(fault)
    async with make_client(emulator) as client:
        with pytest.raises(error):
            await transcribe(client, speech(PHRASE))


async def test_send_after_failure_raises(emulator: Emulator) -> None:
    emulator.inject_fault(Fault(service="stt", kind="error", after_messages=0))
    async with make_client(emulator) as client, asyncio.timeout(5):
        session = client.stt_session(SttOptions())
        async with session:
            while session.error is None:  # noqa: ASYNC110 - polling a plain attribute
                await asyncio.sleep(0.01)
            with pytest.raises(ServerError):
                await session.send_audio(bytes(640))


async def test_prewarmed_connection_is_used_and_replaced(emulator: Emulator) -> None:
    async with make_client(emulator) as client, asyncio.timeout(10):
        client.prewarm()
        while client._stt_pool.idle_count < 1:  # noqa: ASYNC110 - polling a plain counter
            await asyncio.sleep(0.01)
        opened = emulator.stats.ws_connections["/ws/stt"]
        emulator.settings.connect_latency = 5  # a new connection would now time out
        result = await transcribe(client, speech("warm"))
        assert result.text == "warm"
        assert emulator.stats.ws_connections["/ws/stt"] >= opened


async def test_key_never_in_errors_or_logs(
    emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.settings.api_key = "sk_live_other"
    async with make_client(emulator) as client:
        with pytest.raises(AuthenticationError) as caught:
            await transcribe(client, speech("x"))
    assert TEST_KEY not in str(caught.value)
    assert TEST_KEY not in repr(client) and TEST_KEY not in repr(client.config)
    assert TEST_KEY not in caplog.text


async def test_short_intervals_are_clamped_for_servers_that_reject_them(emulator: Emulator) -> None:
    emulator.settings.stt_utterance_end_below_min = "reject"  # §9.5
    async with make_client(emulator) as client:
        options = SttOptions(utterance_end_ms=100, interim_results_ms=50)
        result = await transcribe(client, speech("hello"), options)
    assert result.text == "hello"
    assert started(emulator)[0].config["utterance_end_ms"] == 300  # type: ignore[index]


async def test_unrequested_interims_and_binary_mulaw_servers(emulator: Emulator) -> None:
    emulator.settings.stt_default_interim_ms = 300  # §9.24: interims on by default
    emulator.settings.stt_binary_encoding = "mulaw"  # §9.3: binary is always μ-law
    async with make_client(emulator) as client:
        result = await transcribe(client, speech(PHRASE))
    assert result.text == PHRASE
    assert any(not u.is_final for u in result.utterances)


async def test_closing_mid_flush_leaves_no_task_behind(emulator: Emulator) -> None:
    """Audio buffered during the login is flushed by a task; aclose() ends it too."""
    emulator.settings.connect_latency = 0.2
    emulator.settings.close_delay = 0.1
    async with make_client(emulator) as client:
        session = client.stt_session(SttOptions(languages=["en"]))
        session.start()
        for chunk in chunks(speech(PHRASE), 320):
            await session.send_audio(chunk)  # all buffered: 60db is not ready yet
        async with asyncio.timeout(5):
            while session._flush_task is None:  # noqa: ASYNC110 - set when 60db is ready
                await asyncio.sleep(0.005)
        await session.aclose()
        assert session._flush_task.done()
        assert session._task is not None and session._task.done()
        assert client.free_slots("stt") == 8
