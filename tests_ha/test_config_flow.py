"""Config flow: user step, every error, duplicates, reauth, reconfigure and options."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData, section
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sixtydb.const import (
    CONF_API_URL,
    CONF_ENDPOINTING,
    CONF_LOW_BALANCE,
    CONF_MAX_COMMAND_SECONDS,
    CONF_NO_SPEECH_SECONDS,
    CONF_SIMILARITY,
    CONF_SPEED,
    CONF_STABILITY,
    CONF_STT_ENCODING,
    CONF_STT_LANGUAGES,
    CONF_VAD_SENSITIVITY,
    CONF_VOCABULARY,
    CONF_VOICE,
    DOMAIN,
    SECTION_ADVANCED,
    SECTION_END_OF_SPEECH,
)
from wyoming_60db.emulator import Emulator
from wyoming_60db.sixtydb import DEFAULT_API_URL, DEFAULT_VOICE_ID

from .conftest import API_KEY, OTHER_KEY, USER_ID


def _user_input(key: str, url: str) -> dict[str, Any]:
    return {CONF_API_KEY: key, SECTION_ADVANCED: {CONF_API_URL: url}}


def _closed_port_url(emulator: Emulator) -> str:
    """A loopback URL nobody listens on (the emulator's port once it is stopped)."""
    return emulator.base_url


async def test_user_step_creates_entry(hass: HomeAssistant, emulator: Emulator) -> None:
    """A working key makes an entry named 60db, unique per 60db account."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(f"  {API_KEY} ", emulator.base_url)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "60db"
    assert result["data"] == {CONF_API_KEY: API_KEY, CONF_API_URL: emulator.base_url}
    assert result["result"].unique_id == str(USER_ID)
    await hass.async_block_till_done()
    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(("advanced", "has_url"), [(True, True), (False, False)])
async def test_url_field_follows_advanced_mode(
    hass: HomeAssistant, advanced: bool, has_url: bool
) -> None:
    """The API URL is offered only to users in advanced mode."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER, "show_advanced_options": advanced}
    )
    assert (SECTION_ADVANCED in result["data_schema"].schema) is has_url
    assert CONF_API_KEY in result["data_schema"].schema


