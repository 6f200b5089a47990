"""Server settings and what every connection shares: the 60db client, the catalog, ``info``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Final, Protocol

from wyoming.event import Event
from wyoming.info import Info

from . import __version__
from .allow import AllowList
from .catalog_cache import VoiceCatalog
from .info import build_info
from .sixtydb import DEFAULT_API_URL, ClientConfig, SixtyDbClient, SixtyDbError, Timeouts
from .sixtydb.catalog import normalize_language
from .sixtydb.stt import SttEncoding
from .wire import EventLimits

_LOGGER = logging.getLogger(__name__)

DEFAULT_URI: Final = "tcp://0.0.0.0:10300"

# Home Assistant has no timeouts of its own (ha-and-wyoming.md §2), so these
# are what bounds every wait a request can make.
SERVER_TIMEOUTS: Final = Timeouts(
    connect=5.0, rest=5.0, tts_first_audio=10.0, tts_chunk_gap=10.0,
    stt_ready=5.0, stt_finalize=5.0, queue=3.0, close=2.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the command line configures. ``repr`` never shows the key."""

    uri: str = DEFAULT_URI
    api_key: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    languages: tuple[str, ...] = ("auto",)
    voice: str | None = None
    stt_encoding: SttEncoding = "linear"
    tts_sample_rate: int = 16000
    tts_speed: float = 1.0
    zeroconf: str | None = None
    allow: AllowList = field(default_factory=AllowList.default)
    demo: bool = False
    timeouts: Timeouts = SERVER_TIMEOUTS
    limits: EventLimits = field(default_factory=EventLimits)
    catalog_timeout: float = 5.0
    """How long start-up waits for 60db's catalog before serving what is known."""
    warm_connections: int = 1
    drain_seconds: float = 30.0
    """After an ``error``: the longest time to keep reading what the client still sends."""
    drain_idle_seconds: float = 1.0
    """… or until the client has sent nothing for this long."""
    write_timeout: float = 10.0
    """A client that does not read for this long is dropped."""
    shutdown_grace: float = 5.0
    """On SIGTERM, how long requests in flight may run before they are cancelled."""
    stt_concurrency: int | None = None
    """60db's per-account STT limit, if the plan's differs from the documented 8."""
    tts_concurrency: int | None = None
    """… and the TTS limit (documented: 5)."""

    @property
    def default_language(self) -> str:
        """The first configured language, for voices 60db gives none."""
        return next((code for code in self.languages if code != "auto"), "en")

    def client_config(self) -> ClientConfig:
        """The 60db client configuration these settings describe."""
        config = ClientConfig(api_key=self.api_key, api_url=self.api_url, timeouts=self.timeouts)
        if self.stt_concurrency is not None:
            config = dataclasses.replace(config, stt_concurrency=self.stt_concurrency)
        if self.tts_concurrency is not None:
            config = dataclasses.replace(config, tts_concurrency=self.tts_concurrency)
        return config


def normalize_languages(values: list[str]) -> tuple[str, ...]:
    """``en-US,de`` → ``("en", "de")``; nothing → ``("auto",)``."""
    codes: list[str] = []
    for value in values:
        for part in value.replace(",", " ").split():
            code = "auto" if part.lower() == "auto" else normalize_language(part)
            if code and code not in codes:
                codes.append(code)
    return tuple(codes) or ("auto",)


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
        catalog = self.catalog
        return build_info(
            voices=catalog.voices,
            stt_languages=catalog.stt_languages,
            configured_languages=self.settings.languages,
            default_voice=catalog.default_voice,
            fallback_language=self.settings.default_language,
            version=__version__,
        )

    def _rebuild_info(self) -> None:
        self.info_event = self._build_info().event()
        _LOGGER.info(
            "60db catalog: %d voices, %d STT languages",
            len(self.catalog.voices),
            len(self.catalog.stt_languages),
        )


async def start_backend(settings: ServerSettings) -> Backend:
    """Create the client, check the account and load the catalog (bounded)."""
    client = None
    if settings.api_key:
        client = SixtyDbClient(
            settings.client_config(),
            warm_stt=settings.warm_connections,
            warm_tts=settings.warm_connections,
        )
    backend = Backend(settings, client)
    if client is None:
        _LOGGER.error("%s; describe is answered, requests get an error", backend.unavailable_reason)
        return backend
    await asyncio.gather(_check_account(backend), _load_catalog(backend))
    backend.catalog.start_refreshing()
    client.prewarm()
    return backend


async def _check_account(backend: Backend) -> None:
    assert backend.client is not None
    try:
        async with asyncio.timeout(backend.settings.catalog_timeout):
            account = await backend.client.check_account()
    except TimeoutError:
        _LOGGER.warning(
            "60db did not answer the login within %.0f s", backend.settings.catalog_timeout
        )
    except SixtyDbError as err:
        _LOGGER.error("60db login failed (%s): %s", err.code, err)
    else:
        balance = "unknown" if account.credit_balance is None else f"${account.credit_balance:.2f}"
        _LOGGER.info("60db account %s, credit balance %s", account.user_id, balance)


async def _load_catalog(backend: Backend) -> None:
    catalog = backend.catalog
    if await catalog.load(backend.settings.catalog_timeout):
        _check_configured(backend)
        return
    if catalog.last_error is not None:
        _LOGGER.error(
            "Cannot read 60db's catalog (%s): %s; serving the default voice until it loads",
            catalog.last_error.code,
            catalog.last_error,
        )


def _check_configured(backend: Backend) -> None:
    settings, catalog = backend.settings, backend.catalog
    known = {language.code for language in catalog.stt_languages}
    for code in settings.languages:
        if code != "auto" and code not in known:
            _LOGGER.warning("--language %s is not one of 60db's STT languages", code)
    if (
        settings.voice
        and catalog.default_voice.voice_id != settings.voice
        and (catalog.default_voice.name.lower() != settings.voice.lower())
    ):
        _LOGGER.warning("--voice %s is not in the account's catalog", settings.voice)


async def stop_backend(backend: Backend) -> None:
    """Stop refreshing and close every 60db connection."""
    await backend.catalog.stop()
    if backend.client is not None:
        await backend.client.close()
