"""The voice catalog and STT language list: read from any documented shape, and used.

60db documents the voice list as a ``built_in_voices``/``cloned_voices`` split
or as a flat list, with language and gender at the top level or under
``labels`` (§5.6, §9.15), and the language list in three shapes (§5.5, §9.17).

:class:`Catalog` is the one model both front ends pick voices and languages
from: lookups, per-language lists, request resolution and the fallback used
while 60db cannot be reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from .errors import ProtocolError, UnknownVoiceError, UnsupportedLanguageError

# §2.8: the 39 documented STT languages, used when 60db cannot be asked.
DOCUMENTED_STT_LANGUAGES: Final[dict[str, str]] = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "ru": "Russian", "uk": "Ukrainian",
    "cs": "Czech", "sv": "Swedish", "bg": "Bulgarian", "da": "Danish", "el": "Greek",
    "et": "Estonian", "fi": "Finnish", "hr": "Croatian", "hu": "Hungarian",
    "lt": "Lithuanian", "lv": "Latvian", "mt": "Maltese", "ro": "Romanian", "sk": "Slovak",
    "sl": "Slovenian", "hi": "Hindi", "bn": "Bengali", "mr": "Marathi", "pa": "Punjabi",
    "gu": "Gujarati", "or": "Odia", "as": "Assamese", "ne": "Nepali", "te": "Telugu",
    "kn": "Kannada", "ta": "Tamil", "ml": "Malayalam", "sa": "Sanskrit", "ar": "Arabic",
}  # fmt: skip

DEFAULT_VOICE_ID: Final = "fbb75ed2-975a-40c7-9e06-38e30524a9a1"  # "Zara", documented (§3.3)
STT_MODEL_ID: Final = "60db-stt-v01"  # the one STT model (§2.1, §5.5)

_LANGUAGE_NAMES: Final = {name.lower(): code for code, name in DOCUMENTED_STT_LANGUAGES.items()}
_DEFAULT_VOICE_NAME: Final = "Zara"
AUTO: Final = "auto"
"""The language setting that lets 60db detect the language."""

UntaggedVoices = Literal["default_language", "every_language"]
"""Where a voice 60db gives no language is offered; see :attr:`Catalog.untagged_voices`."""


@dataclass(frozen=True, slots=True)
class Voice:
    """One TTS voice."""

    voice_id: str
    name: str
    language: str | None = None
    """ISO 639-1 code, lower case, when 60db says which language the voice speaks."""
    language_name: str | None = None
    gender: str | None = None
    accent: str | None = None
    category: str | None = None
    model: str | None = None
    description: str | None = None

    @property
    def is_cloned(self) -> bool:
        """A voice the account made itself, rather than a built-in one."""
        return self.category in {"cloned", "professional"}


@dataclass(frozen=True, slots=True)
class SttLanguage:
    """One language 60db's STT recognises."""

    code: str
    name: str


def documented_stt_languages() -> tuple[SttLanguage, ...]:
    """The 39 documented STT languages (§2.8), for when 60db cannot be asked."""
    return tuple(SttLanguage(code, name) for code, name in DOCUMENTED_STT_LANGUAGES.items())


def fallback_voice(default_voice: str | None, language: str) -> Voice:
    """The configured default voice, or Zara, as far as it is known without 60db."""
    voice_id = default_voice or DEFAULT_VOICE_ID
    name = _DEFAULT_VOICE_NAME if voice_id == DEFAULT_VOICE_ID else voice_id
    return Voice(voice_id=voice_id, name=name, language=language)


def voice_label(voice: Voice, *, with_language: bool = True) -> str:
    """What a person picks a voice by: ``Zara (English, female, American)``.

    ``with_language=False`` gives ``Zara (female, American)``, for lists that
    are already per language (Home Assistant's voice picker).
    """
    traits = [voice.language_name or voice.language] if with_language else []
    traits += [voice.gender, voice.accent]
    if voice.is_cloned:
        traits.append("cloned")
    details = ", ".join(trait for trait in traits if trait)
    return f"{voice.name} ({details})" if details else voice.name


