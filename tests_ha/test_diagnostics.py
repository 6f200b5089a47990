"""Diagnostics through Home Assistant's HTTP API: useful, and without the API key."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from wyoming_60db import __version__

from .conftest import API_KEY


async def test_diagnostics(hass: HomeAssistant, setup_entry: MockConfigEntry, hass_client) -> None:
    """Configuration (key redacted), client version and catalog counts."""
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)

    assert API_KEY not in json.dumps(diagnostics)
    assert diagnostics["entry"]["data"]["api_key"] == "**REDACTED**"
    assert diagnostics["entry"]["data"]["api_url"] == setup_entry.data["api_url"]
    assert diagnostics["client"] == f"wyoming-60db=={__version__}"
    catalog = diagnostics["catalog"]
    voices = setup_entry.runtime_data.coordinator.data.voices
    assert catalog["voices"] == len(voices) > 0
    assert catalog["cloned_voices"] == sum(voice.is_cloned for voice in voices) > 0
    assert catalog["stt_languages"] == 39
    assert "en" in catalog["tts_languages"]
    assert catalog["has_credits"] is True
    assert catalog["last_update_success"] is True
