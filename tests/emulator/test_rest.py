"""Catalog REST endpoints, their shapes (§5.5, §5.6, §9.15, §9.17) and auth (§1.3)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from wyoming_60db.emulator import DEFAULT_VOICE_ID, Emulator, Voice
from wyoming_60db.emulator.catalog import STT_LANGUAGES
from wyoming_60db.sixtydb.catalog import DOCUMENTED_STT_LANGUAGES

from .wsutil import KEY, create_msg, recv_json, tts_session

AUTH = {"Authorization": f"Bearer {KEY}"}
# §2.8, in the documented order: 25 European, 13 Indic, Arabic
STT_CODES = [
    "en", "es", "fr", "de", "it", "pt", "nl", "pl", "ru", "uk", "cs", "sv", "bg", "da", "el",
    "et", "fi", "hr", "hu", "lt", "lv", "mt", "ro", "sk", "sl",
    "hi", "bn", "mr", "pa", "gu", "or", "as", "ne", "te", "kn", "ta", "ml", "sa",
    "ar",
]  # fmt: skip


async def get_json(
    http: aiohttp.ClientSession,
    emu: Emulator,
    path: str,
    headers: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    async with http.get(emu.base_url + path, headers=AUTH if headers is None else headers) as r:
        assert r.status == status
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert r.headers[header].isdigit()
        return await r.json()


@pytest.mark.parametrize("path", ["/voices", "/get-voices"])
async def test_voices_split(emu: Emulator, http: aiohttp.ClientSession, path: str) -> None:
    body = await get_json(http, emu, path)
    assert body["success"] is True
    assert body["message"] == "Voices fetched successfully"
    built_in = body["data"]["built_in_voices"]
    cloned = body["data"]["cloned_voices"]
    assert len(built_in) >= 7
    assert len(cloned) == 1
    zara = next(v for v in built_in if v["voice_id"] == DEFAULT_VOICE_ID)
    assert zara["name"] == "Zara"
    assert zara["labels"] == {
        "language": "en",
        "language_name": "English",
        "gender": "female",
        "accent": "American",
    }
    assert zara["preview_url"] == f"/voices/audio/{DEFAULT_VOICE_ID}"
    for key in (
        "category",
        "model",
        "description",
        "reference_text",
        "is_native",
        "available_for_tiers",
        "categories",
    ):
        assert key in zara
    assert {v["labels"]["language"] for v in built_in} >= {"en", "hi", "es", "fr", "de"}
    assert cloned[0]["category"] == "cloned"


async def test_voices_flat_and_top_level(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.voices_shape = "flat"
    flat = (await get_json(http, emu, "/voices"))["data"]
    assert isinstance(flat, list)
    assert len(flat) == len(emu.settings.voices)
    assert "labels" in flat[0]
    emu.settings.voices_shape = "top_level"
    top = (await get_json(http, emu, "/voices"))["data"]
    assert top[0]["language"] == "en"
    assert top[0]["gender"] == "female"
    assert top[0]["language_name"] == "English"
    assert "labels" not in top[0]


async def test_my_voices(emu: Emulator, http: aiohttp.ClientSession) -> None:
    body = await get_json(http, emu, "/myvoices")
    assert body["message"] == "User voices fetched successfully"
    assert [v["voice_id"] for v in body["data"]] == ["7c32dd99-d61d-493b-9601-37e9464be6f4"]


async def test_custom_voice_catalog_drives_tts(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.voices = [Voice("v-1", "Solo", "en", "English", "male", "British", "only one")]
    body = await get_json(http, emu, "/voices")
    assert [v["name"] for v in body["data"]["built_in_voices"]] == ["Solo"]
    ws = await tts_session(http, emu)
    await ws.send_json(create_msg("a", voice_id=DEFAULT_VOICE_ID))
    assert (await recv_json(ws))["error"]["code"] == "voice_not_found"
    await ws.send_json(create_msg("b", voice_id="v-1"))
    assert "context_created" in await recv_json(ws)
    await ws.close()


async def test_languages_skill_shape(emu: Emulator, http: aiohttp.ClientSession) -> None:
    body = await get_json(http, emu, "/stt/languages")
    languages = body["data"]["languages"]
    assert languages[0] == {"code": "auto", "name": "Auto-detect"}
    assert [lang["code"] for lang in languages[1:]] == STT_CODES
    assert body["data"]["total"] == 40
    assert isinstance(body["data"]["features"], dict)
    english = languages[1]
    assert english == {
        "code": "en",
        "name": "English",
        "native": "English",
        "code_switching": False,
    }
    hindi = next(lang for lang in languages if lang["code"] == "hi")
    assert hindi["code_switching"] is True
    assert all(lang["name"] and lang["name"] != lang["code"] for lang in languages)


async def test_languages_node_and_list_shapes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.languages_shape = "node"
    node = await get_json(http, emu, "/stt/languages")
    assert node["success"] is True
    assert node["data"][0] == {"language_id": "en", "name": "English"}
    assert len(node["data"]) == 39
    emu.settings.languages_shape = "list"
    bare = await get_json(http, emu, "/stt/languages")
    assert isinstance(bare, list)
    assert bare[-1] == {"code": "ar", "name": "Arabic"}
    assert len(bare) == 39


async def test_stt_models(emu: Emulator, http: aiohttp.ClientSession) -> None:
    body = await get_json(http, emu, "/stt/models")
    (model,) = body["data"]
    assert model["id"] == "60db-stt-v01"
    assert model["languages"] == 39
    assert "telephony_mulaw" in model["features"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Token {KEY}"}]
)
async def test_unauthorized(
    emu: Emulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    body = await get_json(http, emu, "/voices", headers=headers, status=401)
    assert body == {"success": False, "error": "Unauthorized", "message": "Invalid API key"}


async def test_fixed_key_rest(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.api_key = "sk_live_fixed"
    await get_json(http, emu, "/stt/models", status=401)
    await get_json(http, emu, "/stt/models", {"Authorization": "Bearer sk_live_fixed"})
    assert emu.stats.rest_requests["/stt/models"] == 2


async def test_rate_limit_remaining_decreases(emu: Emulator, http: aiohttp.ClientSession) -> None:
    remaining = []
    for _ in range(3):
        async with http.get(emu.base_url + "/stt/models", headers=AUTH) as r:
            remaining.append(int(r.headers["X-RateLimit-Remaining"]))
    assert remaining[0] > remaining[1] > remaining[2]


def test_the_emulator_serves_the_documented_languages() -> None:
    """Its table adds native names; the codes and names are the client core's (§2.8)."""
    served = {code: name for code, name, *_ in STT_LANGUAGES}
    assert served == DOCUMENTED_STT_LANGUAGES
