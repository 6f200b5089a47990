"""What every connection shares: settings, the 60db client, the catalog, ``info``."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from wyoming.event import Event
from wyoming.info import Info

from . import __version__
from .catalog_cache import VoiceCatalog
from .info import build_info
from .settings import ServerSettings
from .sixtydb import SixtyDbClient

_LOGGER = logging.getLogger(__name__)


class Connection(Protocol):
    """What shutdown needs to know about one client connection."""

    finished: asyncio.Event

    @property
    def busy(self) -> bool:
        """True while a request is in flight."""


class Backend:
    """What every connection shares: settings, the 60db client, the catalog, ``info``."""

    def __init__(self, settings: ServerSettings, client: SixtyDbClient | None) -> None:
        self.settings = settings
        self.client = client
        self.catalog = VoiceCatalog(
            client,
            default_voice=settings.voice,
            default_language=settings.default_language,
            on_change=self._rebuild_info,
        )
        self.info_event: Event = self._build_info().event()
        self.accepting = True
        self.connections: set[Connection] = set()

    @property
    def unavailable_reason(self) -> str | None:
        """Why requests cannot be served at all (no key), or None."""
        if self.client is None:
            return (
                "no 60db API key is configured: start the server with --api-key, "
                "--api-key-file or SIXTYDB_API_KEY (or try --demo)"
            )
        return None

    def _build_info(self) -> Info:
        return build_info(
            self.catalog.current, configured_languages=self.settings.languages, version=__version__
        )

    def _rebuild_info(self) -> None:
        self.info_event = self._build_info().event()
        _LOGGER.info(
            "60db catalog: %d voices, %d STT languages",
            len(self.catalog.current.voices),
            len(self.catalog.current.stt_languages),
        )
