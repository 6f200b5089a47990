"""Validation of STT ``start`` / ``config`` messages (§2.3.1, §2.3.4, §2.8).

Pure functions: they raise ``SttRequestError`` (message + documented-style
``error_code``) and never touch the socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from wyoming_60db.sixtydb.limits import (
    DEFAULT_UTTERANCE_END_MS,
    MAX_STT_LANGUAGES,
    MIN_INTERVAL_MS,
    STT_ENCODINGS,
    STT_MULAW_RATE,
    STT_SAMPLE_RATES,
)

from .catalog import STT_LANGUAGE_CODES
from .settings import EmulatorSettings

# §9.4: the TTS names some clients send as STT encodings (a knob accepts them).
ENCODING_ALIASES: Final = {"LINEAR16": "linear", "PCM": "linear", "MULAW": "mulaw",
                           "ULAW": "mulaw"}  # fmt: skip


class SttRequestError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass
class SttConfig:
    encoding: str
    sample_rate: int
    languages: list[str] | None
    utterance_end_ms: int
    interim_ms: int | None
    continuous_mode: bool
    context: dict[str, Any] | None

    def effective(self) -> dict[str, Any]:
        """The config as applied (after clamping), for the record."""
        return {
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
            "utterance_end_ms": self.utterance_end_ms,
            "interim_results_frequency": self.interim_ms,
            "continuous_mode": self.continuous_mode,
        }


def parse_start(msg: dict[str, Any], settings: EmulatorSettings) -> SttConfig:
    config = msg.get("config", {})
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise SttRequestError("config must be an object", "invalid_message")
    encoding = config.get("encoding")
    if settings.stt_encoding_aliases and isinstance(encoding, str):
        encoding = ENCODING_ALIASES.get(encoding, encoding)  # §9.4 variant
    if encoding not in STT_ENCODINGS:
        raise SttRequestError(f"Unsupported encoding: {encoding}", "unsupported_encoding")
    rate = config.get("sample_rate")
    if not _is_int(rate) or rate not in STT_SAMPLE_RATES:
        raise SttRequestError(f"Unsupported sample_rate: {rate}", "unsupported_sample_rate")
    if encoding == "mulaw" and rate != STT_MULAW_RATE:
        raise SttRequestError(
            f"Unsupported sample_rate: {rate} (mulaw requires {STT_MULAW_RATE})",
            "unsupported_sample_rate",
        )
    context = msg.get("context")
    if context is not None and not isinstance(context, dict):
        raise SttRequestError("context must be an object", "invalid_message")
    continuous = config.get("continuous_mode", True)
    if not isinstance(continuous, bool):
        raise SttRequestError("continuous_mode must be a boolean", "invalid_message")
    return SttConfig(
        encoding=encoding,
        sample_rate=rate,
        languages=parse_languages(msg.get("languages")),
        utterance_end_ms=_utterance_end(config, settings),
        interim_ms=_interim(config, settings),
        continuous_mode=continuous,
        context=context or None,
    )


def parse_languages(value: Any) -> list[str] | None:
    """``null``/absent/[] = auto-detect; else ≤5 supported codes (§2.3.1, §2.8)."""
    if value is None:
        return None
    if isinstance(value, str):  # includes "auto": must be null on WS
        raise SttRequestError(f"Unsupported language: {value}", "unsupported_language")
    if not isinstance(value, list):
        raise SttRequestError("languages must be an array or null", "invalid_message")
    if len(value) > MAX_STT_LANGUAGES:
        raise SttRequestError(
            f"Too many languages: {len(value)} (max {MAX_STT_LANGUAGES})",
            "too_many_languages",
        )
    for code in value:
        if not isinstance(code, str) or code not in STT_LANGUAGE_CODES:
            raise SttRequestError(f"Unsupported language: {code}", "unsupported_language")
    return list(value) or None


def _utterance_end(config: dict[str, Any], settings: EmulatorSettings) -> int:
    """§2.3.1 / §9.5: values under 300 are clamped (RV) or, as a variant, rejected."""
    value = _int_field(config, "utterance_end_ms", DEFAULT_UTTERANCE_END_MS)
    if value < MIN_INTERVAL_MS and settings.stt_utterance_end_below_min == "reject":
        raise SttRequestError(
            f"utterance_end_ms must be >= {MIN_INTERVAL_MS}: {value}", "invalid_config"
        )
    return max(MIN_INTERVAL_MS, value)


def _interim(config: dict[str, Any], settings: EmulatorSettings) -> int | None:
    if config.get("interim_results_frequency") is None:
        # Omitted: interims off unless the §9.24 variant turns them on by default.
        default = settings.stt_default_interim_ms
        return None if default is None else max(MIN_INTERVAL_MS, default)
    return max(MIN_INTERVAL_MS, _int_field(config, "interim_results_frequency", MIN_INTERVAL_MS))


def _int_field(config: dict[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SttRequestError(f"{key} must be a number", "invalid_message")
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
