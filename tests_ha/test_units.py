"""The integration's pure helpers: WAV framing, the catalog, error translation, idle bounds."""

from __future__ import annotations

import struct

import pytest

from custom_components.sixtydb.audio import WavHeaderStripper, wav_file, wav_header
from custom_components.sixtydb.coordinator import EntryCatalog
from custom_components.sixtydb.errors import FALLBACK_CODE, translation_of
from custom_components.sixtydb.tts import default_language
from wyoming_60db.sixtydb import (
    ConcurrencyLimitError,
    ServerError,
    SixtyDbError,
    SttLanguage,
    UnknownVoiceError,
    UnsupportedLanguageError,
    Voice,
)
from wyoming_60db.sixtydb.catalog import voice_label

PCM = bytes(range(256)) * 4


def _strip(data: bytes, step: int) -> bytes:
    stripper = WavHeaderStripper()
    out = b"".join(stripper.feed(data[i : i + step]) for i in range(0, len(data), step))
    return out + stripper.flush()


@pytest.mark.parametrize("step", [1, 7, 44, 4096])
def test_wav_header_is_removed_however_the_stream_is_cut(step: int) -> None:
    assert _strip(wav_file(PCM, 16000), step) == PCM


def test_wav_with_extra_chunks_before_data() -> None:
    """A LIST chunk (odd size, padded) between fmt and data is skipped as well."""
    plain = wav_file(PCM, 16000)
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\0"
    riff_size = struct.unpack_from("<I", plain, 4)[0] + len(extra)
    data = b"RIFF" + struct.pack("<I", riff_size) + plain[8:36] + extra + plain[36:]
    assert _strip(data, 5) == PCM


def test_raw_pcm_passes_untouched() -> None:
    assert _strip(PCM, 3) == PCM
    stripper = WavHeaderStripper()
    assert stripper.feed(b"\1\2\3") == b""
    assert stripper.flush() == b"\1\2\3"  # too short to be a header: it was audio


def test_cut_off_header_is_dropped() -> None:
    stripper = WavHeaderStripper()
    assert stripper.feed(wav_header(16000)[:20]) == b""
    assert stripper.flush() == b""


def test_riff_without_data_chunk_is_passed_on() -> None:
    """Not a WAV this code understands: after 64 KiB it gives the bytes back."""
    junk = b"RIFF\0\0\0\0WAVE" + b"JUNK" + struct.pack("<I", 70_000) + b"\0" * 70_000
    assert _strip(junk, 8192) == junk


def test_streaming_header_has_unknown_length() -> None:
    header = wav_header(24000)
    assert len(header) == 44
    assert struct.unpack_from("<I", header, 40)[0] == 0  # data size 0: streaming


def _voice(voice_id: str, name: str, language: str | None, category: str = "premade") -> Voice:
    return Voice(voice_id=voice_id, name=name, language=language, category=category)


def test_catalog_offers_untagged_voices_for_every_language() -> None:
    catalog = EntryCatalog(
        voices=(
            _voice("a", "Ann", "en"),
            _voice("b", "Bo", "hi"),
            _voice("c", "Clone", None, "cloned"),
        ),
        stt_languages=(SttLanguage("en", "English"),),
        untagged_voices="every_language",
    )
    assert catalog.tts_languages == ["en", "hi"]
    assert [v.name for v in catalog.voices_for("hi")] == ["Bo", "Clone"]
    assert [v.name for v in catalog.voices_for("EN_us")] == ["Ann", "Clone"]
    assert catalog.voices_for("xx") == ()
    assert catalog.voice("clone") is not None  # by name, case-insensitive
    assert catalog.voice("nobody") is None
    # HA lists voices per language: the label leaves the language out.
    assert voice_label(catalog.voices[2], with_language=False) == "Clone (cloned)"
    assert voice_label(catalog.voices[0], with_language=False) == "Ann"


@pytest.mark.parametrize(
    ("voices", "voice_id", "expected"),
    [
        ((("a", "en"), ("b", "hi")), "b", "hi"),  # the default voice's language
        ((("a", "en"), ("b", "hi")), "gone", "en"),  # else English
        ((("a", "fr"), ("b", "hi")), "gone", "fr"),  # else the first language
        ((), "gone", "en"),  # an empty catalog
    ],
)
def test_default_language(
    voices: tuple[tuple[str, str], ...], voice_id: str, expected: str
) -> None:
    catalog = EntryCatalog(
        voices=tuple(_voice(i, i.upper(), language) for i, language in voices), stt_languages=()
    )
    assert default_language(catalog, voice_id) == expected


@pytest.mark.parametrize(
    ("error", "key", "placeholders"),
    [
        (UnknownVoiceError("x", voice="Zed"), "unknown_voice", {"voice": "Zed"}),
        (UnsupportedLanguageError("x", language="xx"), "unsupported_language", {"language": "xx"}),
        (
            ConcurrencyLimitError("x", service="tts", limit=5),
            "concurrency_limit",
            {"limit": "5", "service": "TTS"},
        ),
        (ConcurrencyLimitError("x", service="stt"), "concurrency_limit", {"limit": "?"}),
        (ServerError("x"), "server_error", {}),
        (SixtyDbError("x"), FALLBACK_CODE, {}),
    ],
)
def test_error_translation(error: SixtyDbError, key: str, placeholders: dict[str, str]) -> None:
    """Each client error maps to its key; every placeholder is always present."""
    got_key, got = translation_of(error)
    assert got_key == key
    assert got.keys() == {"voice", "language", "limit", "service"}
    assert placeholders.items() <= got.items()