async def test_default_url_without_advanced_mode(hass: HomeAssistant) -> None:
    """Without the advanced section the entry gets 60db's public URL."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER, "show_advanced_options": False}
    )
    # No network here: neither the key check nor the entry's setup may reach the real 60db.
    with (
        patch(
            "custom_components.sixtydb.config_flow.async_check_account",
            side_effect=_account_from_emulator_defaults,
        ) as check,
        patch("custom_components.sixtydb.async_setup_entry", return_value=True),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_API_KEY: API_KEY}
        )
        await hass.async_block_till_done()
    assert check.call_args.args[1][CONF_API_URL] == DEFAULT_API_URL
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_API_URL] == DEFAULT_API_URL


async def _account_from_emulator_defaults(*_: Any) -> Any:
    from wyoming_60db.sixtydb import Account

    return Account(user_id=str(USER_ID), credit_balance=1.0, workspace="default")


@pytest.mark.parametrize(
    ("prepare", "error"),
    [
        ("wrong_key", "invalid_auth"),
        ("no_credits", "no_credits"),
        ("unreachable", "cannot_connect"),
        ("bad_url", "invalid_url"),
        ("crash", "unknown"),
    ],
)
async def test_user_step_errors_then_recovers(
    hass: HomeAssistant, emulator: Emulator, prepare: str, error: str
) -> None:
    """Each failure shows its error on the form; fixing it then creates the entry."""
    url = emulator.base_url
    key = API_KEY
    crash = None
    if prepare == "wrong_key":
        key = OTHER_KEY
    elif prepare == "no_credits":
        emulator.settings.credit_balance = 0
    elif prepare == "unreachable":
        url = "http://127.0.0.1:9"  # discard port: refused at once
    elif prepare == "bad_url":
        url = "ftp://api.60db.ai"
    else:
        crash = RuntimeError(f"boom with {API_KEY} in it")

    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    with (
        patch(
            "custom_components.sixtydb.config_flow.async_check_account",
            side_effect=crash,
            autospec=True,
        )
        if crash
        else nullcontext()
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input(key, url)
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}

    emulator.settings.credit_balance = 9.97
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(API_KEY, emulator.base_url)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(result["result"].entry_id)


async def test_unexpected_error_never_logs_the_key(
    hass: HomeAssistant, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception is reported by type only: its text may hold the URL."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    with patch(
        "custom_components.sixtydb.config_flow.async_check_account",
        side_effect=RuntimeError(f"GET wss://x/?apiKey={API_KEY}"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _user_input(API_KEY, emulator.base_url)
        )
    assert result["errors"] == {"base": "unknown"}
    assert "RuntimeError" in caplog.text
    assert API_KEY not in caplog.text


async def test_same_account_twice_is_refused(
    hass: HomeAssistant, config_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A second key of an account that is already set up aborts."""
    emulator.settings.api_key = None  # any key works: a second key of the same account
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _user_input(OTHER_KEY, emulator.base_url)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reauth_with_a_key_of_the_same_account(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Reauth stores the new key and reloads the entry."""
    result = await setup_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"

    emulator.settings.api_key = OTHER_KEY  # the old key was revoked
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: OTHER_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert setup_entry.data[CONF_API_KEY] == OTHER_KEY
    assert setup_entry.data[CONF_API_URL] == emulator.base_url
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.LOADED


async def test_reauth_refuses_another_account(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """A key of a different account must not silently take over the entry."""
    result = await setup_entry.start_reauth_flow(hass)
    emulator.settings.user_id = 99
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: API_KEY}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert setup_entry.data[CONF_API_KEY] == API_KEY


async def test_reconfigure_url_and_key(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Reconfigure changes the URL; an empty key keeps the stored one."""
    result = await setup_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: "http://127.0.0.1:9"}
    )
    assert result["errors"] == {"base": "cannot_connect"}

    new_url = emulator.base_url + "/"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "", CONF_API_URL: new_url}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert setup_entry.data == {CONF_API_KEY: API_KEY, CONF_API_URL: new_url}
    await hass.async_block_till_done()

    emulator.settings.api_key = OTHER_KEY
    result = await setup_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: OTHER_KEY, CONF_API_URL: new_url}
    )
    assert result["reason"] == "reconfigure_successful"
    assert setup_entry.data[CONF_API_KEY] == OTHER_KEY
    await hass.async_block_till_done()


async def test_reconfigure_refuses_another_account(
    hass: HomeAssistant, setup_entry: MockConfigEntry, emulator: Emulator
) -> None:
    """Reconfigure cannot move the entry to another account either."""
    emulator.settings.user_id = 7
    result = await setup_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_URL: emulator.base_url}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"


def _suggested(schema: Any) -> dict[str, Any]:
    """The values a form shows, sections nested as the frontend gets them."""
    shown: dict[str, Any] = {}
    for key, value in schema.schema.items():
        if isinstance(value, section):
            shown[str(key)] = _suggested(value.schema)
        else:
            shown[str(key)] = (key.description or {}).get("suggested_value")
    return shown


