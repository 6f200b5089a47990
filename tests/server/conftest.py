"""A real server on loopback, the real emulator behind it, and HA-shaped clients."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from tests.conftest import TEST_KEY
from tests.conftest import eventually as eventually  # noqa: PLC0414 - re-exported
from tests.conftest import free_port as free_port  # noqa: PLC0414 - re-exported
from wyoming_60db.emulator import Emulator, EmulatorSettings, SttRecord, tonecode
from wyoming_60db.server import serving
from wyoming_60db.settings import ServerSettings
from wyoming_60db.sixtydb import Timeouts
from wyoming_60db.startup import start_backend, stop_backend
from wyoming_60db.state import Backend

# Far above what loopback needs, short enough that a hang fails fast.
SERVER_TEST_TIMEOUTS = Timeouts(
    connect=2.0, rest=2.0, tts_first_audio=2.0, tts_chunk_gap=2.0,
    stt_ready=2.0, stt_finalize=2.0, queue=0.3, close=1.0,
)  # fmt: skip
WAIT = 10.0  # every test wait is bounded by this
# The last event of each kind of request: its answer, or the error instead.
STT_END: Final = ("transcript", "error")
TTS_END: Final = ("audio-stop", "error")
STREAM_END: Final = ("synthesize-stopped", "error")
RATE = 16000
CHUNK_BYTES = 320  # HA: 10 ms of 16 kHz 16-bit mono (home-assistant.md §2)


@dataclass
class RunningServer:
    settings: ServerSettings
    backend: Backend
    port: int

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.port)


@contextlib.asynccontextmanager
async def running_server(
    emulator: Emulator | None, **overrides: Any
) -> AsyncIterator[RunningServer]:
    """The real server (backend + listener) on a free loopback port."""
    port = free_port()
    settings = ServerSettings(
        uri=f"tcp://127.0.0.1:{port}",
        api_key=TEST_KEY,
        api_url=emulator.base_url if emulator else "http://127.0.0.1:9",
        timeouts=SERVER_TEST_TIMEOUTS,
        catalog_timeout=2.0,
        drain_seconds=3.0,
        drain_idle_seconds=0.3,
        write_timeout=3.0,
        shutdown_grace=1.0,
    )
    settings = dataclasses.replace(settings, **overrides)
    backend = await start_backend(settings)
    try:
        async with serving(settings, backend):
            yield RunningServer(settings, backend, port)
    finally:
        await stop_backend(backend)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorSettings()) as emu:
        yield emu


@pytest.fixture
async def server(emulator: Emulator) -> AsyncIterator[RunningServer]:
    async with running_server(emulator) as running:
        yield running


# --------------------------------------------------------------------------- events


def speech(text: str, rate: int = RATE, silence: float = 0.3) -> bytes:
    """Tone-coded audio the emulator transcribes as ``text``, then some silence."""
    pcm = tonecode.encode(text, rate).astype("<i2").tobytes()
    return pcm + bytes(int(rate * silence) * 2)


def heard(pcm: bytes, rate: int = RATE) -> str:
    """What the emulator's tone code in ``pcm`` says."""
    return tonecode.decode(np.frombuffer(pcm, dtype="<i2"), rate)


def audio_events(
    pcm: bytes, rate: int = RATE, width: int = 2, channels: int = 1, chunk: int = CHUNK_BYTES
) -> list[Event]:
    events = [AudioStart(rate, width, channels).event()]
    events += [
        AudioChunk(rate, width, channels, pcm[i : i + chunk]).event()
        for i in range(0, len(pcm), chunk)
    ]
    return [*events, AudioStop().event()]


def ha_stt_events(pcm: bytes, language: str | None = "en") -> list[Event]:
    """Home Assistant's STT order: transcribe, audio-start, 10 ms chunks, audio-stop."""
    return [Transcribe(language=language).event(), *audio_events(pcm)]


def ha_streaming_tts_events(chunks: Sequence[str], voice: str | None = None) -> list[Event]:
    """HA's streaming TTS order, with the full text repeated as a plain synthesize."""
    synth_voice = SynthesizeVoice(name=voice) if voice else None
    return [
        SynthesizeStart(voice=synth_voice).event(),
        *(SynthesizeChunk(text=chunk).event() for chunk in chunks),
        Synthesize(text="".join(chunks), voice=synth_voice).event(),
        SynthesizeStop().event(),
    ]


async def read_until(client: AsyncTcpClient, last: Iterable[str]) -> list[Event]:
    """Events up to and including the first of type ``last`` (or the end of the stream)."""
    stop = set(last)
    events: list[Event] = []
    async with asyncio.timeout(WAIT):
        while True:
            event = await client.read_event()
            if event is None:
                return events
            events.append(event)
            if event.type in stop:
                return events


async def exchange(
    server: RunningServer, events: Iterable[Event], last: Iterable[str]
) -> list[Event]:
    """One request on a fresh connection, as HA makes it."""
    async with asyncio.timeout(WAIT), server.client() as client:
        for event in events:
            await client.write_event(event)
        return await read_until(client, last)


async def describe(server: RunningServer) -> Info:
    """``describe`` on a fresh connection: the server's ``info``."""
    *_, info = await exchange(server, [Describe().event()], ["info"])
    return Info.from_event(info)


