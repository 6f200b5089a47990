"""Config flow: API key (and URL), reauth, reconfigure and options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_API_KEY
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from wyoming_60db.sixtydb import (
    DEFAULT_API_URL,
    Account,
    AuthenticationError,
    InsufficientCreditsError,
    SixtyDbError,
)
from wyoming_60db.sixtydb.catalog import voice_label
from wyoming_60db.sixtydb.limits import (
    MAX_STT_LANGUAGES,
    PERCENT_RANGE,
    SPEED_RANGE,
    STT_ENCODINGS,
    VAD_SENSITIVITIES,
)

from .api import async_check_account
from .const import (
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
    DEFAULTS,
    DOMAIN,
    END_OF_SPEECH_OPTIONS,
    LOGGER,
    LOW_BALANCE_RANGE,
    MAX_COMMAND_SECONDS_RANGE,
    NO_SPEECH_SECONDS_RANGE,
    SECTION_ADVANCED,
    SECTION_END_OF_SPEECH,
)
from .coordinator import SixtyDbConfigEntry

TITLE = "60db"
KEYS_URL = "https://app.60db.ai"  # Settings → Developer → API Keys (§1.2)

PASSWORD = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
URL = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))


class SixtyDbConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a 60db account."""

    VERSION = 1
    MINOR_VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the API key (and, in advanced mode, the API URL)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            advanced = user_input.get(SECTION_ADVANCED) or {}
            data = {
                CONF_API_KEY: user_input[CONF_API_KEY].strip(),
                CONF_API_URL: advanced.get(CONF_API_URL) or DEFAULT_API_URL,
            }
            account, errors = await self._check(data)
            if account is not None:
                await self.async_set_unique_id(account.user_id)
                self._abort_if_unique_id_configured()
                return self.async_create_entry(title=TITLE, data=data)
        fields: dict[Any, Any] = {vol.Required(CONF_API_KEY): PASSWORD}
        if self._advanced_mode:
            fields[vol.Required(SECTION_ADVANCED)] = section(
                vol.Schema({vol.Required(CONF_API_URL, default=DEFAULT_API_URL): URL}),
                {"collapsed": True},
            )
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema(fields),
            errors=errors,
            description_placeholders={"keys_url": KEYS_URL},
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """60db rejected the stored key."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new key of the same account."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {**entry.data, CONF_API_KEY: user_input[CONF_API_KEY].strip()}
            account, errors = await self._check(data)
            if account is not None:
                await self.async_set_unique_id(account.user_id)
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                return self.async_update_reload_and_abort(entry, data=data)
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema({vol.Required(CONF_API_KEY): PASSWORD}),
            errors=errors,
            description_placeholders={"title": entry.title, "keys_url": KEYS_URL},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the key (left empty: keep it) or the API URL."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {
                CONF_API_KEY: (user_input.get(CONF_API_KEY) or "").strip()
                or entry.data[CONF_API_KEY],
                CONF_API_URL: user_input[CONF_API_URL].strip(),
            }
            account, errors = await self._check(data)
            if account is not None:
                await self.async_set_unique_id(account.user_id)
                self._abort_if_unique_id_mismatch(reason="wrong_account")
                return self.async_update_reload_and_abort(entry, data=data)
        schema = vol.Schema(
            {
                vol.Optional(CONF_API_KEY): PASSWORD,
                vol.Required(
                    CONF_API_URL, default=entry.data.get(CONF_API_URL, DEFAULT_API_URL)
                ): URL,
            }
        )
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: SixtyDbConfigEntry) -> SixtyDbOptionsFlow:
        """STT languages and end of speech, the vocabulary, voices, the balance warning."""
        return SixtyDbOptionsFlow()

    @property
    def _advanced_mode(self) -> bool:
        # Releases with the user's "advanced mode" (2025.4 among them) always
        # send this flag; 2026.10 dropped advanced mode and sends nothing, so
        # there everyone gets the URL, folded away in its collapsed section.
        # (The old `show_advanced_options` property is deprecated there.)
        return bool(self.context.get("show_advanced_options", True))

    async def _check(self, data: Mapping[str, Any]) -> tuple[Account | None, dict[str, str]]:
        """Log in with ``data``: the account, or the form errors."""
        try:
            return await async_check_account(self.hass, data), {}
        except ValueError:
            return None, {"base": "invalid_url"}
        except AuthenticationError:
            return None, {"base": "invalid_auth"}
        except InsufficientCreditsError:
            return None, {"base": "no_credits"}
        except SixtyDbError as err:
            LOGGER.debug("Cannot reach 60db: %s", err)
            return None, {"base": "cannot_connect"}
        except Exception as err:  # the form must answer, whatever happened
            # Only the type: an unexpected error's text could carry the request URL.
            LOGGER.error("Unexpected error while checking the 60db key: %s", type(err).__name__)
            return None, {"base": "unknown"}


class SixtyDbOptionsFlow(OptionsFlow):
    """Options that apply at the next request, without a reload."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form for STT and TTS settings, the end of speech in a section of its own."""
        entry: SixtyDbConfigEntry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            # The voice and language lists come from the running entry's catalog.
            return self.async_abort(reason="entry_not_loaded")
        errors: dict[str, str] = {}
        if user_input is not None:
            options = _flat(user_input)
            if len(options.get(CONF_STT_LANGUAGES, [])) > MAX_STT_LANGUAGES:
                errors[CONF_STT_LANGUAGES] = "too_many_languages"
            else:
                return self.async_create_entry(data=options)
        shown = {**DEFAULTS, **entry.options, **(_flat(user_input) if user_input else {})}
        schema = self.add_suggested_values_to_schema(_options_schema(entry), _sectioned(shown))
        return self.async_show_form(step_id="init", data_schema=schema, errors=errors)


