"""Start-up and shutdown of what connections share: the account check and the catalog."""

from __future__ import annotations

import asyncio
import logging

from .settings import ServerSettings
from .sixtydb import SixtyDbClient, SixtyDbError
from .state import Backend

_LOGGER = logging.getLogger(__name__)


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
    if backend.usage_log is not None:
        backend.usage_log.start()
    client.prewarm()
    return backend


async def stop_backend(backend: Backend) -> None:
    """Stop refreshing and close every 60db connection."""
    await backend.catalog.stop()
    try:
        if backend.client is not None:
            await backend.client.close()  # sessions still stopping report their billing
    finally:
        if backend.usage_log is not None:
            await backend.usage_log.stop()
        backend.detach()


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
    """Warn about a configured language or voice the account does not have."""
    settings, catalog = backend.settings, backend.catalog.current
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
