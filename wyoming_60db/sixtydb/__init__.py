"""Async client core for the 60db speech API.

It depends on neither Wyoming nor Home Assistant: both front ends are thin
adapters over :class:`SixtyDbClient`.
"""

from .catalog import DEFAULT_VOICE_ID, DOCUMENTED_STT_LANGUAGES, SttLanguage, Voice
from .client import SixtyDbClient
from .config import DEFAULT_API_URL, ClientConfig, Timeouts
from .errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionLostError,
    InsufficientCreditsError,
    InvalidRequestError,
    ProtocolError,
    RateLimitError,
    ServerError,
    SixtyDbError,
    SixtyDbTimeoutError,
    TextTooLongError,
    UnknownVoiceError,
    UnsupportedAudioFormatError,
    UnsupportedLanguageError,
)
from .limits import MAX_TEXT_CHARS
from .protocol import Account, Billing, Transcription
from .stt import SttOptions, SttResult, SttSession
from .terms import context_terms, stt_context
from .tts import TtsContext, TtsOptions
from .usage import Usage

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_VOICE_ID",
    "DOCUMENTED_STT_LANGUAGES",
    "MAX_TEXT_CHARS",
    "Account",
    "AuthenticationError",
    "Billing",
    "ClientConfig",
    "ConcurrencyLimitError",
    "ConnectionLostError",
    "InsufficientCreditsError",
    "InvalidRequestError",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "SixtyDbClient",
    "SixtyDbError",
    "SixtyDbTimeoutError",
    "SttLanguage",
    "SttOptions",
    "SttResult",
    "SttSession",
    "TextTooLongError",
    "Timeouts",
    "Transcription",
    "TtsContext",
    "TtsOptions",
    "UnknownVoiceError",
    "UnsupportedAudioFormatError",
    "UnsupportedLanguageError",
    "Usage",
    "Voice",
    "context_terms",
    "stt_context",
]
