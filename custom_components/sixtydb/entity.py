"""What the 60db entities share: the "60db" service device, the options, the credits state."""

from __future__ import annotations

from typing import Any

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from wyoming_60db.sixtydb import InsufficientCreditsError, SixtyDbClient, SixtyDbError

from .const import DEFAULTS, DEVICE_NAME, DOMAIN, MANUFACTURER
from .coordinator import CatalogCoordinator, SixtyDbConfigEntry
from .issues import DASHBOARD_URL, async_clear_no_credits, async_report_no_credits


class SixtyDbEntity(CoordinatorEntity[CatalogCoordinator]):
    """A 60db entity: named by translation, on the account's service device."""

    _attr_has_entity_name = True

    def __init__(self, entry: SixtyDbConfigEntry, key: str) -> None:
        super().__init__(entry.runtime_data.coordinator)
        self.entry = entry
        self._attr_translation_key = key
        self._attr_unique_id = f"{entry.entry_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=DEVICE_NAME,
            manufacturer=MANUFACTURER,
            entry_type=DeviceEntryType.SERVICE,
            configuration_url=DASHBOARD_URL,
        )

    @property
    def client(self) -> SixtyDbClient:
        """The entry's client (one per config entry)."""
        return self.entry.runtime_data.client

    def option(self, key: str) -> Any:
        """An option, read at every request so that a change applies at once."""
        return self.entry.options.get(key, DEFAULTS[key])

    def report_outcome(self, error: SixtyDbError | None = None) -> None:
        """Keep the "no credits" repair issue in step with what 60db just said."""
        if error is None:
            async_clear_no_credits(self.hass, self.entry)
        elif isinstance(error, InsufficientCreditsError):
            async_report_no_credits(self.hass, self.entry)
