"""Diagnostics: the configuration without the key, the client version, catalog counts,
the end-of-speech settings in force, the vocabulary's size and what 60db has billed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from wyoming_60db import __version__ as client_version
from wyoming_60db.pipeline.endpointing import utterance_end_ms

from .const import (
    CONF_ENDPOINTING,
    CONF_MAX_COMMAND_SECONDS,
    CONF_NO_SPEECH_SECONDS,
    CONF_VAD_SENSITIVITY,
    CONF_VOCABULARY,
    DEFAULTS,
)
from .coordinator import SixtyDbConfigEntry

TO_REDACT = {CONF_API_KEY}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SixtyDbConfigEntry
) -> dict[str, Any]:
    """What a bug report needs, and nothing that identifies or unlocks the account."""
    coordinator = entry.runtime_data.coordinator
    catalog = coordinator.data
    usage = entry.runtime_data.client.usage

    def option(key: str) -> Any:
        return entry.options.get(key, DEFAULTS[key])

    vocabulary_on = bool(option(CONF_VOCABULARY))
    return {
        "client": f"wyoming-60db=={client_version}",
        "entry": {
            "version": f"{entry.version}.{entry.minor_version}",
            "state": entry.state.value,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "catalog": {
            "last_update_success": coordinator.last_update_success,
            "voices": len(catalog.voices),
            "cloned_voices": sum(1 for voice in catalog.voices if voice.is_cloned),
            "tts_languages": catalog.tts_languages,
            "stt_languages": len(catalog.stt_languages),
            "has_credits": catalog.account is not None,
        },
        # What the STT entity uses now, defaults included: the stored options
        # above hold only what the user changed.
        "end_of_speech": {
            "endpointing": option(CONF_ENDPOINTING),
            "vad_sensitivity": option(CONF_VAD_SENSITIVITY),
            "utterance_end_ms": _utterance_end_ms(option(CONF_VAD_SENSITIVITY)),
            "max_command_seconds": option(CONF_MAX_COMMAND_SECONDS),
            "no_speech_seconds": option(CONF_NO_SPEECH_SECONDS),
        },
        # How many names each request sends, never the names: they describe the home.
        "vocabulary": {
            "enabled": vocabulary_on,
            "terms_sent": len(entry.runtime_data.vocabulary.terms) if vocabulary_on else 0,
        },
        "usage": {
            "stt_sessions": usage.stt_sessions,
            "stt_seconds": round(usage.stt_seconds, 3),
            "cost_usd": usage.cost,
            "since": datetime.fromtimestamp(usage.since, UTC).isoformat(),
        },
    }


def _utterance_end_ms(sensitivity: Any) -> int | str:
    try:
        return utterance_end_ms(sensitivity)
    except ValueError:  # the stored value is shown beside it
        return "invalid"
