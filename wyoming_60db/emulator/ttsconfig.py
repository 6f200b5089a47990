"""Parsing and validation of TTS WebSocket client messages (§3.1, §3.3).

Pure functions raising ``TtsRequestError``; the session turns that into an
error frame without closing the socket (other contexts continue).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from wyoming_60db.sixtydb.limits import (
    DEFAULT_SIMILARITY,
    DEFAULT_SPEED,
    DEFAULT_STABILITY,
    MCP_MIN_SPEED,
    PERCENT_RANGE,
    SPEED_RANGE,
    TTS_SAMPLE_RATES,
)
from wyoming_60db.sixtydb.vocabulary import TTS_CLIENT_MESSAGES, ClientMessage

# GUESS: defaults are undocumented. 24 kHz is the documented REST rate (§5.2).
DEFAULT_ENCODING: Final = "LINEAR16"
DEFAULT_RATES: Final = {
    "LINEAR16": 24000,
    "PCM": 24000,
    "MULAW": 8000,
    "ULAW": 8000,
    "OGG_OPUS": 24000,
}


class TtsRequestError(Exception):
    def __init__(self, message: str, code: str, context_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.context_id = context_id


@dataclass(frozen=True)
class ContextSpec:
    context_id: str
    voice_id: str
    encoding: str
    sample_rate: int
    speed: float
    stability: float
    similarity: float

    @property
    def is_mulaw(self) -> bool:
        return self.encoding in ("MULAW", "ULAW")


def parse_message(data: str | bytes) -> tuple[ClientMessage, dict[str, Any]]:
    """(name, payload) from a §3.1 envelope or the flat ``{"type": …}`` variant."""
    if isinstance(data, bytes):
        raise TtsRequestError("Binary frames are not supported", "invalid_message")
    try:
        msg = json.loads(data)
    except ValueError:
        raise TtsRequestError("Invalid JSON", "invalid_json") from None
    if not isinstance(msg, dict):
        raise TtsRequestError("Message must be a JSON object", "invalid_message")
    if isinstance(msg.get("type"), str) and msg["type"] in TTS_CLIENT_MESSAGES:
        # 3P variant (§3.1): accepted by the emulator.
        return ClientMessage(msg["type"]), {k: v for k, v in msg.items() if k != "type"}
    names = [ClientMessage(key) for key in msg if key in TTS_CLIENT_MESSAGES]
    if len(names) != 1:
        raise TtsRequestError("Unknown message type", "invalid_message")
    payload = msg[names[0]]
    if not isinstance(payload, dict):
        raise TtsRequestError(f"{names[0]} must be an object", "invalid_message")
    return names[0], payload


def context_id_of(payload: dict[str, Any]) -> str:
    cid = payload.get("context_id")
    if not isinstance(cid, str) or not cid:
        raise TtsRequestError("context_id is required", "invalid_parameter")
    return cid


def parse_create_context(
    payload: dict[str, Any], voice_ids: set[str], min_speed: float = MCP_MIN_SPEED
) -> ContextSpec:
    cid = context_id_of(payload)
    voice_id = payload.get("voice_id")
    if not isinstance(voice_id, str) or not voice_id:
        raise TtsRequestError("voice_id is required", "invalid_parameter", cid)
    if voice_id not in voice_ids:
        raise TtsRequestError("Voice not found", "voice_not_found", cid)
    encoding, rate = _audio_config(payload.get("audio_config"), cid)
    spec = ContextSpec(
        context_id=cid,
        voice_id=voice_id,
        encoding=encoding,
        sample_rate=rate,
        # §9.7: the lowest speed is a knob (the MCP server's 0.25 or the docs' 0.5).
        speed=_ranged(payload, "speed", DEFAULT_SPEED, (min_speed, SPEED_RANGE[1]), cid),
        stability=_ranged(payload, "stability", DEFAULT_STABILITY, PERCENT_RANGE, cid),
        similarity=_ranged(payload, "similarity", DEFAULT_SIMILARITY, PERCENT_RANGE, cid),
    )
    if encoding == "OGG_OPUS":
        # Valid per §3.3, but the emulator has no Opus encoder.
        raise TtsRequestError("OGG_OPUS is not supported by the emulator", "not_emulated", cid)
    return spec


def _audio_config(config: Any, cid: str) -> tuple[str, int]:
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise TtsRequestError("audio_config must be an object", "invalid_parameter", cid)
    encoding = config.get("audio_encoding", DEFAULT_ENCODING)
    if encoding not in TTS_SAMPLE_RATES:
        raise TtsRequestError(
            f"Unsupported audio_encoding: {encoding}", "unsupported_encoding", cid
        )
    rate = config.get("sample_rate_hertz", DEFAULT_RATES[encoding])
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int)
        or rate not in TTS_SAMPLE_RATES[encoding]
    ):
        raise TtsRequestError(
            f"Unsupported sample_rate_hertz: {rate}", "unsupported_sample_rate", cid
        )
    return encoding, rate


def _ranged(
    payload: dict[str, Any], key: str, default: float, bounds: tuple[float, float], cid: str
) -> float:
    value = payload.get(key, default)
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise TtsRequestError(
            f"{key} must be between {low:g} and {high:g}", "invalid_parameter", cid
        )
    return float(value)
