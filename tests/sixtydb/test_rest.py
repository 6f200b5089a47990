"""Catalog and health over REST against the emulator."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import TEST_KEY, make_client
from wyoming_60db.emulator import Emulator, Fault
from wyoming_60db.sixtydb import (
    DEFAULT_VOICE_ID,
    AuthenticationError,
    ClientConfig,
    ConcurrencyLimitError,
    ConnectionLostError,
    InsufficientCreditsError,
    ProtocolError,
    RateLimitError,
    ServerError,
    SixtyDbClient,
    SixtyDbTimeoutError,
    Timeouts,
    UnknownVoiceError,
)
from wyoming_60db.sixtydb.rest import RestApi


@pytest.mark.parametrize("shape", ["split", "flat", "top_level"])
async def test_voices_in_every_shape(emulator: Emulator, shape: str) -> None:
    emulator.settings.voices_shape = shape  # type: ignore[assignment]
    async with make_client(emulator) as client:
        voices = await client.fetch_voices()
    by_id = {voice.voice_id: voice for voice in voices}
    assert len(by_id) == len(emulator.settings.voices)
    zara = by_id[DEFAULT_VOICE_ID]
    assert (zara.name, zara.language, zara.gender) == ("Zara", "en", "female")
    assert any(voice.is_cloned for voice in voices)


@pytest.mark.parametrize("shape", ["skill", "node", "list"])
async def test_stt_languages_in_every_shape(emulator: Emulator, shape: str) -> None:
    emulator.settings.languages_shape = shape  # type: ignore[assignment]
    async with make_client(emulator) as client:
        languages = await client.fetch_stt_languages()
    codes = [language.code for language in languages]
    assert len(codes) == 39 and "auto" not in codes and "en" in codes
    assert {lang.code: lang.name for lang in languages}["hi"] == "Hindi"


async def test_health(client: SixtyDbClient) -> None:
    assert await client.health() is True


async def test_wrong_key_is_an_auth_error_without_the_key(emulator: Emulator) -> None:
    emulator.settings.api_key = "sk_live_different"
    async with make_client(emulator) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.fetch_voices()
    assert TEST_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "error"),
    [("error", ServerError), ("garbage", ProtocolError), ("stall", SixtyDbTimeoutError)],
)
async def test_rest_faults(emulator: Emulator, kind: str, error: type[Exception]) -> None:
    emulator.inject_fault(Fault(service="any", kind=kind))  # type: ignore[arg-type]
    async with make_client(emulator) as client, asyncio.timeout(10):
        with pytest.raises(error):
            await client.fetch_stt_languages()


async def test_unreachable_host() -> None:
    config = ClientConfig(
        api_key=TEST_KEY, api_url="http://127.0.0.1:9", timeouts=Timeouts(connect=2, rest=2)
    )
    async with SixtyDbClient(config) as client, asyncio.timeout(10):
        assert await client.health() is False
        with pytest.raises(ConnectionLostError) as caught:
            await client.fetch_voices()
        assert TEST_KEY not in str(caught.value)
        with pytest.raises(ConnectionLostError):
            await client.check_account()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, b'{"success": false, "error": "Unauthorized"}', AuthenticationError),
        (402, b'{"message": "Insufficient wallet balance"}', InsufficientCreditsError),
        (429, b'{"error_code": "STT_CONCURRENCY_LIMIT", "details": {"limit": 8}}',
         ConcurrencyLimitError),
        (429, b'{"message": "Too many requests"}', RateLimitError),
        (503, b"<html>upstream down</html>", ServerError),
        (404, b'{"message": "Voice not found"}', UnknownVoiceError),
        (400, b'["odd"]', ServerError),
    ],
)  # fmt: skip
def test_http_status_errors(status: int, body: bytes, error: type[Exception]) -> None:
    # 60db's documented REST statuses (§5.1) that the emulator's catalog never returns.
    config = ClientConfig(api_key=TEST_KEY)
    api = RestApi(None, config)  # type: ignore[arg-type]  # the session is not used
    assert type(api._status_error(status, body)) is error
