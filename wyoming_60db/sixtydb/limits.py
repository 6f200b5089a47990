"""60db's documented numbers, declared once (60db-protocol.md §2.3, §3.3, §6).

Both front ends, the CLI and the emulator take their ranges, rates and limits
from here, so a value 60db changes is changed in one place.
"""

from __future__ import annotations

from typing import Final, Literal

# ------------------------------------------------------------------ accounts (§6)

STT_CONCURRENCY: Final = 8
"""Documented STT sessions at once per account."""
TTS_CONCURRENCY: Final = 5
"""Documented TTS connections at once per account."""

# ------------------------------------------------------------------ STT (§2.3)

SttEncoding = Literal["linear", "mulaw"]
STT_ENCODINGS: Final[tuple[SttEncoding, ...]] = ("linear", "mulaw")
STT_SAMPLE_RATES: Final = frozenset({8000, 16000, 24000, 44100, 48000})
"""Every rate 60db's ``start`` accepts."""
STT_RATE_FOR_ENCODING: Final[dict[SttEncoding, int]] = {"linear": 16000, "mulaw": 8000}
"""The rate this project sends each encoding at: 16 kHz PCM, 8 kHz μ-law (telephony)."""
STT_MULAW_RATE: Final = 8000
"""μ-law is 8 kHz telephony audio; 60db takes it at no other rate (§2.3.2)."""
MAX_STT_LANGUAGES: Final = 5
"""Languages per STT session (§2.7)."""
MIN_INTERVAL_MS: Final = 300
"""The smallest ``utterance_end_ms`` and ``interim_results_frequency`` (§2.3.1)."""
DEFAULT_UTTERANCE_END_MS: Final = 500
"""60db's trailing silence before an utterance ends, when ``start`` names none (§2.3.1)."""
INTERIM_RESULTS_MS: Final = MIN_INTERVAL_MS
"""The interim interval the Wyoming server asks for (transcript-chunk events)."""
VadSensitivity = Literal["default", "relaxed", "aggressive"]
VAD_SENSITIVITIES: Final[tuple[VadSensitivity, ...]] = ("default", "relaxed", "aggressive")
VAD_SENSITIVITY_MS: Final[dict[VadSensitivity, int]] = {
    "aggressive": MIN_INTERVAL_MS,
    "default": DEFAULT_UTTERANCE_END_MS,
    "relaxed": 1000,
}
"""``utterance_end_ms`` per Wyoming/Home Assistant sensitivity (their names).

Home Assistant's own VAD waits 0.25/0.7/1.25 s; 60db's 500 ms default already
keeps a 250 ms pause ("turn on the kitchen light … and the hallway") inside
one command, and nothing may go below 60db's 300 ms minimum."""
MAX_CONTEXT_TERMS: Final = 100
"""Terms sent in ``context.terms``: 60db documents no WebSocket limit, its REST
keyword list surfaces 30 to the LLM (§5.4); a home's names fit in 100."""
MAX_TERM_CHARS: Final = 60
"""A longer "term" is a sentence, not a name worth boosting."""
STT_FRAME_MS: Final = 60
"""Audio per frame sent to 60db: §2.3.2 documents 480 bytes per 60 ms of 8 kHz
μ-law. Clients send 10 ms chunks; 60 ms frames cut the per-frame cost sixfold."""

# ------------------------------------------------------------------ TTS (§3.3)

TTS_SAMPLE_RATES: Final[dict[str, frozenset[int]]] = {
    "LINEAR16": frozenset({8000, 16000, 24000, 48000}),
    "PCM": frozenset({8000, 16000, 24000, 48000}),
    "MULAW": frozenset({8000}),
    "ULAW": frozenset({8000}),
    "OGG_OPUS": frozenset({24000}),
}
"""Encoding/rate combinations 60db accepts; 44100 is rejected everywhere."""
TTS_SAMPLE_WIDTH: Final = 2
"""LINEAR16: 16-bit mono."""
SPEED_RANGE: Final = (0.5, 2.0)
"""The documented range; the MCP server's 0.25 is not (§9.7)."""
MCP_MIN_SPEED: Final = 0.25
"""The official MCP server's lower speed bound (§9.7): what the emulator accepts
by default, so a client is tested against the more lenient server."""
PERCENT_RANGE: Final = (0.0, 100.0)
"""``stability`` and ``similarity``."""
DEFAULT_SPEED: Final = 1.0
DEFAULT_STABILITY: Final = 50.0
DEFAULT_SIMILARITY: Final = 75.0

# ------------------------------------------------------------------ text

MAX_TEXT_CHARS: Final = 100_000
"""The longest text one request takes; longer text is refused, never cut."""
MAX_CONTEXT_CHARS: Final = 50_000
"""Cumulative text per TTS context (§3.3, a third-party claim)."""
FLUSH_CHARS: Final = 1000
"""Text sent per flush: about a paragraph lets 60db start long answers early and
keeps each piece far below its limits (5,000 characters on REST)."""
