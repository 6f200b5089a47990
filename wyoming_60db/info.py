"""The Wyoming ``info`` answer, built from the cached catalog (pure, no I/O)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, TtsProgram, TtsVoice

from .sixtydb import Account, SttLanguage, Usage
from .sixtydb.catalog import AUTO, STT_MODEL_ID, Catalog, voice_label

PROGRAM_NAME: Final = "60db"
ATTRIBUTION: Final = Attribution(name="60db", url="https://60db.ai")
ASR_DESCRIPTION: Final = "60db cloud speech-to-text, streaming"
HAS_EXTERNAL_VAD_FIELD: Final = "requires_external_vad" in {
    field.name for field in dataclasses.fields(AsrProgram)
}
"""wyoming 1.10 added ``AsrProgram.requires_external_vad``; the pin allows 1.7.2."""


def build_info(
    catalog: Catalog,
    *,
    configured_languages: Sequence[str],
    version: str,
    endpointing: bool = False,
    usage: Usage | None = None,
    account: Account | None = None,
) -> Info:
    """``info`` with one ASR and one TTS program, both named "60db".

    Home Assistant uses only the first program of each kind and lists TTS
    voices per language, sending back only the voice ``name`` and never a
    language (home-assistant.md §2): every voice therefore carries its
    language, and its ``name`` is the stable 60db voice id.

    ``endpointing``: the server ends the turn itself, so the ASR program needs
    no external VAD (Home Assistant 2026.10+ then runs none). ``usage`` and
    ``account``, where known, put the account's totals in its description.
    """
    asr = _asr_program(catalog.stt_languages, configured_languages, version)
    asr.description = asr_description(usage, account)
    if HAS_EXTERNAL_VAD_FIELD:
        asr.requires_external_vad = not endpointing
    return Info(asr=[asr], tts=[_tts_program(catalog, version)])


def asr_description(usage: Usage | None, account: Account | None) -> str:
    """The ASR program's description, with what was spent and the balance where known."""
    totals = []
    if usage is not None:
        totals.append(f"spent since start ${usage.cost:.4f}")
    if account is not None and account.credit_balance is not None:
        totals.append(f"balance ${account.credit_balance:.2f}")
    return f"{ASR_DESCRIPTION}; {', '.join(totals)}" if totals else ASR_DESCRIPTION


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
        description=ASR_DESCRIPTION,
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
