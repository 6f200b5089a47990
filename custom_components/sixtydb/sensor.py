"""The 60db account in view: the credit balance and what this client has spent.

Both figures come from 60db itself, pushed rather than polled: every login
handshake (the catalog refresh's and each request's) carries the balance, and
every STT session ends with a billing summary. The client core keeps the
newest of each and says when they change; the sensors redraw then.
"""

from __future__ import annotations

from datetime import UTC, datetime

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import SixtyDbConfigEntry
from .entity import SixtyDbEntity
from .issues import account_signal, known_balance

# Nothing here waits on the network: the values are in memory.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SixtyDbConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the balance and the spending sensors of a config entry."""
    async_add_entities([CreditBalanceSensor(entry), SpentSensor(entry)])


class SixtyDbAccountSensor(SixtyDbEntity, SensorEntity):
    """A figure of the account in US dollars, redrawn whenever 60db reports one."""

    _attr_device_class = SensorDeviceClass.MONETARY
    # An ISO 4217 code, as the monetary device class asks (not "$").
    _attr_native_unit_of_measurement = "USD"

    async def async_added_to_hass(self) -> None:
        """Follow the account as well as the coordinator."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, account_signal(self.entry), self.async_write_ha_state
            )
        )


class CreditBalanceSensor(SixtyDbAccountSensor):
    """The wallet's balance, as the newest handshake reported it.

    State class "total" (an amount that goes down with use and up with a
    top-up), as Home Assistant's other balance sensors do: its long-term
    statistics then show the spending between top-ups.
    """

    _attr_state_class = SensorStateClass.TOTAL
    _attr_suggested_display_precision = 2

    def __init__(self, entry: SixtyDbConfigEntry) -> None:
        super().__init__(entry, "credit_balance")

    @property
    def available(self) -> bool:
        """Unavailable while the balance is unknown (never seen, or the wallet refused)."""
        return super().available and self.native_value is not None

    @property
    def native_value(self) -> float | None:
        """The balance in USD."""
        return known_balance(self.hass, self.entry, self.client)


class SpentSensor(SixtyDbAccountSensor):
    """The cost of this client's STT sessions, from 60db's billing summaries.

    It counts from zero whenever the entry is set up (a restart, a reload),
    so ``last_reset`` is that moment: Home Assistant's statistics then start
    a new cycle instead of reading the drop to zero as money earned back.
    60db's TTS socket reports no cost, so only speech-to-text is counted.
    """

    _attr_state_class = SensorStateClass.TOTAL
    # A voice command costs a few hundredths of a cent.
    _attr_suggested_display_precision = 5

    def __init__(self, entry: SixtyDbConfigEntry) -> None:
        super().__init__(entry, "spent")

    @property
    def available(self) -> bool:
        """Counted here, so known even while 60db cannot be reached."""
        return True

    @property
    def native_value(self) -> float:
        """USD since ``last_reset``."""
        return self.client.usage.cost

    @property
    def last_reset(self) -> datetime:
        """When the client started counting."""
        return datetime.fromtimestamp(self.client.usage.since, UTC)
