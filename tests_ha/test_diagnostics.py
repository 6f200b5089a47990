"""Diagnostics through Home Assistant's HTTP API: useful, and without the API key."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from homeassistant.helpers import area_registry as ar
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.sixtydb.const import CONF_VAD_SENSITIVITY, CONF_VOCABULARY
from wyoming_60db import __version__

from .conftest import API_KEY, wait_for


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


async def test_diagnostics_of_speech_to_text(
    hass: HomeAssistant, setup_entry: MockConfigEntry, hass_client
) -> None:
    """The end-of-speech settings in force, the number of terms (never a term), the usage."""
    hass.config_entries.async_update_entry(setup_entry, options={CONF_VOCABULARY: True})
    ar.async_get(hass).async_create("Zorbulon Kammer")
    vocabulary = setup_entry.runtime_data.vocabulary
    await wait_for(lambda: "Zorbulon Kammer" in vocabulary.terms, "the area in the vocabulary")
    client = setup_entry.runtime_data.client
    client.usage.stt_sessions, client.usage.stt_seconds, client.usage.cost = 2, 3.5, 0.0125

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)
    assert diagnostics["end_of_speech"] == {
        "endpointing": True,
        "vad_sensitivity": "default",
        "utterance_end_ms": 500,
        "max_command_seconds": 15.0,
        "no_speech_seconds": 8.0,
    }
    assert diagnostics["vocabulary"] == {"enabled": True, "terms_sent": len(vocabulary.terms)}
    assert "Zorbulon" not in json.dumps(diagnostics)
    usage = diagnostics["usage"]
    assert (usage["stt_sessions"], usage["stt_seconds"], usage["cost_usd"]) == (2, 3.5, 0.0125)
    assert usage["since"].endswith("+00:00")

    hass.config_entries.async_update_entry(
        setup_entry, options={CONF_VOCABULARY: False, CONF_VAD_SENSITIVITY: "aggressive"}
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)
    assert diagnostics["vocabulary"] == {"enabled": False, "terms_sent": 0}
    assert diagnostics["end_of_speech"]["utterance_end_ms"] == 300
    hass.config_entries.async_update_entry(setup_entry, options={CONF_VAD_SENSITIVITY: "sleepy"})
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)
    assert diagnostics["end_of_speech"]["vad_sensitivity"] == "sleepy"
    assert diagnostics["end_of_speech"]["utterance_end_ms"] == "invalid"
    assert "Zorbulon" not in json.dumps(diagnostics)
