"""The voice catalog and STT language list, refreshed in the background.

``TextToSpeechEntity.async_get_supported_voices`` is synchronous, so the
catalog must be in memory before anyone asks. The refresh also logs in once,
which tells whether the key still works and whether the wallet has credits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeAlias

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from wyoming_60db.sixtydb import (
    DOCUMENTED_STT_LANGUAGES,
    Account,
    AuthenticationError,
    InsufficientCreditsError,
    SixtyDbClient,
    SixtyDbError,
    SttLanguage,
    Voice,
)

from .const import CATALOG_REFRESH, DOMAIN, LOGGER
from .errors import translation_of
from .issues import async_clear_no_credits, async_report_no_credits

# After a failed refresh, try again soon: entities are unavailable meanwhile.
RETRY_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Catalog:
    """What 60db offers this account."""

    voices: tuple[Voice, ...]
    stt_languages: tuple[SttLanguage, ...]
    account: Account | None = None
    """``None`` while the wallet is empty: 60db then refuses the login."""
    _by_language: dict[str, tuple[Voice, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_language: dict[str, list[Voice]] = {}
        for voice in self.voices:
            if voice.language:
                by_language.setdefault(voice.language, []).append(voice)
        # A voice without a language (some cloned ones) is offered for every language.
        untagged = [voice for voice in self.voices if not voice.language]
        for language, voices in by_language.items():
            self._by_language[language] = (*voices, *untagged)

    @property
    def tts_languages(self) -> list[str]:
        """Languages with at least one voice, sorted."""
        return sorted(self._by_language)

    def voices_for(self, language: str) -> Sequence[Voice]:
        """Voices for an ISO code; ``en-US`` finds the ``en`` voices."""
        code = language.lower().replace("_", "-")
        return self._by_language.get(code) or self._by_language.get(code.split("-")[0], ())

    def voice(self, voice_id: str) -> Voice | None:
        """The voice with this id (or, as a convenience, this name)."""
        for voice in self.voices:
            if voice.voice_id == voice_id:
                return voice
        folded = voice_id.casefold()
        return next((v for v in self.voices if v.name.casefold() == folded), None)


@dataclass(slots=True)
class SixtyDbData:
    """``entry.runtime_data``: one client and its catalog per config entry."""

    client: SixtyDbClient
    coordinator: CatalogCoordinator


SixtyDbConfigEntry: TypeAlias = ConfigEntry[SixtyDbData]


class CatalogCoordinator(DataUpdateCoordinator[Catalog]):
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

    async def _async_update_data(self) -> Catalog:
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

    async def _fetch(self) -> Catalog:
        try:
            account: Account | None = await self.client.check_account()
        except InsufficientCreditsError:
            # The catalog is still readable; only speech is refused.
            account = None
            async_report_no_credits(self.hass, self.config_entry)
        else:
            async_clear_no_credits(self.hass, self.config_entry)
        voices = await self.client.fetch_voices()
        return Catalog(
            voices=tuple(voices),
            stt_languages=tuple(await self._stt_languages()),
            account=account,
        )

    async def _stt_languages(self) -> list[SttLanguage]:
        try:
            return await self.client.fetch_stt_languages()
        except AuthenticationError:
            raise
        except SixtyDbError as err:
            # The list is documented (§2.8); an odd answer must not take STT down.
            LOGGER.debug("Using the documented STT languages: %s", err.code)
            return [SttLanguage(code, name) for code, name in DOCUMENTED_STT_LANGUAGES.items()]
