"""A day of a home's voice assistant, compressed: does anything leak or get lost?

Run with ``.venv/bin/python bench/soak.py [SECONDS]`` (default 180 s). The
test suite runs a 30 s version (``tests/server/test_soak.py``) and fails on any
failed request, lost slot or leaked socket.

A home is idle most of the day and then busy for a moment. Time is compressed
by shortening the warm-connection recycle age from 240 s to ``RECYCLE``: every
quiet spell below is longer than it, so every episode starts on connections
the server kept warm by itself. The episodes, chosen by a seeded random
generator, are what Home Assistant and its users do:

- a voice command: STT at real time in 10 ms chunks, the client hanging up the
  moment it has its transcript, then a streamed answer (HA's event order);
- a plain announcement (``synthesize``);
- a listener who walks away: the client hangs up after the first audio;
- a burst at the account's limits: 8 transcriptions and 5 answers at once.

The emulator delays its side of every WebSocket close (a network round trip)
and counts connections, not sessions, against the limits: the strictest
reading of 60db's documentation. The server, the emulator and the clients
share this process and its event loop; descriptors and RSS are the process's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import socket
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop

from wyoming_60db.emulator import Emulator, EmulatorSettings, tonecode
from wyoming_60db.server import serving
from wyoming_60db.settings import SERVER_TIMEOUTS, ServerSettings
from wyoming_60db.startup import start_backend, stop_backend

_T = TypeVar("_T")

KEY = "sk_test_soak_key"
RATE = 16000
CHUNK_BYTES = 320  # 10 ms, as HA sends
RECYCLE = 1.0  # warm-connection recycle age, compressed from 240 s
QUIET = (1.3 * RECYCLE, 2.2 * RECYCLE)  # every quiet spell outlasts the recycle age
CLOSE_DELAY = 0.05  # the emulator's side of every WebSocket close
CONNECT_LATENCY = 0.05
STT_LIMIT, TTS_LIMIT = 8, 5
WAIT = 15.0  # no request may take longer
PHRASES = ("lights on", "stop", "what time is it", "open the blinds")
ANSWERS = ("It is noon. ", "The blinds are open. ", "Done. ")
EPISODES: tuple[tuple[str, int], ...] = (
    ("voice command", 6),
    ("announcement", 2),
    ("listener walks away", 2),
    ("burst at the limits", 1),
)


@dataclass
class DayReport:
    """What the compressed day did, and what it left behind."""

    seconds: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    first_audio_after_quiet: list[float] = field(default_factory=list)
    slots_free: tuple[int, int] = (0, 0)
    fds: tuple[int, int] = (0, 0)
    rss_mib: tuple[float, float] = (0.0, 0.0)
    emulator_sockets_left: dict[str, int] = field(default_factory=dict)
    emulator_slots_left: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        after_quiet = self.first_audio_after_quiet
        median = statistics.median(after_quiet) * 1000 if after_quiet else float("nan")
        worst = max(after_quiet) * 1000 if after_quiet else float("nan")
        return [
            f"compressed day: {self.seconds:.0f} s, recycle age {RECYCLE:g} s, "
            f"quiet spells {QUIET[0]:g}-{QUIET[1]:g} s",
            "requests: "
            + ", ".join(f"{count} {name}" for name, count in sorted(self.requests.items()))
            + f" ({sum(self.requests.values())} in all)",
            f"failures: {len(self.failures)}"
            + "".join(f"\n  - {failure}" for failure in self.failures[:10]),
            f"slots free at the end: STT {self.slots_free[0]}/{STT_LIMIT}, "
            f"TTS {self.slots_free[1]}/{TTS_LIMIT}",
            f"60db sockets still open: {self.emulator_sockets_left} "
            f"(the warm ones); sessions 60db still counts: {self.emulator_slots_left}",
            f"file descriptors: {self.fds[0]} at the start, {self.fds[1]} at the end",
            f"RSS: {self.rss_mib[0]:.1f} MiB at the start, {self.rss_mib[1]:.1f} MiB at the end",
            f"first audio after a quiet spell (TTS, {len(after_quiet)} episodes): "
            f"median {median:.1f} ms, worst {worst:.1f} ms "
            "(the emulator's first-chunk latency is 0; a login would add "
            f"{CONNECT_LATENCY * 1000:.0f} ms)",
        ]


# --------------------------------------------------------------------------- clients


def speech(text: str) -> bytes:
    pad = np.zeros(RATE // 5, dtype=np.int16)
    return np.concatenate([pad, tonecode.encode(text, RATE), pad]).astype("<i2").tobytes()


def heard(pcm: bytes) -> str:
    return tonecode.decode(np.frombuffer(pcm, dtype="<i2"), RATE)


@contextlib.asynccontextmanager
async def connection(port: int) -> AsyncIterator[AsyncTcpClient]:
    """One request's connection, hung up at once afterwards, as HA does."""
    async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
        yield client


