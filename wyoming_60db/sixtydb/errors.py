"""Typed errors of the 60db client.

Every error carries a short machine-readable ``code`` that front ends pass on
unchanged: the Wyoming server puts it in an ``error`` event, the Home Assistant
integration maps it to a translation key. Messages never contain the API key:
the client scrubs any server text before it reaches an exception.
"""

from __future__ import annotations


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
