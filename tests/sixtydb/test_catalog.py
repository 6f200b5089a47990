"""Voice and language lists in every documented shape (§5.5, §5.6, §9.15, §9.17)."""

from __future__ import annotations

from typing import Any

import pytest

from wyoming_60db.sixtydb import catalog, errors

ZARA = {"voice_id": "v1", "name": "Zara", "category": "built_in",
        "labels": {"language": "en", "language_name": "English", "gender": "female"}}  # fmt: skip
CLONE = {"voice_id": "v2", "name": "Mine", "category": "cloned",
         "labels": {"language": "hi", "gender": "male", "accent": "Indian"}}  # fmt: skip
TOP_LEVEL = {"voice_id": "v3", "name": "Ravi", "language_name": "Hindi", "gender": "male"}


@pytest.mark.parametrize(
    "payload",
    [
        {"success": True, "data": {"built_in_voices": [ZARA], "cloned_voices": [CLONE]}},
        {"success": True, "data": [ZARA, CLONE]},
        [ZARA, CLONE],
        {"data": {"voices": [ZARA, CLONE]}},
    ],
)
def test_voice_list_shapes(payload: Any) -> None:
    voices = catalog.parse_voices(payload)
    assert [(v.voice_id, v.language, v.gender) for v in voices] == [
        ("v1", "en", "female"),
        ("v2", "hi", "male"),
    ]
    assert voices[1].is_cloned and not voices[0].is_cloned


def test_split_shape_marks_categories_and_reads_top_level_fields() -> None:
    payload = {"data": {"built_in_voices": [TOP_LEVEL, {"name": "no id"}], "cloned_voices": None}}
    (voice,) = catalog.parse_voices(payload)
    assert (voice.language, voice.language_name, voice.category) == ("hi", "Hindi", "built_in")


def test_duplicate_voices_are_dropped() -> None:
    assert len(catalog.parse_voices([ZARA, ZARA])) == 1


def test_unknown_voice_shape_is_a_protocol_error() -> None:
    with pytest.raises(errors.ProtocolError):
        catalog.parse_voices({"data": "nope"})


@pytest.mark.parametrize(
    "payload",
    [
        {"data": {"languages": [{"code": "auto", "name": "Auto-detect"},
                                {"code": "en", "name": "English", "native": "English"},
                                {"code": "HI", "name": "Hindi"}], "total": 3}},
        {"success": True, "data": [{"language_id": "en", "name": "English"},
                                   {"language_id": "hi", "name": "Hindi"}]},
        [{"code": "en", "name": "English"}, {"code": "hi"}],
        ["en", "hi"],
    ],
)  # fmt: skip
def test_language_list_shapes(payload: Any) -> None:
    languages = catalog.parse_stt_languages(payload)
    assert [(lang.code, lang.name) for lang in languages] == [("en", "English"), ("hi", "Hindi")]


def test_unknown_language_shape_is_a_protocol_error() -> None:
    with pytest.raises(errors.ProtocolError):
        catalog.parse_stt_languages({"data": {"languages": "en"}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("en-US", "en"), ("EN", "en"), ("English", "en"), ("pt_BR", "pt"), ("", None), (None, None)],
)
def test_normalize_language(value: str | None, expected: str | None) -> None:
    assert catalog.normalize_language(value) == expected


def test_documented_languages() -> None:
    assert len(catalog.DOCUMENTED_STT_LANGUAGES) == 39
    assert "ja" not in catalog.DOCUMENTED_STT_LANGUAGES
