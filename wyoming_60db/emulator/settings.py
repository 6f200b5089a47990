"""Emulator knobs (``EmulatorSettings``) and fault descriptions (``Fault``).

Every knob that selects between documented variants cites the section of
``docs/60db-protocol.md`` it emulates.  Settings are read per connection or
per message, so tests may change them on a running emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from wyoming_60db.sixtydb.limits import MCP_MIN_SPEED, STT_CONCURRENCY, TTS_CONCURRENCY

from .catalog import Voice, default_voices
from .tonecode import DEFAULT_SECONDS_PER_CHAR

# 60db's documented example of a refined final carries llm_latency_ms: 240 (§2.5).
DEFAULT_LLM_LATENCY_MS: Final = 240

HandshakeStyle = Literal["envelope", "typed", "both"]
SttConnectedPlacement = Literal["after_start", "before_established", "omitted"]
EarlyMessagePolicy = Literal["drop", "error"]
TtsAckStyle = Literal["object", "bool"]
TtsErrorStyle = Literal["object", "string"]
VoicesShape = Literal["split", "flat", "top_level"]
LanguagesShape = Literal["skill", "node", "list"]
FaultService = Literal["stt", "tts", "any"]
SttBinaryEncoding = Literal["config", "mulaw"]
BelowMinimumPolicy = Literal["clamp", "reject"]
FaultKind = Literal["drop", "stall", "garbage", "error"]
ConcurrencyCounts = Literal["sessions", "connections"]

HANDSHAKE_STYLES: tuple[HandshakeStyle, ...] = ("envelope", "typed", "both")
STT_CONNECTED_PLACEMENTS: tuple[SttConnectedPlacement, ...] = (
    "after_start",
    "before_established",
    "omitted",
)
EARLY_MESSAGE_POLICIES: tuple[EarlyMessagePolicy, ...] = ("drop", "error")
TTS_ACK_STYLES: tuple[TtsAckStyle, ...] = ("object", "bool")
TTS_ERROR_STYLES: tuple[TtsErrorStyle, ...] = ("object", "string")
VOICES_SHAPES: tuple[VoicesShape, ...] = ("split", "flat", "top_level")
LANGUAGES_SHAPES: tuple[LanguagesShape, ...] = ("skill", "node", "list")
STT_BINARY_ENCODINGS: tuple[SttBinaryEncoding, ...] = ("config", "mulaw")
BELOW_MINIMUM_POLICIES: tuple[BelowMinimumPolicy, ...] = ("clamp", "reject")
CONCURRENCY_COUNTS: tuple[ConcurrencyCounts, ...] = ("sessions", "connections")
FAULT_SERVICES: tuple[FaultService, ...] = ("stt", "tts", "any")
FAULT_KINDS: tuple[FaultKind, ...] = ("drop", "stall", "garbage", "error")


@dataclass(frozen=True)
class Fault:
    """A failure armed for the next ``times`` connections of ``service``.

    Each connection of ``service`` that opens while the fault is armed takes
    one of its ``times`` firings (None: every connection, until
    ``Emulator.clear_faults``), whether or not its trigger is then reached.
    Triggers (the fault fires as soon as any set one is reached):
    ``after_messages`` counts server→client messages already sent on that
    connection (0 = right after the WebSocket is accepted);
    ``after_audio_bytes`` counts audio bytes received (STT);
    ``after_audio_chunks`` counts ``audio_chunk`` frames sent (TTS).  With none
    set the fault fires at once.  ``service="any"`` also matches authenticated
    REST requests.
    """

    service: FaultService
    kind: FaultKind
    after_messages: int | None = None
    after_audio_bytes: int | None = None
    message: str = "Internal server error"
    code: str | None = None
    after_audio_chunks: int | None = None
    times: int | None = 1

    def __post_init__(self) -> None:
        if self.times is not None and self.times < 1:
            raise ValueError(f"Fault.times must be >= 1 or None, not {self.times}")

    def matches(self, service: str) -> bool:
        return self.service in ("any", service)


@dataclass
class EmulatorSettings:
    """Behaviour knobs.  Mutable: a running emulator reads them live."""

    # --- auth / account (§1.4, §2.4) ---
    api_key: str | None = None
    user_id: int = 43
    workspace: str = "default"
    credit_balance: float = 9.97
    credits_error_frame: bool = True

    # --- handshake variants (§2.2, §9.1, §9.2) ---
    handshake: HandshakeStyle = "envelope"
    stt_connected: SttConnectedPlacement = "after_start"
    early_messages: EarlyMessagePolicy = "drop"

    # --- timing (seconds) ---
    connect_latency: float = 0.0
    first_chunk_latency: float = 0.0
    chunk_gap: float = 0.0
    finalize_latency: float = 0.0
    # The emulator's side of every WebSocket close handshake waits this long:
    # its answer to a client's close frame, and its own close frame (after
    # session_stopped, a rejection, an error fault).  Emulator shutdown skips it.
    close_delay: float = 0.0

    # --- TTS (§3) ---
    tts_chunk_bytes: int = 2048
    # Tone-code symbol length: TTS audio length per character, and the symbol
    # length the STT side decodes with (one knob, so TTS output transcribes back).
    tts_seconds_per_char: float = DEFAULT_SECONDS_PER_CHAR
    close_tts_after_context_closed: bool = False
    tts_ack_style: TtsAckStyle = "object"
    # §9.7: lowest accepted speed; 0.25 (MCP constants) or 0.5 (docs, SDKs).
    tts_min_speed: float = MCP_MIN_SPEED
    tts_error_style: TtsErrorStyle = "object"

    # --- concurrency per key (§6, §2.7, §3.5) ---
    stt_concurrency: int = STT_CONCURRENCY
    tts_concurrency: int = TTS_CONCURRENCY
    # §6 does not say what the limit counts.  "sessions": STT sessions (at
    # `start`) and TTS contexts; "connections": every authenticated socket of
    # the service, from connection_established until it closes (checked at
    # handshake time; its sessions/contexts then do not count again).
    concurrency_counts: ConcurrencyCounts = "sessions"

    # --- tolerant-reader testing ---
    extra_fields: bool = False

    # --- STT (§2) ---
    stt_empty_final_on_silence: bool = True
    # With `context` (§2.5): True makes the canonical (LLM) final differ from the
    # first emit (first letter upper-cased); False re-emits the same text.
    stt_llm_refine_text: bool = False
    # §2.5 / §8.12: wall time (ms) between the first emit and the canonical final
    # with `context` (60db's documented example, `llm_latency_ms: 240`), spent
    # without holding up the session; the canonical reports it as llm_latency_ms.
    stt_llm_latency_ms: int = DEFAULT_LLM_LATENCY_MS
    # §8.12: False models a plan without LLM refinement (REST strips `context`,
    # §2.5): `context` is accepted, each utterance gives one canonical final.
    stt_llm_refinement: bool = True
    detected_language: str = "en"
    stt_cost_per_second: float = 0.0005 / 60
    # §9.3: binary frames follow config.encoding, or are always μ-law (the docs'
    # "telephony mode", which garbles a client's binary linear PCM).
    stt_binary_encoding: SttBinaryEncoding = "config"
    # §9.4: also accept "LINEAR16"/"MULAW" as STT encoding names.
    stt_encoding_aliases: bool = False
    # §9.5: utterance_end_ms < 300 is clamped (RV) or rejected (PURI).
    stt_utterance_end_below_min: BelowMinimumPolicy = "clamp"
    # §9.24: interim period (ms) used when start omits interim_results_frequency;
    # None = no interims unless requested.
    stt_default_interim_ms: int | None = None

    # --- catalog (§5.5, §5.6, §9.15, §9.17) ---
    voices_shape: VoicesShape = "split"
    languages_shape: LanguagesShape = "skill"
    voices: list[Voice] = field(default_factory=default_voices)
