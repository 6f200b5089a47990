"""``context`` on ``start`` (§2.5): the first emit, then the refined canonical final.

The emulator models the LLM refinement's wall-clock latency
(``stt_llm_latency_ms``) without holding up the session, keeps the session's
utterance events in order behind a pending canonical, delivers it before
``session_stopped``, and models a plan without refinement
(``stt_llm_refinement=False``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import aiohttp
import numpy as np
import pytest

from tests.conftest import eventually
from wyoming_60db.emulator import Emulator, EmulatorSettings, Fault, tonecode

from .wsutil import (
    TIMEOUT,
    Frame,
    connect,
    finals,
    handshake,
    recv_all,
    recv_until,
    send_json_audio,
    silence,
    start_msg,
    stt_session,
    types,
)

RATE = 16000
PHRASE = "turn on the lights"
SECOND = "and the fan"
TERMS = ["Zorbulon lamp", "Küchenlicht", "hallway"]
CONTEXT: Frame = {"terms": TERMS}
MARGIN = 0.15  # scheduling slack on a busy machine; far below what each test tells apart


def utterance(text: str, tail: float = 0.7) -> bytes:
    """Speech then enough silence for 60db's default 500 ms end of utterance."""
    audio = np.concatenate([silence(RATE, 0.2), tonecode.encode(text, RATE), silence(RATE, tail)])
    return audio.tobytes()


def transcriptions(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.get("type") == "transcription"]


def is_first_emit(frame: Frame) -> bool:
    return frame.get("is_final") is True and frame.get("speech_final") is False


def is_stopped(frame: Frame) -> bool:
    return frame.get("type") == "session_stopped"


async def timed_frames(
    ws: aiohttp.ClientWebSocketResponse, until: Callable[[Frame], bool] = is_stopped
) -> list[tuple[float, Frame]]:
    """(perf_counter at arrival, frame) up to the first frame ``until`` accepts."""
    out: list[tuple[float, Frame]] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.TEXT, f"socket ended: {msg.type}"
            frame = json.loads(msg.data)
            out.append((time.perf_counter(), frame))
            if until(frame):
                return out


async def wait_closed(emu: Emulator) -> None:
    await eventually(lambda: emu.open_connections == 0, "the emulator closed the socket", TIMEOUT)


def test_default_latency_is_the_documented_example() -> None:
    assert EmulatorSettings().stt_llm_latency_ms == 240
    assert EmulatorSettings().stt_llm_refinement is True


