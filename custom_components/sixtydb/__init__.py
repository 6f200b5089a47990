"""The 60db integration: streaming speech-to-text and text-to-speech."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError

from .api import create_client
from .coordinator import CatalogCoordinator, SixtyDbConfigEntry, SixtyDbData

PLATFORMS: list[Platform] = [Platform.STT, Platform.TTS]


async def async_setup_entry(hass: HomeAssistant, entry: SixtyDbConfigEntry) -> bool:
    """Log in, load the catalog and set up the STT and TTS entities.

    A network failure raises ``ConfigEntryNotReady`` and a rejected key
    ``ConfigEntryAuthFailed`` (which starts reauth); both come from the first
    catalog refresh.
    """
    try:
        client = create_client(hass, entry.data)
    except ValueError as err:  # an API URL edited into something unusable
        raise ConfigEntryError(
            translation_domain=entry.domain, translation_key="invalid_url"
        ) from err
    # Registered first: Home Assistant runs it on unload and on every failed setup.
    entry.async_on_unload(client.close)
    coordinator = CatalogCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = SixtyDbData(client=client, coordinator=coordinator)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    client.prewarm()
    # Home Assistant up to 2026.10 asserts a bool here.
    return True


async def async_unload_entry(hass: HomeAssistant, entry: SixtyDbConfigEntry) -> bool:
    """Unload the entities; the client is closed by the ``async_on_unload`` hook."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
