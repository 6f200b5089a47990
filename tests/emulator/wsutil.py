"""Raw-WebSocket helpers for the emulator's own tests (no project client)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import numpy as np

from wyoming_60db.emulator import DEFAULT_VOICE_ID, Emulator

KEY = "sk_test_emulator"
TIMEOUT = 5.0  # every network wait is bounded: a bug fails instead of hanging
CLOSE_TYPES = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)

Frame = dict[str, Any]


async def connect(
    http: aiohttp.ClientSession, emu: Emulator, service: str, query: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    q = f"apiKey={KEY}" if query is None else query
    url = f"{emu.base_url.replace('http', 'ws', 1)}/ws/{service}" + (f"?{q}" if q else "")
    return await asyncio.wait_for(http.ws_connect(url, autoping=True), TIMEOUT)


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT) -> aiohttp.WSMessage:
    return await ws.receive(timeout=timeout)


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT) -> Frame:
    msg = await recv(ws, timeout)
    assert msg.type is aiohttp.WSMsgType.TEXT, f"expected text, got {msg.type} {msg.data!r}"
    frame = json.loads(msg.data)
    assert isinstance(frame, dict)
    return frame


async def recv_all(
    ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT
) -> tuple[list[Frame], int | None]:
    """Every JSON frame until the socket ends; (frames, code of the server's close frame).

    The code is None when the connection ended without a close frame (dropped).
    """
    frames: list[Frame] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                frames.append(json.loads(msg.data))
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                return frames, int(msg.data)
            elif msg.type in CLOSE_TYPES or msg.type is aiohttp.WSMsgType.ERROR:
                return frames, None


async def recv_until(
    ws: aiohttp.ClientWebSocketResponse, predicate: Any, timeout: float = TIMEOUT
) -> list[Frame]:
    """Frames up to and including the first one matching ``predicate``."""
    frames: list[Frame] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await recv_json(ws, timeout)
            frames.append(frame)
            if predicate(frame):
                return frames


async def assert_silent(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> None:
    """Nothing arrives for ``seconds``."""
    try:
        msg = await ws.receive(timeout=seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame {msg.type} {msg.data!r}")


async def handshake(ws: aiohttp.ClientWebSocketResponse) -> list[Frame]:
    """Read frames up to connection_established (any §9.2 style)."""
    return await recv_until(ws, is_established)


def is_established(frame: Frame) -> bool:
    return "connection_established" in frame or frame.get("type") == "connection_established"


def types(frames: list[Frame]) -> list[str]:
    """Message names: ``type`` or the single outer key."""
    return [str(f.get("type") or next(iter(f))) for f in frames]


# ---------------------------------------------------------------------- STT


def start_msg(encoding: str = "linear", rate: int = 16000, **extra: Any) -> Frame:
    config: Frame = {"encoding": encoding, "sample_rate": rate, "continuous_mode": True}
    context = extra.pop("context", None)
    languages = extra.pop("languages", None)
    config.update(extra)
    msg: Frame = {"type": "start", "languages": languages, "config": config}
    if context is not None:
        msg["context"] = context
    return msg


async def stt_session(
    http: aiohttp.ClientSession, emu: Emulator, start: Frame | None = None
) -> aiohttp.ClientWebSocketResponse:
    """Connected, handshaken and started (after session_started)."""
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    await ws.send_json(start or start_msg())
    await recv_until(ws, lambda f: f.get("type") == "session_started")
    return ws


async def send_json_audio(
    ws: aiohttp.ClientWebSocketResponse, data: bytes, chunk: int = 1920, **fields: Any
) -> None:
    for i in range(0, len(data), chunk):
        payload = base64.b64encode(data[i : i + chunk]).decode()
        await ws.send_json({"type": "audio", "audio": payload, **fields})


async def send_binary_audio(
    ws: aiohttp.ClientWebSocketResponse, data: bytes, chunk: int = 480
) -> None:
    for i in range(0, len(data), chunk):
        await ws.send_bytes(data[i : i + chunk])


def silence(rate: int, seconds: float) -> np.ndarray:
    return np.zeros(round(rate * seconds), dtype=np.int16)


def finals(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.get("type") == "transcription" and f.get("speech_final")]


# ---------------------------------------------------------------------- TTS


def create_msg(
    cid: str,
    encoding: str | None = "LINEAR16",
    rate: int | None = 16000,
    voice_id: str = DEFAULT_VOICE_ID,
    **extra: Any,
) -> Frame:
    body: Frame = {"context_id": cid, "voice_id": voice_id, **extra}
    if encoding is not None or rate is not None:
        audio_config: Frame = {}
        if encoding is not None:
            audio_config["audio_encoding"] = encoding
        if rate is not None:
            audio_config["sample_rate_hertz"] = rate
        body["audio_config"] = audio_config
    return {"create_context": body}


async def tts_session(
    http: aiohttp.ClientSession, emu: Emulator
) -> aiohttp.ClientWebSocketResponse:
    ws = await connect(http, emu, "tts")
    await handshake(ws)
    return ws


async def flush_audio(
    ws: aiohttp.ClientWebSocketResponse, cid: str, until: str = "flush_completed"
) -> tuple[bytes, list[Frame]]:
    """Audio of ``cid`` and all frames up to ``until`` (for ``cid``)."""
    frames = await recv_until(ws, lambda f: until in f and _cid(f[until]) in (cid, None))
    chunks = [f["audio_chunk"] for f in frames if "audio_chunk" in f]
    audio = b"".join(base64.b64decode(c["audioContent"]) for c in chunks if c["context_id"] == cid)
    return audio, frames


def _cid(value: Any) -> str | None:
    return value.get("context_id") if isinstance(value, dict) else None
