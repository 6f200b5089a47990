"""The voice catalog and STT language list, read from any documented shape.

60db documents the voice list as a ``built_in_voices``/``cloned_voices`` split
or as a flat list, with language and gender at the top level or under
``labels`` (§5.6, §9.15), and the language list in three shapes (§5.5, §9.17).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from .errors import ProtocolError

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

_LANGUAGE_NAMES: Final = {name.lower(): code for code, name in DOCUMENTED_STT_LANGUAGES.items()}


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