async def next_event(client: AsyncTcpClient, *wanted: str) -> Event:
    while (event := await client.read_event()) is not None:
        if event.type == "error":
            raise RuntimeError(f"server error: {event.data.get('code')}: {event.data.get('text')}")
        if event.type in wanted:
            return event
    raise RuntimeError(f"connection closed while waiting for {wanted}")


async def transcribe(port: int, phrase: str, *, reads_while_uploading: bool = True) -> bool:
    """One voice command at real time; hang up the moment the transcript is there.

    ``reads_while_uploading``: Home Assistant 2026.10+ with the server's
    endpointing: it streams on (silence after the phrase) until the
    transcript arrives, unasked. Otherwise the older order: ``audio-stop``
    after the phrase, then read.
    """
    pcm = speech(phrase)
    if reads_while_uploading:
        pcm += bytes(RATE * 2 * 3)  # the room stays quiet; 60db hears the end
    async with connection(port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(RATE, 2, 1).event())
        reading = asyncio.ensure_future(next_event(client, "transcript"))
        try:
            for offset in range(0, len(pcm), CHUNK_BYTES):
                if reading.done():
                    break
                chunk = pcm[offset : offset + CHUNK_BYTES]
                await client.write_event(AudioChunk(RATE, 2, 1, chunk).event())
                await asyncio.sleep(0.01)
            else:
                if reads_while_uploading:
                    raise RuntimeError("no transcript before the audio ended")
                await client.write_event(AudioStop().event())
            transcript = await reading
        finally:
            reading.cancel()
    if transcript.data.get("text") != phrase:
        raise RuntimeError(f"heard {transcript.data.get('text')!r}, said {phrase!r}")
    return True


async def answer(port: int, text: str) -> float:
    """HA's streaming TTS order; returns the time to the first audio."""
    started = time.perf_counter()
    async with connection(port) as client:
        await client.write_event(SynthesizeStart().event())
        for word in text.split(" "):
            await client.write_event(SynthesizeChunk(text=word + " ").event())
        await client.write_event(Synthesize(text=text).event())
        await client.write_event(SynthesizeStop().event())
        first, audio = await audio_until(client, "synthesize-stopped")
    check_audio(audio, text)
    return first - started


async def announce(port: int, text: str) -> float:
    started = time.perf_counter()
    async with connection(port) as client:
        await client.write_event(Synthesize(text=text).event())
        first, audio = await audio_until(client, "audio-stop")
    check_audio(audio, text)
    return first - started


async def audio_until(client: AsyncTcpClient, last: str) -> tuple[float, bytes]:
    """When the first audio arrived, and all the audio up to the event ``last``."""
    first: float | None = None
    audio = bytearray()
    while (event := await next_event(client, "audio-chunk", last)).type != last:
        first = first or time.perf_counter()
        audio += event.payload or b""
    return first or time.perf_counter(), bytes(audio)


async def walk_away(port: int, text: str) -> float:
    """A listener who stops the answer after its first audio (the client hangs up)."""
    started = time.perf_counter()
    async with connection(port) as client:
        await client.write_event(Synthesize(text=text).event())
        await next_event(client, "audio-chunk")
    return time.perf_counter() - started


