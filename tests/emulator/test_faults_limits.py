"""One-shot faults (drop/stall/garbage/error) and per-key concurrency limits (§6)."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from wyoming_60db.emulator import Emulator, Fault

from .wsutil import (
    KEY,
    assert_silent,
    connect,
    create_msg,
    handshake,
    recv,
    recv_all,
    recv_json,
    recv_until,
    send_json_audio,
    start_msg,
    stt_session,
    tts_session,
    types,
)

# ---------------------------------------------------------------------- faults


async def test_drop_after_messages(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(Fault(service="stt", kind="drop", after_messages=2))
    ws = await connect(http, emu, "stt")
    frames, code = await recv_all(ws)
    assert types(frames) == ["connecting", "connection_established"]
    assert code is None  # no close frame: the TCP connection was aborted
    assert emu.stt_sessions[0].ended == "fault:drop"
    assert emu.pending_faults == []


async def test_drop_after_audio_bytes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(Fault(service="stt", kind="drop", after_audio_bytes=6400))
    ws = await stt_session(http, emu)
    audio = np.zeros(16000, dtype=np.int16).tobytes()
    with pytest.raises((ConnectionError, aiohttp.ClientError)):
        await send_json_audio(ws, audio, chunk=1600)
        await asyncio.sleep(0.2)
        await send_json_audio(ws, audio, chunk=1600)
    _, code = await recv_all(ws)
    assert code is None
    assert 6400 <= len(emu.stt_sessions[0].audio) < 2 * len(audio)


async def test_drop_immediately(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(Fault(service="tts", kind="drop", after_messages=0))
    ws = await connect(http, emu, "tts")
    frames, code = await recv_all(ws)
    assert (frames, code) == ([], None)


async def test_fault_is_one_shot_and_service_scoped(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.inject_fault(Fault(service="tts", kind="drop"))
    stt = await connect(http, emu, "stt")
    await handshake(stt)  # an STT connection does not consume a TTS fault
    await stt.close()
    tts = await connect(http, emu, "tts")
    assert (await recv_all(tts))[1] is None
    tts = await connect(http, emu, "tts")
    await handshake(tts)  # consumed: the next TTS connection is healthy
    await tts.close()


async def test_stall(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(Fault(service="tts", kind="stall", after_messages=3))
    ws = await tts_session(http, emu)
    await ws.send_json(create_msg("s"))
    assert "context_created" in await recv_json(ws)
    await ws.send_json({"send_text": {"context_id": "s", "text": "hello"}})
    await ws.send_json({"flush_context": {"context_id": "s"}})
    await assert_silent(ws, 0.3)  # socket open, nothing sent, input ignored
    assert not ws.closed
    await asyncio.wait_for(ws.close(), 5)
    await asyncio.sleep(0.05)
    assert emu.tts_connections[0].ended == "fault:stall"


async def test_stall_released_by_stop(http: aiohttp.ClientSession) -> None:
    emulator = Emulator()
    await emulator.start()
    emulator.inject_fault(Fault(service="stt", kind="stall", after_messages=1))
    ws = await connect(http, emulator, "stt")
    await recv_json(ws)
    await assert_silent(ws, 0.2)
    await asyncio.wait_for(emulator.stop(), 5)
    _, code = await recv_all(ws)
    assert code in (1001, None)


async def test_garbage(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(Fault(service="stt", kind="garbage", after_messages=1))
    ws = await connect(http, emu, "stt")
    assert "connecting" in await recv_json(ws)
    garbage = await recv(ws)
    assert garbage.type is aiohttp.WSMsgType.TEXT
    assert garbage.data == "\x00not json{"
    assert "connection_established" in await recv_json(ws)  # and it keeps going
    await ws.send_json(start_msg())
    await recv_until(ws, lambda f: f.get("type") == "session_started")
    await ws.close()


async def test_error_fault_stt(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(Fault(service="any", kind="error", after_messages=2))
    ws = await connect(http, emu, "stt")
    frames, code = await recv_all(ws)
    assert frames[-1] == {"type": "error", "error": "Internal server error"}
    assert code == 1011


async def test_error_fault_tts(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(
        Fault(
            service="tts",
            kind="error",
            after_messages=2,
            message="Upstream TTS failed",
            code="TTS_UPSTREAM_ERROR",
        )
    )
    ws = await connect(http, emu, "tts")
    frames, code = await recv_all(ws)
    assert frames[-1] == {"error": {"message": "Upstream TTS failed", "code": "TTS_UPSTREAM_ERROR"}}
    assert code == 1011


async def test_rest_faults(emu: Emulator, http: aiohttp.ClientSession) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    url = emu.base_url + "/voices"
    emu.inject_fault(Fault(service="any", kind="error", message="boom", code="X"))
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 500
        assert await resp.json() == {"success": False, "message": "boom", "error_code": "X"}
    emu.inject_fault(Fault(service="any", kind="garbage"))
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 200
        with pytest.raises(ValueError):  # noqa: PT011
            await resp.json()
    emu.inject_fault(Fault(service="any", kind="drop"))
    # A fresh connection: aiohttp silently retries a GET on a reused keep-alive one.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        with pytest.raises(aiohttp.ClientError):
            async with fresh.get(url, headers=auth, timeout=aiohttp.ClientTimeout(total=5)) as r:
                await r.read()
    emu.inject_fault(Fault(service="any", kind="stall"))
    with pytest.raises(TimeoutError):
        async with http.get(url, headers=auth, timeout=aiohttp.ClientTimeout(total=0.3)):
            pass
    async with http.get(url, headers=auth) as resp:
        assert resp.status == 200


# ---------------------------------------------------------------------- concurrency


async def test_stt_concurrency_limit(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.stt_concurrency = 1
    idle = await connect(http, emu, "stt")
    await handshake(idle)  # connected but not started: does not count
    first = await stt_session(http, emu)
    second = await connect(http, emu, "stt")
    await handshake(second)
    await second.send_json(start_msg())
    frames, code = await recv_all(second)
    assert frames == [
        {
            "type": "error",
            "error": "Too many concurrent STT sessions",
            "error_code": "STT_CONCURRENCY_LIMIT",
            "details": {"limit": 1},
        }
    ]
    assert code == 1008
    other_key = await connect(http, emu, "stt", "apiKey=sk_live_someone_else")
    await handshake(other_key)
    await other_key.send_json(start_msg())  # limits are per key
    await recv_until(other_key, lambda f: f.get("type") == "session_started")
    await first.close()
    await asyncio.sleep(0.05)
    third = await stt_session(http, emu)  # the slot was released when the socket closed
    for ws in (idle, third, other_key):
        await ws.close()


async def test_tts_concurrency_counts_open_contexts(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.settings.tts_concurrency = 2
    a = await tts_session(http, emu)
    for cid in ("a1", "a2"):
        await a.send_json(create_msg(cid))
        await recv_json(a)
    b = await tts_session(http, emu)
    await b.send_json(create_msg("b1"))
    frames, code = await recv_all(b)
    assert frames == [
        {
            "error": {
                "context_id": "b1",
                "message": "Too many concurrent TTS contexts",
                "code": "TTS_CONCURRENCY_LIMIT",
                "details": {"limit": 2},
            }
        }
    ]
    assert code == 1008
    await a.send_json({"close_context": {"context_id": "a1"}})
    assert "context_closed" in await recv_json(a)
    c = await tts_session(http, emu)
    await c.send_json(create_msg("c1"))  # a1's slot is free again
    assert "context_created" in await recv_json(c)
    await a.close()  # closing the socket frees a2
    await asyncio.sleep(0.05)
    await c.send_json(create_msg("c2"))
    assert "context_created" in await recv_json(c)
    await c.close()
