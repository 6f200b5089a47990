"""Typed errors of the 60db client.

Every error carries a short machine-readable ``code`` that front ends pass on
unchanged: the Wyoming server puts it in an ``error`` event, the Home Assistant
integration maps it to a translation key. Messages never contain the API key:
the client scrubs any server text before it reaches an exception.

What 60db reports (an error code and text, an HTTP status) is turned into
these types here and nowhere else, whichever transport it came by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final


class SixtyDbError(Exception):
    """Base class of every error raised by the 60db client."""

    code = "sixtydb_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationError(SixtyDbError):
    """The API key (or token) was rejected."""

    code = "auth_failed"


class InsufficientCreditsError(SixtyDbError):
    """The workspace wallet is empty (``INSUFFICIENT_CREDITS``, close 1008)."""

    code = "insufficient_credits"


class ConcurrencyLimitError(SixtyDbError):
    """60db's per-account limit of simultaneous STT or TTS requests was reached."""

    code = "concurrency_limit"

    def __init__(self, message: str, *, service: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.limit = limit


class RateLimitError(SixtyDbError):
    """The plan's request rate was exceeded (HTTP 429 without a concurrency code)."""

    code = "rate_limit"


class UnsupportedLanguageError(SixtyDbError):
    """A language code that 60db's STT does not support."""

    code = "unsupported_language"

    def __init__(self, message: str, *, language: str | None = None) -> None:
        super().__init__(message)
        self.language = language


class UnknownVoiceError(SixtyDbError):
    """A voice id or name that is not in the account's catalog."""

    code = "unknown_voice"

    def __init__(self, message: str, *, voice: str | None = None) -> None:
        super().__init__(message)
        self.voice = voice


class UnsupportedAudioFormatError(SixtyDbError):
    """An encoding, sample rate or combination 60db does not accept."""

    code = "unsupported_audio_format"


class TextTooLongError(SixtyDbError):
    """Text beyond 60db's per-request limit."""

    code = "text_too_long"


class InvalidRequestError(SixtyDbError):
    """60db rejected a parameter (speed, stability, similarity, ...)."""

    code = "invalid_request"


class ProtocolError(SixtyDbError):
    """60db sent something that is not the documented protocol."""

    code = "protocol_error"


class SixtyDbTimeoutError(SixtyDbError, TimeoutError):
    """A network wait exceeded its time limit."""

    code = "timeout"


class ConnectionLostError(SixtyDbError):
    """The connection to 60db failed or closed before the request finished."""

    code = "connection_lost"


class ServerError(SixtyDbError):
    """60db reported an error this client has no more specific type for."""

    code = "server_error"

    def __init__(self, message: str, *, server_code: str | None = None) -> None:
        super().__init__(message)
        self.server_code = server_code


# ------------------------------------------------------------------ mapping

_AUTH_STATUSES: Final = frozenset({401, 403})
_NO_CREDITS_STATUS: Final = 402
_TOO_MANY_STATUS: Final = 429
_SERVER_STATUSES_FROM: Final = 500


def error_for_code(
    text: str, code: str | None, details: Mapping[str, Any] | None, *, service: str
) -> SixtyDbError:
    """The typed error for 60db's error text and code, from any transport.

    60db documents few codes (§2.6), so the text is read too.
    """
    normalized = (code or "").upper()
    lowered = text.lower()
    limit = details.get("limit") if details else None
    if "CREDIT" in normalized or "insufficient" in lowered:
        return InsufficientCreditsError(f"60db: {text} (the wallet has no credits)")
    if "CONCURRENCY" in normalized or "concurrent" in lowered:
        return ConcurrencyLimitError(
            f"60db: {text}", service=service, limit=limit if isinstance(limit, int) else None
        )
    if normalized in {"INVALID_API_KEY", "UNAUTHORIZED", "AUTH_FAILED", "FORBIDDEN"} or any(
        word in lowered for word in ("api key", "unauthorized", "authentication", "invalid token")
    ):
        return AuthenticationError(f"60db rejected the credentials: {text}")
    if "LANGUAGE" in normalized:
        return UnsupportedLanguageError(f"60db: {text}")
    if "VOICE" in normalized or "voice not found" in lowered:
        return UnknownVoiceError(f"60db: {text}")
    if (
        normalized in {"UNSUPPORTED_ENCODING", "UNSUPPORTED_SAMPLE_RATE"}
        or "unsupported" in lowered
    ):
        return UnsupportedAudioFormatError(f"60db: {text}")
    if "TOO_LONG" in normalized or "too long" in lowered:
        return TextTooLongError(f"60db: {text}")
    if normalized in {"INVALID_PARAMETER", "INVALID_MESSAGE", "INVALID_JSON"}:
        return InvalidRequestError(f"60db: {text}")
    return ServerError(f"60db error: {text}", server_code=code)


def error_for_http_status(
    status: int,
    detail: str | None = None,
    *,
    service: str,
    server_code: str | None = None,
    details: Mapping[str, Any] | None = None,
    upgrade: bool = False,
) -> SixtyDbError:
    """The typed error for an HTTP error status (§5.1), from REST or a WebSocket upgrade.

    ``detail`` is 60db's own message, already scrubbed of credentials;
    ``upgrade`` says the status refused a WebSocket rather than answered REST.
    """
    said = f"{detail} (HTTP {status})" if detail else f"HTTP {status}"
    if status in _AUTH_STATUSES:
        return AuthenticationError(f"60db rejected the credentials: {said}")
    if status == _NO_CREDITS_STATUS:
        return InsufficientCreditsError(f"60db: {said} (the wallet has no credits)")
    if status == _TOO_MANY_STATUS:
        if server_code and "CONCURRENCY" in server_code.upper():
            return error_for_code(said, server_code, details, service=service)
        if upgrade:
            # A session refused at the door: 60db counts sessions, not requests (§6).
            return ConcurrencyLimitError(f"60db: too many sessions ({said})", service=service)
        return RateLimitError(f"60db rate limit reached: {said}")
    if upgrade:
        return ConnectionLostError(f"60db refused the {service} WebSocket ({said})")
    if status >= _SERVER_STATUSES_FROM:
        return ServerError(f"60db server error: {said}", server_code=server_code)
    return error_for_code(said, server_code, details, service=service)
