"""The 60db integration: streaming speech-to-text and text-to-speech."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send

from .api import create_client
from .coordinator import CatalogCoordinator, SixtyDbConfigEntry, SixtyDbData
from .issues import account_signal, async_check_low_balance
from .vocabulary import EntryVocabulary

PLATFORMS: list[Platform] = [Platform.SENSOR, Platform.STT, Platform.TTS]


async def async_setup_entry(hass: HomeAssistant, entry: SixtyDbConfigEntry) -> bool:
    """Log in, load the catalog and set up the entities.

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

    # Every handshake and every STT billing summary updates the client's
    # account and usage; the sensors and the low-balance check follow them.
    # Listening before the first refresh catches the balance its login reports.
    signal = account_signal(entry)

    @callback
    def check_balance() -> None:
        async_check_low_balance(hass, entry, client)

    entry.async_on_unload(client.add_listener(lambda: async_dispatcher_send(hass, signal)))
    entry.async_on_unload(async_dispatcher_connect(hass, signal, check_balance))

    coordinator = CatalogCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()

    # The home's names for 60db: built now, then only when they change.
    vocabulary = EntryVocabulary(hass)
    vocabulary.async_start()
    entry.async_on_unload(vocabulary.async_stop)

    entry.runtime_data = SixtyDbData(client=client, coordinator=coordinator, vocabulary=vocabulary)
    # The threshold is an option: a new one applies without a reload.
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    client.prewarm()
    # Home Assistant up to 2026.10 asserts a bool here.
    return True


async def async_unload_entry(hass: HomeAssistant, entry: SixtyDbConfigEntry) -> bool:
    """Unload the entities; the client and the listeners go with ``async_on_unload``."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def _async_options_updated(hass: HomeAssistant, entry: SixtyDbConfigEntry) -> None:
    async_check_low_balance(hass, entry, entry.runtime_data.client)
