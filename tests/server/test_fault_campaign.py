"""The fault campaign: every way a request can go wrong, and the server still answers ``describe``.

Each case drives the real server with the real ``wyoming`` client in Home
Assistant's order of events (home-assistant.md §2), against the emulator.
Cases already covered elsewhere are not repeated here:

* malformed events, small oversize headers/payloads → ``test_errors.py``
  ``test_malformed_events_cost_only_that_connection``; the 2 MB header line and
  the 500 MB declared payload at the parser → ``test_event_protocol.py``
  (``test_a_2_mb_header_line_is_refused_without_buffering_it``,
  ``test_a_declared_500_mb_payload_is_refused_at_its_header``); through the
  real server: here.
* an unsupported rate (4 kHz) → ``test_stt.py`` ``test_unsupported_audio_format_is_an_error``;
  3 channels and 24-bit at 7 kHz: here.
* no credits → ``test_errors.py`` ``test_empty_wallet`` (``insufficient_credits``, STT and TTS).
* the account's limit: one local slot → ``test_errors.py``
  ``test_local_queue_turns_into_concurrency_limit``; 60db refusing →
  ``test_60db_concurrency_rejection``; a queue → ``test_tts.py``
  ``test_requests_beyond_the_limit_wait_in_a_queue``; every slot back after
  HA-style hang-ups, 8 at once → ``test_slots.py``; more requests than the 8 STT
  and 5 TTS slots at once: here.
* a stalled backend: STT after ``session_started`` → ``test_stt.py``
  ``test_stalled_60db_gets_an_error_not_a_hang``; slow finalisation →
  ``test_slow_finalisation_is_time_boxed``; TTS first audio late →
  ``test_tts.py`` ``test_stalled_60db_is_an_error_not_a_hang``; stalls at the
  handshake (both services) and in the middle of TTS audio: here.
* a client that vanishes with a FIN → ``test_stt.py``
  ``test_client_vanishing_mid_stream_releases_the_60db_session``, ``test_tts.py``
  ``test_client_vanishing_mid_stream_closes_the_60db_context``; with a TCP
  reset, within a second: here.
* a quiet client → ``test_idle_requests.py``; a hang-up mid-event →
  ``test_event_protocol.py`` ``test_hang_up_in_the_middle_of_an_event``.
* shutdown in process → ``test_shutdown.py``; SIGTERM to the real process with
  requests in flight, exit status 0: here.
* ``--allow`` refusing a client → ``test_allow_and_zeroconf.py``
  ``test_connection_from_outside_the_allowed_networks_is_refused``.
* the key in logs and events, in process at DEBUG → ``test_errors.py``
  ``test_the_key_never_leaves_the_server``; the log filter →
  ``test_cli.py`` ``test_log_filter_redacts_the_key_from_any_logger``; the real
  process at ``--debug``, stderr and every event: here.
* 60 s of load (8 STT + 5 TTS loops, 100 idle connections) on the real process,
  with file descriptors, RSS and slots compared: here (the only slow case; the
  compressed day of ``test_soak.py`` is a different mix, in process).

Dropped 60db sockets and their recovery are ``test_recovery.py``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest
from wyoming.asr import Transcribe
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeVoice

from tests.conftest import TEST_KEY, describe, stop_process, wait_for_port
from tests.server.conftest import (
    SERVER_TEST_TIMEOUTS,
    STREAM_END,
    STT_END,
    TTS_END,
    WAIT,
    RunningServer,
    audio_events,
    audio_of,
    error_of,
    eventually,
    exchange,
    free_port,
    ha_streaming_tts_events,
    ha_stt_events,
    heard,
    read_until,
    running_server,
    speech,
    types,
)
from wyoming_60db.emulator import Emulator, Fault
from wyoming_60db.emulator.settings import FaultService
from wyoming_60db.sixtydb.limits import MAX_TEXT_CHARS, STT_CONCURRENCY, TTS_CONCURRENCY

# Short 60db bounds, so a stall is reported in about a second (the defaults,
# SERVER_TIMEOUTS, are 5-10 s: the same code path, only slower).
SHORT = dataclasses.replace(
    SERVER_TEST_TIMEOUTS, connect=0.5, stt_ready=0.5, stt_finalize=0.5,
    tts_first_audio=0.5, tts_chunk_gap=0.5,
)  # fmt: skip
STALL_SLACK = 1.5  # seconds over the sum of the bounds that apply (CI scheduling)


async def still_answers(port: int) -> None:
    info = await describe(port)
    assert info.asr and info.tts


async def raw_exchange(port: int, raw: bytes) -> list[Event]:
    """Write ``raw`` while reading every event until the server closes."""
    async with asyncio.timeout(WAIT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = AsyncTcpClient("127.0.0.1", port)
        client._reader, client._writer = reader, writer  # read with wyoming's own parser

        async def send() -> None:
            writer.write(raw)
            with contextlib.suppress(ConnectionError):
                await writer.drain()  # the server may stop reading and close first

        sending = asyncio.create_task(send())
        try:
            return await read_until(client, [])
        finally:
            sending.cancel()
            writer.close()


def reset(client: AsyncTcpClient) -> None:
    """Vanish with a TCP reset: SO_LINGER 0, then close."""
    assert client._writer is not None
    sock = client._writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client._writer.transport.abort()


# --------------------------------------------------------------------------- oversize input


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"type": "describe", "x": "' + b"y" * 2_000_000, id="2 MB header line"),
        pytest.param(
            b'{"type": "audio-chunk", "payload_length": 500000000}\n' + bytes(64 * 1024),
            id="500 MB payload",
        ),
    ],
)
async def test_oversize_input_is_one_error(server: RunningServer, raw: bytes) -> None:
    events = await raw_exchange(server.port, raw)
    assert [(e.type, e.data.get("code")) for e in events] == [("error", "payload_too_large")]
    await still_answers(server.port)


# --------------------------------------------------------------------------- bad requests


@pytest.mark.parametrize(
    ("rate", "width", "channels"),
    [pytest.param(16000, 2, 3, id="3 channels"), pytest.param(7000, 3, 1, id="24-bit at 7 kHz")],
)
async def test_unsupported_audio_format(
    server: RunningServer, rate: int, width: int, channels: int
) -> None:
    frame = bytes(width * channels * rate // 100)
    events = [
        Transcribe(language="en").event(),
        *audio_events(frame * 3, rate, width, channels, chunk=len(frame)),
    ]
    text, code = error_of(await exchange(server, events, STT_END))
    assert code == "unsupported_audio_format"
    assert str(rate if rate < 8000 else channels) in text
    await still_answers(server.port)


async def test_text_over_the_limit(server: RunningServer, emulator: Emulator) -> None:
    text = "Too long. " * (MAX_TEXT_CHARS // 10 + 1)
    events = await exchange(server, [Synthesize(text=text).event()], TTS_END)
    assert error_of(events)[1] == "text_too_long"
    assert types(events) == ["error"]  # refused before audio-start, not cut
    assert emulator.tts_contexts == []  # nothing billed
    await still_answers(server.port)


# --------------------------------------------------------------------------- the account's limit


@pytest.mark.parametrize("queue", [0.1, 5.0], ids=["short queue", "long queue"])
async def test_more_requests_than_slots(emulator: Emulator, queue: float) -> None:
    """10 STT and 7 TTS at once: 8 and 5 run, the rest wait or get a clear error."""
    # Each request holds its slot far longer than the short queue waits.
    emulator.settings.finalize_latency = 0.5
    emulator.settings.first_chunk_latency = 0.5
    timeouts = dataclasses.replace(SERVER_TEST_TIMEOUTS, queue=queue)
    async with running_server(emulator, timeouts=timeouts) as server:
        stt = [exchange(server, ha_stt_events(speech(f"number {n}")), STT_END) for n in range(10)]
        tts = [
            exchange(server, [Synthesize(text=f"Reply {n}.").event()], TTS_END) for n in range(7)
        ]
        results = await asyncio.gather(*stt, *tts)  # none hangs: exchange is bounded by WAIT
        await all_slots_free(server, emulator)
        await still_answers(server.port)
    outcomes = [outcome(events) for events in results]
    expected = [f"number {n}" for n in range(10)] + [f"reply {n}." for n in range(7)]
    for got, wanted in zip(outcomes, expected, strict=True):
        assert got in (wanted, "concurrency_limit")
    served = [got != "concurrency_limit" for got in outcomes]
    assert sum(served[:10]) >= STT_CONCURRENCY and sum(served[10:]) >= TTS_CONCURRENCY
    if queue > 1:  # everyone fits in the queue's wait
        assert all(served)
    else:  # the extra ones are told at once, not held
        assert (served.count(False), sum(served)) == (4, 13), outcomes


def outcome(events: list[Event]) -> str:
    """The transcript, the words heard, or the error's code."""
    last = events[-1]
    if last.type == "transcript":
        return str(last.data["text"])
    if last.type == "audio-stop":
        return heard(audio_of(events))
    return str(error_of(events)[1])


