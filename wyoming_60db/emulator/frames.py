"""Builders for server→client frames whose shape depends on a knob.

Handshake frames follow §2.4/§3.4 and the §9.2 variants; error frames follow
§2.6 (STT: flat ``type:error``) and §3.4/§9.22 (TTS: ``{"error": {...}}`` or
``{"error": "<message>"}``).
"""

from __future__ import annotations

import time
from typing import Any

from wyoming_60db.sixtydb.vocabulary import ServerMessage

from .settings import EmulatorSettings, HandshakeStyle, TtsErrorStyle

Frame = dict[str, Any]


def now_ms() -> int:
    return int(time.time() * 1000)


def connecting_frame(style: HandshakeStyle) -> Frame:
    """§3.4 envelope; ``typed`` is the S-REF diagram form (§9.2)."""
    body: Frame = {"message": "Authenticating...", "timestamp": now_ms()}
    if style == "envelope":
        return {ServerMessage.CONNECTING: True, **body}
    if style == "typed":
        return {"type": ServerMessage.CONNECTING, **body}
    return {"type": ServerMessage.CONNECTING, ServerMessage.CONNECTING: True, **body}


def established_frame(style: HandshakeStyle, service: str, settings: EmulatorSettings) -> Frame:
    info: Frame = {
        "service": service,
        "user_id": settings.user_id,
        "credit_balance": settings.credit_balance,
        "workspace": settings.workspace,
    }
    if style == "envelope":
        return {ServerMessage.CONNECTION_ESTABLISHED: info}
    if style == "typed":
        return {"type": ServerMessage.CONNECTION_ESTABLISHED, **info}
    return {
        "type": ServerMessage.CONNECTION_ESTABLISHED,
        ServerMessage.CONNECTION_ESTABLISHED: info,
    }


def stt_error_frame(
    message: str, code: str | None = None, details: dict[str, Any] | None = None
) -> Frame:
    """§2.6: ``{"type":"error","error":<message>,"error_code":<code>,"details":{…}}``."""
    frame: Frame = {"type": ServerMessage.ERROR, "error": message}
    if code is not None:
        frame["error_code"] = code
    if details is not None:
        frame["details"] = details
    return frame


def tts_error_frame(
    style: TtsErrorStyle,
    message: str,
    code: str | None = None,
    details: dict[str, Any] | None = None,
    context_id: str | None = None,
) -> Frame:
    """§3.4 object form (GUESS: plus ``code``) or the §9.22 bare-string form."""
    if style == "string":
        return {ServerMessage.ERROR: message}
    body: Frame = {}
    if context_id is not None:
        body["context_id"] = context_id
    body["message"] = message
    if code is not None:
        body["code"] = code
    if details is not None:
        body["details"] = details
    return {ServerMessage.ERROR: body}