def check_audio(audio: bytes, text: str) -> None:
    said = heard(audio)
    if said != text.strip().lower():
        raise RuntimeError(f"answer said {said!r}, not {text.strip().lower()!r}")


# --------------------------------------------------------------------------- the day


class Day:
    def __init__(self, port: int, report: DayReport, seed: int) -> None:
        self.port = port
        self.report = report
        self.random = random.Random(seed)

    async def run(self, seconds: float) -> None:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await asyncio.sleep(self.random.uniform(*QUIET))
            names = [name for name, _ in EPISODES]
            weights = [weight for _, weight in EPISODES]
            episode = self.random.choices(names, weights)[0]
            first_audio = await self.episode(episode)
            if first_audio is not None:
                self.report.first_audio_after_quiet.append(first_audio)

    async def episode(self, name: str) -> float | None:
        phrase = self.random.choice(PHRASES)
        text = self.random.choice(ANSWERS)
        if name == "voice command":
            if await self.request("transcription", transcribe(self.port, phrase)):
                return await self.request("streamed answer", answer(self.port, text))
            return None
        if name == "announcement":
            return await self.request("announcement", announce(self.port, text))
        if name == "listener walks away":
            return await self.request("answer cut short", walk_away(self.port, text * 3))
        await asyncio.gather(
            *(
                self.request(
                    "transcription", transcribe(self.port, p, reads_while_uploading=new_ha)
                )
                for p in PHRASES
                for new_ha in (True, False)  # HA 2026.10+ and older, half each
            ),
            *(self.request("announcement", announce(self.port, text)) for _ in range(TTS_LIMIT)),
        )
        return None

    async def request(self, kind: str, work: Awaitable[_T]) -> _T | None:
        self.report.requests[kind] += 1
        try:
            return await work
        except Exception as err:  # every failure is a finding
            self.report.failures.append(f"{kind}: {type(err).__name__}: {err}")
            return None


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def settle(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Let closes still under way finish (each is bounded by the close timeout)."""
    deadline = time.perf_counter() + seconds
    while not condition() and time.perf_counter() < deadline:  # noqa: ASYNC110 - counters
        await asyncio.sleep(0.05)


async def run_day(seconds: float, seed: int = 60) -> DayReport:
    """Run the compressed day against a server and emulator in this process."""
    report = DayReport(seconds=seconds)
    emulator_settings = EmulatorSettings(
        api_key=KEY,
        close_delay=CLOSE_DELAY,
        connect_latency=CONNECT_LATENCY,
        concurrency_counts="connections",
    )
    port = free_port()
    settings = ServerSettings(
        uri=f"tcp://127.0.0.1:{port}",
        api_key=KEY,
        timeouts=dataclasses.replace(SERVER_TIMEOUTS, warm_max_idle=RECYCLE),
        shutdown_grace=2.0,
    )
    async with Emulator(emulator_settings) as emulator:
        settings = dataclasses.replace(settings, api_url=emulator.base_url)
        backend = await start_backend(settings)
        client = backend.client
        assert client is not None
        try:
            async with serving(settings, backend):
                await settle(lambda: emulator.open_connections_by_service == {"stt": 1, "tts": 1})
                report.fds = (open_fds(), 0)
                report.rss_mib = (rss_mib(), 0.0)
                await Day(port, report, seed).run(seconds)
                await settle(
                    lambda: (
                        (client.free_slots("stt"), client.free_slots("tts"))
                        == (STT_LIMIT, TTS_LIMIT)
                        and emulator.open_connections_by_service == {"stt": 1, "tts": 1}
                    )
                )
                report.slots_free = (client.free_slots("stt"), client.free_slots("tts"))
                report.emulator_sockets_left = emulator.open_connections_by_service
                report.emulator_slots_left = {
                    service: emulator.active_slots(service) for service in ("stt", "tts")
                }
                report.fds = (report.fds[0], open_fds())
                report.rss_mib = (report.rss_mib[0], rss_mib())
        finally:
            await stop_backend(backend)
    return report


async def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 180.0
    report = await run_day(seconds)
    print("\n".join(report.lines()))
    if report.failures or report.slots_free != (STT_LIMIT, TTS_LIMIT):
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
