"""``/ws/tts`` behaviour against raw WebSocket frames (§3)."""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp
import numpy as np
import pytest

from wyoming_60db.audio import mulaw_decode_array
from wyoming_60db.emulator import Emulator, tonecode

from .wsutil import (
    assert_silent,
    create_msg,
    flush_audio,
    recv_all,
    recv_json,
    tts_session,
    types,
)

SPC = tonecode.DEFAULT_SECONDS_PER_CHAR


def pcm16(audio: bytes) -> np.ndarray:
    return np.frombuffer(audio, dtype="<i2")


async def create(ws: aiohttp.ClientWebSocketResponse, cid: str, **kwargs: Any) -> None:
    await ws.send_json(create_msg(cid, **kwargs))
    assert await recv_json(ws) == {"context_created": {"context_id": cid}}


async def test_create_send_flush_close(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await tts_session(http, emu)
    await create(ws, "ctx-1")
    await ws.send_json({"send_text": {"context_id": "ctx-1", "text": "Hello, "}})
    await ws.send_json({"send_text": {"context_id": "ctx-1", "text": "world!"}})
    await ws.send_json({"flush_context": {"context_id": "ctx-1"}})
    audio, frames = await flush_audio(ws, "ctx-1")
    assert frames[-1] == {"flush_completed": {"context_id": "ctx-1"}}
    assert set(types(frames[:-1])) == {"audio_chunk"}
    assert len(audio) == 2 * tonecode.encoded_samples("hello, world!", 16000, SPC)
    assert tonecode.decode(pcm16(audio), 16000) == "hello, world!"
    await ws.send_json({"send_text": {"context_id": "ctx-1", "text": "Bye"}})
    await ws.send_json({"close_context": {"context_id": "ctx-1"}})
    tail, frames = await flush_audio(ws, "ctx-1", until="context_closed")
    assert tonecode.decode(pcm16(tail), 16000) == "bye"  # close flushes the remainder
    assert frames[-1] == {"context_closed": {"context_id": "ctx-1"}}
    await assert_silent(ws, 0.2)  # §9.6 default: socket stays open
    await ws.close()
    (record,) = emu.tts_contexts
    assert record.texts == ["Hello, ", "world!", "Bye"]
    assert record.flush_count == 1
    assert record.closed is True
    assert bytes(record.audio) == audio + tail
    assert (record.encoding, record.sample_rate) == ("LINEAR16", 16000)


async def test_chunking_and_proportional_length(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.tts_chunk_bytes = 1000
    ws = await tts_session(http, emu)
    lengths = []
    for i, text in enumerate(["short", "a much longer sentence here"]):
        cid = f"c{i}"
        await create(ws, cid, rate=24000)
        await ws.send_json({"send_text": {"context_id": cid, "text": text}})
        await ws.send_json({"flush_context": {"context_id": cid}})
        audio, frames = await flush_audio(ws, cid)
        chunks = [f for f in frames if "audio_chunk" in f]
        assert all(len(c["audio_chunk"]["audioContent"]) == 1336 for c in chunks[:-1])
        lengths.append(len(audio) / 2 / 24000)
    assert lengths[0] == pytest.approx(5 * SPC)
    assert lengths[1] / lengths[0] == pytest.approx(27 / 5)
    await ws.close()


@pytest.mark.parametrize("encoding", ["MULAW", "ULAW"])
async def test_mulaw_output(emu: Emulator, http: aiohttp.ClientSession, encoding: str) -> None:
    ws = await tts_session(http, emu)
    await create(ws, "m", encoding=encoding, rate=8000)
    await ws.send_json({"send_text": {"context_id": "m", "text": "call me at 5"}})
    await ws.send_json({"flush_context": {"context_id": "m"}})
    audio, _ = await flush_audio(ws, "m")
    assert len(audio) == tonecode.encoded_samples("call me at 5", 8000, SPC)  # 1 byte/sample
    assert tonecode.decode(mulaw_decode_array(audio), 8000) == "call me at 5"
    await ws.close()


@pytest.mark.parametrize(("encoding", "rate"), [("PCM", 48000), ("LINEAR16", 8000)])
async def test_pcm_rates(
    emu: Emulator, http: aiohttp.ClientSession, encoding: str, rate: int
) -> None:
    ws = await tts_session(http, emu)
    await create(ws, "p", encoding=encoding, rate=rate)
    await ws.send_json({"send_text": {"context_id": "p", "text": "ok"}})
    await ws.send_json({"flush_context": {"context_id": "p"}})
    audio, _ = await flush_audio(ws, "p")
    assert tonecode.decode(pcm16(audio), rate) == "ok"
    await ws.close()


async def test_default_audio_config(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await tts_session(http, emu)
    await create(ws, "d", encoding=None, rate=None)
    await create(ws, "m", encoding="MULAW", rate=None)
    await ws.close()
    assert [(r.encoding, r.sample_rate) for r in emu.tts_contexts] == [
        ("LINEAR16", 24000),
        ("MULAW", 8000),
    ]


async def test_multiple_contexts_interleave(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.chunk_gap = 0.01
    emu.settings.tts_chunk_bytes = 512
    ws = await tts_session(http, emu)
    await create(ws, "a")
    await create(ws, "b")
    for cid, text in (("a", "alpha alpha"), ("b", "bravo bravo")):
        await ws.send_json({"send_text": {"context_id": cid, "text": text}})
        await ws.send_json({"flush_context": {"context_id": cid}})
    audio: dict[str, bytes] = {"a": b"", "b": b""}
    done: set[str] = set()
    order: list[str] = []
    while done != {"a", "b"}:
        frame = await recv_json(ws)
        if "audio_chunk" in frame:
            cid = frame["audio_chunk"]["context_id"]
            order.append(cid)
            audio[cid] += base64.b64decode(frame["audio_chunk"]["audioContent"])
        elif "flush_completed" in frame:
            done.add(frame["flush_completed"]["context_id"])
    assert tonecode.decode(pcm16(audio["a"]), 16000) == "alpha alpha"
    assert tonecode.decode(pcm16(audio["b"]), 16000) == "bravo bravo"
    # both contexts stream concurrently: chunks interleave on the socket
    first_b = order.index("b")
    assert "a" in order[first_b:]
    await ws.close()


async def test_bool_ack_style(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.tts_ack_style = "bool"
    ws = await tts_session(http, emu)
    await ws.send_json(create_msg("x"))
    assert await recv_json(ws) == {"context_created": True}
    await ws.send_json({"flush_context": {"context_id": "x"}})
    assert await recv_json(ws) == {"flush_completed": True}  # empty buffer: only the ack
    await ws.send_json({"close_context": {"context_id": "x"}})
    assert await recv_json(ws) == {"context_closed": True}
    await ws.close()


async def test_flat_type_variant_accepted(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await tts_session(http, emu)
    body = create_msg("flat")["create_context"]
    await ws.send_json({"type": "create_context", **body})
    assert await recv_json(ws) == {"context_created": {"context_id": "flat"}}
    await ws.send_json({"type": "send_text", "context_id": "flat", "text": "yo"})
    await ws.send_json({"type": "flush_context", "context_id": "flat"})
    audio, _ = await flush_audio(ws, "flat")
    assert tonecode.decode(pcm16(audio), 16000) == "yo"
    await ws.close()


BAD_CREATES = [
    (create_msg("v", voice_id="no-such-voice"), "Voice not found", "voice_not_found"),
    ({"create_context": {"context_id": "v"}}, "voice_id is required", "invalid_parameter"),
    (
        create_msg("v", rate=44100),
        "Unsupported sample_rate_hertz: 44100",
        "unsupported_sample_rate",
    ),
    (
        create_msg("v", encoding="MULAW", rate=16000),
        "Unsupported sample_rate_hertz: 16000",
        "unsupported_sample_rate",
    ),
    (
        create_msg("v", encoding="OGG_OPUS", rate=16000),
        "Unsupported sample_rate_hertz: 16000",
        "unsupported_sample_rate",
    ),
    (
        create_msg("v", encoding="OGG_OPUS", rate=24000),
        "OGG_OPUS is not supported by the emulator",
        "not_emulated",
    ),
    (create_msg("v", encoding="MP3"), "Unsupported audio_encoding: MP3", "unsupported_encoding"),
    (create_msg("v", speed=2.5), "speed must be between 0.25 and 2", "invalid_parameter"),
    (create_msg("v", speed=0.1), "speed must be between 0.25 and 2", "invalid_parameter"),
    (create_msg("v", stability=101), "stability must be between 0 and 100", "invalid_parameter"),
    (create_msg("v", similarity=-1), "similarity must be between 0 and 100", "invalid_parameter"),
]


@pytest.mark.parametrize(("msg", "message", "code"), BAD_CREATES)
async def test_create_validation(
    emu: Emulator, http: aiohttp.ClientSession, msg: dict[str, Any], message: str, code: str
) -> None:
    ws = await tts_session(http, emu)
    await ws.send_json(msg)
    assert await recv_json(ws) == {"error": {"context_id": "v", "message": message, "code": code}}
    await create(ws, "after-error")  # errors do not close the socket
    await ws.close()


async def test_speed_edges_accepted(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await tts_session(http, emu)
    await create(ws, "slow", speed=0.25, stability=0, similarity=100)
    await create(ws, "fast", speed=2)
    await ws.close()


async def test_request_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await tts_session(http, emu)
    await ws.send_json({"send_text": {"context_id": "ghost", "text": "hi"}})
    assert await recv_json(ws) == {
        "error": {
            "context_id": "ghost",
            "message": "Context not found",
            "code": "context_not_found",
        }
    }
    await create(ws, "c")
    await ws.send_json(create_msg("c"))
    assert (await recv_json(ws))["error"]["code"] == "context_exists"
    await create(ws, "big")  # never flushed: 50k characters would be 50 min of audio
    await ws.send_json({"send_text": {"context_id": "big", "text": "x" * 50_000}})
    await ws.send_json({"send_text": {"context_id": "big", "text": "y"}})
    too_long = await recv_json(ws)
    assert too_long == {
        "error": {"context_id": "big", "message": "Text too long", "code": "text_too_long"}
    }
    await ws.send_str("{nope")
    assert (await recv_json(ws))["error"]["code"] == "invalid_json"
    await ws.send_json({"speak": {"context_id": "c"}})
    assert (await recv_json(ws))["error"]["code"] == "invalid_message"
    await ws.send_bytes(b"\x01\x02")
    assert (await recv_json(ws))["error"]["code"] == "invalid_message"
    await ws.send_json({"flush_context": {}})
    assert (await recv_json(ws))["error"]["code"] == "invalid_parameter"
    await ws.send_json({"close_context": {"context_id": "c"}})
    assert await recv_json(ws) == {"context_closed": {"context_id": "c"}}
    await ws.send_json({"flush_context": {"context_id": "c"}})
    assert (await recv_json(ws))["error"]["code"] == "context_not_found"
    await ws.close()


async def test_string_error_style(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.tts_error_style = "string"
    ws = await tts_session(http, emu)
    await ws.send_json(create_msg("v", voice_id="nope"))
    assert await recv_json(ws) == {"error": "Voice not found"}
    await ws.close()


async def test_close_socket_after_last_context(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.close_tts_after_context_closed = True
    ws = await tts_session(http, emu)
    await create(ws, "a")
    await create(ws, "b")
    await ws.send_json({"close_context": {"context_id": "a"}})
    assert await recv_json(ws) == {"context_closed": {"context_id": "a"}}
    await assert_silent(ws, 0.2)  # "b" is still open: no close yet
    await ws.send_json({"send_text": {"context_id": "b", "text": "end"}})
    await ws.send_json({"close_context": {"context_id": "b"}})
    frames, code = await recv_all(ws)
    assert types(frames)[-1] == "context_closed"
    assert code == 1000
    assert emu.tts_connections[0].ended == "context_closed"


async def test_latencies(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.first_chunk_latency = 0.2
    emu.settings.chunk_gap = 0.05
    emu.settings.tts_chunk_bytes = 4096
    ws = await tts_session(http, emu)
    await create(ws, "t")
    await ws.send_json({"send_text": {"context_id": "t", "text": "twelve chars"}})  # 23 KB
    t0 = time.monotonic()
    await ws.send_json({"flush_context": {"context_id": "t"}})
    first = await recv_json(ws)
    t_first = time.monotonic() - t0
    assert "audio_chunk" in first
    assert t_first >= 0.15
    _, frames = await flush_audio(ws, "t")
    n_chunks = 1 + sum("audio_chunk" in f for f in frames)
    assert time.monotonic() - t0 >= 0.15 + 0.05 * (n_chunks - 1) * 0.8
    await ws.close()


async def test_extra_fields_and_heartbeat(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.extra_fields = True
    ws = await tts_session(http, emu)
    await ws.send_json(create_msg("e"))
    created = await recv_json(ws)
    assert created["context_created"]["context_id"] == "e"
    assert "x_emulator_seq" in created["context_created"]
    assert "heartbeat" in await recv_json(ws)
    await ws.send_json({"send_text": {"context_id": "e", "text": "hey"}})
    await ws.send_json({"flush_context": {"context_id": "e"}})
    audio, _ = await flush_audio(ws, "e")
    assert tonecode.decode(pcm16(audio), 16000) == "hey"
    await ws.close()


async def test_uncodable_text_still_yields_audio(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ws = await tts_session(http, emu)
    await create(ws, "hi")
    await ws.send_json({"send_text": {"context_id": "hi", "text": "नमस्ते दुनिया"}})
    await ws.send_json({"flush_context": {"context_id": "hi"}})
    audio, _ = await flush_audio(ws, "hi")
    n_visible = len("नमस्तेदुनिया")
    assert len(audio) == 2 * tonecode.encoded_samples("-" * n_visible, 16000, SPC)
    await ws.send_json({"send_text": {"context_id": "hi", "text": "   "}})
    await ws.send_json({"flush_context": {"context_id": "hi"}})
    assert await recv_json(ws) == {"flush_completed": {"context_id": "hi"}}  # whitespace: no audio
    await ws.close()


async def test_flush_boundaries_keep_word_and_sentence_breaks(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ws = await tts_session(http, emu)
    await create(ws, "s")
    audio = b""
    for text in ("First sentence.", "Second one.", "hello ", "world", " again"):
        await ws.send_json({"send_text": {"context_id": "s", "text": text}})
        await ws.send_json({"flush_context": {"context_id": "s"}})
        chunk, _ = await flush_audio(ws, "s")
        audio += chunk
    expected = "first sentence. second one. hello world again"
    assert tonecode.decode(pcm16(audio), 16000) == expected
    await ws.close()


async def test_speed_range_variant(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.tts_min_speed = 0.5  # §9.7: the docs' 0.5-2.0
    ws = await tts_session(http, emu)
    await ws.send_json(create_msg("v", speed=0.25))
    assert (await recv_json(ws))["error"]["message"] == "speed must be between 0.5 and 2"
    await create(ws, "ok", speed=0.5)
    await ws.close()