async def refused(port: int) -> bool:
    """Whether the server closes a new connection without answering ``describe``."""
    async with asyncio.timeout(WAIT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"type": "describe"}\n')
        try:
            answer = await reader.readline()  # the info header, or b"" when closed
        except ConnectionResetError:
            answer = b""  # closed with the describe unread: a reset is fine here
        writer.close()
    return answer == b""


def types(events: Iterable[Event]) -> list[str]:
    return [event.type for event in events]


def error_of(events: Sequence[Event]) -> tuple[str, str | None]:
    errors = [e for e in events if e.type == "error"]
    assert errors, f"no error event in {types(events)}"
    return errors[0].data["text"], errors[0].data.get("code")


def audio_of(events: Iterable[Event]) -> bytes:
    return b"".join(e.payload or b"" for e in events if e.type == "audio-chunk")


def started_sessions(emulator: Emulator) -> list[SttRecord]:
    """STT sessions that got a ``start`` (warm connections that never did are left out)."""
    return [session for session in emulator.stt_sessions if session.start is not None]


# ------------------------------------------------------------------ HA 2026.10+'s STT order

BYTES_PER_SECOND = RATE * 2


def pcm_of(*parts: str | float) -> bytes:
    """Tone-coded phrases (str) and silences (seconds), one after the other."""
    pieces = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(tonecode.encode(part, RATE).astype("<i2").tobytes())
        else:
            pieces.append(bytes(int(RATE * part) * 2))
    return b"".join(pieces)


class HaClient:
    """Home Assistant 2026.10+'s STT client: a reader task reads while the audio goes out."""

    def __init__(self, client: AsyncTcpClient) -> None:
        self.client = client
        self.events: list[Event] = []
        self.arrived: list[float] = []  # perf_counter() of each event
        self.answered = asyncio.Event()  # a transcript or an error arrived
        self.audio_sent = 0  # bytes of audio written so far
        self.audio_at_answer: float | None = None  # seconds of audio sent when it arrived
        self._reader: asyncio.Task[None] | None = None

    async def start(self, transcribe: Event | None = None) -> None:
        await self.client.write_event(transcribe or Transcribe(language="en").event())
        await self.client.write_event(AudioStart(RATE, 2, 1).event())
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while (event := await self.client.read_event()) is not None:
            self.arrived.append(time.perf_counter())
            self.events.append(event)
            if event.type in STT_END and not self.answered.is_set():
                self.audio_at_answer = self.audio_sent / BYTES_PER_SECOND
                self.answered.set()

    async def stream(self, pcm: bytes, *, until_answer: bool = True) -> None:
        """``pcm`` in 10 ms chunks at real time; stops at the answer when ``until_answer``."""
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for index, offset in enumerate(range(0, len(pcm), CHUNK_BYTES)):
            if until_answer and self.answered.is_set():
                return
            delay = begin + index * CHUNK_BYTES / BYTES_PER_SECOND - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = pcm[offset : offset + CHUNK_BYTES]
            await self.client.write_event(AudioChunk(RATE, 2, 1, chunk).event())
            self.audio_sent += len(chunk)

    async def audio_stop(self) -> None:
        await self.client.write_event(AudioStop().event())

    async def answer(self) -> Event:
        async with asyncio.timeout(WAIT):
            await self.answered.wait()
        return next(event for event in self.events if event.type in STT_END)

    async def quiet_for(self, seconds: float) -> list[Event]:
        """Everything that arrives within ``seconds`` (after the answer: nothing, or a bug)."""
        seen = len(self.events)
        await asyncio.sleep(seconds)
        return self.events[seen:]

    async def describe(self) -> Info:
        """The connection still works, and nothing was queued before its ``info``."""
        seen = len(self.events)
        await self.client.write_event(Describe().event())
        await eventually(lambda: len(self.events) > seen, "info", WAIT)
        assert self.events[seen].type == "info", types(self.events[seen:])
        return Info.from_event(self.events[seen])

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.client.disconnect()


@dataclasses.dataclass
class Turn:
    """One request as HA 2026.10+ makes it: the events, and when the answer came."""

    events: list[Event]
    audio_at_answer: float | None
    answered_at: float | None

    @property
    def transcripts(self) -> list[Event]:
        return [event for event in self.events if event.type == "transcript"]

    @property
    def text(self) -> str:
        (transcript,) = self.transcripts
        text: str = transcript.data["text"]
        return text


async def ha_turn(
    server: RunningServer, pcm: bytes, transcribe: Event | None = None, *, then_stop: bool = True
) -> Turn:
    """Stream ``pcm`` at real time, reading meanwhile; hang up at the first transcript.

    When all audio has gone out without an answer, ``audio-stop`` (HA's end of
    stream) if ``then_stop``, and wait for the answer.
    """
    ha = HaClient(server.client())
    await ha.client.connect()
    try:
        async with asyncio.timeout(WAIT):
            await ha.start(transcribe)
            await ha.stream(pcm)
            if not ha.answered.is_set() and then_stop:
                await ha.audio_stop()
            await ha.answer()
    finally:
        await ha.close()
    answer_index = next(i for i, e in enumerate(ha.events) if e.type in STT_END)
    return Turn(ha.events, ha.audio_at_answer, ha.arrived[answer_index])
