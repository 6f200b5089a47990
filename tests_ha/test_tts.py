"""Text-to-speech through Home Assistant's own TTS helpers, batch and streamed."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncGenerator

import numpy as np
import pytest
from homeassistant.components import tts
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.components.tts.helper import get_engine_instance
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sixtydb import tts as sixtydb_tts
from custom_components.sixtydb.const import DOMAIN, TTS_SAMPLE_RATE
from custom_components.sixtydb.issues import no_credits_issue_id
from wyoming_60db.emulator import Emulator, Fault, tonecode
from wyoming_60db.emulator.tts import speakable
from wyoming_60db.sixtydb import DEFAULT_VOICE_ID, MAX_TEXT_CHARS

from .conftest import TTS_ENTITY, bounded, wait_for

ANSWER = "Hello there. How are you today? I am fine."
WAV_OPTIONS = {"preferred_format": "wav"}  # what the entity makes: no ffmpeg conversion


def _entity(hass: HomeAssistant) -> sixtydb_tts.SixtyDbTtsEntity:
    entity = get_engine_instance(hass, TTS_ENTITY)
    assert isinstance(entity, sixtydb_tts.SixtyDbTtsEntity)
    return entity


def _heard(wav_bytes: bytes) -> str:
    """What the emulator's tone code says the WAV contains."""
    # A streamed WAV says 0 frames (unknown length): read the PCM after the header.
    with wave.open(io.BytesIO(wav_bytes)) as reader:
        rate, width, channels = reader.getframerate(), reader.getsampwidth(), reader.getnchannels()
    assert (rate, width, channels) == (TTS_SAMPLE_RATE, 2, 1)
    pcm = wav_bytes[44:]
    return tonecode.decode(np.frombuffer(pcm, dtype="<i2"), rate)


async def _collect(stream: AsyncGenerator[bytes, None]) -> bytes:
    return b"".join([chunk async for chunk in stream])


