"""Constants of the 60db integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from wyoming_60db.sixtydb import DEFAULT_VOICE_ID
from wyoming_60db.sixtydb.limits import (
    DEFAULT_SIMILARITY,
    DEFAULT_SPEED,
    DEFAULT_STABILITY,
    MAX_STT_LANGUAGES,
    STT_ENCODINGS,
)

DOMAIN: Final = "sixtydb"
LOGGER = logging.getLogger(__package__)

MANUFACTURER: Final = "60db"
DEVICE_NAME: Final = "60db"

CONF_API_URL: Final = "api_url"
SECTION_ADVANCED: Final = "advanced"

# Options (entry.options). Read at every request, so a change applies at once.
CONF_STT_LANGUAGES: Final = "stt_languages"
CONF_STT_ENCODING: Final = "stt_encoding"
CONF_VOICE: Final = "voice"
CONF_SPEED: Final = "speed"
CONF_STABILITY: Final = "stability"
CONF_SIMILARITY: Final = "similarity"

STT_ENCODING_LINEAR, STT_ENCODING_MULAW = STT_ENCODINGS

DEFAULTS: Final[dict[str, object]] = {
    CONF_STT_LANGUAGES: [],  # empty: let 60db detect the language
    CONF_STT_ENCODING: STT_ENCODING_LINEAR,
    CONF_VOICE: DEFAULT_VOICE_ID,
    CONF_SPEED: DEFAULT_SPEED,
    CONF_STABILITY: DEFAULT_STABILITY,
    CONF_SIMILARITY: DEFAULT_SIMILARITY,
}

# Declared once, in the client core; the STT entity reads it from here.
__all__ = ["MAX_STT_LANGUAGES"]

# Voices and languages change rarely (a new cloned voice at most), and the
# account check doubles as the credits check behind the repair issue.
CATALOG_REFRESH: Final = timedelta(minutes=30)

# 24 kHz is 60db's usual voice rate; HA converts for satellites that want 16 kHz.
TTS_SAMPLE_RATE: Final = 24000

ISSUE_NO_CREDITS: Final = "no_credits"
