"""``python -m wyoming_60db.emulator`` starts, serves and exits cleanly."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys

import aiohttp
import pytest

from wyoming_60db.emulator.__main__ import build_parser, settings_from_args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_args_map_to_settings() -> None:
    argv = (
        "--api-key sk_live_k --balance 0 --handshake typed --stt-connected omitted "
        "--connect-latency 0.5 --close-tts-after-context --tts-concurrency 2 "
        "--tts-ack-style bool --voices-shape flat --extra-fields "
        "--stt-binary-encoding mulaw --default-interim-ms 400 "
        "--close-delay 0.25 --concurrency-counts connections"
    )
    args = build_parser().parse_args(argv.split())
    settings = settings_from_args(args)
    assert settings.api_key == "sk_live_k"
    assert settings.credit_balance == 0
    assert settings.handshake == "typed"
    assert settings.stt_connected == "omitted"
    assert settings.connect_latency == 0.5
    assert settings.close_tts_after_context_closed is True
    assert settings.tts_concurrency == 2
    assert settings.tts_ack_style == "bool"
    assert settings.voices_shape == "flat"
    assert settings.extra_fields is True
    assert settings.stt_binary_encoding == "mulaw"
    assert settings.stt_default_interim_ms == 400
    assert settings.close_delay == 0.25
    assert settings.concurrency_counts == "connections"


def test_new_flags_default_to_current_behaviour() -> None:
    settings = settings_from_args(build_parser().parse_args([]))
    assert settings.close_delay == 0.0
    assert settings.concurrency_counts == "sessions"
    assert settings.stt_llm_latency_ms == 240  # 60db's documented llm_latency_ms example
    assert settings.stt_llm_refinement is True


def test_llm_flags() -> None:
    args = build_parser().parse_args(["--llm-latency-ms", "120", "--no-llm-refinement"])
    settings = settings_from_args(args)
    assert settings.stt_llm_latency_ms == 120
    assert settings.stt_llm_refinement is False


@pytest.mark.parametrize("value", ["-1", "0.5", "soon"])
def test_llm_latency_must_be_a_whole_number_of_ms(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--llm-latency-ms", value])
    assert "--llm-latency-ms" in capsys.readouterr().err


async def test_cli_serves_and_terminates() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wyoming_60db.emulator",
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            body = await asyncio.wait_for(_poll(http, f"http://127.0.0.1:{port}/"), 15)
        assert body == "ok"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        _, stderr = await asyncio.wait_for(proc.communicate(), 5)
        assert f"http://127.0.0.1:{port}" in stderr.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _poll(http: aiohttp.ClientSession, url: str) -> str:
    while True:
        try:
            async with http.get(url) as resp:
                return await resp.text()
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
