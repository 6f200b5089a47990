"""The one catalog model both front ends pick voices and languages from."""

from __future__ import annotations

import pytest

from wyoming_60db.sixtydb import (
    DEFAULT_VOICE_ID,
    SttLanguage,
    UnknownVoiceError,
    UnsupportedLanguageError,
    Voice,
)
from wyoming_60db.sixtydb.catalog import (
    DOCUMENTED_STT_LANGUAGES,
    Catalog,
    UntaggedVoices,
    voice_label,
)

ZARA = Voice(DEFAULT_VOICE_ID, "Zara", "en", "English", "female", "American", "premade")
ARJUN = Voice("a1", "Arjun", "en", "English", "male", "Indian", "premade")
PRIYA = Voice("p1", "Priya", "hi", "Hindi", "female", "Indian", "premade")
STRASSE = Voice("s1", "Straße", "de", "German", "male", None, "premade")
CLONE = Voice("c1", "My voice", None, None, "male", None, "cloned")
VOICES = (ARJUN, PRIYA, ZARA, STRASSE, CLONE)
LANGUAGES = (SttLanguage("en", "English"), SttLanguage("hi", "Hindi"))


def catalog(default: str | None = None, untagged: UntaggedVoices = "default_language") -> Catalog:
    return Catalog(
        voices=VOICES,
        stt_languages=LANGUAGES,
        default_voice_ref=default,
        default_language="de",
        untagged_voices=untagged,
    )


def names(voices: tuple[Voice, ...]) -> list[str]:
    return [voice.name for voice in voices]


def test_lookup_by_id_then_by_name_casefolded() -> None:
    model = catalog()
    assert model.voice("p1") is PRIYA
    assert model.voice("PRIYA") is PRIYA  # a name, whatever its case
    assert model.voice("STRASSE") is STRASSE  # casefold(): "ß" matches "SS"; lower() would not
    assert model.voice("P1") is None  # ids are exact
    assert model.voice("nobody") is None


def test_an_id_wins_over_a_name() -> None:
    impostor = Voice("x", "p1")  # a voice *named* like another's id
    model = Catalog(voices=(impostor, PRIYA))
    assert model.voice("p1") is PRIYA


@pytest.mark.parametrize(
    ("default", "expected"),
    [(None, "Zara"), ("p1", "Priya"), ("arjun", "Arjun"), ("gone", "Zara")],
)
def test_default_voice_configured_else_zara(default: str | None, expected: str) -> None:
    assert catalog(default).default_voice.name == expected


def test_default_voice_without_zara_or_any_voice() -> None:
    assert Catalog(voices=(PRIYA, ARJUN)).default_voice is PRIYA
    assert Catalog(voices=(), default_voice_ref="v9").default_voice.voice_id == "v9"


def test_voices_for_a_locale_default_first() -> None:
    model = catalog("a1")
    assert names(model.voices_for("en-US")) == ["Arjun", "Zara"]
    assert names(model.voices_for("EN_gb")) == ["Arjun", "Zara"]
    assert names(catalog().voices_for("en")) == ["Zara", "Arjun"]  # Zara by default
    assert names(model.voices_for("hi")) == ["Priya"]
    assert model.voices_for("ja") == ()


def test_untagged_voice_under_the_default_language_only() -> None:
    model = catalog()  # the Wyoming server's choice
    assert names(model.voices_for("de")) == ["Straße", "My voice"]
    assert "My voice" not in names(model.voices_for("en"))
    assert model.languages_of(CLONE) == ("de",)
    assert model.tts_languages == ["de", "en", "hi"]


def test_untagged_voice_under_every_language() -> None:
    model = catalog(untagged="every_language")  # the Home Assistant integration's choice
    assert names(model.voices_for("hi")) == ["Priya", "My voice"]
    assert names(model.voices_for("en")) == ["Zara", "Arjun", "My voice"]
    assert model.voices_for("ja") == ()  # not a language with voices
    assert model.languages_of(CLONE) == ("de", "en", "hi")
    assert model.tts_languages == ["de", "en", "hi"]


def test_with_default_voice_keeps_everything_else() -> None:
    model = catalog()
    changed = model.with_default_voice("p1")
    assert changed.default_voice is PRIYA and changed.voices == model.voices
    assert model.default_voice is ZARA  # the original is unchanged
    assert model.with_default_voice(None) is model


def test_resolve_voice_by_id_name_speaker_language() -> None:
    model = catalog()
    assert model.resolve_voice("p1") is PRIYA
    assert model.resolve_voice(" priya ") is PRIYA
    assert model.resolve_voice(None, "Arjun") is ARJUN
    assert model.resolve_voice("p1", "Arjun") is PRIYA  # a name beside a speaker wins
    assert model.resolve_voice(None) is ZARA
    assert model.resolve_voice(None, language="hi-IN") is PRIYA
    with pytest.raises(UnknownVoiceError):
        model.resolve_voice("missing")
    with pytest.raises(UnknownVoiceError):
        model.resolve_voice(None, language="ja")


def test_resolve_language() -> None:
    model = catalog()
    assert model.resolve_language("hi-IN", ()) == ["hi"]
    assert model.resolve_language("English", ()) == ["en"]
    assert model.resolve_language(None, ("en", "hi")) == ["en", "hi"]
    assert model.resolve_language(None, ("en", "auto")) is None
    assert model.resolve_language("auto", ("en",)) is None
    with pytest.raises(UnsupportedLanguageError):
        model.resolve_language("zh-CN", ())


def test_fallback_while_60db_is_unreachable() -> None:
    zara = Catalog.fallback()
    assert zara.is_fallback
    assert [(v.voice_id, v.name, v.language) for v in zara.voices] == [
        (DEFAULT_VOICE_ID, "Zara", "en")
    ]
    assert [language.code for language in zara.stt_languages] == list(DOCUMENTED_STT_LANGUAGES)
    configured = Catalog.fallback(default_voice="v9", default_language="hi")
    assert configured.default_voice.voice_id == "v9"
    assert configured.resolve_voice(None, language="hi").voice_id == "v9"
    # Unknown ids go to 60db, which is the judge until the catalog is known...
    assert configured.resolve_voice("other").voice_id == "other"
    # ... but a catalog read from 60db knows every voice there is.
    with pytest.raises(UnknownVoiceError):
        catalog().resolve_voice("other")


@pytest.mark.parametrize(
    ("voice", "with_language", "label"),
    [
        (ZARA, True, "Zara (English, female, American)"),
        (ZARA, False, "Zara (female, American)"),
        (CLONE, True, "My voice (male, cloned)"),
        (CLONE, False, "My voice (male, cloned)"),
        (Voice("x", "Plain"), True, "Plain"),
        (Voice("x", "Coded", "fr"), True, "Coded (fr)"),
    ],
)
def test_one_label_for_both_front_ends(voice: Voice, with_language: bool, label: str) -> None:
    assert voice_label(voice, with_language=with_language) == label
