"""``concurrency_counts``: the §6 limit counts sessions/contexts or authenticated sockets.

Also the observability used by leak tests: ``open_connections_by_service`` and
``active_slots`` return to zero on every path.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.conftest import eventually
from wyoming_60db.emulator import Emulator, EmulatorSettings, Fault
from wyoming_60db.emulator.settings import ConcurrencyCounts

from .wsutil import (
    KEY,
    connect,
    create_msg,
    handshake,
    recv_all,
    recv_json,
    recv_until,
    start_msg,
    stt_session,
    tts_session,
    types,
)

STT_LIMIT_FRAME = {
    "type": "error",
    "error": "Too many concurrent STT sessions",
    "error_code": "STT_CONCURRENCY_LIMIT",
    "details": {"limit": 8},
}
TTS_LIMIT_FRAME = {
    "error": {
        "message": "Too many concurrent TTS contexts",
        "code": "TTS_CONCURRENCY_LIMIT",
        "details": {"limit": 5},
    }
}
IDENTITY = f"key:{KEY}"


def drained(emu: Emulator) -> bool:
    return (
        emu.open_connections_by_service == {"stt": 0, "tts": 0}
        and emu.active_slots("stt") == 0
        and emu.active_slots("tts") == 0
    )


async def open_idle(
    http: aiohttp.ClientSession, emu: Emulator, service: str, n: int
) -> list[aiohttp.ClientWebSocketResponse]:
    sockets = []
    for _ in range(n):
        ws = await connect(http, emu, service)
        await handshake(ws)
        sockets.append(ws)
    return sockets


async def close_all(sockets: list[aiohttp.ClientWebSocketResponse]) -> None:
    await asyncio.gather(*(asyncio.wait_for(ws.close(), 10) for ws in sockets))


# ---------------------------------------------------------------------- "connections"


async def test_stt_connections_mode(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.concurrency_counts = "connections"
    sockets = await open_idle(http, emu, "stt", 8)
    assert emu.active_slots("stt") == 8
    assert emu.active_slots("stt", IDENTITY) == 8
    ninth = await connect(http, emu, "stt")
    frames, code = await recv_all(ninth)
    assert types(frames) == ["connecting", "error"]
    assert frames[-1] == STT_LIMIT_FRAME
    assert code == 1008
    assert emu.stt_sessions[-1].ended == "error:STT_CONCURRENCY_LIMIT"
    assert emu.stats.handshakes_completed["stt"] == 8

    await sockets.pop().close()
    await eventually(lambda: emu.active_slots("stt") == 7, "a closed socket frees its place")
    sockets.append(await stt_session(http, emu))  # gets in, and its session does not count again
    await sockets[0].send_json(start_msg())
    await recv_until(sockets[0], lambda f: f.get("type") == "session_started")
    assert emu.active_slots("stt") == 8

    other_key = await connect(http, emu, "stt", "apiKey=sk_live_someone_else")
    await handshake(other_key)  # limits are per key
    assert emu.active_slots("stt", "key:sk_live_someone_else") == 1
    assert emu.active_slots("stt") == 9
    assert emu.open_connections_by_service["stt"] == 9

    await close_all([*sockets, other_key])
    await eventually(lambda: drained(emu), "everything released")


async def test_tts_connections_mode(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.concurrency_counts = "connections"
    sockets = await open_idle(http, emu, "tts", 5)
    for cid in ("x", "y", "z"):  # several contexts on one counted socket: still one slot
        await sockets[0].send_json(create_msg(cid))
        assert "context_created" in await recv_json(sockets[0])
    assert emu.active_slots("tts") == 5
    sixth = await connect(http, emu, "tts")
    frames, code = await recv_all(sixth)
    assert types(frames) == ["connecting", "error"]
    assert frames[-1] == TTS_LIMIT_FRAME
    assert code == 1008

    emu.settings.tts_error_style = "string"
    seventh = await connect(http, emu, "tts")
    frames, code = await recv_all(seventh)
    assert (frames[-1], code) == ({"error": "Too many concurrent TTS contexts"}, 1008)

    await sockets[0].send_json({"close_context": {"context_id": "x"}})
    await recv_until(sockets[0], lambda f: "context_closed" in f)
    assert emu.active_slots("tts") == 5  # closing a context does not free the socket's slot
    await sockets.pop(0).close()
    await eventually(lambda: emu.active_slots("tts") == 4, "a closed socket frees its place")
    sockets.append(await tts_session(http, emu))
    await close_all(sockets)
    await eventually(lambda: drained(emu), "everything released")


async def test_connections_mode_is_per_service(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.concurrency_counts = "connections"
    emu.settings.stt_concurrency = 1
    emu.settings.tts_concurrency = 1
    stt = await stt_session(http, emu)
    tts = await tts_session(http, emu)
    assert emu.open_connections_by_service == {"stt": 1, "tts": 1}
    assert (emu.active_slots("stt"), emu.active_slots("tts")) == (1, 1)
    await close_all([stt, tts])
    await eventually(lambda: drained(emu), "everything released")


# ---------------------------------------------------------------------- "sessions"


async def test_stt_sessions_mode(emu: Emulator, http: aiohttp.ClientSession) -> None:
    assert emu.settings.concurrency_counts == "sessions"
    sockets = await open_idle(http, emu, "stt", 9)  # idle sockets do not count
    assert emu.active_slots("stt") == 0
    assert emu.open_connections_by_service["stt"] == 9
    for ws in sockets[:8]:
        await ws.send_json(start_msg())
        await recv_until(ws, lambda f: f.get("type") == "session_started")
    assert emu.active_slots("stt") == 8
    await sockets[8].send_json(start_msg())
    frames, code = await recv_all(sockets[8])
    assert (frames, code) == ([STT_LIMIT_FRAME], 1008)
    await close_all(sockets)
    await eventually(lambda: drained(emu), "everything released")


async def test_tts_sessions_mode(emu: Emulator, http: aiohttp.ClientSession) -> None:
    sockets = await open_idle(http, emu, "tts", 6)
    assert emu.active_slots("tts") == 0
    for i, ws in enumerate(sockets[:5]):
        await ws.send_json(create_msg(f"c{i}"))
        assert "context_created" in await recv_json(ws)
    assert emu.active_slots("tts") == 5
    await sockets[5].send_json(create_msg("c5"))
    frames, code = await recv_all(sockets[5])
    limit_frame = {"error": {"context_id": "c5", **TTS_LIMIT_FRAME["error"]}}
    assert (frames, code) == ([limit_frame], 1008)
    await close_all(sockets)
    await eventually(lambda: drained(emu), "everything released")


# ---------------------------------------------------------------------- releases


@pytest.mark.parametrize("mode", ["sessions", "connections"])
async def test_released_when_client_vanishes_or_faults(
    emu: Emulator, http: aiohttp.ClientSession, mode: ConcurrencyCounts
) -> None:
    emu.settings.concurrency_counts = mode
    emu.inject_fault(Fault(service="stt", kind="drop", after_audio_bytes=320))
    dropped = await stt_session(http, emu)
    await dropped.send_bytes(bytes(640))
    assert (await recv_all(dropped))[1] is None
    emu.inject_fault(Fault(service="tts", kind="error", after_messages=3))
    errored = await tts_session(http, emu)
    await errored.send_json(create_msg("e"))
    assert (await recv_all(errored))[1] == 1011
    vanishing = await stt_session(http, emu)
    closing = asyncio.create_task(vanishing.close())
    await asyncio.sleep(0)
    closing.cancel()  # the client gives up mid-close
    await asyncio.gather(closing, return_exceptions=True)
    await eventually(lambda: drained(emu), "faults and vanished clients release everything")


@pytest.mark.parametrize("mode", ["sessions", "connections"])
async def test_released_on_emulator_stop(
    http: aiohttp.ClientSession, mode: ConcurrencyCounts
) -> None:
    emulator = Emulator(EmulatorSettings(concurrency_counts=mode))
    await emulator.start()
    emulator.inject_fault(Fault(service="stt", kind="stall", after_messages=4))
    stalled = await stt_session(http, emulator)
    tts = await tts_session(http, emulator)
    await tts.send_json(create_msg("a"))
    await recv_json(tts)
    assert emulator.active_slots("stt") == 1
    assert emulator.active_slots("tts") == 1
    await asyncio.wait_for(emulator.stop(), 5)
    assert drained(emulator)
    for ws in (stalled, tts):
        _, code = await recv_all(ws)
        assert code in (1001, None)


async def test_slot_held_until_the_delayed_close_completes(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Under "connections" a socket counts until it is closed, close handshake included."""
    emu.settings.concurrency_counts = "connections"
    emu.settings.close_delay = 0.3
    ws = await stt_session(http, emu)
    closing = asyncio.create_task(ws.close())
    await asyncio.sleep(0.1)
    assert emu.active_slots("stt") == 1
    await asyncio.wait_for(closing, 10)
    await eventually(lambda: drained(emu), "released after the close")
