"""The voice catalog and STT language list, refreshed in the background.

``TextToSpeechEntity.async_get_supported_voices`` is synchronous, so the
catalog must be in memory before anyone asks. The refresh also logs in once,
which tells whether the key still works and whether the wallet has credits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TypeAlias

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from wyoming_60db.sixtydb import (
    Account,
    AuthenticationError,
    InsufficientCreditsError,
    SixtyDbClient,
    SixtyDbError,
    SttLanguage,
)
from wyoming_60db.sixtydb.catalog import Catalog, documented_stt_languages

from .const import CATALOG_REFRESH, DOMAIN, LOGGER
from .errors import translation_of
from .issues import async_clear_no_credits, async_report_no_credits
from .vocabulary import EntryVocabulary

# After a failed refresh, try again soon: entities are unavailable meanwhile.
RETRY_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class EntryCatalog(Catalog):
    """The client core's catalog of the account, and the account behind the key."""

    account: Account | None = None
    """``None`` while the wallet is empty: 60db then refuses the login."""


@dataclass(slots=True)
class SixtyDbData:
    """``entry.runtime_data``: one client, its catalog and the home's words per config entry."""

    client: SixtyDbClient
    coordinator: CatalogCoordinator
    vocabulary: EntryVocabulary


SixtyDbConfigEntry: TypeAlias = ConfigEntry[SixtyDbData]


class CatalogCoordinator(DataUpdateCoordinator[EntryCatalog]):
    """Keeps the catalog fresh and the credits repair issue up to date."""

    config_entry: SixtyDbConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: SixtyDbConfigEntry, client: SixtyDbClient
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=CATALOG_REFRESH,
        )
        self.client = client

    async def _async_update_data(self) -> EntryCatalog:
        try:
            catalog = await self._fetch()
        except SixtyDbError as err:
            self.update_interval = RETRY_INTERVAL
            if isinstance(err, AuthenticationError):
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN, translation_key="auth_failed"
                ) from err
            key, placeholders = translation_of(err)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key=key,
                translation_placeholders=placeholders,
            ) from err
        self.update_interval = CATALOG_REFRESH
        return catalog

    async def _fetch(self) -> EntryCatalog:
        try:
            account: Account | None = await self.client.check_account()
        except InsufficientCreditsError:
            # The catalog is still readable; only speech is refused.
            account = None
            async_report_no_credits(self.hass, self.config_entry)
        else:
            async_clear_no_credits(self.hass, self.config_entry)
        voices = await self.client.fetch_voices()
        return EntryCatalog(
            voices=tuple(voices),
            stt_languages=await self._stt_languages(),
            # A voice without a language (some cloned ones) is offered for every
            # language: in Home Assistant the user picks it per pipeline.
            untagged_voices="every_language",
            account=account,
        )

    async def _stt_languages(self) -> tuple[SttLanguage, ...]:
        try:
            return tuple(await self.client.fetch_stt_languages())
        except AuthenticationError:
            raise
        except SixtyDbError as err:
            # The list is documented (§2.8); an odd answer must not take STT down.
            LOGGER.debug("Using the documented STT languages: %s", err.code)
            return documented_stt_languages()
