"""The account's voices and STT languages, kept in memory.

Home Assistant waits only 1 s for ``info`` (ha-and-wyoming.md §2), so
``describe`` is answered from this cache and never from the cloud. The catalog
is loaded before the port opens, refreshed in the background, and, while
60db cannot be reached, replaced by what is known without it: the configured
default voice and the documented language list (60db-protocol.md §2.8).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from .sixtydb import (
    DEFAULT_VOICE_ID,
    DOCUMENTED_STT_LANGUAGES,
    SixtyDbClient,
    SixtyDbError,
    SttLanguage,
    UnknownVoiceError,
    UnsupportedLanguageError,
    Voice,
)
from .sixtydb.catalog import normalize_language

_LOGGER = logging.getLogger(__name__)

AUTO: Final = "auto"


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """How often the catalog is re-read (seconds)."""

    interval: float = 3600.0
    """After a successful load: voices change only when the user clones one."""
    retry: float = 15.0
    """First retry after a failure; doubles up to ``max_retry``."""
    max_retry: float = 600.0


class VoiceCatalog:
    """Voices and STT languages of the account, with resolution helpers."""

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
        self._default_voice = default_voice
        self._default_language = default_language
        self._policy = policy or RefreshPolicy()
        self._on_change = on_change
        self._voices: tuple[Voice, ...] = ()
        self._languages: tuple[SttLanguage, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self.last_error: SixtyDbError | None = None

    @property
    def loaded(self) -> bool:
        """True once 60db's voice list has been read."""
        return bool(self._voices)

    @property
    def voices(self) -> tuple[Voice, ...]:
        """The account's voices, or the configured default voice before a load."""
        return self._voices or (self._fallback_voice(),)

    @property
    def stt_languages(self) -> tuple[SttLanguage, ...]:
        """60db's STT languages, or the documented list before a load."""
        if self._languages:
            return self._languages
        return tuple(SttLanguage(code, name) for code, name in DOCUMENTED_STT_LANGUAGES.items())

    @property
    def default_voice(self) -> Voice:
        """The voice used when a request names none."""
        if self._default_voice:
            found = self._find(self._default_voice)
            if found is not None:
                return found
        found = self._find(DEFAULT_VOICE_ID)
        return found or self.voices[0]

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
        changed = tuple(voices) != self._voices or tuple(languages) != self._languages
        self._voices = tuple(voices)
        self._languages = tuple(languages) or self._languages
        self.last_error = None
        if changed:
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

    def resolve_voice(
        self, name: str | None, speaker: str | None = None, language: str | None = None
    ) -> Voice:
        """The voice a request asks for: by id or display name, else by language.

        Home Assistant sends the advertised ``name`` (the voice id), never a
        language (ha-and-wyoming.md §2); other clients may name a voice by
        ``speaker`` alone, or only ask for a language. Every 60db voice has one
        speaker, so a ``speaker`` beside a ``name`` has nothing left to select.
        """
        wanted = (name or "").strip() or (speaker or "").strip()
        if not wanted:
            return self._voice_for_language(language) if language else self.default_voice
        found = self._find(wanted)
        if found is not None:
            return found
        if not self.loaded:
            # Without the catalog the id goes to 60db, which rejects an unknown voice.
            return Voice(voice_id=wanted, name=wanted, language=self._default_language)
        raise UnknownVoiceError(f"unknown voice {wanted!r}", voice=wanted)

    def _voice_for_language(self, language: str) -> Voice:
        code = normalize_language(language)
        default = self.default_voice
        if default.language == code:
            return default
        for voice in self.voices:
            if voice.language == code:
                return voice
        raise UnknownVoiceError(f"no voice speaks {language!r}", voice=language)

    def resolve_language(
        self, requested: str | None, configured: Sequence[str]
    ) -> list[str] | None:
        """60db's ``languages`` for a request: codes, or None for detection.

        ``transcribe.language`` wins over the configured languages; ``en-US``
        becomes ``en``. A language 60db does not recognise is an error, never a
        silently different language.
        """
        if requested:
            code = normalize_language(requested)
            if code is None or code == AUTO:
                return None
            if code not in {language.code for language in self.stt_languages}:
                raise UnsupportedLanguageError(
                    f"60db cannot transcribe {requested!r}", language=requested
                )
            return [code]
        codes = [code for code in configured if code != AUTO]
        if not codes or len(codes) != len(configured):
            return None  # "auto" configured (alone or beside codes): detection
        return codes

    def _find(self, wanted: str) -> Voice | None:
        lowered = wanted.lower()
        for voice in self._voices:
            if voice.voice_id == wanted:
                return voice
        for voice in self._voices:
            if voice.name.lower() == lowered:
                return voice
        return None

    def _fallback_voice(self) -> Voice:
        voice_id = self._default_voice or DEFAULT_VOICE_ID
        name = "Zara" if voice_id == DEFAULT_VOICE_ID else voice_id
        return Voice(voice_id=voice_id, name=name, language=self._default_language)

    async def _refresh_forever(self) -> None:
        delay = self._policy.interval if self.loaded else self._policy.retry
        while True:
            await asyncio.sleep(delay)
            if await self.refresh():
                _LOGGER.debug("60db catalog refreshed: %d voices", len(self._voices))
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