async def all_slots_free(server: RunningServer, emulator: Emulator) -> None:
    client = server.backend.client
    assert client is not None
    await eventually(
        lambda: (
            (client.free_slots("stt"), client.free_slots("tts"))
            == (STT_CONCURRENCY, TTS_CONCURRENCY)
            and emulator.active_slots("stt") == emulator.active_slots("tts") == 0
        ),
        "every slot free, here and at 60db",
    )


# --------------------------------------------------------------------------- a stalled 60db


async def timed(work: Awaitable[list[Event]]) -> tuple[list[Event], float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    events = await work
    return events, loop.time() - started


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_60db_stalled_at_the_handshake(emulator: Emulator, service: FaultService) -> None:
    """60db accepts and never says a word: ``error`` within the connect bound."""
    # Every connection stalls, so a retry cannot hide the bound.
    emulator.inject_fault(Fault(service=service, kind="stall", after_messages=0, times=None))
    async with running_server(emulator, timeouts=SHORT, warm_connections=0) as server:
        if service == "stt":
            request = exchange(server, ha_stt_events(speech("Hi.")), STT_END)
        else:
            request = exchange(server, [Synthesize(text="Hi.").event()], TTS_END)
        events, seconds = await timed(request)
        assert error_of(events)[1] == "timeout"
        assert seconds < SHORT.connect + SHORT.stt_ready + STALL_SLACK
        await still_answers(server.port)
        emulator.clear_faults()
        await all_slots_free(server, emulator)
        await eventually(lambda: emulator.open_connections == 0, "the stalled sockets closed")
    assert emulator.stats.faults_injected[(service, "stall")] >= 1


async def test_60db_stalled_in_the_middle_of_an_answer(emulator: Emulator) -> None:
    emulator.settings.tts_chunk_bytes = 1024
    emulator.inject_fault(Fault(service="tts", kind="stall", after_audio_chunks=2, times=None))
    async with running_server(emulator, timeouts=SHORT, warm_connections=0) as server:
        stream = ha_streaming_tts_events(["A sentence long enough to take a while. ", "More."])
        events, seconds = await timed(exchange(server, stream, STREAM_END))
        assert types(events)[:2] == ["audio-start", "audio-chunk"]
        assert error_of(events)[1] == "timeout"
        assert seconds < SHORT.connect + SHORT.tts_chunk_gap + STALL_SLACK
        await still_answers(server.port)
        emulator.clear_faults()
        await all_slots_free(server, emulator)
    assert emulator.stats.faults_injected[("tts", "stall")] >= 1


# --------------------------------------------------------------------------- a client that vanishes


async def vanish_with_a_reset(server: RunningServer, emulator: Emulator, service: str) -> None:
    """Start a request, wait until it holds a 60db slot, then reset the TCP connection."""
    client = server.client()
    await client.connect()
    try:
        if service == "stt":
            await client.write_event(Transcribe(language="en").event())
            for event in audio_events(speech("Hello there."))[:-1]:  # no audio-stop
                await client.write_event(event)
        else:
            await client.write_event(SynthesizeStart().event())
            await client.write_event(SynthesizeChunk(text="The first sentence. The sec").event())
        await eventually(lambda: emulator.active_slots(service) == 1, "a 60db session", WAIT)
    finally:
        reset(client)


@pytest.mark.parametrize("service", ["stt", "tts"])
async def test_client_reset_mid_request_closes_the_60db_session_within_a_second(
    server: RunningServer, emulator: Emulator, service: str
) -> None:
    await vanish_with_a_reset(server, emulator, service)
    await eventually(lambda: emulator.active_slots(service) == 0, "the 60db session closed", 1.0)
    await eventually(lambda: not server.backend.connections, "the handler to finish")
    await still_answers(server.port)
    await all_slots_free(server, emulator)


# --------------------------------------------------------------------------- the real process


@dataclasses.dataclass
class ServerProcess:
    process: asyncio.subprocess.Process
    port: int
    log: bytearray  # everything it wrote to stderr so far

    @property
    def pid(self) -> int:
        return self.process.pid

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def client(self) -> AsyncTcpClient:
        return AsyncTcpClient("127.0.0.1", self.port)


@contextlib.asynccontextmanager
async def server_process(emulator: Emulator, *argv: str) -> AsyncIterator[ServerProcess]:
    """``python -m wyoming_60db`` against ``emulator``, the key from the environment."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wyoming_60db", "--uri", f"tcp://127.0.0.1:{port}",
        "--api-url", emulator.base_url, *argv,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "SIXTYDB_API_KEY": TEST_KEY},
    )  # fmt: skip
    log = bytearray()

    async def collect() -> None:  # keep the pipe drained: a full pipe would block the server
        assert process.stderr is not None
        while chunk := await process.stderr.read(65536):
            log.extend(chunk)

    collecting = asyncio.create_task(collect())
    try:
        await wait_for_port(port)
        yield ServerProcess(process, port, log)
    finally:
        await stop_process(process)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collecting, 5)
        collecting.cancel()


async def request(port: int, events: list[Event], last: tuple[str, ...]) -> list[Event]:
    async with asyncio.timeout(WAIT), AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event)
        return await read_until(client, last)


async def test_sigterm_with_requests_in_flight_and_the_key_never_shown(emulator: Emulator) -> None:
    """At --debug: neither stderr nor any event carries the key; SIGTERM mid-request exits 0."""
    seen: list[Event] = []
    async with server_process(emulator, "--debug") as server:
        port = server.port
        seen += await request(port, [Describe().event()], ("info",))
        seen += await request(port, ha_stt_events(speech("Hi.")), STT_END)
        seen += await request(port, [Synthesize(text="Hi.").event()], TTS_END)
        nobody = SynthesizeVoice(name="nobody")
        seen += await request(port, [Synthesize(text="Hi.", voice=nobody).event()], TTS_END)
        seen += await request(port, ha_stt_events(speech("Hi."), "xx"), STT_END)
        emulator.settings.api_key = "sk_test_someone_else"  # 60db refuses the server's key …
        emulator.drop_connections("stt")  # … once its warm sockets are gone
        emulator.drop_connections("tts")
        refused = await request(port, ha_stt_events(speech("Hi.")), STT_END)
        refused += await request(port, [Synthesize(text="Hi.").event()], TTS_END)
        assert [e.data.get("code") for e in refused if e.type == "error"] == ["auth_failed"] * 2
        seen += refused
        emulator.settings.api_key = None

        # Two requests in flight, each holding a 60db session, when SIGTERM comes.
        emulator.settings.first_chunk_latency = 0.3
        tts = asyncio.create_task(request(port, [Synthesize(text="Almost.").event()], TTS_END))
        stt_client = server.client()
        await stt_client.connect()
        pcm_events = audio_events(speech("Nearly done."))
        for event in [Transcribe(language="en").event(), *pcm_events[:20]]:
            await stt_client.write_event(event)
        await eventually(
            lambda: emulator.active_slots("stt") == emulator.active_slots("tts") == 1,
            "both requests at 60db",
        )
        server.process.send_signal(signal.SIGTERM)
        for event in pcm_events[20:]:  # the user finishes speaking
            await stt_client.write_event(event)
        async with asyncio.timeout(WAIT):
            stt_events = await read_until(stt_client, STT_END)
        await stt_client.disconnect()
        tts_events = await tts
        async with asyncio.timeout(WAIT):
            assert await server.process.wait() == 0
    seen += stt_events + tts_events
    # Each finished (within the 5 s grace) or failed cleanly: an error event, never a hang.
    assert outcome(stt_events) == "nearly done." or stt_events[-1].type == "error"
    assert outcome(tts_events) == "almost." or tts_events[-1].type == "error"
    for event in seen:
        assert TEST_KEY not in json.dumps(event.to_dict())
    log = server.log.decode(errors="replace")
    assert "DEBUG" in log and "auth_failed" in log
    assert TEST_KEY not in log
    assert TEST_KEY[8:] not in log  # not even the part after sk_test_


# --------------------------------------------------------------------------- a minute of load

LOAD_SECONDS = 60.0
IDLE_CONNECTIONS = 100
RSS_TOLERANCE_MIB = 30.0  # allocator high-water marks; a leak per request would be far more


@dataclasses.dataclass
class Tally:
    done: dict[str, int] = dataclasses.field(default_factory=lambda: {"stt": 0, "tts": 0})
    failures: list[str] = dataclasses.field(default_factory=list)


async def stt_loop(port: int, loop_id: int, until: float, tally: Tally) -> None:
    phrase = f"loop {loop_id}"
    events = ha_stt_events(speech(phrase))
    while asyncio.get_running_loop().time() < until:
        got = outcome(await request(port, events, STT_END))
        if got != phrase:
            tally.failures.append(f"stt {phrase!r}: {got!r}")
        tally.done["stt"] += 1


async def tts_loop(port: int, loop_id: int, until: float, tally: Tally) -> None:
    text = f"Answer {loop_id}."
    while asyncio.get_running_loop().time() < until:
        got = outcome(await request(port, [Synthesize(text=text).event()], TTS_END))
        if got != text.lower():
            tally.failures.append(f"tts {text!r}: {got!r}")
        tally.done["tts"] += 1


async def open_idle(port: int) -> AsyncTcpClient:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    return client


async def idle_still_answers(client: AsyncTcpClient) -> None:
    await client.write_event(Describe().event())
    assert types(await read_until(client, ["info"]))[-1] == "info"


async def peak_slots(emulator: Emulator, work: Awaitable[object]) -> tuple[int, int]:
    """The most 60db STT and TTS sessions held at once while ``work`` runs."""
    peak = [0, 0]
    task = asyncio.ensure_future(work)
    while not task.done():
        peak = [
            max(peak[0], emulator.active_slots("stt")),
            max(peak[1], emulator.active_slots("tts")),
        ]
        await asyncio.sleep(0.01)
    await task
    return peak[0], peak[1]


@pytest.mark.timeout(LOAD_SECONDS + 60)
async def test_a_minute_of_load_leaves_nothing_behind(emulator: Emulator) -> None:
    async with server_process(emulator) as server:
        port = server.port
        # Warm up: the first request of each kind loads what stays loaded.
        assert outcome(await request(port, ha_stt_events(speech("warm")), STT_END)) == "warm"
        assert outcome(await request(port, [Synthesize(text="Warm.").event()], TTS_END)) == "warm."
        fds_before, rss_before = server.open_fds(), server.rss_mib()

        idle = await asyncio.gather(*(open_idle(port) for _ in range(IDLE_CONNECTIONS)))
        tally = Tally()
        until = asyncio.get_running_loop().time() + LOAD_SECONDS
        try:
            await asyncio.gather(
                *(stt_loop(port, n, until, tally) for n in range(STT_CONCURRENCY)),
                *(tts_loop(port, n, until, tally) for n in range(TTS_CONCURRENCY)),
            )
            await asyncio.gather(*(idle_still_answers(client) for client in idle))
        finally:
            await asyncio.gather(*(client.disconnect() for client in idle))
        print(f"\n{tally.done} requests, RSS {rss_before:.1f} → {server.rss_mib():.1f} MiB")
        assert tally.failures == []

        # All 8 STT and 5 TTS slots are free: 60db sees all of them in use at once again.
        emulator.settings.finalize_latency = emulator.settings.first_chunk_latency = 0.3
        burst = asyncio.gather(
            *(request(port, ha_stt_events(speech("again")), STT_END) for _ in range(8)),
            *(request(port, [Synthesize(text="Again.").event()], TTS_END) for _ in range(5)),
        )
        assert await peak_slots(emulator, burst) == (STT_CONCURRENCY, TTS_CONCURRENCY)
        await eventually(
            lambda: emulator.active_slots("stt") == emulator.active_slots("tts") == 0,
            "every 60db session closed",
        )
        await eventually(lambda: server.open_fds() <= fds_before, "file descriptors back")
        rss_after = server.rss_mib()
        print(f"fds {fds_before} → {server.open_fds()}, RSS {rss_before:.1f} → {rss_after:.1f} MiB")
        assert rss_after <= rss_before + RSS_TOLERANCE_MIB
        assert tally.done["stt"] >= STT_CONCURRENCY and tally.done["tts"] >= TTS_CONCURRENCY