async def test_canonical_follows_the_first_emit_after_the_llm_latency(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    await send_json_audio(ws, utterance(PHRASE))  # ends by silence, no stop
    timed = await timed_frames(ws, until=lambda f: f.get("speech_final") is True)
    (first_at, first), (canonical_at, canonical) = [
        (t, f) for t, f in timed if f.get("type") == "transcription"
    ]
    assert is_first_emit(first)
    assert canonical["speech_final"] is True
    assert first["sentence_id"] == canonical["sentence_id"] == 1
    assert canonical["llm_applied"] is True
    assert canonical["llm_latency_ms"] == 240
    assert "llm_latency_ms" not in first
    assert 0.24 - 0.01 <= canonical_at - first_at < 0.24 + MARGIN
    record = emu.stt_sessions[0]
    first_sent, canonical_sent = record.finals
    assert (first_sent.speech_final, canonical_sent.speech_final) == (False, True)
    assert canonical_sent.sent_at - first_sent.sent_at >= 0.24 - 0.005
    assert first_sent.ended_at == canonical_sent.ended_at  # one end of utterance
    assert record.canonical_sent_at == [canonical_sent.sent_at]
    assert record.transcripts == [PHRASE]
    await ws.close()


@pytest.mark.parametrize("latency_ms", [0, 60])
async def test_latency_is_a_knob(
    emu: Emulator, http: aiohttp.ClientSession, latency_ms: int
) -> None:
    emu.settings.stt_llm_latency_ms = latency_ms
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    await send_json_audio(ws, utterance(PHRASE))
    await ws.send_json({"type": "stop"})
    frames, _ = await recv_all(ws)
    _, canonical = transcriptions(frames)
    assert canonical["llm_latency_ms"] == latency_ms
    first_sent, canonical_sent = emu.stt_sessions[0].finals
    gap = canonical_sent.sent_at - first_sent.sent_at
    assert latency_ms / 1000 - 0.005 <= gap < latency_ms / 1000 + MARGIN


async def test_session_keeps_working_while_the_canonical_waits(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """``test`` is answered and new audio recognised during the refinement."""
    emu.settings.stt_llm_latency_ms = 600
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    await send_json_audio(ws, utterance(PHRASE))
    await recv_until(ws, is_first_emit)
    first_seen = time.perf_counter()
    second = utterance(SECOND)
    await send_json_audio(ws, second)
    await ws.send_json({"type": "test"})
    waiting = await recv_until(ws, lambda f: f.get("type") == "test_response")
    answered = time.perf_counter()
    assert types(waiting) == ["test_response"], "the pending canonical came first"
    assert answered - first_seen < 0.6 - 0.1
    record = emu.stt_sessions[0]
    # The second utterance was already heard (all its audio taken, its end
    # decided) although its events wait behind the first canonical.
    assert len(record.audio) == len(utterance(PHRASE)) + len(second)
    await ws.send_json({"type": "stop"})
    frames, close = await recv_all(ws)
    assert close == 1000
    assert [f["text"] for f in finals(frames)] == [PHRASE, SECOND]
    first_canonical, second_first = record.finals[1], record.finals[2]
    assert second_first.ended_at < first_canonical.sent_at


async def test_later_utterance_does_not_overtake_a_pending_canonical(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.settings.stt_llm_latency_ms = 200
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    # Both utterances at once: the second ends long before the first's canonical is due.
    await send_json_audio(ws, utterance(PHRASE) + utterance(SECOND), chunk=32000)
    await ws.send_json({"type": "stop"})
    frames, close = await recv_all(ws)
    assert close == 1000
    events = [
        (f["type"], f.get("text"), f.get("speech_final"))
        for f in frames
        if f["type"] in ("speech_started", "transcription")
    ]
    assert events == [
        ("speech_started", None, None),
        ("transcription", PHRASE, False),
        ("transcription", PHRASE, True),
        ("speech_started", None, None),
        ("transcription", SECOND, False),
        ("transcription", SECOND, True),
    ]
    assert types(frames)[-1] == "session_stopped"
    record = emu.stt_sessions[0]
    assert [f.sentence_id for f in record.finals] == [1, 1, 2, 2]
    sent = [f.sent_at for f in record.finals]
    # Each canonical paid its own latency after its own first emit.
    assert sent[1] - sent[0] >= 0.2 - 0.005
    assert sent[3] - sent[2] >= 0.2 - 0.005
    assert record.transcripts == [PHRASE, SECOND]


async def test_stop_delivers_a_pending_canonical_first(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.settings.stt_llm_latency_ms = 300
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    await send_json_audio(ws, utterance(PHRASE))
    await recv_until(ws, is_first_emit)
    first_seen = time.perf_counter()
    await ws.send_json({"type": "stop"})  # the client stops at once, as the pipeline does
    timed = await timed_frames(ws)
    assert [f["type"] for _, f in timed] == ["transcription", "session_stopped"]
    canonical_at, canonical = timed[0]
    assert canonical["speech_final"] is True and canonical["text"] == PHRASE
    assert canonical_at - first_seen >= 0.3 - 0.02
    frames, close = await recv_all(ws)
    assert (frames, close) == ([], 1000)


async def test_stop_refines_the_utterance_it_finalises(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """No trailing silence: stop's finalisation pause, then the first emit, then the latency."""
    emu.settings.finalize_latency = 0.1
    emu.settings.stt_llm_latency_ms = 150
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    await send_json_audio(ws, tonecode.encode(PHRASE, RATE).tobytes())
    stop_sent = time.perf_counter()
    await ws.send_json({"type": "stop"})
    timed = await timed_frames(ws)
    kinds = [(f["type"], f.get("speech_final")) for _, f in timed]
    assert kinds == [
        ("speech_started", None),
        ("transcription", False),
        ("transcription", True),
        ("session_stopped", None),
    ]
    first_at, canonical_at = timed[1][0], timed[2][0]
    assert first_at - stop_sent >= 0.1 - 0.02
    assert canonical_at - first_at >= 0.15 - 0.02
    assert [f.cause for f in emu.stt_sessions[0].finals] == ["stop", "stop"]
    await ws.close()


async def test_client_leaving_during_refinement_ends_the_session(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.settings.stt_llm_latency_ms = 5000  # far beyond the test: it must not be waited out
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    await send_json_audio(ws, utterance(PHRASE))
    await recv_until(ws, is_first_emit)
    left = time.perf_counter()
    await ws.close()
    await wait_closed(emu)
    assert time.perf_counter() - left < 1.0
    assert emu.active_slots("stt") == 0
    record = emu.stt_sessions[0]
    assert record.ended == "client_closed"
    assert record.transcripts == []  # the canonical was never sent
    assert [f.speech_final for f in record.finals] == [False]


async def test_fault_on_the_delayed_canonical(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A fault that fires on a frame the lane sends still ends the connection cleanly."""
    emu.settings.stt_llm_latency_ms = 50
    # connecting, connection_established, connected, session_started,
    # speech_started, first emit, canonical: the drop follows the 7th frame.
    emu.inject_fault(Fault(service="stt", kind="drop", after_messages=7))
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    await send_json_audio(ws, utterance(PHRASE))
    frames, close = await recv_all(ws)
    assert close is None  # dropped: no close frame
    assert [f.get("speech_final") for f in transcriptions(frames)] == [False, True]
    await wait_closed(emu)
    assert emu.active_slots("stt") == 0
    assert emu.stt_sessions[0].ended == "fault:drop"
    assert emu.stats.faults_injected[("stt", "drop")] == 1


async def test_plan_without_refinement_sends_one_final(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.settings.stt_llm_refinement = False
    emu.settings.stt_llm_refine_text = True  # would show if a refinement ran
    ws = await stt_session(http, emu, start_msg(context=CONTEXT))
    await send_json_audio(ws, utterance(PHRASE) + utterance(SECOND))
    await ws.send_json({"type": "stop"})
    frames, close = await recv_all(ws)
    assert close == 1000
    results = transcriptions(frames)
    assert [(f["text"], f["is_final"], f["speech_final"]) for f in results] == [
        (PHRASE, True, True),
        (SECOND, True, True),
    ]
    assert all("llm_applied" not in f and "llm_latency_ms" not in f for f in results)
    record = emu.stt_sessions[0]
    assert record.context_terms == TERMS  # the context was accepted all the same
    assert [f.speech_final for f in record.finals] == [True, True]


async def test_record_shows_the_context_the_client_sent(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    context = {"general": [{"key": "domain", "value": "smart home"}], "terms": TERMS}
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    await ws.send_json(start_msg(context=context))
    await recv_until(ws, lambda f: f.get("type") == "session_started")
    await ws.close()
    record = emu.stt_sessions[0]
    assert record.start is not None
    assert record.start["context"] == context
    assert record.context_terms == TERMS
    assert record.received[0]["context"]["terms"] == TERMS


async def test_no_context_no_terms(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await stt_session(http, emu, start_msg())
    await ws.close()
    ws = await stt_session(http, emu, start_msg(context={"text": "a kitchen"}))
    await ws.close()
    assert [r.context_terms for r in emu.stt_sessions] == [None, None]
