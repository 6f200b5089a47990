"""Default voice and language catalog data (§2.8, §5.5, §5.6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from wyoming_60db.sixtydb.catalog import DEFAULT_VOICE_ID, STT_MODEL_ID
from wyoming_60db.sixtydb.limits import MAX_STT_LANGUAGES

__all__ = ["DEFAULT_VOICE_ID", "STT_MODEL_ID", "Voice", "default_voices"]

VoiceJsonShape = Literal["split", "flat", "top_level"]


@dataclass(frozen=True)
class Voice:
    """One catalog voice; serialised per §5.6 ("full voice object")."""

    voice_id: str
    name: str
    language: str
    language_name: str
    gender: str
    accent: str
    description: str
    built_in: bool = True
    model: str = "60db Fast"
    # GUESS: built-in voices' `category` is not documented; cloned ones use
    # "cloned" | "professional" (§5.6).
    category: str = "premade"

    def labels(self) -> dict[str, str]:
        return {
            "language": self.language,
            "language_name": self.language_name,
            "gender": self.gender,
            "accent": self.accent,
        }

    def to_json(self, shape: VoiceJsonShape = "split") -> dict[str, Any]:
        """§5.6 object; ``top_level`` moves language/gender out of ``labels`` (§9.15)."""
        obj: dict[str, Any] = {
            "voice_id": self.voice_id,
            "name": self.name,
            "category": self.category,
            "model": self.model,
        }
        if shape == "top_level":
            obj["language"] = self.language
            obj["language_name"] = self.language_name
            obj["gender"] = self.gender
            obj["accent"] = self.accent
        else:
            obj["labels"] = self.labels()
        obj.update(
            {
                "description": self.description,
                "preview_url": f"/voices/audio/{self.voice_id}",
                "reference_text": f"Hello, this is {self.name}.",
                "is_native": self.built_in,
                "available_for_tiers": ["free", "starter", "pro", "enterprise"],
                "categories": ["Conversational"],
            }
        )
        return obj


# (voice_id, name, language, gender, accent, description, model): stable UUIDs so
# tests and recorded fixtures can name voices.
_BUILT_IN: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    (DEFAULT_VOICE_ID, "Zara", "en", "female", "American", "Warm, clear conversational voice.",
     "60db Fast"),
    ("2b6c1c1e-3f0a-4c55-9d1e-7a4f5b9e0c01", "Arjun", "en", "male", "Indian",
     "Friendly narrator.", "60db Fast"),
    ("5d8e2a47-1b3c-4e6f-8a9b-0c1d2e3f4a02", "Priya", "hi", "female", "Indian",
     "Hindi/English code-switching assistant.", "60db Quality"),
    ("7a1b2c3d-4e5f-4061-8293-a4b5c6d7e803", "Kabir", "hi", "male", "Indian",
     "Calm Hindi voice.", "60db Fast"),
    ("9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e04", "Lucia", "es", "female", "Castilian",
     "Bright Spanish voice.", "60db Fast"),
    ("b3c4d5e6-f7a8-4b9c-8d0e-1f2a3b4c5d05", "Camille", "fr", "female", "Parisian",
     "Soft French voice.", "60db Fast"),
    ("d5e6f7a8-b9c0-4d1e-9f2a-3b4c5d6e7f06", "Lukas", "de", "male", "Standard",
     "Neutral German voice.", "60db Quality"),
)  # fmt: skip
_LANGUAGE_NAMES = {"en": "English", "hi": "Hindi", "es": "Spanish", "fr": "French",
                   "de": "German"}  # fmt: skip


def default_voices() -> list[Voice]:
    """Zara (the documented default) plus a few stable built-ins and one clone (§5.6)."""
    voices = [
        Voice(vid, name, lang, _LANGUAGE_NAMES[lang], gender, accent, desc, model=model)
        for vid, name, lang, gender, accent, desc, model in _BUILT_IN
    ]
    # The /myvoices documentation example (§5.6).
    voices.append(
        Voice("7c32dd99-d61d-493b-9601-37e9464be6f4", "myvoice", "en", "English", "male",
              "Indian", "this is my voice", built_in=False, category="cloned")
    )  # fmt: skip
    return voices


def voices_payload(voices: list[Voice], shape: VoiceJsonShape) -> Any:
    """``data`` of ``GET /voices`` (§5.6, §9.15)."""
    if shape == "split":
        return {
            "built_in_voices": [v.to_json("split") for v in voices if v.built_in],
            "cloned_voices": [v.to_json("split") for v in voices if not v.built_in],
        }
    return [v.to_json(shape) for v in voices]


# §2.8: (code, English name, native name, Indic code-switching with English)
STT_LANGUAGES: tuple[tuple[str, str, str, bool], ...] = (
    ("en", "English", "English", False),
    ("es", "Spanish", "Español", False),
    ("fr", "French", "Français", False),
    ("de", "German", "Deutsch", False),
    ("it", "Italian", "Italiano", False),
    ("pt", "Portuguese", "Português", False),
    ("nl", "Dutch", "Nederlands", False),
    ("pl", "Polish", "Polski", False),
    ("ru", "Russian", "Русский", False),
    ("uk", "Ukrainian", "Українська", False),
    ("cs", "Czech", "Čeština", False),
    ("sv", "Swedish", "Svenska", False),
    ("bg", "Bulgarian", "Български", False),
    ("da", "Danish", "Dansk", False),
    ("el", "Greek", "Ελληνικά", False),
    ("et", "Estonian", "Eesti", False),
    ("fi", "Finnish", "Suomi", False),
    ("hr", "Croatian", "Hrvatski", False),
    ("hu", "Hungarian", "Magyar", False),
    ("lt", "Lithuanian", "Lietuvių", False),
    ("lv", "Latvian", "Latviešu", False),
    ("mt", "Maltese", "Malti", False),
    ("ro", "Romanian", "Română", False),
    ("sk", "Slovak", "Slovenčina", False),
    ("sl", "Slovenian", "Slovenščina", False),
    ("hi", "Hindi", "हिन्दी", True),
    ("bn", "Bengali", "বাংলা", True),
    ("mr", "Marathi", "मराठी", True),
    ("pa", "Punjabi", "ਪੰਜਾਬੀ", True),
    ("gu", "Gujarati", "ગુજરાતી", True),
    ("or", "Odia", "ଓଡ଼ିଆ", True),
    ("as", "Assamese", "অসমীয়া", True),
    ("ne", "Nepali", "नेपाली", True),
    ("te", "Telugu", "తెలుగు", True),
    ("kn", "Kannada", "ಕನ್ನಡ", True),
    ("ta", "Tamil", "தமிழ்", True),
    ("ml", "Malayalam", "മലയാളം", True),
    ("sa", "Sanskrit", "संस्कृतम्", True),
    ("ar", "Arabic", "العربية", False),
)
STT_LANGUAGE_CODES: frozenset[str] = frozenset(code for code, *_ in STT_LANGUAGES)
STT_LANGUAGE_NAMES: dict[str, str] = {code: name for code, name, *_ in STT_LANGUAGES}


def languages_payload(shape: Literal["skill", "node", "list"]) -> Any:
    """Body of ``GET /stt/languages`` in one of the three reported shapes (§5.5, §9.17)."""
    if shape == "node":
        return {
            "success": True,
            "data": [{"language_id": code, "name": name} for code, name, *_ in STT_LANGUAGES],
        }
    if shape == "list":
        return [{"code": code, "name": name} for code, name, *_ in STT_LANGUAGES]
    items: list[dict[str, Any]] = [{"code": "auto", "name": "Auto-detect"}]
    items += [
        {"code": code, "name": name, "native": native, "code_switching": switching}
        for code, name, native, switching in STT_LANGUAGES
    ]
    return {
        "data": {
            "languages": items,
            "total": len(items),
            # GUESS: the feature flags' names are not documented.
            "features": {
                "auto_detect": True,
                "code_switching": True,
                "max_languages_per_session": MAX_STT_LANGUAGES,
                "diarization": True,
            },
        }
    }


def stt_models_payload() -> dict[str, Any]:
    """Body of ``GET /stt/models`` (§5.5, verbatim shape)."""
    return {
        "success": True,
        "message": "STT models fetched successfully",
        "data": [
            {
                "id": STT_MODEL_ID,
                "model_name": "60db STT v01",
                "description": "Streaming multilingual speech-to-text (emulated).",
                "category": "speech-to-text",
                "type": "stt",
                "languages": len(STT_LANGUAGES),
                "features": [
                    "auto_language_detection",
                    "speaker_diarization",
                    "word_timestamps",
                    "code_switching_indic_english",
                    "continuous_mode",
                    "telephony_mulaw",
                    "websocket_streaming",
                ],
            }
        ],
    }
