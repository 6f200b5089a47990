"""The Wyoming ``info`` answer, built from the cached catalog (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from .sixtydb import SttLanguage, Voice

PROGRAM_NAME: Final = "60db"
STT_MODEL_ID: Final = "60db-stt-v01"  # 60db-protocol.md §2.1
ATTRIBUTION: Final = Attribution(name="60db", url="https://60db.ai")


def build_info(
    *,
    voices: Sequence[Voice],
    stt_languages: Sequence[SttLanguage],
    configured_languages: Sequence[str],
    default_voice: Voice,
    fallback_language: str,
    version: str,
) -> Info:
    """``info`` with one ASR and one TTS program, both named "60db".

    Home Assistant uses only the first program of each kind and lists TTS
    voices per language, sending back only the voice ``name`` and never a
    language (ha-and-wyoming.md §2): every voice therefore carries its
    language, and its ``name`` is the stable 60db voice id.
    """
    return Info(
        asr=[_asr_program(stt_languages, configured_languages, version)],
        tts=[_tts_program(voices, default_voice, fallback_language, version)],
    )


def advertised_languages(
    stt_languages: Sequence[SttLanguage], configured_languages: Sequence[str]
) -> list[str]:
    """``--language`` codes if given; all of 60db's languages for ``auto`` or none."""
    codes = [code for code in configured_languages if code != "auto"]
    if codes and len(codes) == len(configured_languages):
        return codes
    return [language.code for language in stt_languages]


def voice_description(voice: Voice) -> str:
    """``Zara (English, female, American)``: what a person picks a voice by."""
    traits = [voice.language_name or voice.language, voice.gender, voice.accent]
    if voice.is_cloned:
        traits.append("cloned")
    details = ", ".join(trait for trait in traits if trait)
    return f"{voice.name} ({details})" if details else voice.name


def _asr_program(
    stt_languages: Sequence[SttLanguage], configured_languages: Sequence[str], version: str
) -> AsrProgram:
    return AsrProgram(
        name=PROGRAM_NAME,
        description="60db cloud speech-to-text, streaming",
        attribution=ATTRIBUTION,
        installed=True,
        version=version,
        models=[
            AsrModel(
                name=STT_MODEL_ID,
                description="60db STT v01",
                attribution=ATTRIBUTION,
                installed=True,
                version=None,
                languages=advertised_languages(stt_languages, configured_languages),
            )
        ],
        supports_transcript_streaming=True,
    )


def _tts_program(
    voices: Sequence[Voice], default_voice: Voice, fallback_language: str, version: str
) -> TtsProgram:
    ordered = [default_voice, *(v for v in voices if v.voice_id != default_voice.voice_id)]
    return TtsProgram(
        name=PROGRAM_NAME,
        description="60db cloud text-to-speech, streaming",
        attribution=ATTRIBUTION,
        installed=True,
        version=version,
        voices=[_tts_voice(voice, fallback_language) for voice in ordered],
        supports_synthesize_streaming=True,
    )


def _tts_voice(voice: Voice, fallback_language: str) -> TtsVoice:
    # A voice 60db gives no language for is listed under the server's default
    # language: HA hides voices without languages, and guessing several would
    # offer it where it was never meant to speak.
    return TtsVoice(
        name=voice.voice_id,
        description=voice_description(voice),
        attribution=ATTRIBUTION,
        # HA lists only installed voices (homeassistant/components/wyoming/tts.py).
        installed=True,
        version=None,
        languages=[voice.language or fallback_language],
    )
