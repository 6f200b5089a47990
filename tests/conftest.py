"""Shared fixtures: the real emulator on loopback and a client pointed at it."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from wyoming_60db.emulator import Emulator, EmulatorSettings
from wyoming_60db.sixtydb import ClientConfig, SixtyDbClient, Timeouts

TEST_KEY = "sk_test_wyoming60db_secret_key"

# Short, but far above what loopback needs: a bug fails fast instead of hanging.
FAST_TIMEOUTS = Timeouts(
    connect=3.0, rest=3.0, tts_first_audio=3.0, tts_chunk_gap=3.0,
    stt_ready=3.0, stt_finalize=3.0, queue=0.3, close=1.0,
)  # fmt: skip


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Until something accepts connections on the loopback ``port`` (bounded)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


async def describe(port: int, timeout: float = 10.0) -> Info:
    """``describe`` → ``info`` from a Wyoming server on the loopback ``port``."""
    async with asyncio.timeout(timeout), AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        while True:
            event = await client.read_event()
            assert event is not None, "the server closed the connection before info"
            if Info.is_type(event.type):
                return Info.from_event(event)


async def stop_process(process: asyncio.subprocess.Process, timeout: float = 10.0) -> int:
    """SIGTERM, then the exit status; killed if it has not exited within ``timeout``."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(timeout):
            return await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def eventually(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition()`` until it holds; fail (never hang) after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110 - polling emulator records and counters
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorSettings()) as emu:
        yield emu


def make_client(emulator: Emulator, **overrides: object) -> SixtyDbClient:
    """A client for the emulator; keyword arguments override ClientConfig fields."""
    fields: dict[str, object] = {
        "api_key": TEST_KEY,
        "api_url": emulator.base_url,
        "timeouts": FAST_TIMEOUTS,
    }
    fields.update(overrides)
    return SixtyDbClient(ClientConfig(**fields))  # type: ignore[arg-type]


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[SixtyDbClient]:
    async with make_client(emulator) as sixtydb:
        yield sixtydb
