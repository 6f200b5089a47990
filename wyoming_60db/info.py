"""The Wyoming ``info`` answer, built from the cached catalog (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from .sixtydb import SttLanguage
from .sixtydb.catalog import AUTO, STT_MODEL_ID, Catalog, voice_label

PROGRAM_NAME: Final = "60db"
ATTRIBUTION: Final = Attribution(name="60db", url="https://60db.ai")


def build_info(catalog: Catalog, *, configured_languages: Sequence[str], version: str) -> Info:
    """``info`` with one ASR and one TTS program, both named "60db".

    Home Assistant uses only the first program of each kind and lists TTS
    voices per language, sending back only the voice ``name`` and never a
    language (home-assistant.md §2): every voice therefore carries its
    language, and its ``name`` is the stable 60db voice id.
    """
    return Info(
        asr=[_asr_program(catalog.stt_languages, configured_languages, version)],
        tts=[_tts_program(catalog, version)],
    )


def advertised_languages(
    stt_languages: Sequence[SttLanguage], configured_languages: Sequence[str]
) -> list[str]:
    """``--language`` codes if given; all of 60db's languages for ``auto`` or none."""
    codes = [code for code in configured_languages if code != AUTO]
    if codes and len(codes) == len(configured_languages):
        return codes
    return [language.code for language in stt_languages]


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


def _tts_program(catalog: Catalog, version: str) -> TtsProgram:
    default = catalog.default_voice
    ordered = [default, *(v for v in catalog.voices if v.voice_id != default.voice_id)]
    return TtsProgram(
        name=PROGRAM_NAME,
        description="60db cloud text-to-speech, streaming",
        attribution=ATTRIBUTION,
        installed=True,
        version=version,
        voices=[
            TtsVoice(
                name=voice.voice_id,
                description=voice_label(voice),
                attribution=ATTRIBUTION,
                # HA lists only installed voices (homeassistant/components/wyoming/tts.py).
                installed=True,
                version=None,
                # HA hides a voice without languages; the catalog puts one 60db
                # gives no language under the server's default language.
                languages=list(catalog.languages_of(voice)),
            )
            for voice in ordered
        ],
        supports_synthesize_streaming=True,
    )