async def test_catalog_languages_and_voices(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """Languages and voices come from the cached catalog, the default voice first."""
    entity = _entity(hass)
    assert {"en", "hi", "es", "fr"} <= set(entity.supported_languages)
    assert entity.default_language == "en"
    english = entity.async_get_supported_voices("en")
    assert english is not None
    assert english[0].voice_id == DEFAULT_VOICE_ID
    assert english[0].name.startswith("Zara (")
    assert entity.async_get_supported_voices("en-US") == english
    hindi = [voice.name.split(" (")[0] for voice in entity.async_get_supported_voices("hi") or []]
    assert {"Priya", "Kabir"} <= set(hindi)
    assert entity.async_get_supported_voices("xx") is None
    assert set(entity.supported_options) == {"voice", "speed", "stability", "similarity"}


async def test_batch_through_home_assistant(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A whole message through HA's result stream comes back as one WAV."""
    stream = tts.async_create_stream(hass, TTS_ENTITY, "en", dict(WAV_OPTIONS))
    stream.async_set_message(ANSWER)
    data = await bounded(_collect(stream.async_stream_result()))
    assert data[:4] == b"RIFF"
    assert _heard(data) == tonecode.normalize(ANSWER)
    context = emulator.tts_contexts[-1]
    assert context.create["voice_id"] == DEFAULT_VOICE_ID
    assert (context.encoding, context.sample_rate) == ("LINEAR16", TTS_SAMPLE_RATE)


async def test_async_get_tts_audio_returns_a_wav_file(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The non-streaming entity API returns a complete WAV with the voice settings applied."""
    extension, data = await bounded(
        _entity(hass).async_get_tts_audio(
            ANSWER, "hi", {"voice": "Kabir", "speed": "1.5", "stability": 20}
        )
    )
    assert extension == "wav"
    assert data is not None
    with wave.open(io.BytesIO(data)) as reader:
        assert reader.getnframes() == (len(data) - 44) // 2  # a real length, not 0
    assert _heard(data) == tonecode.normalize(ANSWER)
    create = emulator.tts_contexts[-1].create
    assert create["voice_id"] == "7a1b2c3d-4e5f-4061-8293-a4b5c6d7e803"  # Kabir
    assert (create["speed"], create["stability"], create["similarity"]) == (1.5, 20.0, 75.0)


async def test_streaming_speaks_before_the_text_is_complete(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The first audio is yielded while message_gen is still producing text."""
    first_audio = asyncio.Event()
    exhausted = False

    async def message_gen() -> AsyncGenerator[str, None]:
        nonlocal exhausted
        # LLM deltas end anywhere, not on sentence boundaries.
        for delta in ("Hello th", "ere. How are", " you"):
            yield delta
        # Wait (bounded) for audio of the first sentence before writing more.
        # If the entity waited for the whole text, the test fails after 5 s.
        try:
            async with asyncio.timeout(5):
                await first_audio.wait()
        except TimeoutError:
            pass
        for delta in (" today? I am", " fine."):
            yield delta
        exhausted = True

    if hasattr(tts.ResultStream, "async_set_message_stream"):  # HA 2025.7+
        stream = tts.async_create_stream(hass, TTS_ENTITY, "en", dict(WAV_OPTIONS))
        stream.async_set_message_stream(message_gen())
        audio = stream.async_stream_result()
    else:  # 2025.4: HA's streaming entry point on the entity itself
        response = await _entity(hass).internal_async_stream_tts_audio(
            TTSAudioRequest("en", {}, message_gen())
        )
        assert response.extension == "wav"
        audio = response.data_gen

    data = b""
    audio_before_end = None
    async with asyncio.timeout(20):
        async for chunk in audio:
            data += chunk
            if audio_before_end is None and len(data) > 44:  # PCM after the WAV header
                audio_before_end = not exhausted
                first_audio.set()
    assert audio_before_end is True, "no audio before message_gen was exhausted"
    assert exhausted
    assert _heard(data) == tonecode.normalize(ANSWER)
    # One context, one flush per sentence as it completed.
    context = emulator.tts_contexts[-1]
    # (A trailing space keeps the last word of a flush apart from the next one's.)
    assert [text.strip() for text in context.texts] == [
        "Hello there.",
        "How are you today?",
        "I am fine.",
    ]
    assert context.flush_count == 3


@pytest.mark.parametrize(
    ("language", "options", "key"),
    [
        ("en", {"voice": "Nobody"}, "unknown_voice"),
        ("xx", {}, "unsupported_language"),
        ("en", {"speed": "fast"}, "invalid_option"),
        ("en", {"speed": 5}, "invalid_request"),
    ],
)
async def test_bad_requests_raise_translated_errors(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    language: str,
    options: dict[str, object],
    key: str,
) -> None:
    """Unknown voices, languages and settings fail with a translation key, before 60db."""
    entity = _entity(hass)
    with pytest.raises(HomeAssistantError) as raised:
        await entity.async_get_tts_audio("Hi.", language, options)
    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == key
    message = str(raised.value)  # rendered from translations/en.json
    assert message != key
    assert "{" not in message
    with pytest.raises(HomeAssistantError) as raised:
        await entity.async_stream_tts_audio(TTSAudioRequest(language, options, _text("Hi.")))
    assert raised.value.translation_key == key


async def _text(*parts: str) -> AsyncGenerator[str, None]:
    for part in parts:
        yield part


async def test_text_too_long(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    """Over-long text is refused without a request."""
    with pytest.raises(HomeAssistantError) as raised:
        await _entity(hass).async_get_tts_audio("a" * (MAX_TEXT_CHARS + 1), "en", {})
    assert raised.value.translation_key == "text_too_long"


async def test_streamed_text_too_long_for_one_context(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """A streamed answer beyond 60db's per-context limit ends with text_too_long."""
    response = await _entity(hass).async_stream_tts_audio(
        TTSAudioRequest("en", {}, _text("Short. ", "b" * 50_001, " end."))
    )
    with pytest.raises(HomeAssistantError) as raised:
        await bounded(_collect(response.data_gen))
    assert raised.value.translation_key == "text_too_long"


@pytest.mark.parametrize("streamed", [False, True])
async def test_no_credits_raises_and_reports(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator, streamed: bool
) -> None:
    """A 60db error becomes a translated HomeAssistantError; credits also a repair issue."""
    setup_entry = cold_entry
    issues = ir.async_get(hass)
    emulator.settings.credit_balance = 0
    entity = _entity(hass)
    with pytest.raises(HomeAssistantError) as raised:
        if streamed:
            response = await entity.async_stream_tts_audio(TTSAudioRequest("en", {}, _text("Hi.")))
            await bounded(_collect(response.data_gen))
        else:
            await bounded(entity.async_get_tts_audio("Hi.", "en", {}))
    assert raised.value.translation_key == "insufficient_credits"
    assert issues.async_get_issue(DOMAIN, no_credits_issue_id(setup_entry)) is not None

    emulator.settings.credit_balance = 2.0
    _, data = await bounded(entity.async_get_tts_audio("Hi.", "en", {}))
    assert _heard(data or b"") == "hi."
    assert issues.async_get_issue(DOMAIN, no_credits_issue_id(setup_entry)) is None
    # Without a warm pool the client closes the used connection in the background;
    # let it finish before the unload (see the report on WarmPool.aclose).
    await wait_for(lambda: emulator.open_connections == 0, "used connection closed")


async def test_dropped_connection_mid_stream(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A connection that keeps dropping ends the stream with connection_lost, not a hang."""
    for _ in range(3):  # the first connection and both the answer is resumed on
        emulator.inject_fault(Fault(service="tts", kind="drop", after_messages=4))
    response = await _entity(hass).async_stream_tts_audio(TTSAudioRequest("en", {}, _text(ANSWER)))
    with pytest.raises(HomeAssistantError) as raised:
        await bounded(_collect(response.data_gen))
    assert raised.value.translation_key == "connection_lost"


async def test_concurrency_limit(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """60db's per-account limit is reported as concurrency_limit with the limit."""
    emulator.settings.tts_concurrency = 1
    entity = _entity(hass)
    release = asyncio.Event()

    async def held() -> AsyncGenerator[str, None]:
        yield "Wait. Then"  # "Then" confirms the sentence "Wait." has ended
        async with asyncio.timeout(10):
            await release.wait()

    first = await entity.async_stream_tts_audio(TTSAudioRequest("en", {}, held()))
    first_audio = first.data_gen
    assert await bounded(anext(first_audio))  # header; the context is open now
    assert await bounded(anext(first_audio))  # audio of "Wait."
    try:
        with pytest.raises(HomeAssistantError) as raised:
            await bounded(entity.async_get_tts_audio("Hi.", "en", {}))
        assert raised.value.translation_key == "concurrency_limit"
        assert "1" in raised.value.translation_placeholders["limit"]
    finally:
        release.set()
        await bounded(_collect(first_audio))


async def test_text_that_goes_quiet_ends_the_stream(
    hass: HomeAssistant, impatient_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A message_gen silent for tts_text_idle: what was said is heard, then a translated error.

    The TTS slot and the 60db context are given back.
    """
    client = impatient_entry.runtime_data.client
    never = asyncio.Event()

    async def stalls() -> AsyncGenerator[str, None]:
        yield "Hello there. How"
        await never.wait()  # a language model that hangs
        yield " are you?"  # pragma: no cover

    response = await _entity(hass).async_stream_tts_audio(TTSAudioRequest("en", {}, stalls()))
    received: list[bytes] = []

    async def listen() -> None:
        async for chunk in response.data_gen:
            received.append(chunk)

    with pytest.raises(HomeAssistantError) as raised:
        await bounded(listen())
    data = b"".join(received)
    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == "text_idle_timeout"
    assert str(raised.value).startswith("No text to speak arrived for 0.5 s, so the 60db")
    assert _heard(data) == "hello there."
    await wait_for(lambda: client.free_slots("tts") == 5, "TTS slot given back")
    await wait_for(lambda: emulator.tts_contexts[-1].closed, "60db context closed")


async def test_first_sentence_is_flushed_when_its_punctuation_arrives(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The first sentence goes to 60db at its final ".", not when the LLM's next delta comes."""
    flushed_before_more_text = False

    async def message_gen() -> AsyncGenerator[str, None]:
        nonlocal flushed_before_more_text
        yield "Turn on the lights."
        try:  # the next delta only once 60db has been asked to speak the first sentence
            await wait_for(
                lambda: bool(emulator.tts_contexts) and emulator.tts_contexts[-1].flush_count > 0,
                "the first sentence flushed",
                timeout=3,
            )
            flushed_before_more_text = True
        except TimeoutError:
            pass
        yield " Done."

    response = await _entity(hass).async_stream_tts_audio(TTSAudioRequest("en", {}, message_gen()))
    data = await bounded(_collect(response.data_gen))
    assert flushed_before_more_text, "the first sentence waited for the next delta"
    assert _heard(data) == tonecode.normalize("Turn on the lights. Done.")
    context = emulator.tts_contexts[-1]
    assert [text.strip() for text in context.texts] == ["Turn on the lights.", "Done."]


async def test_a_failing_message_gen_ends_the_audio_with_its_error(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The conversation agent fails mid-answer: what was flushed is heard, then its error."""

    async def fails() -> AsyncGenerator[str, None]:
        yield "Hello there. How"
        raise LookupError("the conversation agent failed")

    response = await _entity(hass).async_stream_tts_audio(TTSAudioRequest("en", {}, fails()))
    received: list[bytes] = []

    async def listen() -> None:
        async for chunk in response.data_gen:
            received.append(chunk)

    with pytest.raises(LookupError, match="conversation agent"):
        await bounded(listen())
    assert _heard(b"".join(received)) == "hello there."
    client = setup_entry.runtime_data.client
    await wait_for(lambda: client.free_slots("tts") == 5, "TTS slot given back")
    await wait_for(lambda: emulator.tts_contexts[-1].closed, "60db context closed")


# --- a dropped 60db connection is resumed mid-answer

FLUSHED = ["Hello there. ", "How are you today? ", "I am fine. "]  # ANSWER, flush by flush


def _pcm_bytes(text: str, emulator: Emulator) -> int:
    """Audio bytes the emulator renders for one flush of ``text``."""
    seconds = emulator.settings.tts_seconds_per_char
    return len(tonecode.encode_symbols(speakable(text), TTS_SAMPLE_RATE, seconds)) * 2


def _mid_sentence_two(emulator: Emulator) -> int:
    """Messages on a TTS connection until half of the second sentence's audio is sent."""
    size = emulator.settings.tts_chunk_bytes
    first, second = (-(-_pcm_bytes(text, emulator) // size) for text in FLUSHED[:2])
    # connecting, connection_established, context_created; flush_completed.
    return 3 + first + 1 + second // 2


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_dropped_connection_is_resumed_mid_answer(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator, streamed: bool
) -> None:
    """The whole answer, the broken sentence resumed, nothing heard twice."""
    emulator.inject_fault(
        Fault(service="tts", kind="drop", after_messages=_mid_sentence_two(emulator))
    )
    entity = _entity(hass)
    if streamed:
        deltas = _text("Hello th", "ere. How are", " you today? I am", " fine.")
        response = await entity.async_stream_tts_audio(TTSAudioRequest("en", {}, deltas))
        data = await bounded(_collect(response.data_gen))
    else:
        _, wav = await bounded(entity.async_get_tts_audio(ANSWER, "en", {}))
        data = wav or b""
    assert _heard(data) == tonecode.normalize(ANSWER)
    _broken, resumed = emulator.tts_contexts
    assert resumed.texts == FLUSHED[1:]
    assert len(data) - 44 == sum(_pcm_bytes(text, emulator) for text in FLUSHED)
    client = cold_entry.runtime_data.client
    await wait_for(lambda: client.free_slots("tts") == 5, "TTS slots given back")
    await wait_for(lambda: emulator.open_connections == 0, "used connections closed")
