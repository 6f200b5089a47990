"""The credit balance and "spent since start" sensors, against the emulator's wallet.

The emulator reports its ``credit_balance`` setting in every handshake and
bills STT sessions at ``stt_cost_per_second``; both are changed between
requests to see the sensors follow without any polling.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from homeassistant.components import stt
from homeassistant.components.sensor import (
    ATTR_STATE_CLASS,
    SensorDeviceClass,
    SensorStateClass,
)
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from wyoming_60db.emulator import Emulator

from .conftest import bounded, wait_for
from .test_vocabulary import PHRASE, transcribe

BALANCE = "sensor.60db_credit_balance"
SPENT = "sensor.60db_spent_since_start"


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def test_sensors_after_setup(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Monetary, USD, on the 60db device; the balance the login reported, nothing spent."""
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), setup_entry.entry_id)
    registry = er.async_get(hass)
    for entity_id in (BALANCE, SPENT):
        entry = registry.async_get(entity_id)
        assert entry is not None, entity_id
        assert entry.device_id == device.id
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.MONETARY
        assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "USD"
        assert state.attributes[ATTR_STATE_CLASS] == SensorStateClass.TOTAL

    assert float(_state(hass, BALANCE)) == emulator.settings.credit_balance
    assert "last_reset" not in hass.states.get(BALANCE).attributes
    assert float(_state(hass, SPENT)) == 0.0
    # A new cycle of the "total" each time the client starts counting.
    since = setup_entry.runtime_data.client.usage.since
    last_reset = dt_util.parse_datetime(hass.states.get(SPENT).attributes["last_reset"])
    assert last_reset == datetime.fromtimestamp(since, UTC)


async def test_sensors_follow_a_request(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """After one STT request: the balance its handshake carried, the cost 60db billed.

    No warm connections, so the request's own login reports the new balance;
    the catalog is not refreshed in between.
    """
    logins = len(emulator.tts_connections)  # the catalog refresh logs in on /ws/tts
    emulator.settings.credit_balance = 7.25
    emulator.settings.stt_cost_per_second = 0.01  # a visible cost
    assert float(_state(hass, BALANCE)) != 7.25

    result = await bounded(transcribe(hass), 30)
    assert result.text == PHRASE
    assert float(_state(hass, BALANCE)) == 7.25
    # The billing summary comes when 60db confirms the stop (maybe after the result).
    await wait_for(lambda: float(_state(hass, SPENT)) > 0, "the billed cost")
    billed = [s.billing for s in emulator.stt_sessions if s.billing]
    assert len(billed) == 1
    assert float(_state(hass, SPENT)) == pytest.approx(billed[0]["total_cost"])
    assert len(emulator.tts_connections) == logins


async def test_balance_unavailable_while_the_wallet_is_empty(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """60db refuses an empty wallet: no balance to show until it accepts again."""
    emulator.settings.credit_balance = 0
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    try:
        assert _state(hass, BALANCE) == STATE_UNAVAILABLE
        assert float(_state(hass, SPENT)) == 0.0  # counted here: always known

        emulator.settings.credit_balance = 3.5
        await bounded(config_entry.runtime_data.coordinator.async_refresh())
        await hass.async_block_till_done()
        assert float(_state(hass, BALANCE)) == 3.5

        # The wallet runs dry again: the last balance seen is out of date.
        emulator.settings.credit_balance = 0
        await bounded(config_entry.runtime_data.coordinator.async_refresh())
        await hass.async_block_till_done()
        assert _state(hass, BALANCE) == STATE_UNAVAILABLE
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


async def test_balance_unavailable_when_60db_is_unreachable(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A failed refresh marks the balance unavailable; the spending stays."""
    await emulator.stop()
    await bounded(setup_entry.runtime_data.coordinator.async_refresh())
    await hass.async_block_till_done()
    assert _state(hass, BALANCE) == STATE_UNAVAILABLE
    assert _state(hass, SPENT) != STATE_UNAVAILABLE


async def test_balance_follows_a_refused_request(
    hass: HomeAssistant, cold_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A request refused for no credits hides the balance; the next accepted one shows it."""
    emulator.settings.credit_balance = 0
    result = await bounded(transcribe(hass), 30)
    assert result.result is stt.SpeechResultState.ERROR
    assert _state(hass, BALANCE) == STATE_UNAVAILABLE

    emulator.settings.credit_balance = 4.5
    result = await bounded(transcribe(hass), 30)
    assert result.text == PHRASE
    assert float(_state(hass, BALANCE)) == 4.5
