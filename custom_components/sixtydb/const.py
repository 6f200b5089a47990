"""Constants of the 60db integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from wyoming_60db.sixtydb import DEFAULT_VOICE_ID

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

STT_ENCODING_LINEAR: Final = "linear"
STT_ENCODING_MULAW: Final = "mulaw"
STT_ENCODINGS: Final = (STT_ENCODING_LINEAR, STT_ENCODING_MULAW)

DEFAULTS: Final[dict[str, object]] = {
    CONF_STT_LANGUAGES: [],  # empty: let 60db detect the language
    CONF_STT_ENCODING: STT_ENCODING_LINEAR,
    CONF_VOICE: DEFAULT_VOICE_ID,
    CONF_SPEED: 1.0,
    CONF_STABILITY: 50.0,
    CONF_SIMILARITY: 75.0,
}

# The documented ranges (60db-protocol.md §3.3); the client core rejects others.
SPEED_RANGE: Final = (0.5, 2.0)
PERCENT_RANGE: Final = (0.0, 100.0)
MAX_STT_LANGUAGES: Final = 5  # per session (§2.7)

# Voices and languages change rarely (a new cloned voice at most), and the
# account check doubles as the credits check behind the repair issue.
CATALOG_REFRESH: Final = timedelta(minutes=30)

# 24 kHz is 60db's usual voice rate; HA converts for satellites that want 16 kHz.
TTS_SAMPLE_RATE: Final = 24000

ISSUE_NO_CREDITS: Final = "no_credits"
