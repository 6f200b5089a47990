"""60db client errors as translated Home Assistant errors.

Every client error carries a stable ``code`` (``wyoming_60db.sixtydb.errors``);
the integration uses it unchanged as the translation key, so ``strings.json``
has one ``exceptions`` entry per code. The client's message text is never put
into a placeholder: it is English, and it is the one place a credential could
leak from if 60db ever echoed one back.
"""

from __future__ import annotations

from typing import Final

from homeassistant.exceptions import HomeAssistantError

from wyoming_60db.sixtydb import (
    ConcurrencyLimitError,
    SixtyDbError,
    UnknownVoiceError,
    UnsupportedLanguageError,
)

from .const import DOMAIN

# The codes strings.json translates; anything else is reported as a generic 60db error.
TRANSLATED_CODES: Final = frozenset(
    {
        "auth_failed",
        "insufficient_credits",
        "concurrency_limit",
        "rate_limit",
        "unsupported_language",
        "unknown_voice",
        "unsupported_audio_format",
        "text_too_long",
        "invalid_request",
        "protocol_error",
        "timeout",
        "connection_lost",
        "server_error",
    }
)
FALLBACK_CODE: Final = "sixtydb_error"


def translated_error(err: SixtyDbError) -> HomeAssistantError:
    """A ``HomeAssistantError`` that says what went wrong in the user's language."""
    key, placeholders = translation_of(err)
    return ha_error(key, **placeholders)


def translation_of(err: SixtyDbError) -> tuple[str, dict[str, str]]:
    """The translation key and placeholders for a client error."""
    key = err.code if err.code in TRANSLATED_CODES else FALLBACK_CODE
    return key, _placeholders(err)


def ha_error(key: str, **placeholders: str) -> HomeAssistantError:
    """A translated ``HomeAssistantError`` raised by the integration itself."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )


def _placeholders(err: SixtyDbError) -> dict[str, str]:
    # Every key always present: a translation with a missing placeholder fails to render.
    values = {"voice": "", "language": "", "limit": "", "service": ""}
    if isinstance(err, UnknownVoiceError):
        values["voice"] = err.voice or ""
    elif isinstance(err, UnsupportedLanguageError):
        values["language"] = err.language or ""
    elif isinstance(err, ConcurrencyLimitError):
        values["limit"] = str(err.limit) if err.limit is not None else "?"
        values["service"] = err.service.upper()
    return values
