"""``close_delay``: the emulator's side of every close handshake is late (both sockets).

Timing asserts are one-sided and generous: lower bounds a little under the
delay, upper bounds far above it (the machine is shared and slow).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.conftest import eventually
from wyoming_60db.emulator import Emulator, EmulatorSettings

from .wsutil import (
    connect,
    handshake,
    recv_all,
    recv_json,
    recv_until,
    start_msg,
    stt_session,
    tts_session,
    types,
)

DELAY = 0.3
AT_LEAST = 0.25  # lower bound for a DELAY-long wait
LONG_DELAY = 30.0  # a delay no test waits out: anything that ends it early is a cut-off
SOON = 5.0  # generous "well before LONG_DELAY"


def idle(emu: Emulator) -> bool:
    return emu.open_connections_by_service == {"stt": 0, "tts": 0}


async def leftover_tasks() -> list[asyncio.Task[object]]:
    """Tasks still alive besides this test's own (after the emulator stopped)."""
    await asyncio.sleep(0)
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_client_close_waits_for_the_delay(
    emu: Emulator, http: aiohttp.ClientSession, service: str
) -> None:
    emu.settings.close_delay = DELAY
    ws = await connect(http, emu, service)
    await handshake(ws)
    t0 = time.monotonic()
    await asyncio.wait_for(ws.close(), 10)
    assert time.monotonic() - t0 >= AT_LEAST
    assert ws.close_code == 1000  # the emulator's answer, as without a delay
    await eventually(lambda: idle(emu), "socket released")


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_zero_delay_closes_at_once(
    emu: Emulator, http: aiohttp.ClientSession, service: str
) -> None:
    assert emu.settings.close_delay == 0.0
    ws = await connect(http, emu, service)
    await handshake(ws)
    t0 = time.monotonic()
    await asyncio.wait_for(ws.close(), 10)
    assert time.monotonic() - t0 < 3.0
    assert ws.close_code == 1000
    await eventually(lambda: idle(emu), "socket released")
    record = emu.stt_sessions[0] if service == "stt" else emu.tts_connections[0]
    assert record.close_code == 1000


