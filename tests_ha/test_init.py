"""Setup, unload, retries, reauth on a rejected key, and the credits repair issues."""

from __future__ import annotations

import json
import re
from pathlib import Path
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sixtydb.api import create_client
from custom_components.sixtydb.const import (
    CATALOG_REFRESH,
    CONF_API_URL,
    CONF_LOW_BALANCE,
    CONF_VOICE,
    DOMAIN,
)
from custom_components.sixtydb.coordinator import RETRY_INTERVAL
from custom_components.sixtydb.issues import (
    ISSUE_LOW_BALANCE,
    account_signal,
    async_check_low_balance,
    low_balance_issue_id,
    no_credits_issue_id,
)
from wyoming_60db.emulator import Emulator, Fault
from wyoming_60db.sixtydb import DOCUMENTED_STT_LANGUAGES, ProtocolError

from .conftest import STT_ENTITY, TTS_ENTITY, USER_ID, bounded, wait_for
from .test_vocabulary import transcribe

STRINGS = json.loads(
    (Path(__file__).parents[1] / "custom_components" / DOMAIN / "strings.json").read_text()
)


async def test_setup_and_unload(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """One service device, an STT and a TTS entity; unload closes every connection."""
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED

    devices = dr.async_entries_for_config_entry(dr.async_get(hass), config_entry.entry_id)
    assert len(devices) == 1
    device = devices[0]
    assert device.identifiers == {(DOMAIN, config_entry.entry_id)}
    assert device.name == "60db"
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    registry = er.async_get(hass)
    for entity_id in (STT_ENTITY, TTS_ENTITY):
        entity = registry.async_get(entity_id)
        assert entity is not None, entity_id
        assert entity.device_id == device.id
    catalog = config_entry.runtime_data.coordinator.data
    assert catalog.account is not None
    assert catalog.account.user_id == str(USER_ID)
    assert catalog.voices
    assert catalog.stt_languages
    # Warm connections are open while the entry is loaded ...
    await wait_for(lambda: emulator.open_connections >= 2, "warm STT and TTS connections")

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.NOT_LOADED
    # ... and closed by the unload.
    await wait_for(lambda: emulator.open_connections == 0, "connections closed on unload")


async def test_network_failure_is_not_ready(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """60db unreachable: ConfigEntryNotReady, so Home Assistant retries later."""
    await emulator.stop()
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_rejected_key_starts_reauth(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A wrong key: ConfigEntryAuthFailed, and a reauth flow is waiting for the user."""
    emulator.settings.api_key = "sk_live_someone_else"
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert flows[0]["context"]["entry_id"] == config_entry.entry_id


async def test_unusable_url_is_a_setup_error(hass: HomeAssistant, emulator: Emulator) -> None:
    """A URL that is not http(s) cannot be retried into working."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=str(USER_ID),
        data={CONF_API_KEY: "sk_live_x", CONF_API_URL: "ftp://example.invalid"},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR


async def test_credits_issue_raised_and_cleared(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """An empty wallet raises a repair issue; the next refresh with credits clears it."""
    issues = ir.async_get(hass)
    issue_id = no_credits_issue_id(config_entry)
    emulator.settings.credit_balance = 0
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    # Speech is refused, but the entry loads: the catalog is still readable.
    assert config_entry.state is ConfigEntryState.LOADED
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "no_credits"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert config_entry.runtime_data.coordinator.data.account is None

    emulator.settings.credit_balance = 5.0
    coordinator = config_entry.runtime_data.coordinator
    await bounded(coordinator.async_refresh())
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert coordinator.data.account is not None

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()


async def test_failed_refresh_retries_soon(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A failed catalog refresh marks the entities unavailable and retries in a minute."""
    coordinator = setup_entry.runtime_data.coordinator
    emulator.inject_fault(Fault(service="any", kind="error", code="UPSTREAM_DOWN"))
    await bounded(coordinator.async_refresh())
    assert not coordinator.last_update_success
    assert coordinator.update_interval == RETRY_INTERVAL
    assert hass.states.get(TTS_ENTITY).state == "unavailable"

    await bounded(coordinator.async_refresh())
    assert coordinator.last_update_success
    assert coordinator.update_interval == CATALOG_REFRESH
    assert hass.states.get(TTS_ENTITY).state != "unavailable"


async def test_key_revoked_while_running_starts_reauth(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A refresh that is refused logs the entry out and asks for a new key."""
    emulator.settings.api_key = "sk_live_rotated"
    await bounded(setup_entry.runtime_data.coordinator.async_refresh())
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_options_apply_without_reload(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """A new default voice changes the TTS entity at once; the entry is not reloaded."""
    runtime_data = setup_entry.runtime_data
    entity = hass.data["tts"].get_entity(TTS_ENTITY)
    assert entity.default_language == "en"
    priya = next(v for v in runtime_data.coordinator.data.voices if v.name == "Priya")

    hass.config_entries.async_update_entry(setup_entry, options={CONF_VOICE: priya.voice_id})
    await hass.async_block_till_done()

    assert setup_entry.runtime_data is runtime_data  # no reload
    assert entity.default_language == "hi"
    assert entity.async_get_supported_voices("hi")[0].voice_id == priya.voice_id


async def test_odd_language_list_falls_back_to_the_documented_one(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """An STT language list 60db answers in an unknown shape must not take STT down."""
    coordinator = setup_entry.runtime_data.coordinator
    with patch.object(
        coordinator.client, "fetch_stt_languages", side_effect=ProtocolError("unknown shape")
    ):
        await bounded(coordinator.async_refresh())
    assert coordinator.last_update_success
    codes = [language.code for language in coordinator.data.stt_languages]
    assert codes == list(DOCUMENTED_STT_LANGUAGES)


async def _refresh_with_balance(
    hass: HomeAssistant, entry: MockConfigEntry, emulator: Emulator, balance: float
) -> None:
    """The wallet now holds ``balance``; the next catalog refresh reads it."""
    emulator.settings.credit_balance = balance
    await bounded(entry.runtime_data.coordinator.async_refresh())
    await hass.async_block_till_done()


def _set_threshold(hass: HomeAssistant, entry: MockConfigEntry, usd: float) -> None:
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_LOW_BALANCE: usd})


async def test_low_balance_warning_appears_and_clears(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Below the threshold: a warning; back above it, or the option at 0: gone."""
    issues = ir.async_get(hass)
    issue_id = low_balance_issue_id(setup_entry)
    runtime_data = setup_entry.runtime_data
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # off by default

    _set_threshold(hass, setup_entry, 5.0)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # 9.97 is above

    await _refresh_with_balance(hass, setup_entry, emulator, 3.0)
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == ISSUE_LOW_BALANCE
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["balance"] == "3.00"
    assert issue.translation_placeholders["threshold"] == "5.00"
    assert not issue.is_fixable

    await _refresh_with_balance(hass, setup_entry, emulator, 6.0)
    assert issues.async_get_issue(DOMAIN, issue_id) is None

    # A new threshold applies at once to the balance already known, without a reload.
    _set_threshold(hass, setup_entry, 10.0)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is not None
    _set_threshold(hass, setup_entry, 0.0)
    await hass.async_block_till_done()
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert setup_entry.runtime_data is runtime_data


async def test_low_balance_warning_at_setup(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The balance the first login reports is checked at once."""
    hass.config_entries.async_update_entry(config_entry, options={CONF_LOW_BALANCE: 20.0})
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    try:
        issue = ir.async_get(hass).async_get_issue(DOMAIN, low_balance_issue_id(config_entry))
        assert issue is not None
        assert issue.translation_placeholders is not None
        assert (
            issue.translation_placeholders["balance"] == f"{emulator.settings.credit_balance:.2f}"
        )
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


async def test_low_balance_keeps_its_decision_while_the_balance_is_unknown(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """No balance to compare (no handshake yet): the warning stays as it was."""
    issue_id = low_balance_issue_id(setup_entry)
    _set_threshold(hass, setup_entry, 5.0)
    await _refresh_with_balance(hass, setup_entry, emulator, 3.0)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    fresh = create_client(hass, setup_entry.data, warm=False)  # has logged in nowhere
    try:
        assert fresh.account is None
        async_check_low_balance(hass, setup_entry, fresh)
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
    finally:
        await fresh.close()


async def test_an_unreadable_threshold_is_off(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A threshold that is not a number (edited storage) warns about nothing."""
    hass.config_entries.async_update_entry(setup_entry, options={CONF_LOW_BALANCE: "lots"})
    await _refresh_with_balance(hass, setup_entry, emulator, 0.5)
    assert ir.async_get(hass).async_get_issue(DOMAIN, low_balance_issue_id(setup_entry)) is None


async def test_empty_wallet_replaces_the_low_balance_warning(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """No credits is the error; the warning comes back when credits do, if still low."""
    issues = ir.async_get(hass)
    low, empty = low_balance_issue_id(setup_entry), no_credits_issue_id(setup_entry)
    _set_threshold(hass, setup_entry, 5.0)
    await _refresh_with_balance(hass, setup_entry, emulator, 1.0)
    assert issues.async_get_issue(DOMAIN, low) is not None

    await _refresh_with_balance(hass, setup_entry, emulator, 0)
    assert issues.async_get_issue(DOMAIN, empty) is not None
    assert issues.async_get_issue(DOMAIN, low) is None

    await _refresh_with_balance(hass, setup_entry, emulator, 2.0)
    assert issues.async_get_issue(DOMAIN, empty) is None
    issue = issues.async_get_issue(DOMAIN, low)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["balance"] == "2.00"


async def test_low_balance_from_a_request(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """The balance a request's own login reports raises the warning: no refresh needed."""
    hass.config_entries.async_update_entry(config_entry, options={CONF_LOW_BALANCE: 5.0})
    with patch(
        "custom_components.sixtydb.create_client",
        lambda hass, data: create_client(hass, data, warm=False),
    ):
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    try:
        issue_id = low_balance_issue_id(config_entry)
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        logins = len(emulator.tts_connections)
        emulator.settings.credit_balance = 4.0
        result = await bounded(transcribe(hass), 30)
        assert result.text
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
        assert len(emulator.tts_connections) == logins  # no catalog refresh in between
    finally:
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        await hass.async_block_till_done()


def test_low_balance_text_uses_every_placeholder() -> None:
    """The warning's text names exactly what the issue fills in."""
    issue = STRINGS["issues"][ISSUE_LOW_BALANCE]
    assert issue["title"]
    assert set(re.findall(r"{(\w+)}", issue["description"])) == {
        "title",
        "balance",
        "threshold",
        "dashboard",
    }


async def test_unload_removes_the_account_listeners(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """The client's listener and the signal's receivers go with the entry."""
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    client = config_entry.runtime_data.client
    signal = account_signal(config_entry)
    dispatchers = hass.data["dispatcher"]
    assert client._listeners
    # The low-balance check and the two sensors.
    assert len(dispatchers[signal]) == 3

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert client._listeners == []
    assert not dispatchers.get(signal)
