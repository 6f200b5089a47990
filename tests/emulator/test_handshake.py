"""Opening sequence, auth, credits and early messages on both sockets (§1.4, §2.2, §9.1, §9.2)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from wyoming_60db.emulator import Emulator

from .wsutil import (
    KEY,
    connect,
    create_msg,
    handshake,
    recv_all,
    recv_json,
    recv_until,
    start_msg,
    types,
)

INFO = {"user_id": 43, "credit_balance": 9.97, "workspace": "default"}


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_envelope_handshake(emu: Emulator, http: aiohttp.ClientSession, service: str) -> None:
    ws = await connect(http, emu, service)
    connecting = await recv_json(ws)
    assert connecting["connecting"] is True
    assert connecting["message"] == "Authenticating..."
    assert isinstance(connecting["timestamp"], int)
    assert "type" not in connecting
    established = await recv_json(ws)
    assert established == {"connection_established": {"service": service, **INFO}}
    await ws.close()
    assert emu.stats.handshakes_completed[service] == 1
    assert emu.stats.ws_connections[f"/ws/{service}"] == 1


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_typed_handshake(emu: Emulator, http: aiohttp.ClientSession, service: str) -> None:
    emu.settings.handshake = "typed"
    ws = await connect(http, emu, service)
    connecting = await recv_json(ws)
    assert connecting["type"] == "connecting"
    assert "connecting" not in connecting
    established = await recv_json(ws)
    assert established == {"type": "connection_established", "service": service, **INFO}
    await ws.close()


async def test_both_handshake(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.handshake = "both"
    ws = await connect(http, emu, "stt")
    connecting = await recv_json(ws)
    assert connecting["type"] == "connecting"
    assert connecting["connecting"] is True
    established = await recv_json(ws)
    assert established == {
        "type": "connection_established",
        "connection_established": {"service": "stt", **INFO},
    }
    await ws.close()


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ("after_start", ["connecting", "connection_established", "connected", "session_started"]),
        (
            "before_established",
            ["connecting", "connected", "connection_established", "session_started"],
        ),
        ("omitted", ["connecting", "connection_established", "session_started"]),
    ],
)
async def test_stt_connected_placement(
    emu: Emulator, http: aiohttp.ClientSession, placement: str, expected: list[str]
) -> None:
    emu.settings.stt_connected = placement  # type: ignore[assignment]
    ws = await connect(http, emu, "stt")
    frames = await handshake(ws)
    await ws.send_json(start_msg())
    frames += await recv_until(ws, lambda f: f.get("type") == "session_started")
    assert types(frames) == expected
    connected = [f for f in frames if f.get("type") == "connected"]
    if connected:
        assert connected[0]["server_info"]["model"] == "60db-stt-v01"
        assert connected[0]["server_info"]["ready"] is True
    assert frames[-1]["model"] == "60db-stt-v01"
    assert frames[-1]["session_id"].startswith("sess_")
    await ws.close()


async def test_token_auth(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, emu, "stt", "token=eyJhbGciOi.jwt.sig&workspace_id=24")
    await handshake(ws)
    await ws.close()
    assert emu.stt_sessions[0].auth_method == "token"


@pytest.mark.parametrize(
    "query", ["token=abc", "token=abc&workspace_id=x", "token=&workspace_id=1"]
)
async def test_token_auth_needs_integer_workspace(
    emu: Emulator, http: aiohttp.ClientSession, query: str
) -> None:
    ws = await connect(http, emu, "tts", query)
    frames, code = await recv_all(ws)
    assert code == 1008
    assert frames[-1] == {"error": {"message": "Invalid API key", "code": "INVALID_API_KEY"}}


@pytest.mark.parametrize("query", ["apiKey=nope", "apiKey=", ""])
async def test_bad_key_stt(emu: Emulator, http: aiohttp.ClientSession, query: str) -> None:
    ws = await connect(http, emu, "stt", query)
    frames, code = await recv_all(ws)
    assert "connecting" in frames[0]
    assert frames[1:] == [
        {"type": "error", "error": "Invalid API key", "error_code": "INVALID_API_KEY"}
    ]
    assert code == 1008
    assert emu.stats.rejected_auth == 1
    assert emu.stats.handshakes_completed["stt"] == 0


async def test_bad_key_tts_close_reason(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, emu, "tts", "apiKey=sk_live_")
    await recv_json(ws)
    assert await recv_json(ws) == {
        "error": {"message": "Invalid API key", "code": "INVALID_API_KEY"}
    }
    close = await ws.receive(timeout=5)
    assert close.type is aiohttp.WSMsgType.CLOSE
    assert close.data == 1008
    assert close.extra == "INVALID_API_KEY"


async def test_fixed_api_key_mode(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.api_key = "sk_live_only_this"
    ws = await connect(http, emu, "stt", "apiKey=sk_live_only_this")
    await handshake(ws)
    await ws.close()
    ws = await connect(http, emu, "stt", f"apiKey={KEY}")  # well-formed but not the key
    _, code = await recv_all(ws)
    assert code == 1008
    ws = await connect(http, emu, "stt", "token=sk_live_only_this&workspace_id=3")
    await handshake(ws)
    await ws.close()
    ws = await connect(http, emu, "stt", "token=other&workspace_id=3")
    _, code = await recv_all(ws)
    assert code == 1008


async def test_keys_never_recorded(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    await ws.close()
    assert KEY not in repr(emu.stt_sessions) + repr(emu.stats)
    assert emu.stt_sessions[0].auth_method == "apiKey"


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_zero_balance(emu: Emulator, http: aiohttp.ClientSession, service: str) -> None:
    emu.settings.credit_balance = 0.0
    ws = await connect(http, emu, service)
    await recv_json(ws)
    frame = await recv_json(ws)
    if service == "stt":
        assert frame == {
            "type": "error",
            "error": "Insufficient credits",
            "error_code": "INSUFFICIENT_CREDITS",
        }
    else:
        assert frame == {
            "error": {"message": "Insufficient credits", "code": "INSUFFICIENT_CREDITS"}
        }
    close = await ws.receive(timeout=5)
    assert (close.data, close.extra) == (1008, "INSUFFICIENT_CREDITS")


async def test_zero_balance_without_frame(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.credit_balance = -1.0
    emu.settings.credits_error_frame = False
    ws = await connect(http, emu, "stt")
    frames, code = await recv_all(ws)
    assert types(frames) == ["connecting"]
    assert code == 1008


async def test_connect_latency_delays_established(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.settings.connect_latency = 0.2
    ws = await connect(http, emu, "tts")
    await recv_json(ws)
    t0 = time.monotonic()
    await recv_json(ws)
    assert time.monotonic() - t0 >= 0.15
    await ws.close()


async def test_early_messages_dropped(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.connect_latency = 0.2
    ws = await connect(http, emu, "stt")
    await ws.send_json(start_msg())  # too early: silently dropped (§1.4)
    frames = await handshake(ws)
    assert types(frames) == ["connecting", "connection_established"]
    await ws.send_json({"type": "test"})
    assert (await recv_json(ws))["type"] == "test_response"  # the start had no effect
    await ws.send_json(start_msg())
    await recv_until(ws, lambda f: f.get("type") == "session_started")
    await ws.close()
    assert emu.stt_sessions[0].early_messages == 1


async def test_early_messages_error(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.connect_latency = 0.2
    emu.settings.early_messages = "error"
    ws = await connect(http, emu, "tts")
    await ws.send_json({"create_context": {"context_id": "c"}})
    frames = await handshake(ws)
    assert types(frames) == ["connecting", "error", "connection_established"]
    assert frames[1]["error"]["code"] == "connection_not_established"
    await ws.close()


async def test_ws_paths_answer_plain_get(emu: Emulator, http: aiohttp.ClientSession) -> None:
    for path in ("/", "/health", "/ws/stt", "/ws/tts", "/ws/health"):
        async with http.get(emu.base_url + path) as resp:
            assert resp.status == 200
            assert await resp.text() == "ok"
            assert resp.content_type == "text/plain"


async def test_ws_health(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, emu, "health", "")
    frames, code = await recv_all(ws)
    assert frames[0]["status"] == "ok"
    assert isinstance(frames[0]["timestamp"], int)
    assert code == 1000


async def test_stop_closes_open_sockets(http: aiohttp.ClientSession) -> None:
    emulator = Emulator()
    await emulator.start()
    stt = await connect(http, emulator, "stt")
    tts = await connect(http, emulator, "tts")
    await handshake(stt)
    await handshake(tts)
    await asyncio.wait_for(emulator.stop(), 5)
    for ws in (stt, tts):
        _, code = await recv_all(ws)
        assert code == 1001


async def test_stop_interrupts_emulated_latencies(http: aiohttp.ClientSession) -> None:
    emulator = Emulator()
    await emulator.start()
    emulator.settings.finalize_latency = 60.0
    emulator.settings.first_chunk_latency = 60.0
    stt = await connect(http, emulator, "stt")
    await handshake(stt)
    await stt.send_json(start_msg())
    await recv_until(stt, lambda f: f.get("type") == "session_started")
    await stt.send_json({"type": "stop"})  # now waiting out finalize_latency
    tts = await connect(http, emulator, "tts")
    await handshake(tts)
    await tts.send_json(create_msg("c"))
    await recv_json(tts)
    await tts.send_json({"send_text": {"context_id": "c", "text": "hi"}})
    await tts.send_json({"flush_context": {"context_id": "c"}})  # waiting first_chunk_latency
    await asyncio.sleep(0.1)
    await asyncio.wait_for(emulator.stop(), 10)  # a hang guard, far below the 60 s latencies
    for ws in (stt, tts):
        _, code = await recv_all(ws)
        assert code == 1001
