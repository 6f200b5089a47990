"""Diagnostics: the configuration without the key, the client version, catalog counts."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant

from wyoming_60db import __version__ as client_version

from .coordinator import SixtyDbConfigEntry

TO_REDACT = {CONF_API_KEY}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SixtyDbConfigEntry
) -> dict[str, Any]:
    """What a bug report needs, and nothing that identifies or unlocks the account."""
    coordinator = entry.runtime_data.coordinator
    catalog = coordinator.data
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
    }
