"""Tolerant reader for 60db's WebSocket messages.

60db's documentation contradicts itself in several places (60db-protocol.md §9).
Everything that decodes a server message lives here, so the sessions above it
see one normalised shape whatever variant the server sent:

* handshake frames as key envelopes (``{"connection_established": {...}}``) or
  typed (``{"type": "connection_established", ...}``) or both (§9.2);
* TTS acknowledgements as objects or bare ``true`` (§3.4);
* errors as ``{"type": "error", "error": "..."}``, ``{"error": {...}}`` or
  ``{"error": "..."}`` (§9.22);
* unknown message types and extra fields, which are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import ProtocolError, SixtyDbError, error_for_code
from .vocabulary import CloseCode, ServerMessage

JsonObject = dict[str, Any]

# Outer keys that name a message in the envelope style (§3.1, §2.4).
_ENVELOPE_KEYS: Final = (
    ServerMessage.CONNECTION_ESTABLISHED,
    ServerMessage.CONNECTING,
    ServerMessage.CONNECTED,
    ServerMessage.CONTEXT_CREATED,
    ServerMessage.AUDIO_CHUNK,
    ServerMessage.FLUSH_COMPLETED,
    ServerMessage.CONTEXT_CLOSED,
    ServerMessage.ERROR,
)


@dataclass(frozen=True, slots=True)
class Account:
    """What ``connection_established`` tells about the account behind a key."""

    user_id: str
    credit_balance: float | None
    workspace: str | None


@dataclass(frozen=True, slots=True)
class Transcription:
    """One ``transcription`` event (§2.5)."""

    text: str
    is_final: bool
    speech_final: bool
    language: str | None = None
    confidence: float | None = None
    sentence_id: int | None = None

    @property
    def is_canonical(self) -> bool:
        """The one result per utterance a simple consumer should act on (§2.5)."""
        return self.is_final and self.speech_final


@dataclass(frozen=True, slots=True)
class Billing:
    """``session_stopped.billing_summary`` (§2.4)."""

    total_duration_seconds: float | None
    total_cost: float | None


def decode(raw: str | bytes) -> JsonObject:
    """Parse one text frame; anything but a JSON object is a protocol error."""
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(f"60db sent a frame that is not JSON: {_preview(raw)}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"60db sent JSON that is not an object: {_preview(raw)}")
    return message


def encode(message: Mapping[str, Any]) -> str:
    """Serialise a client message compactly."""
    return json.dumps(message, separators=(",", ":"))


def kind(message: JsonObject) -> str | None:
    """The message's name, whichever of the two styles it uses (§9.2)."""
    message_type = message.get("type")
    if isinstance(message_type, str):
        return message_type
    for key in _ENVELOPE_KEYS:
        if key in message:
            return key
    return None


def body(message: JsonObject, name: str) -> JsonObject:
    """The fields of a message: the envelope's object, or the flat message itself.

    A bare ``{"context_created": true}`` has no fields and yields ``{}``.
    """
    inner = message.get(name)
    if isinstance(inner, dict):
        return inner
    if message.get("type") == name:
        return message
    return {}


def context_id(message: JsonObject, name: str) -> str | None:
    """The ``context_id`` a TTS message refers to, when it says."""
    value = body(message, name).get("context_id")
    return value if isinstance(value, str) else None


def account(message: JsonObject) -> Account:
    """Read ``connection_established`` in either style."""
    fields = body(message, ServerMessage.CONNECTION_ESTABLISHED)
    user_id = fields.get("user_id")
    balance = fields.get("credit_balance")
    workspace = fields.get("workspace")
    return Account(
        user_id=str(user_id) if user_id is not None else "",
        credit_balance=float(balance) if isinstance(balance, int | float) else None,
        workspace=str(workspace) if workspace is not None else None,
    )


def transcription(message: JsonObject) -> Transcription:
    """Read a ``transcription`` event.

    ``speech_final`` is the canonical marker; when a server omits it, the
    minimal documented form (§2.5) makes ``is_final`` canonical instead.
    """
    is_final = bool(message.get("is_final", False))
    speech_final = message.get("speech_final")
    language = message.get("language")
    confidence = message.get("confidence")
    sentence_id = message.get("sentence_id")
    return Transcription(
        text=str(message.get("text") or ""),
        is_final=is_final,
        speech_final=is_final if speech_final is None else bool(speech_final),
        language=language.lower() if isinstance(language, str) and language else None,
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        sentence_id=sentence_id if isinstance(sentence_id, int) else None,
    )


def billing(message: JsonObject) -> Billing | None:
    """Read ``session_stopped.billing_summary`` if present."""
    summary = message.get("billing_summary")
    if not isinstance(summary, dict):
        return None
    duration = summary.get("total_duration_seconds")
    cost = summary.get("total_cost")
    return Billing(
        total_duration_seconds=float(duration) if isinstance(duration, int | float) else None,
        total_cost=float(cost) if isinstance(cost, int | float) else None,
    )


def error(message: JsonObject, *, service: str) -> SixtyDbError:
    """Turn any of the documented error shapes into a typed exception."""
    text, code, details = _error_fields(message)
    return error_for_code(text, code, details, service=service)


def close_error(code: int | None, reason: str, *, service: str) -> SixtyDbError | None:
    """An error implied by a close frame alone (§2.6: 1008 without an error frame)."""
    if code == CloseCode.POLICY_VIOLATION:
        return error_for_code(
            reason or "connection refused by policy", reason or None, None, service=service
        )
    return None


def _error_fields(message: JsonObject) -> tuple[str, str | None, Mapping[str, Any] | None]:
    inner = message.get(ServerMessage.ERROR)
    if isinstance(inner, dict):
        text = inner.get("message") or inner.get("error") or "unknown error"
        code = inner.get("code") or inner.get("error_code") or message.get("error_code")
        details = inner.get("details") or message.get("details")
    else:
        text = inner if isinstance(inner, str) and inner else message.get("message")
        code = message.get("error_code") or message.get("code")
        details = message.get("details")
    return (
        str(text or "unknown error"),
        str(code) if code else None,
        details if isinstance(details, dict) else None,
    )


def _preview(raw: str | bytes, limit: int = 60) -> str:
    text = raw if isinstance(raw, str) else raw[:limit].decode("utf-8", "replace")
    return repr(text[:limit])