async def test_options(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    """Options offer the account's voices and languages and are saved as given, flat.

    The end-of-speech options come in a folded section of the form; they are
    stored beside the others, where the entities read them.
    """
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    schema = result["data_schema"].schema
    voice_selector = next(v for k, v in schema.items() if k == CONF_VOICE)
    voice_ids = [option["value"] for option in voice_selector.config["options"]]
    assert DEFAULT_VOICE_ID in voice_ids
    end_of_speech = next(v for k, v in schema.items() if k == SECTION_END_OF_SPEECH)
    assert isinstance(end_of_speech, section)
    assert end_of_speech.options["collapsed"] is True
    shown = _suggested(result["data_schema"])
    assert shown[SECTION_END_OF_SPEECH] == {
        CONF_ENDPOINTING: True,
        CONF_VAD_SENSITIVITY: "default",
        CONF_MAX_COMMAND_SECONDS: 15.0,
        CONF_NO_SPEECH_SECONDS: 8.0,
    }
    assert (shown[CONF_VOCABULARY], shown[CONF_LOW_BALANCE]) == (False, 0.0)

    too_many = ["en", "hi", "es", "fr", "de", "it"]
    end_of_speech_input = {
        CONF_ENDPOINTING: False,
        CONF_VAD_SENSITIVITY: "relaxed",
        CONF_MAX_COMMAND_SECONDS: 20,
        CONF_NO_SPEECH_SECONDS: 5,
    }
    user_input = {
        CONF_STT_LANGUAGES: too_many,
        CONF_STT_ENCODING: "mulaw",
        CONF_VOCABULARY: True,
        SECTION_END_OF_SPEECH: end_of_speech_input,
        CONF_VOICE: voice_ids[-1],
        CONF_SPEED: 1.25,
        CONF_STABILITY: 40,
        CONF_SIMILARITY: 90,
        CONF_LOW_BALANCE: 2.5,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_STT_LANGUAGES: "too_many_languages"}
    # The form comes back with what was entered, the section included.
    assert _suggested(result["data_schema"])[SECTION_END_OF_SPEECH] == end_of_speech_input

    user_input[CONF_STT_LANGUAGES] = ["en", "hi"]
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    expected = {k: v for k, v in user_input.items() if k != SECTION_END_OF_SPEECH}
    assert setup_entry.options == {**expected, **end_of_speech_input}
    assert setup_entry.state is ConfigEntryState.LOADED

    # Opened again, the form shows the stored options in their places.
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    shown = _suggested(result["data_schema"])
    assert shown[SECTION_END_OF_SPEECH] == end_of_speech_input
    assert (shown[CONF_VOCABULARY], shown[CONF_LOW_BALANCE]) == (True, 2.5)
    await hass.config_entries.options.async_configure(result["flow_id"], user_input)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (CONF_MAX_COMMAND_SECONDS, 2),  # would cut ordinary commands
        (CONF_MAX_COMMAND_SECONDS, 61),
        (CONF_NO_SPEECH_SECONDS, 1),
        (CONF_VAD_SENSITIVITY, "sleepy"),
    ],
)
async def test_options_refuse_values_out_of_range(
    hass: HomeAssistant, setup_entry: MockConfigEntry, key: str, value: Any
) -> None:
    """The selectors bound the end-of-speech values; nothing out of range is stored.

    The same input with the value in range is then accepted, so the refusal
    was that value's.
    """
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    voices = next(v for k, v in result["data_schema"].schema.items() if k == CONF_VOICE)
    end_of_speech = {
        CONF_ENDPOINTING: True,
        CONF_VAD_SENSITIVITY: "aggressive",
        CONF_MAX_COMMAND_SECONDS: 15,
        CONF_NO_SPEECH_SECONDS: 8,
    }
    user_input = {
        CONF_STT_ENCODING: "linear",
        CONF_VOCABULARY: True,
        SECTION_END_OF_SPEECH: end_of_speech,
        CONF_VOICE: voices.config["options"][0]["value"],
        CONF_SPEED: 1.0,
        CONF_STABILITY: 50,
        CONF_SIMILARITY: 75,
        CONF_LOW_BALANCE: 0,
    }
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {**user_input, SECTION_END_OF_SPEECH: {**end_of_speech, key: value}},
        )
    assert setup_entry.options == {}

    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert setup_entry.options[CONF_VAD_SENSITIVITY] == "aggressive"


async def test_options_need_a_loaded_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Without a running entry there is no catalog to offer."""
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "entry_not_loaded"
