"""Fault knobs for recovery tests: after_audio_chunks, times, stalls, counts, ``--fault``."""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
import numpy as np
import pytest

from tests.conftest import eventually
from wyoming_60db.emulator import Emulator, Fault
from wyoming_60db.emulator.__main__ import build_parser, parse_fault

from .wsutil import (
    KEY,
    assert_silent,
    connect,
    create_msg,
    handshake,
    recv_all,
    recv_json,
    recv_until,
    send_json_audio,
    stt_session,
    tts_session,
    types,
)

CHUNK = 512  # small TTS chunks: one short text gives many audio_chunk frames


async def _speak(ws: aiohttp.ClientWebSocketResponse, cid: str = "c") -> None:
    await ws.send_json(create_msg(cid))
    assert "context_created" in await recv_json(ws)
    await ws.send_json({"send_text": {"context_id": cid, "text": "hello there world"}})
    await ws.send_json({"flush_context": {"context_id": cid}})


# ---------------------------------------------------------------------- after_audio_chunks


async def test_drop_after_audio_chunks(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.tts_chunk_bytes = CHUNK
    emu.inject_fault(Fault(service="tts", kind="drop", after_audio_chunks=3))
    ws = await tts_session(http, emu)
    await _speak(ws)
    frames, code = await recv_all(ws)
    assert types(frames) == ["audio_chunk"] * 3
    assert code is None  # aborted: no close frame
    record = emu.tts_contexts[0]
    assert record.audio_bytes == 3 * CHUNK  # the chunk the fault followed is recorded too
    assert emu.tts_connections[0].ended == "fault:drop"
    assert emu.stats.faults_injected[("tts", "drop")] == 1


async def test_after_audio_chunks_spans_flushes(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The count is per connection, not per flush: a mid-answer drop on the 2nd sentence."""
    emu.settings.tts_chunk_bytes = CHUNK
    ws = await tts_session(http, emu)
    await _speak(ws)
    first = await recv_until(ws, lambda f: "flush_completed" in f)
    per_flush = types(first).count("audio_chunk")
    await ws.close()
    emu.inject_fault(Fault(service="tts", kind="drop", after_audio_chunks=per_flush + 2))
    ws = await tts_session(http, emu)
    await _speak(ws)
    await ws.send_json({"send_text": {"context_id": "c", "text": "again"}})
    await ws.send_json({"flush_context": {"context_id": "c"}})
    frames, code = await recv_all(ws)
    assert types(frames).count("audio_chunk") == per_flush + 2
    assert "flush_completed" in types(frames)
    assert code is None


# ---------------------------------------------------------------------- times


async def test_times_fails_first_attempts_then_recovers(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.inject_fault(Fault(service="stt", kind="drop", after_messages=0, times=2))
    for attempt in range(2):
        ws = await connect(http, emu, "stt")
        assert await recv_all(ws) == ([], None), f"attempt {attempt} was not dropped"
        assert len(emu.pending_faults) == 1 - attempt
    ws = await connect(http, emu, "stt")
    await handshake(ws)  # the third attempt is healthy
    await ws.close()
    assert emu.stats.faults_injected[("stt", "drop")] == 2


async def test_times_counts_connections_not_firings(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """A connection that never reaches the trigger still uses one firing."""
    emu.inject_fault(Fault(service="stt", kind="drop", after_audio_bytes=10**9, times=1))
    ws = await stt_session(http, emu)
    await ws.close()
    assert emu.pending_faults == []
    assert emu.stats.faults_injected[("stt", "drop")] == 0


async def test_times_none_fires_until_cleared(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(Fault(service="tts", kind="drop", times=None))
    for _ in range(3):
        ws = await connect(http, emu, "tts")
        assert (await recv_all(ws))[1] is None
    assert len(emu.pending_faults) == 1
    emu.clear_faults()
    ws = await tts_session(http, emu)
    await ws.close()
    assert emu.stats.faults_injected[("tts", "drop")] == 3


def test_times_must_be_positive() -> None:
    with pytest.raises(ValueError, match="times"):
        Fault(service="stt", kind="drop", times=0)


# ---------------------------------------------------------------------- stall


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_stall_at_handshake(emu: Emulator, http: aiohttp.ClientSession, service: str) -> None:
    """Accepted, then nothing at all: not even ``connecting``."""
    emu.inject_fault(Fault(service="any", kind="stall", after_messages=0))
    ws = await connect(http, emu, service)
    await assert_silent(ws, 0.3)
    assert not ws.closed
    await asyncio.wait_for(ws.close(), 5)
    await eventually(lambda: emu.open_connections == 0, "the socket to close", 5)
    assert emu.stats.faults_injected[(service, "stall")] == 1
    assert emu.active_slots(service) == 0


async def test_stall_mid_stt_stream(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.inject_fault(Fault(service="stt", kind="stall", after_audio_bytes=3200))
    ws = await stt_session(http, emu)
    audio = np.zeros(16000, dtype=np.int16).tobytes()
    await send_json_audio(ws, audio, chunk=1600)  # input after the stall is ignored
    await ws.send_json({"type": "stop"})
    await assert_silent(ws, 0.3)  # no transcript, no session_stopped, no close
    assert not ws.closed
    assert len(emu.stt_sessions[0].audio) == 3200
    await asyncio.wait_for(ws.close(), 5)
    await eventually(lambda: emu.open_connections == 0, "the socket to close", 5)
    assert emu.stt_sessions[0].ended == "fault:stall"
    assert emu.active_slots("stt") == 0


async def test_stall_mid_tts_answer(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.tts_chunk_bytes = CHUNK
    emu.inject_fault(Fault(service="tts", kind="stall", after_audio_chunks=1))
    ws = await tts_session(http, emu)
    await _speak(ws)
    assert "audio_chunk" in await recv_json(ws)
    await assert_silent(ws, 0.3)
    await asyncio.wait_for(ws.close(), 5)
    await eventually(lambda: emu.open_connections == 0, "the socket to close", 5)
    assert emu.tts_connections[0].ended == "fault:stall"
    assert emu.active_slots("tts") == 0


# ---------------------------------------------------------------------- counts


async def test_faults_injected_counts_where_any_landed(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.inject_fault(Fault(service="any", kind="error", times=2))
    ws = await connect(http, emu, "tts")
    assert (await recv_all(ws))[1] == 1011
    async with http.get(emu.base_url + "/voices", headers={"Authorization": f"Bearer {KEY}"}) as r:
        assert r.status == 500
    assert dict(emu.stats.faults_injected) == {("tts", "error"): 1, ("rest", "error"): 1}


# ---------------------------------------------------------------------- --fault flag


def test_parse_fault_spec() -> None:
    assert parse_fault("tts:drop:after_audio_chunks=3,times=2") == Fault(
        service="tts", kind="drop", after_audio_chunks=3, times=2
    )
    assert parse_fault("stt:stall") == Fault(service="stt", kind="stall")
    assert parse_fault("any:error:code=X,message=boom,times=all") == Fault(
        service="any", kind="error", code="X", message="boom", times=None
    )
    assert parse_fault("stt:drop:after-audio-bytes=6400") == Fault(
        service="stt", kind="drop", after_audio_bytes=6400
    )


@pytest.mark.parametrize(
    "spec",
    [
        "stt",
        "rest:drop",
        "stt:explode",
        "stt:drop:times=0",
        "stt:drop:after_messages=x",
        "stt:drop:bogus=1",
        "stt:drop:times",
    ],
)
def test_parse_fault_rejects(spec: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fault(spec)


def test_fault_flag_is_repeatable() -> None:
    args = build_parser().parse_args(["--fault", "stt:stall", "--fault", "tts:drop:times=2"])
    assert args.fault == [
        Fault(service="stt", kind="stall"),
        Fault(service="tts", kind="drop", times=2),
    ]
    assert build_parser().parse_args([]).fault == []
