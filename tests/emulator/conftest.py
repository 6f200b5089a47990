"""Fixtures: a running emulator on an ephemeral loopback port and an HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from wyoming_60db.emulator import Emulator, EmulatorSettings


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """Default settings; tests change ``emu.settings`` live as needed."""
    async with Emulator(EmulatorSettings()) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        yield session