@dataclass(frozen=True, slots=True)
class Catalog:
    """An account's voices and STT languages, and how a request picks from them.

    Immutable: a refresh makes a new one. The Wyoming server keeps one fresh
    in the background; Home Assistant keeps one in its coordinator.
    """

    voices: tuple[Voice, ...] = ()
    stt_languages: tuple[SttLanguage, ...] = field(default_factory=documented_stt_languages)
    default_voice_ref: str | None = None
    """The configured default voice, by id or name; ``None``: 60db's documented Zara."""
    default_language: str = "en"
    """The fallback voice's language, and where ``default_language`` puts untagged voices."""
    untagged_voices: UntaggedVoices = "default_language"
    """Where a voice 60db gives no language (some cloned ones) is offered.

    ``"default_language"`` (the Wyoming server): under the default language
    only. Home Assistant sends back a voice without its language
    (home-assistant.md §2), so offering it under several would let it be
    picked for languages it was never meant to speak.
    ``"every_language"`` (the Home Assistant integration): under every
    language that has voices, so a user's own clone can be chosen anywhere.
    """
    is_fallback: bool = False
    """Made without 60db: a voice not listed may still exist, so 60db judges ids."""

    @classmethod
    def fallback(
        cls,
        *,
        default_voice: str | None = None,
        default_language: str = "en",
        untagged_voices: UntaggedVoices = "default_language",
    ) -> Catalog:
        """What is known while 60db cannot be reached: the default voice, §2.8's languages."""
        return cls(
            voices=(fallback_voice(default_voice, default_language),),
            default_voice_ref=default_voice,
            default_language=default_language,
            untagged_voices=untagged_voices,
            is_fallback=True,
        )

    def with_default_voice(self, ref: str | None) -> Catalog:
        """The same catalog with another configured default voice (an option changed)."""
        return self if ref == self.default_voice_ref else replace(self, default_voice_ref=ref)

    def voice(self, wanted: str) -> Voice | None:
        """The voice with this id, else the one with this name (case-insensitively)."""
        for voice in self.voices:
            if voice.voice_id == wanted:
                return voice
        folded = wanted.casefold()
        return next((voice for voice in self.voices if voice.name.casefold() == folded), None)

    @property
    def default_voice(self) -> Voice:
        """The configured default voice, else Zara, else the first voice there is."""
        for ref in (self.default_voice_ref, DEFAULT_VOICE_ID):
            if ref and (found := self.voice(ref)) is not None:
                return found
        if self.voices:
            return self.voices[0]
        return fallback_voice(self.default_voice_ref, self.default_language)

    @property
    def tts_languages(self) -> list[str]:
        """The languages that have voices, sorted."""
        return sorted({code for voice in self.voices for code in self.languages_of(voice)})

    def languages_of(self, voice: Voice) -> tuple[str, ...]:
        """The languages ``voice`` is offered under (see :attr:`untagged_voices`)."""
        if voice.language:
            return (voice.language,)
        if self.untagged_voices == "default_language":
            return (self.default_language,)
        return tuple(sorted({v.language for v in self.voices if v.language}))

    def voices_for(self, language: str) -> tuple[Voice, ...]:
        """The voices for a language (``en-US`` finds the ``en`` ones), the default first."""
        code = normalize_language(language)
        tagged = [voice for voice in self.voices if voice.language and voice.language == code]
        untagged = [voice for voice in self.voices if not voice.language]
        if self.untagged_voices == "every_language":
            offered = tagged + untagged if tagged else []
        else:
            offered = tagged + (untagged if code == self.default_language else [])
        default_id = self.default_voice.voice_id
        return tuple(sorted(offered, key=lambda voice: voice.voice_id != default_id))

    def resolve_voice(
        self, name: str | None, speaker: str | None = None, language: str | None = None
    ) -> Voice:
        """The voice a request asks for: by id or name, else by language, else the default.

        Home Assistant sends the advertised ``name`` (the voice id), never a
        language (home-assistant.md §2); other clients may name a voice by
        ``speaker`` alone, or only ask for a language. Every 60db voice has one
        speaker, so a ``speaker`` beside a ``name`` has nothing left to select.
        """
        wanted = (name or "").strip() or (speaker or "").strip()
        if not wanted:
            if not language:
                return self.default_voice
            candidates = self.voices_for(language)
            if not candidates:
                raise UnknownVoiceError(f"no voice speaks {language!r}", voice=language)
            return candidates[0]
        found = self.voice(wanted)
        if found is not None:
            return found
        if self.is_fallback:
            # Without the catalog the id goes to 60db, which rejects an unknown voice.
            return Voice(voice_id=wanted, name=wanted, language=self.default_language)
        raise UnknownVoiceError(f"unknown voice {wanted!r}", voice=wanted)

    def resolve_language(
        self, requested: str | None, configured: Sequence[str]
    ) -> list[str] | None:
        """60db's ``languages`` for a request: codes, or None for detection.

        The requested language wins over the configured ones; ``en-US``
        becomes ``en``. A language 60db does not recognise is an error, never a
        silently different language.
        """
        if requested:
            code = normalize_language(requested)
            if code is None or code == AUTO:
                return None
            if code not in {language.code for language in self.stt_languages}:
                raise UnsupportedLanguageError(
                    f"60db cannot transcribe {requested!r}", language=requested
                )
            return [code]
        codes = [code for code in configured if code != AUTO]
        if not codes or len(codes) != len(configured):
            return None  # "auto" configured (alone or beside codes): detection
        return codes