def _flat(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The form's answer as stored: the section's fields beside the others.

    Flat options keep one way of reading them (``SixtyDbEntity.option``) for
    every option, whichever part of the form shows it.
    """
    options = {key: value for key, value in user_input.items() if key != SECTION_END_OF_SPEECH}
    options.update(user_input.get(SECTION_END_OF_SPEECH) or {})
    return options


def _sectioned(options: Mapping[str, Any]) -> dict[str, Any]:
    """Stored options as the form nests them (the inverse of :func:`_flat`)."""
    shown = {key: value for key, value in options.items() if key not in END_OF_SPEECH_OPTIONS}
    shown[SECTION_END_OF_SPEECH] = {
        key: options[key] for key in END_OF_SPEECH_OPTIONS if key in options
    }
    return shown


def _options_schema(entry: SixtyDbConfigEntry) -> vol.Schema:
    catalog = entry.runtime_data.coordinator.data
    languages = [
        SelectOptionDict(value=language.code, label=f"{language.name} ({language.code})")
        for language in catalog.stt_languages
    ]
    voices = [
        SelectOptionDict(value=voice.voice_id, label=voice_label(voice)) for voice in catalog.voices
    ]
    end_of_speech = vol.Schema(
        {
            vol.Required(CONF_ENDPOINTING): BooleanSelector(),
            vol.Required(CONF_VAD_SENSITIVITY): SelectSelector(
                SelectSelectorConfig(
                    options=list(VAD_SENSITIVITIES),
                    translation_key=CONF_VAD_SENSITIVITY,
                    mode=SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Required(CONF_MAX_COMMAND_SECONDS): _number(
                *MAX_COMMAND_SECONDS_RANGE, 1, unit="s", mode=NumberSelectorMode.BOX
            ),
            vol.Required(CONF_NO_SPEECH_SECONDS): _number(
                *NO_SPEECH_SECONDS_RANGE, 1, unit="s", mode=NumberSelectorMode.BOX
            ),
        }
    )
    return vol.Schema(
        {
            vol.Optional(CONF_STT_LANGUAGES): SelectSelector(
                SelectSelectorConfig(
                    options=languages, multiple=True, mode=SelectSelectorMode.DROPDOWN
                )
            ),
            vol.Required(CONF_STT_ENCODING): SelectSelector(
                SelectSelectorConfig(
                    options=list(STT_ENCODINGS),
                    translation_key=CONF_STT_ENCODING,
                    mode=SelectSelectorMode.DROPDOWN,
                )
            ),
            vol.Required(CONF_VOCABULARY): BooleanSelector(),
            # The defaults suit almost everyone: folded away until wanted.
            vol.Required(SECTION_END_OF_SPEECH): section(end_of_speech, {"collapsed": True}),
            vol.Required(CONF_VOICE): SelectSelector(
                SelectSelectorConfig(options=voices, mode=SelectSelectorMode.DROPDOWN)
            ),
            vol.Required(CONF_SPEED): _number(*SPEED_RANGE, 0.05),
            vol.Required(CONF_STABILITY): _number(*PERCENT_RANGE, 1),
            vol.Required(CONF_SIMILARITY): _number(*PERCENT_RANGE, 1),
            vol.Required(CONF_LOW_BALANCE): _number(
                *LOW_BALANCE_RANGE, 0.01, unit="USD", mode=NumberSelectorMode.BOX
            ),
        }
    )


def _number(
    low: float,
    high: float,
    step: float,
    *,
    unit: str | None = None,
    mode: NumberSelectorMode = NumberSelectorMode.SLIDER,
) -> NumberSelector:
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=mode)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)
