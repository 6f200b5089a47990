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
from .usage_log import UsageLog

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
            on_change=self._on_catalog_change,
        )
        self._info_event: Event | None = None
        self.accepting = True
        self.connections: set[Connection] = set()
        # Every request's handshake and billing change the account's totals:
        # mark `info` stale then, and build it only when a client asks.
        self._remove_listener = (
            client.add_listener(self._invalidate_info) if client is not None else None
        )
        self.usage_log = (
            UsageLog(client, settings.usage_log_interval) if client is not None else None
        )

    @property
    def info_event(self) -> Event:
        """The ``info`` answer, from memory (catalog, the account's totals): never the cloud."""
        if self._info_event is None:
            self._info_event = self._build_info().event()
        return self._info_event

    def detach(self) -> None:
        """Stop following the client's account and usage (shutdown)."""
        remove, self._remove_listener = self._remove_listener, None
        if remove is not None:
            remove()

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
        client = self.client
        return build_info(
            self.catalog.current,
            configured_languages=self.settings.languages,
            version=__version__,
            endpointing=self.settings.endpointing,
            usage=None if client is None else client.usage,
            account=None if client is None else client.account,
        )

    def _invalidate_info(self) -> None:
        self._info_event = None

    def _on_catalog_change(self) -> None:
        self._invalidate_info()
        _LOGGER.info(
            "60db catalog: %d voices, %d STT languages",
            len(self.catalog.current.voices),
            len(self.catalog.current.stt_languages),
        )
