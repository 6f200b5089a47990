"""``info`` from the cached catalog: built without I/O, answered from memory, refreshed."""

from __future__ import annotations

import asyncio

import pytest
from wyoming.info import Describe, Info

from tests.conftest import make_client
from tests.server.conftest import RunningServer, exchange
from wyoming_60db import __version__
from wyoming_60db.catalog_cache import RefreshPolicy, VoiceCatalog
from wyoming_60db.emulator import Emulator
from wyoming_60db.emulator.catalog import Voice as EmulatedVoice
from wyoming_60db.info import build_info
from wyoming_60db.sixtydb import (
    DEFAULT_VOICE_ID,
    SttLanguage,
    UnknownVoiceError,
    UnsupportedLanguageError,
    Voice,
)
from wyoming_60db.sixtydb.catalog import Catalog

ZARA = Voice(DEFAULT_VOICE_ID, "Zara", "en", "English", "female", "American", "premade")
CLONE = Voice("c1", "My voice", None, None, "male", None, "cloned")
PRIYA = Voice("p1", "Priya", "hi", "Hindi", "female", "Indian", "premade")
LANGUAGES = [SttLanguage("en", "English"), SttLanguage("hi", "Hindi")]


def info_for(configured: tuple[str, ...] = ("auto",)) -> Info:
    catalog = Catalog(
        voices=(PRIYA, ZARA, CLONE), stt_languages=tuple(LANGUAGES), default_language="de"
    )
    return build_info(catalog, configured_languages=configured, version="9.9")


def test_build_info_asr_program() -> None:
    (asr,) = info_for().asr
    assert asr.name == "60db" and asr.version == "9.9" and asr.installed
    assert asr.supports_transcript_streaming
    assert asr.attribution.name == "60db" and asr.attribution.url == "https://60db.ai"
    (model,) = asr.models
    assert model.languages == ["en", "hi"]
    assert info_for(("hi",)).asr[0].models[0].languages == ["hi"]
    assert info_for(("en", "auto")).asr[0].models[0].languages == ["en", "hi"]


def test_build_info_tts_voices_carry_id_description_and_language() -> None:
    (tts,) = info_for().tts
    assert tts.name == "60db" and tts.supports_synthesize_streaming and tts.installed
    voices = {voice.name: voice for voice in tts.voices}
    assert tts.voices[0].name == DEFAULT_VOICE_ID  # the default voice first
    assert voices[DEFAULT_VOICE_ID].description == "Zara (English, female, American)"
    assert voices[DEFAULT_VOICE_ID].languages == ["en"]
    assert voices["p1"].languages == ["hi"]
    # HA lists only installed voices, and needs a language for every one.
    assert all(voice.installed for voice in tts.voices)
    assert voices["c1"].languages == ["de"]
    assert voices["c1"].description == "My voice (male, cloned)"


async def test_describe_is_answered_from_memory(server: RunningServer, emulator: Emulator) -> None:
    before = sum(emulator.stats.rest_requests.values())
    for _ in range(3):
        events = await exchange(server, [Describe().event()], ["info"])
        info = Info.from_event(events[-1])
        assert len(info.tts[0].voices) == 8
        assert info.tts[0].version == __version__
    assert sum(emulator.stats.rest_requests.values()) == before  # no cloud call in describe


async def test_catalog_refreshes_in_the_background(emulator: Emulator) -> None:
    async with make_client(emulator) as client:
        changes: list[int] = []
        catalog = VoiceCatalog(
            client,
            policy=RefreshPolicy(interval=0.05, retry=0.05, max_retry=0.1),
            on_change=lambda: changes.append(len(catalog.current.voices)),
        )
        assert await catalog.load(2.0)
        assert changes == [8]
        emulator.settings.voices.append(
            EmulatedVoice("new-1", "Nova", "fr", "French", "female", "Parisian", "New.")
        )
        catalog.start_refreshing()
        try:
            async with asyncio.timeout(5):
                while len(catalog.current.voices) != 9:  # noqa: ASYNC110 - the refresh runs on its own
                    await asyncio.sleep(0.02)
        finally:
            await catalog.stop()
        assert changes == [8, 9]
        assert catalog.resolve_voice("Nova").voice_id == "new-1"


async def test_catalog_retries_until_60db_answers(emulator: Emulator) -> None:
    async with make_client(emulator, api_url="http://127.0.0.1:9") as offline:
        catalog = VoiceCatalog(offline, policy=RefreshPolicy(retry=0.05, max_retry=0.1))
        assert not await catalog.load(1.0)
        assert catalog.last_error is not None and catalog.last_error.code == "connection_lost"
        assert [voice.voice_id for voice in catalog.current.voices] == [DEFAULT_VOICE_ID]
        assert len(catalog.current.stt_languages) == 39


def test_resolution_before_the_catalog_loads() -> None:
    catalog = VoiceCatalog(None, default_voice="some-voice-id", default_language="hi")
    assert catalog.current.default_voice.voice_id == "some-voice-id"
    assert catalog.resolve_voice(None).voice_id == "some-voice-id"
    # Unknown ids go to 60db, which is the judge until the catalog is known.
    assert catalog.resolve_voice("other-id").voice_id == "other-id"
    assert catalog.resolve_language("hi-IN", ()) == ["hi"]
    assert catalog.resolve_language(None, ("en", "hi")) == ["en", "hi"]
    assert catalog.resolve_language(None, ("auto",)) is None
    assert catalog.resolve_language("auto", ("en",)) is None
    with pytest.raises(UnsupportedLanguageError):
        catalog.resolve_language("zh-CN", ())


async def test_unknown_voice_once_the_catalog_is_known(emulator: Emulator) -> None:
    async with make_client(emulator) as client:
        catalog = VoiceCatalog(client)
        assert await catalog.load(2.0)
    with pytest.raises(UnknownVoiceError):
        catalog.resolve_voice("missing")
    with pytest.raises(UnknownVoiceError):
        catalog.resolve_voice(None, language="ja")
    assert catalog.resolve_voice(None, language="hi").name == "Priya"
