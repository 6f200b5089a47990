"""60db's own end of utterance (§2.3.1 ``utterance_end_ms``) as the emulator models it.

The emulator measures trailing silence in audio time. Streamed at real time,
that is wall time: the canonical final must leave as soon as the audio that
completes ``utterance_end_ms`` of silence arrives, with no finalisation pause
(``finalize_latency`` belongs to ``stop`` only). The record's ``finals`` give
the benchmark the moment each final was sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import numpy as np
import pytest

from wyoming_60db.emulator import Emulator, tonecode
from wyoming_60db.emulator.recognizer import FinalTranscript, Recognizer

from .wsutil import (
    TIMEOUT,
    Frame,
    finals,
    recv_all,
    send_json_audio,
    silence,
    start_msg,
    stt_session,
    types,
)

RATE = 16000
LEAD = 0.3
FIRST = "turn on the kitchen light"
SECOND = "and the hallway"
WHOLE = f"{FIRST} {SECOND}"
# The VAD works on 10 ms frames; the tone code's slots end on frame edges at
# 16 kHz, so the decision lands exactly, but allow one frame either way.
FRAME = 0.01


def command(pause: float, tail: float) -> tuple[np.ndarray, float]:
    """The two halves of a command ``pause`` apart, then ``tail``; and where speech ends."""
    parts = [
        silence(RATE, LEAD),
        tonecode.encode(FIRST, RATE),
        silence(RATE, pause),
        tonecode.encode(SECOND, RATE),
    ]
    speech_end = sum(part.size for part in parts) / RATE
    return np.concatenate([*parts, silence(RATE, tail)]), speech_end


async def stop_and_collect(ws: aiohttp.ClientWebSocketResponse) -> list[Frame]:
    await ws.send_json({"type": "stop"})
    frames, close = await recv_all(ws)
    assert close == 1000
    return frames


@pytest.mark.parametrize("utterance_end_ms", [300, 500, 1000])
async def test_short_pause_keeps_one_command(
    emu: Emulator, http: aiohttp.ClientSession, utterance_end_ms: int
) -> None:
    # Tail longer than every threshold: the end comes from silence, not from stop.
    audio, speech_end = command(pause=0.25, tail=1.2)
    ws = await stt_session(http, emu, start_msg(utterance_end_ms=utterance_end_ms))
    await send_json_audio(ws, audio.tobytes(), chunk=640)
    frames = await stop_and_collect(ws)
    assert [f["text"] for f in finals(frames)] == [WHOLE]
    assert types(frames).count("speech_started") == 1
    (final,) = emu.stt_sessions[0].finals
    assert final.cause == "silence"
    # Ended when the trailing silence reached utterance_end_ms of audio, not before or later.
    assert final.audio_seconds - speech_end == pytest.approx(utterance_end_ms / 1000, abs=FRAME)


@pytest.mark.parametrize(("utterance_end_ms", "texts"), [
    (300, [FIRST, SECOND]),
    (500, [FIRST, SECOND]),
    (1000, [WHOLE]),
])  # fmt: skip
async def test_long_pause_ends_the_utterance_below_its_length(
    emu: Emulator, http: aiohttp.ClientSession, utterance_end_ms: int, texts: list[str]
) -> None:
    audio, _ = command(pause=0.6, tail=1.2)
    ws = await stt_session(http, emu, start_msg(utterance_end_ms=utterance_end_ms))
    await send_json_audio(ws, audio.tobytes(), chunk=640)
    frames = await stop_and_collect(ws)
    assert [f["text"] for f in finals(frames)] == texts
    first_end = (LEAD * RATE + tonecode.encode(FIRST, RATE).size) / RATE
    record = emu.stt_sessions[0]
    if len(texts) == 2:
        # The first utterance ended utterance_end_ms into the 600 ms pause.
        ended = record.finals[0].audio_seconds - first_end
        assert ended == pytest.approx(utterance_end_ms / 1000, abs=FRAME)
    assert [f.cause for f in record.finals] == ["silence"] * len(texts)


async def test_default_utterance_end_is_500_ms(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A start without utterance_end_ms gets 60db's default: 250 ms joins, 600 ms splits."""
    start = start_msg()
    assert "utterance_end_ms" not in start["config"]
    texts = []
    for pause in (0.25, 0.6):
        audio, _ = command(pause=pause, tail=0.7)
        ws = await stt_session(http, emu, start)
        await send_json_audio(ws, audio.tobytes(), chunk=640)
        texts.append([f["text"] for f in finals(await stop_and_collect(ws))])
    assert texts == [[WHOLE], [FIRST, SECOND]]
    assert emu.stt_sessions[0].config is not None
    assert emu.stt_sessions[0].config["utterance_end_ms"] == 500


