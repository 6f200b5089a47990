"""The account's :class:`Catalog`, kept fresh in memory for the Wyoming server.

Home Assistant waits only 1 s for ``info`` (home-assistant.md §2), so
``describe`` is answered from this cache and never from the cloud. The catalog
is loaded before the port opens, refreshed in the background, and, while
60db cannot be reached, replaced by :meth:`Catalog.fallback`: the configured
default voice and the documented language list (60db-protocol.md §2.8).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .sixtydb import SixtyDbClient, SixtyDbError, Voice
from .sixtydb.catalog import Catalog

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """How often the catalog is re-read (seconds)."""

    interval: float = 3600.0
    """After a successful load: voices change only when the user clones one."""
    retry: float = 15.0
    """First retry after a failure; doubles up to ``max_retry``."""
    max_retry: float = 600.0


class VoiceCatalog:
    """Holds the current :class:`Catalog` and refreshes it, with backoff after failures."""

    def __init__(
        self,
        client: SixtyDbClient | None,
        *,
        default_voice: str | None = None,
        default_language: str = "en",
        policy: RefreshPolicy | None = None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._client = client
        self._policy = policy or RefreshPolicy()
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None
        self.current = Catalog.fallback(
            default_voice=default_voice, default_language=default_language
        )
        """What requests and ``info`` use now; replaced whole by each refresh."""
        self.last_error: SixtyDbError | None = None

    @property
    def loaded(self) -> bool:
        """True once 60db's voice list has been read."""
        return not self.current.is_fallback

    def resolve_voice(
        self, name: str | None, speaker: str | None = None, language: str | None = None
    ) -> Voice:
        """The voice a request asks for, from the current catalog."""
        return self.current.resolve_voice(name, speaker, language)

    def resolve_language(
        self, requested: str | None, configured: Sequence[str]
    ) -> list[str] | None:
        """60db's ``languages`` for a request, from the current catalog."""
        return self.current.resolve_language(requested, configured)

    async def refresh(self) -> bool:
        """Re-read voices and languages; False (and ``last_error``) on failure."""
        if self._client is None:
            return False
        try:
            voices, languages = await asyncio.gather(
                self._client.fetch_voices(), self._client.fetch_stt_languages()
            )
        except SixtyDbError as err:
            self.last_error = err
            return False
        previous = self.current
        # An empty answer teaches nothing: keep what is known (the fallback voice,
        # the languages read before).
        self.current = Catalog(
            voices=tuple(voices) or previous.voices,
            stt_languages=tuple(languages) or previous.stt_languages,
            default_voice_ref=previous.default_voice_ref,
            default_language=previous.default_language,
            untagged_voices=previous.untagged_voices,
            is_fallback=previous.is_fallback and not voices,
        )
        self.last_error = None
        if self.current != previous:
            self._on_change()
        return True

    async def load(self, timeout: float) -> bool:
        """The start-up load, bounded so a dead 60db cannot delay serving."""
        try:
            async with asyncio.timeout(timeout):
                return await self.refresh()
        except TimeoutError:
            _LOGGER.warning("60db's catalog did not load within %.0f s; retrying later", timeout)
            return False

    def start_refreshing(self) -> None:
        """Keep the catalog fresh in the background (idempotent)."""
        if self._task is None and self._client is not None:
            self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def stop(self) -> None:
        """Stop background refreshing."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _refresh_forever(self) -> None:
        delay = self._policy.interval if self.loaded else self._policy.retry
        while True:
            await asyncio.sleep(delay)
            if await self.refresh():
                _LOGGER.debug("60db catalog refreshed: %d voices", len(self.current.voices))
                delay = self._policy.interval
                continue
            delay = self._next_retry(delay)
            _LOGGER.warning(
                "Cannot read 60db's catalog (%s); retrying in %.0f s", self.last_error, delay
            )

    def _next_retry(self, previous: float) -> float:
        if previous >= self._policy.interval:
            return self._policy.retry  # the first failure after a good load
        return min(previous * 2, self._policy.max_retry)