def parse_voices(payload: Any) -> list[Voice]:
    """Every voice in a voice-list response, built-in first, without duplicates."""
    seen: set[str] = set()
    voices: list[Voice] = []
    for item, category in _voice_items(_unwrap(payload)):
        voice = _voice(item, category)
        if voice is not None and voice.voice_id not in seen:
            seen.add(voice.voice_id)
            voices.append(voice)
    return voices


def parse_stt_languages(payload: Any) -> list[SttLanguage]:
    """The recognisable languages, without the ``auto`` pseudo-language."""
    data = _unwrap(payload)
    if isinstance(data, dict):
        data = data.get("languages", data.get("data"))
    if not isinstance(data, list):
        raise ProtocolError("60db's language list has an unknown shape")
    languages: list[SttLanguage] = []
    for item in data:
        language = _language(item)
        if language is not None and language.code != "auto":
            languages.append(language)
    return languages


def normalize_language(value: str | None) -> str | None:
    """``en-US``, ``EN``, ``English`` → ``en``; unknown values pass through lowered."""
    if not value:
        return None
    lowered = value.strip().lower()
    if lowered in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[lowered]
    return lowered.replace("_", "-").split("-")[0] or None


def _unwrap(payload: Any) -> Any:
    if isinstance(payload, dict) and "data" in payload:
        return payload["data"]
    return payload


def _voice_items(data: Any) -> Iterator[tuple[dict[str, Any], str | None]]:
    if isinstance(data, list):
        yield from _dicts(data, None)
    elif isinstance(data, dict) and ("built_in_voices" in data or "cloned_voices" in data):
        yield from _dicts(data.get("built_in_voices") or [], "built_in")
        yield from _dicts(data.get("cloned_voices") or [], "cloned")
    elif isinstance(data, dict) and isinstance(data.get("voices"), list):
        yield from _dicts(data["voices"], None)
    else:
        raise ProtocolError("60db's voice list has an unknown shape")


def _dicts(
    items: Iterable[Any], category: str | None
) -> Iterator[tuple[dict[str, Any], str | None]]:
    for item in items:
        if isinstance(item, dict):
            yield item, category


def _voice(item: dict[str, Any], category: str | None) -> Voice | None:
    voice_id = item.get("voice_id") or item.get("id")
    if not isinstance(voice_id, str) or not voice_id:
        return None
    raw_labels = item.get("labels")
    labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}

    def field(name: str) -> str | None:
        value = item.get(name) or labels.get(name)
        return str(value) if value else None

    language_name = field("language_name")
    return Voice(
        voice_id=voice_id,
        name=str(item.get("name") or voice_id),
        language=normalize_language(field("language") or language_name),
        language_name=language_name,
        gender=field("gender"),
        accent=field("accent"),
        category=str(item.get("category") or category or "") or None,
        model=field("model"),
        description=field("description"),
    )


def _language(item: Any) -> SttLanguage | None:
    if isinstance(item, str):
        return SttLanguage(code=item.lower(), name=DOCUMENTED_STT_LANGUAGES.get(item.lower(), item))
    if not isinstance(item, dict):
        return None
    code = item.get("code") or item.get("language_id") or item.get("id")
    if not isinstance(code, str) or not code:
        return None
    code = code.lower()
    return SttLanguage(
        code=code, name=str(item.get("name") or DOCUMENTED_STT_LANGUAGES.get(code, code))
    )