async def test_end_of_utterance_at_real_time_has_no_finalisation_pause(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Silence streamed at real time: the final leaves when utterance_end_ms of it has arrived.

    ``finalize_latency`` is set high: the end of utterance must not pay it,
    the ``stop`` afterwards must.
    """
    finalize = 0.4
    utterance_end = 0.3
    chunk_seconds = 0.02
    emu.settings.finalize_latency = finalize
    ws = await stt_session(http, emu, start_msg(utterance_end_ms=round(utterance_end * 1000)))
    arrivals: list[tuple[float, Frame]] = []

    async def read() -> None:
        while True:
            msg = await ws.receive(timeout=TIMEOUT)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return
            arrivals.append((time.perf_counter(), json.loads(msg.data)))

    reader = asyncio.create_task(read())
    try:
        speech = np.concatenate([silence(RATE, LEAD), tonecode.encode("lights off", RATE)])
        await send_json_audio(ws, speech.tobytes(), chunk=1920)  # the speech at once
        speech_sent = time.perf_counter()
        # Then silence paced at real time, as a live microphone sends it (each
        # chunk once its 20 ms have passed); the chunk that completes
        # utterance_end_ms of silence is noted.
        chunk = silence(RATE, chunk_seconds).tobytes()
        sent_at: list[float] = []
        for index in range(1, round((utterance_end + 0.2) / chunk_seconds) + 1):
            due = speech_sent + index * chunk_seconds
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await send_json_audio(ws, chunk, chunk=len(chunk))
            sent_at.append(time.perf_counter())
        completing = sent_at[round(utterance_end / chunk_seconds) - 1]
        stop_sent = time.perf_counter()
        await ws.send_json({"type": "stop"})
        await asyncio.wait_for(reader, TIMEOUT)
    finally:
        reader.cancel()
    received = {str(frame.get("type")): at for at, frame in arrivals}
    final_at = next(at for at, frame in arrivals if frame.get("speech_final"))
    (final,) = emu.stt_sessions[0].finals
    assert final.text == "lights off"
    assert final.cause == "silence"
    # Sent right after the completing chunk arrived: no finalisation pause
    # (the margins only absorb a busy machine; the pause would be 0.4 s).
    assert completing <= final.sent_at < completing + 0.1
    assert final.sent_at - final.ended_at < 0.05
    assert final_at - speech_sent == pytest.approx(utterance_end, abs=0.1)
    assert final_at < stop_sent  # it did not wait for stop
    # stop keeps its pause before session_stopped.
    assert received["session_stopped"] - stop_sent >= finalize - 0.02


def test_final_is_decoded_early_in_the_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decode runs 100 ms into the silence, not on the frame that ends the utterance.

    So the final leaves the moment ``utterance_end_ms`` is reached; and speech
    that resumes after such an early decode is still heard as one utterance.
    """
    calls: list[int] = []
    real = tonecode.try_decode

    def counting(pcm: np.ndarray, *args: Any, **kwargs: Any) -> str | None:
        calls.append(pcm.size)
        return real(pcm, *args, **kwargs)

    monkeypatch.setattr(tonecode, "try_decode", counting)
    recognizer = Recognizer(RATE, 300, None, tonecode.DEFAULT_SECONDS_PER_CHAR, lambda: None)
    audio, _ = command(pause=0.25, tail=0.0)
    assert not [e for e in recognizer.feed(audio) if isinstance(e, FinalTranscript)]
    assert len(calls) == 1  # early decode of the first half, in the 250 ms pause
    events = recognizer.feed(silence(RATE, 0.2))
    assert len(calls) == 2  # early decode of the whole command, 100 ms into the silence
    assert not events
    (final,) = recognizer.feed(silence(RATE, 0.1))
    assert len(calls) == 2  # the frame that ended the utterance decoded nothing
    assert isinstance(final, FinalTranscript)
    assert final.text == WHOLE
