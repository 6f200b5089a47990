"""A normal server start never imports the emulator, nor numpy or soxr.

The emulator is a test double that also serves ``--demo``; numpy and soxr are
needed only when audio must be converted. The real ``wyoming-60db`` process
runs under ``python -X importtime``, which reports every module the moment it
is first imported (lazy imports during requests included), and serves one of
each request Home Assistant makes. The controls show that the same reading
does see these modules when something does need them.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from wyoming.asr import Transcribe
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from tests.conftest import TEST_KEY, describe, stop_process, wait_for_port
from tests.server.conftest import (
    WAIT,
    audio_events,
    audio_of,
    free_port,
    heard,
    read_until,
    speech,
)
from wyoming_60db.emulator import Emulator

NOT_AT_RUNTIME: Final = ("wyoming_60db.emulator", "numpy", "soxr")
# "import time:  self [us] | cumulative | <indent>module"
_IMPORT_LINE: Final = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")

Work = Callable[[int], Awaitable[None]]


def imported_modules(importtime_log: str) -> set[str]:
    """Every module ``-X importtime`` reported."""
    return {
        match.group(1)
        for line in importtime_log.splitlines()
        if (match := _IMPORT_LINE.match(line))
    }


def loaded(modules: set[str], package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in modules)


async def modules_of_a_server_run(tmp_path: Path, argv: list[str], work: Work) -> set[str]:
    """Run ``wyoming-60db`` under ``-X importtime``, do ``work``, stop it; what it imported."""
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {**os.environ, "SIXTYDB_API_KEY": TEST_KEY}
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-X", "importtime", "-m", "wyoming_60db",
            "--uri", f"tcp://127.0.0.1:{port}", *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env,
        )  # fmt: skip
    try:
        await wait_for_port(port, timeout=WAIT)
        await work(port)
    finally:
        exit_status = await stop_process(process, WAIT)
    assert exit_status == 0
    text = log_path.read_text(encoding="utf-8")
    assert "Traceback" not in text, text
    modules = imported_modules(text)
    # The reading works: the server's own modules are in it.
    assert {"wyoming_60db.server", "wyoming_60db.handler", "aiohttp"} <= modules
    return modules


async def transcribe(port: int, text: str, rate: int = 16000) -> str:
    """One transcription as Home Assistant sends it: 16-bit mono in 320-byte chunks."""
    events = [Transcribe(language="en").event(), *audio_events(speech(text, rate), rate=rate)]
    async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event)
        answer = await read_until(client, ["transcript", "error"])
    assert answer[-1].type == "transcript", answer[-1]
    return str(answer[-1].data.get("text"))


async def synthesize(port: int, text: str) -> str:
    async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
        events = await read_until(client, ["audio-stop", "error"])
    return heard(audio_of(events))


async def test_a_normal_start_never_imports_the_emulator_or_numpy(
    tmp_path: Path, emulator: Emulator
) -> None:
    async def every_request(port: int) -> None:
        info = await describe(port, timeout=WAIT)
        assert info.asr and info.tts
        assert await transcribe(port, "turn on the light") == "turn on the light"
        assert await synthesize(port, "Hello there.") == "hello there."

    modules = await modules_of_a_server_run(
        tmp_path, ["--api-url", emulator.base_url], every_request
    )
    assert [name for name in NOT_AT_RUNTIME if loaded(modules, name)] == []


async def test_control_converting_audio_does_load_numpy(tmp_path: Path, emulator: Emulator) -> None:
    async def converted_request(port: int) -> None:
        assert await transcribe(port, "convert me", rate=22050) == "convert me"

    modules = await modules_of_a_server_run(
        tmp_path, ["--api-url", emulator.base_url], converted_request
    )
    assert loaded(modules, "numpy")
    assert not loaded(modules, "wyoming_60db.emulator")


async def test_control_the_demo_does_load_the_emulator(tmp_path: Path) -> None:
    async def one_describe(port: int) -> None:
        await describe(port, timeout=WAIT)

    modules = await modules_of_a_server_run(tmp_path, ["--demo"], one_describe)
    assert loaded(modules, "wyoming_60db.emulator")
