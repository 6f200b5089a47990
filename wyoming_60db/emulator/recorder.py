"""What the emulator saw and sent, for assertions in tests.

API keys and tokens are never recorded: only the auth method ("apiKey",
"token" or None).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class WsRecord:
    """One WebSocket connection (base for the per-service records)."""

    path: str
    auth_method: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)
    # Client messages as parsed JSON (audio payloads elided) or
    # {"binary_frame": n} / {"invalid_json": text} markers.
    received: list[dict[str, Any]] = field(default_factory=list)
    early_messages: int = 0  # received before connection_established (§1.4)
    ended: str | None = None  # e.g. "stopped", "client_closed", "error:CODE", "fault:drop"
    close_code: int | None = None


FinalCause = Literal["silence", "stop"]


@dataclass(frozen=True)
class SentFinal:
    """One ``is_final`` transcription the emulator sent, with when and why.

    The times are ``time.perf_counter()`` readings, so a benchmark or test in
    the same process can set them against its own clock: ``ended_at`` is when
    the emulator decided the utterance was over (the audio frame that completed
    ``utterance_end_ms`` of silence was processed, or ``stop``'s
    ``finalize_latency`` was spent), ``sent_at`` when this frame went out
    (later by the modelled LLM latency for a refined canonical final).
    """

    text: str
    sentence_id: int | None  # None on the empty final of a session without speech
    speech_final: bool  # True: the canonical final; False: the first emit (with context)
    cause: FinalCause  # trailing silence (60db's endpointing) or the client's stop
    audio_seconds: float  # session audio received when the utterance was ended
    ended_at: float
    sent_at: float


@dataclass
class SttRecord(WsRecord):
    """One ``/ws/stt`` connection (§2)."""

    start: dict[str, Any] | None = None  # the start message without "type" (context included)
    config: dict[str, Any] | None = None  # effective config after clamping
    languages: list[str] | None = None
    audio: bytearray = field(default_factory=bytearray, repr=False)  # exactly as received
    binary_frames: int = 0
    json_frames: int = 0
    transcripts: list[str] = field(default_factory=list)  # canonical finals sent
    finals: list[SentFinal] = field(default_factory=list)  # every is_final event sent, in order
    billing: dict[str, Any] | None = None

    @property
    def context_terms(self) -> list[Any] | None:
        """``start.context.terms`` as the client sent it (None: no context or no terms)."""
        context = (self.start or {}).get("context")
        terms = context.get("terms") if isinstance(context, dict) else None
        return list(terms) if isinstance(terms, list) else None

    @property
    def canonical_sent_at(self) -> list[float]:
        """``perf_counter()`` of each canonical (``speech_final``) final sent, in order."""
        return [final.sent_at for final in self.finals if final.speech_final]


@dataclass
class TtsRecord:
    """One TTS context (§3)."""

    context_id: str
    connection: int  # index into Emulator.tts_connections
    create: dict[str, Any]
    encoding: str
    sample_rate: int
    texts: list[str] = field(default_factory=list)
    flush_count: int = 0
    audio: bytearray = field(default_factory=bytearray, repr=False)  # all audio bytes sent
    closed: bool = False

    @property
    def audio_bytes(self) -> int:
        return len(self.audio)


@dataclass
class TtsConnectionRecord(WsRecord):
    """One ``/ws/tts`` connection."""

    contexts: list[str] = field(default_factory=list)


@dataclass
class Stats:
    ws_connections: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    handshakes_completed: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejected_auth: int = 0
    rest_requests: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    # (service, kind) → how many times a Fault fired: service is "stt", "tts"
    # or "rest" (where a service="any" fault landed), kind its Fault.kind.
    faults_injected: defaultdict[tuple[str, str], int] = field(
        default_factory=lambda: defaultdict(int)
    )


def elide_audio(message: Any) -> Any:
    """Copy of a message with base64 audio replaced by a length marker."""
    if not isinstance(message, dict):
        return message
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key in ("audio", "audioContent") and isinstance(value, str):
            out[key] = f"<{len(value)} base64 chars>"
        elif isinstance(value, dict):
            out[key] = elide_audio(value)
        else:
            out[key] = value
    return out
