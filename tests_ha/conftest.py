"""Fixtures: the project's 60db emulator on loopback, and a set-up config entry.

The emulator is the real backend of every test here (HA's test plugin allows
loopback sockets only), so requests go through the real client core, real
WebSockets and real tone-coded audio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.util.async_ import get_scheduled_timer_handles
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sixtydb.api import create_client
from custom_components.sixtydb.const import CONF_API_URL, DOMAIN
from wyoming_60db.emulator import Emulator, EmulatorSettings
from wyoming_60db.sixtydb import Timeouts

API_KEY = "sk_live_test_key_0123456789abcdef"
OTHER_KEY = "sk_live_other_key_fedcba9876543210"
USER_ID = 43  # the emulator's default account
STT_ENTITY = "stt.60db_speech_to_text"
TTS_ENTITY = "tts.60db_text_to_speech"
WAIT = 10.0  # the longest any test waits for one network event
# Idle limits short enough to test without waiting the real 10 s / 30 s.
SHORT_IDLE = Timeouts(stt_audio_idle=0.5, tts_text_idle=0.5)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/sixtydb."""


@pytest.fixture(autouse=True)
def tts_cache_dir(tmp_path: Path) -> Iterator[Path]:
    """HA's TTS writes a file cache; keep it out of the test package's config folder."""
    with patch(
        "homeassistant.components.tts._init_tts_cache_dir",
        return_value=str(tmp_path),
    ):
        yield tmp_path


@pytest.fixture
async def emulator(socket_enabled: None) -> AsyncIterator[Emulator]:
    """60db on 127.0.0.1, accepting only API_KEY (HA's plugin allows no other host)."""
    async with Emulator(EmulatorSettings(api_key=API_KEY)) as emu:
        yield emu
    _cancel_rearmed_heartbeats()


def _cancel_rearmed_heartbeats() -> None:
    """Work around aiohttp 3.14's server WebSocket re-arming its heartbeat after a close.

    When the client's close frame arrives after the emulator closed a socket
    (a rejected login), aiohttp 3.14 schedules one more ``_send_heartbeat``
    timer. It is harmless, but HA's test plugin fails any test that leaves a
    timer behind. Only that one kind of timer is cancelled; anything else the
    integration leaves still fails the test.
    """
    for handle in get_scheduled_timer_handles(asyncio.get_running_loop()):
        callback = getattr(handle, "_callback", None)
        owner = getattr(callback, "__self__", None)
        if (
            isinstance(owner, web.WebSocketResponse)
            and owner.closed
            and getattr(callback, "__name__", "") == "_send_heartbeat"
        ):
            handle.cancel()


@pytest.fixture
def config_entry(hass: HomeAssistant, emulator: Emulator) -> MockConfigEntry:
    """An entry for the emulator's account (not set up yet)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="60db",
        unique_id=str(USER_ID),
        data={CONF_API_KEY: API_KEY, CONF_API_URL: emulator.base_url},
    )
    entry.add_to_hass(hass)
    return entry


@asynccontextmanager
async def _loaded(hass: HomeAssistant, entry: MockConfigEntry) -> AsyncIterator[MockConfigEntry]:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    yield entry
    # Unloaded afterwards, so that no connection outlives the test.
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture
async def setup_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The entry, set up as in real use (one warm STT and one warm TTS connection)."""
    async with _loaded(hass, config_entry) as entry:
        yield entry


@pytest.fixture
async def cold_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The entry without warm connections: each request logs in on a new connection.

    Emulator faults and the credits check act on the next new connection, which
    then is the request's own.
    """
    with patch("custom_components.sixtydb.create_client", partial(create_client, warm=False)):
        async with _loaded(hass, config_entry) as entry:
            yield entry


@pytest.fixture
async def impatient_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """The entry with SHORT_IDLE: requests whose input goes quiet end after 0.5 s."""
    with patch(
        "custom_components.sixtydb.create_client", partial(create_client, timeouts=SHORT_IDLE)
    ):
        async with _loaded(hass, config_entry) as entry:
            yield entry


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` until it holds; fail (never hang) after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110  # the emulator's records have no events
            await asyncio.sleep(0.01)
    assert condition(), what


def request_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished tasks running the integration's, the pipeline's or a 60db session's code.

    Warm-pool upkeep (``pool.py``) is not a request's and does not count.
    """
    current = asyncio.current_task()
    found = []
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = Path(code.co_filename).as_posix() if code is not None else ""
        if (
            "/custom_components/sixtydb/" in filename
            or "/wyoming_60db/pipeline/" in filename
            or filename.endswith(("/wyoming_60db/sixtydb/stt.py", "/wyoming_60db/sixtydb/tts.py"))
        ):
            found.append(task)
    return found


async def bounded(awaitable: Awaitable[Any], timeout: float = WAIT) -> Any:
    """Await with an upper bound, so a regression fails instead of hanging CI."""
    async with asyncio.timeout(timeout):
        return await awaitable
