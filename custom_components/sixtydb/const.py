"""Constants of the 60db integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from wyoming_60db.pipeline.endpointing import (
    DEFAULT_MAX_COMMAND_SECONDS,
    DEFAULT_NO_SPEECH_SECONDS,
)
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
CONF_VOCABULARY: Final = "vocabulary"
"""Send the names of the home's areas, floors and exposed entities as 60db ``context.terms``."""
CONF_LOW_BALANCE: Final = "low_balance_warning"
"""USD; below it a repair issue warns (0: off)."""

# End of speech: 60db ends the user's turn (server-side endpointing) unless
# switched off, with two guards. Shown in their own section of the options
# form, stored flat in entry.options like every other option.
SECTION_END_OF_SPEECH: Final = "end_of_speech"
CONF_ENDPOINTING: Final = "endpointing"
CONF_VAD_SENSITIVITY: Final = "vad_sensitivity"
CONF_MAX_COMMAND_SECONDS: Final = "max_command_seconds"
CONF_NO_SPEECH_SECONDS: Final = "no_speech_seconds"
END_OF_SPEECH_OPTIONS: Final = (
    CONF_ENDPOINTING,
    CONF_VAD_SENSITIVITY,
    CONF_MAX_COMMAND_SECONDS,
    CONF_NO_SPEECH_SECONDS,
)
# A command shorter than 5 s would be cut; a minute is far beyond any command.
MAX_COMMAND_SECONDS_RANGE: Final = (5.0, 60.0)
NO_SPEECH_SECONDS_RANGE: Final = (2.0, 30.0)
LOW_BALANCE_RANGE: Final = (0.0, 1000.0)

STT_ENCODING_LINEAR, STT_ENCODING_MULAW = STT_ENCODINGS

DEFAULTS: Final[dict[str, object]] = {
    CONF_STT_LANGUAGES: [],  # empty: let 60db detect the language
    CONF_STT_ENCODING: STT_ENCODING_LINEAR,
    CONF_VOICE: DEFAULT_VOICE_ID,
    CONF_SPEED: DEFAULT_SPEED,
    CONF_STABILITY: DEFAULT_STABILITY,
    CONF_SIMILARITY: DEFAULT_SIMILARITY,
    # Off by default: with a context 60db refines each final, which the
    # benchmark measures at +240 ms per command (README, Benchmarks).
    CONF_VOCABULARY: False,
    CONF_LOW_BALANCE: 0.0,
    CONF_ENDPOINTING: True,
    CONF_VAD_SENSITIVITY: "default",  # 500 ms, 60db's own default
    CONF_MAX_COMMAND_SECONDS: DEFAULT_MAX_COMMAND_SECONDS,  # 15 s, as Home Assistant's VAD
    CONF_NO_SPEECH_SECONDS: DEFAULT_NO_SPEECH_SECONDS,
}

# Declared once, in the client core; the STT entity reads it from here.
__all__ = ["MAX_STT_LANGUAGES"]

# Voices and languages change rarely (a new cloned voice at most), and the
# account check doubles as the credits check behind the repair issue.
CATALOG_REFRESH: Final = timedelta(minutes=30)

# 24 kHz is 60db's usual voice rate; HA converts for satellites that want 16 kHz.
TTS_SAMPLE_RATE: Final = 24000

ISSUE_NO_CREDITS: Final = "no_credits"
