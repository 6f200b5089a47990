"""``/ws/stt`` behaviour against raw WebSocket frames (§2)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import numpy as np
import pytest

from wyoming_60db.audio import mulaw_encode
from wyoming_60db.emulator import Emulator, tonecode

from .wsutil import (
    connect,
    finals,
    handshake,
    recv_all,
    recv_json,
    recv_until,
    send_binary_audio,
    send_json_audio,
    silence,
    start_msg,
    stt_session,
    types,
)

PHRASE = "turn on the lights"


def utterance(text: str, rate: int, lead: float = 0.3, tail: float = 0.8) -> np.ndarray:
    return np.concatenate([silence(rate, lead), tonecode.encode(text, rate), silence(rate, tail)])


async def stop_and_collect(ws: aiohttp.ClientWebSocketResponse) -> tuple[list[Any], int | None]:
    await ws.send_json({"type": "stop"})
    return await recv_all(ws)


# ---------------------------------------------------------------------- validation

BAD_STARTS = [
    (start_msg(encoding="LINEAR16"), "unsupported_encoding", "LINEAR16"),
    ({"type": "start", "config": {"sample_rate": 16000}}, "unsupported_encoding", None),
    (start_msg(rate=22050), "unsupported_sample_rate", "22050"),
    (
        {"type": "start", "config": {"encoding": "linear", "sample_rate": "16000"}},
        "unsupported_sample_rate",
        None,
    ),
    (start_msg(encoding="mulaw", rate=16000), "unsupported_sample_rate", "16000"),
    (start_msg(languages="auto"), "unsupported_language", "auto"),
    (start_msg(languages=["ja"]), "unsupported_language", "ja"),
    (start_msg(languages=["en", "ar-eg"]), "unsupported_language", "ar-eg"),
    (start_msg(languages=["en", "hi", "fr", "de", "es", "it"]), "too_many_languages", None),
    ({"type": "start", "config": "linear"}, "invalid_message", None),
    (
        {
            "type": "start",
            "config": {"encoding": "linear", "sample_rate": 16000, "utterance_end_ms": "long"},
        },
        "invalid_message",
        None,
    ),
]


@pytest.mark.parametrize(("start", "code", "in_message"), BAD_STARTS)
async def test_start_validation(
    emu: Emulator,
    http: aiohttp.ClientSession,
    start: dict[str, Any],
    code: str,
    in_message: str | None,
) -> None:
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    await ws.send_json(start)
    frames, close = await recv_all(ws)
    assert len(frames) == 1
    error = frames[0]
    assert error["type"] == "error"
    assert error["error_code"] == code
    assert isinstance(error["error"], str)
    if in_message:
        assert in_message in error["error"]
    assert close == 1007
    assert emu.stt_sessions[0].ended == f"error:{code}"


@pytest.mark.parametrize(
    ("action", "code"),
    [
        ("binary_before_start", "session_not_started"),
        ("json_audio_before_start", "session_not_started"),
        ("config_before_start", "session_not_started"),
        ("not_json", "invalid_json"),
        ("array", "invalid_message"),
        ("no_type", "invalid_message"),
        ("unknown_type", "invalid_message"),
        ("bad_base64", "invalid_message"),
        ("second_start", "session_already_started"),
    ],
)
async def test_message_validation(
    emu: Emulator, http: aiohttp.ClientSession, action: str, code: str
) -> None:
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    if action in ("bad_base64", "second_start"):
        await ws.send_json(start_msg())
        await recv_until(ws, lambda f: f.get("type") == "session_started")
    payload: bytes | str | object = {
        "binary_before_start": b"\x00" * 320,
        "json_audio_before_start": {"type": "audio", "audio": "AAAA"},
        "config_before_start": {"type": "config", "languages": ["en"]},
        "not_json": "hello{",
        "array": [1, 2],
        "no_type": {"start": {}},
        "unknown_type": {"type": "bogus"},
        "bad_base64": {"type": "audio", "audio": "!!notbase64"},
        "second_start": start_msg(),
    }[action]
    if isinstance(payload, bytes):
        await ws.send_bytes(payload)
    elif isinstance(payload, str):
        await ws.send_str(payload)
    else:
        await ws.send_json(payload)
    frames, close = await recv_all(ws)
    assert frames[-1]["type"] == "error"
    assert frames[-1]["error_code"] == code
    assert close == 1007


async def test_clamps_and_ignores_unknown_config(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    start = start_msg(
        utterance_end_ms=100,
        interim_results_frequency=50,
        diarize=True,
        no_speech_threshold=0.6,
        audio_enhancement="light",
        languages=["en", "hi"],
    )
    ws = await stt_session(http, emu, start)
    await ws.close()
    record = emu.stt_sessions[0]
    assert record.config is not None
    assert record.config["utterance_end_ms"] == 300
    assert record.config["interim_results_frequency"] == 300
    assert record.languages == ["en", "hi"]
    assert record.start is not None
    assert record.start["config"]["diarize"] is True


# ---------------------------------------------------------------------- transcripts


async def test_linear_json_16k_transcript_with_interims(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ws = await stt_session(http, emu, start_msg(interim_results_frequency=300))
    pcm = utterance(PHRASE, 16000).tobytes()
    await send_json_audio(ws, pcm, chunk=1920, encoding="linear", sample_rate=16000)
    frames, close = await stop_and_collect(ws)
    assert close == 1000
    assert types(frames)[0] == "speech_started"
    interims = [f for f in frames if f.get("type") == "transcription" and not f["is_final"]]
    assert interims, "expected interim results"
    for interim in interims:
        assert interim["is_partial"] is True
        assert interim["speech_final"] is False
        assert PHRASE.startswith(interim["text"])
    (final,) = finals(frames)
    assert final["text"] == PHRASE
    assert final["is_final"] is True
    assert final["sentence_id"] == 1
    assert final["language"] == "en"
    assert 0 < final["confidence"] <= 1
    assert final["duration"] == pytest.approx(len(PHRASE) * 0.06, abs=0.05)
    assert final["snr_db"] >= 15
    assert "llm_applied" not in final
    assert frames[-1]["type"] == "session_stopped"
    record = emu.stt_sessions[0]
    assert bytes(record.audio) == pcm
    assert record.json_frames == -(-len(pcm) // 1920)
    assert record.binary_frames == 0
    assert record.transcripts == [PHRASE]
    assert record.ended == "stopped"


async def test_binary_mulaw_8k_transcript(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await stt_session(http, emu, start_msg("mulaw", 8000, languages=["hi"]))
    codes = mulaw_encode(utterance(PHRASE, 8000))
    await send_binary_audio(ws, codes, chunk=480)  # §2.3.2: 480 B per 60 ms
    frames, _ = await stop_and_collect(ws)
    (final,) = finals(frames)
    assert final["text"] == PHRASE
    assert final["language"] == "hi"
    record = emu.stt_sessions[0]
    assert bytes(record.audio) == codes
    assert record.binary_frames == -(-len(codes) // 480)


async def test_binary_linear_follows_config_encoding(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ws = await stt_session(http, emu, start_msg("linear", 24000))
    # odd chunk size: samples split across frames must still decode (§9.3)
    await send_binary_audio(ws, utterance("hello", 24000).tobytes(), chunk=333)
    frames, _ = await stop_and_collect(ws)
    assert [f["text"] for f in finals(frames)] == ["hello"]


@pytest.mark.parametrize("refine", [False, True])
async def test_two_phase_finals_with_context(
    emu: Emulator, http: aiohttp.ClientSession, refine: bool
) -> None:
    emu.settings.stt_llm_refine_text = refine
    context = {"general": [{"key": "domain", "value": "smart home"}], "text": "", "terms": []}
    ws = await stt_session(http, emu, start_msg(context=context))
    await send_json_audio(ws, utterance(PHRASE, 16000).tobytes())
    frames, _ = await stop_and_collect(ws)
    results = [f for f in frames if f.get("type") == "transcription"]
    first, canonical = results
    assert (first["is_final"], first["speech_final"]) == (True, False)
    assert (canonical["is_final"], canonical["speech_final"]) == (True, True)
    assert first["sentence_id"] == canonical["sentence_id"] == 1
    assert first["text"] == PHRASE
    assert canonical["text"] == ("Turn on the lights" if refine else PHRASE)
    assert canonical["llm_applied"] is True
    assert "llm_latency_ms" in canonical
    assert "llm_applied" not in first


async def test_utterances_split_on_silence(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await stt_session(http, emu, start_msg(utterance_end_ms=400))
    audio = np.concatenate(
        [
            utterance("first one", 16000, tail=0.6),
            utterance("second one", 16000, lead=0.0, tail=0.6),
        ]
    )
    await send_json_audio(ws, audio.tobytes(), chunk=3200)
    frames, _ = await stop_and_collect(ws)
    assert [f["text"] for f in finals(frames)] == ["first one", "second one"]
    assert [f["sentence_id"] for f in finals(frames)] == [1, 2]
    assert types(frames).count("speech_started") == 2
    # utterance 1 was final before utterance 2 started
    kinds = types(frames)
    assert kinds.index("transcription") < kinds.index("speech_started", 1)


async def test_pending_utterance_finalized_on_stop(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    ws = await stt_session(http, emu)
    await send_json_audio(ws, tonecode.encode("no tail", 16000).tobytes())
    frames, _ = await stop_and_collect(ws)
    assert [f["text"] for f in finals(frames)] == ["no tail"]


async def test_empty_final_on_silence(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await stt_session(http, emu)
    await send_json_audio(ws, silence(16000, 1.0).tobytes())
    frames, close = await stop_and_collect(ws)
    assert types(frames) == ["transcription", "session_stopped"]
    empty = frames[0]
    assert empty["text"] == ""
    assert (empty["is_final"], empty["speech_final"]) == (True, True)
    assert empty["processing_mode"] == "speech_end_no_result"
    assert empty["confidence"] == 0.0
    assert isinstance(empty["timestamp"], float)
    assert close == 1000


async def test_no_empty_final_when_disabled(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.stt_empty_final_on_silence = False
    ws = await stt_session(http, emu)
    await send_json_audio(ws, silence(16000, 0.5).tobytes())
    frames, _ = await stop_and_collect(ws)
    assert types(frames) == ["session_stopped"]


async def test_scripted_and_placeholder_transcripts(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.script_transcripts(["what time is it"])
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 3000, 16000).astype(np.int16)  # voiced, but not tone code
    gap = silence(16000, 0.8)
    audio = np.concatenate([noise, gap, tonecode.encode("tone", 16000), gap, noise, gap])
    ws = await stt_session(http, emu)
    await send_json_audio(ws, audio.tobytes(), chunk=3200)
    frames, _ = await stop_and_collect(ws)
    texts = [f["text"] for f in finals(frames)]
    assert texts[:2] == ["what time is it", "tone"]
    assert texts[2].startswith("[speech ")
    assert texts[2].endswith(" s]")


async def test_billing(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.stt_cost_per_second = 0.001
    ws = await stt_session(http, emu, start_msg("mulaw", 8000))
    await send_binary_audio(ws, mulaw_encode(silence(8000, 2.5)))
    frames, _ = await stop_and_collect(ws)
    billing = frames[-1]["billing_summary"]
    assert billing == {"total_duration_seconds": 2.5, "total_cost": pytest.approx(0.0025)}
    assert emu.stt_sessions[0].billing == billing


async def test_default_billing_rate(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await stt_session(http, emu)
    await send_json_audio(ws, silence(16000, 6.0).tobytes(), chunk=32000)
    frames, _ = await stop_and_collect(ws)
    assert frames[-1]["billing_summary"]["total_cost"] == pytest.approx(6 * 0.0005 / 60)


async def test_stop_before_start(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    frames, close = await stop_and_collect(ws)
    assert types(frames) == ["session_stopped"]
    assert frames[0]["billing_summary"]["total_duration_seconds"] == 0
    assert close == 1000


async def test_test_and_config_messages(emu: Emulator, http: aiohttp.ClientSession) -> None:
    ws = await stt_session(http, emu)
    await ws.send_json({"type": "test"})
    response = await recv_json(ws)
    assert response["type"] == "test_response"
    assert isinstance(response["timestamp"], float)
    await ws.send_json({"type": "config", "languages": ["hi"], "continuous_mode": False})
    changed = await recv_json(ws)
    assert changed == {"type": "language_changed", "language": "HI", "language_code": ["hi"]}
    mode = await recv_json(ws)
    assert mode["type"] == "mode_changed"
    assert mode["continuous_mode"] is False
    await ws.send_json({"type": "config", "languages": None})
    auto = await recv_json(ws)
    assert auto["language_code"] is None
    await ws.send_json({"type": "config", "languages": ["zh"]})
    frames, close = await recv_all(ws)
    assert frames[-1]["error_code"] == "unsupported_language"
    assert close == 1007


async def test_config_language_applies_to_transcripts(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.settings.detected_language = "fr"
    ws = await stt_session(http, emu)
    await send_json_audio(ws, utterance("bonjour", 16000).tobytes())
    await ws.send_json({"type": "config", "languages": ["de"]})
    await send_json_audio(ws, utterance("hallo", 16000, lead=0).tobytes())
    frames, _ = await stop_and_collect(ws)
    assert [(f["text"], f["language"]) for f in finals(frames)] == [
        ("bonjour", "fr"),
        ("hallo", "de"),
    ]


async def test_finalize_latency(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.finalize_latency = 0.3
    ws = await stt_session(http, emu)
    await send_json_audio(ws, tonecode.encode("late", 16000).tobytes())
    t0 = time.monotonic()
    await ws.send_json({"type": "stop"})
    frames = await recv_until(ws, lambda f: f.get("type") == "transcription")
    assert time.monotonic() - t0 >= 0.25
    assert frames[-1]["text"] == "late"
    await recv_all(ws)


async def test_extra_fields(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.extra_fields = True
    ws = await connect(http, emu, "stt")
    frames = await handshake(ws)
    assert "x_emulator_seq" in frames[0]
    assert "x_emulator_seq" in frames[1]["connection_established"]
    await ws.send_json(start_msg())
    await send_json_audio(ws, utterance("hi", 16000).tobytes())
    more, _ = await stop_and_collect(ws)
    assert "usage_update" in types(more)
    assert all("x_region" in f for f in more)
    assert [f["text"] for f in finals(more)] == ["hi"]


# ---------------------------------------------------------------------- §9 variants


async def test_binary_always_mulaw_variant(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.stt_binary_encoding = "mulaw"
    ws = await stt_session(http, emu, start_msg("linear", 8000))
    # binary frames are taken as μ-law ("telephony mode") even though config says linear
    await send_binary_audio(ws, mulaw_encode(utterance("telephony", 8000)))
    await send_json_audio(ws, utterance("browser", 8000).tobytes())  # JSON follows config
    frames, _ = await stop_and_collect(ws)
    assert [f["text"] for f in finals(frames)] == ["telephony", "browser"]


async def test_encoding_alias_variant(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.stt_encoding_aliases = True
    ws = await stt_session(http, emu, start_msg("LINEAR16", 16000))
    await ws.close()
    assert emu.stt_sessions[0].config is not None
    assert emu.stt_sessions[0].config["encoding"] == "linear"


async def test_short_utterance_end_rejected_variant(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.settings.stt_utterance_end_below_min = "reject"
    ws = await connect(http, emu, "stt")
    await handshake(ws)
    await ws.send_json(start_msg(utterance_end_ms=200))
    frames, close = await recv_all(ws)
    assert frames[-1]["error_code"] == "invalid_config"
    assert close == 1007


async def test_interims_on_by_default_variant(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.settings.stt_default_interim_ms = 300
    ws = await stt_session(http, emu)
    await send_json_audio(ws, utterance(PHRASE, 16000).tobytes())
    frames, _ = await stop_and_collect(ws)
    assert any(f.get("is_partial") for f in frames)