async def test_long_delay_is_really_waited(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.close_delay = LONG_DELAY
    ws = await connect(http, emu, "tts")
    await handshake(ws)
    closing = asyncio.create_task(ws.close())
    done, _ = await asyncio.wait({closing}, timeout=1.0)
    assert not done  # still waiting for the emulator's close frame
    assert emu.open_connections_by_service["tts"] == 1
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await eventually(lambda: idle(emu), "vanished client released long before the delay ends")


async def test_session_stopped_close_is_delayed(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.close_delay = DELAY
    ws = await stt_session(http, emu)
    await ws.send_json({"type": "stop"})
    await recv_until(ws, lambda f: f.get("type") == "session_stopped")
    t0 = time.monotonic()
    frames, code = await recv_all(ws, 10)
    assert (frames, code) == ([], 1000)
    assert time.monotonic() - t0 >= AT_LEAST
    await eventually(lambda: idle(emu), "socket released")


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_rejection_close_is_delayed(
    emu: Emulator, http: aiohttp.ClientSession, service: str
) -> None:
    emu.settings.close_delay = DELAY
    ws = await connect(http, emu, service, "apiKey=not_a_key")
    await recv_json(ws)  # connecting
    await recv_json(ws)  # the INVALID_API_KEY error frame
    t0 = time.monotonic()
    frames, code = await recv_all(ws, 10)
    assert (frames, code) == ([], 1008)
    assert time.monotonic() - t0 >= AT_LEAST


async def test_delay_applies_live_to_open_sockets(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    emu.settings.close_delay = DELAY  # changed after the socket opened
    t0 = time.monotonic()
    await asyncio.wait_for(ws.close(), 10)
    assert time.monotonic() - t0 >= AT_LEAST


async def test_client_cancelled_mid_close_then_emulator_exits(
    http: aiohttp.ClientSession,
) -> None:
    """The scenario the knob exists for: a client cancelled inside ``await ws.close()``."""
    emulator = Emulator(EmulatorSettings(close_delay=LONG_DELAY))
    await emulator.start()
    sockets = [await stt_session(http, emulator), await tts_session(http, emulator)]
    closes = [asyncio.create_task(ws.close()) for ws in sockets]
    await asyncio.sleep(0.3)  # the close frames reached the emulator, which sits on them
    assert emulator.open_connections == 2
    for task in closes:
        task.cancel()
    await asyncio.gather(*closes, return_exceptions=True)
    await eventually(lambda: idle(emulator), "both sockets released")
    assert emulator.active_slots("stt") == 0
    assert emulator.stt_sessions[0].ended == "client_closed"
    await asyncio.wait_for(emulator.stop(), SOON)
    assert await leftover_tasks() == []


async def test_client_vanishes_during_server_close_delay(
    http: aiohttp.ClientSession,
) -> None:
    emulator = Emulator(EmulatorSettings(close_delay=LONG_DELAY))
    await emulator.start()
    ws = await stt_session(http, emulator)
    await ws.send_json({"type": "stop"})
    frames = await recv_until(ws, lambda f: f.get("type") == "session_stopped")
    assert types(frames)[-1] == "session_stopped"
    closing = asyncio.create_task(ws.close())  # the emulator is delaying its own close
    await asyncio.sleep(0.3)
    closing.cancel()
    await asyncio.gather(closing, return_exceptions=True)
    await eventually(lambda: idle(emulator), "socket released")
    await asyncio.wait_for(emulator.stop(), SOON)
    assert await leftover_tasks() == []


@pytest.mark.parametrize("who", ["client", "emulator"])
async def test_stop_does_not_wait_for_pending_close_delays(
    http: aiohttp.ClientSession, who: str
) -> None:
    emulator = Emulator(EmulatorSettings(close_delay=LONG_DELAY))
    await emulator.start()
    closing: asyncio.Task[object]
    if who == "client":  # the emulator sits on the client's close frame
        ws = await tts_session(http, emulator)
        closing = asyncio.create_task(ws.close())
    else:  # the emulator delays its own close after a rejection
        ws = await connect(http, emulator, "stt", "apiKey=nope")
        await recv_json(ws)
        await recv_json(ws)
        closing = asyncio.create_task(recv_all(ws, 10))
    await asyncio.sleep(0.3)
    assert emulator.open_connections == 1
    await asyncio.wait_for(emulator.stop(), SOON)
    assert emulator.open_connections == 0
    await asyncio.wait_for(closing, SOON)  # the client is released too
    assert await leftover_tasks() == []


async def test_delay_with_sessions_in_flight(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Closing while a TTS context streams: the emulator keeps working until it answers."""
    emu.settings.close_delay = DELAY
    emu.settings.chunk_gap = 0.01
    ws = await tts_session(http, emu)
    await ws.send_json(
        {"create_context": {"context_id": "c", "voice_id": emu.settings.voices[0].voice_id}}
    )
    assert "context_created" in await recv_json(ws)
    await ws.send_json({"send_text": {"context_id": "c", "text": "hello there " * 5}})
    await ws.send_json({"flush_context": {"context_id": "c"}})
    await recv_until(ws, lambda f: "audio_chunk" in f)
    t0 = time.monotonic()
    await asyncio.wait_for(ws.close(), 10)
    assert time.monotonic() - t0 >= AT_LEAST
    await eventually(lambda: idle(emu), "socket released")
    assert emu.active_slots("tts") == 0


async def test_session_otherwise_unchanged(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A plain session with a delay behaves as without one apart from the close."""
    emu.settings.close_delay = DELAY
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    await ws.send_json(start_msg())
    await recv_until(ws, lambda f: f.get("type") == "session_started")
    await ws.send_json({"type": "stop"})
    frames, code = await recv_all(ws, 10)
    assert types(frames)[-1] == "session_stopped"
    assert code == 1000
    assert emu.stt_sessions[0].close_code == 1000
