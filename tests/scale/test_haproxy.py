"""Two replicas behind HAProxy (examples/haproxy/haproxy.cfg), sharing one 60db account.

The emulator stands in for 60db with the account's limits, counting every
authenticated socket (``concurrency_counts="connections"``, the strictest
reading of 60db's §6), so a warm connection over the limit would be refused too.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize

from tests.conftest import TEST_KEY
from tests.scale.conftest import running, server_argv, wait_for_port
from tests.server.conftest import (
    WAIT,
    audio_of,
    eventually,
    free_port,
    ha_stt_events,
    heard,
    read_until,
    speech,
    started_sessions,
)
from wyoming_60db.emulator import Emulator, EmulatorSettings, tonecode

# Debian installs it in /usr/sbin, which is not on every user's PATH.
HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "haproxy" / "haproxy.cfg"
ACCOUNT_STT, ACCOUNT_TTS = 8, 5
STT_REQUESTS, TTS_REQUESTS = 16, 10
LOG_FORMAT = "%(levelname)s:%(name)s:%(message)s"

pytestmark = [
    pytest.mark.skipif(
        HAPROXY is None, reason="haproxy is not installed (Debian: apt-get install -y haproxy)"
    ),
    pytest.mark.timeout(120),
]


def loopback_config(frontend: int, replicas: list[int], stats_socket: Path) -> str:
    """The example, with loopback addresses and a private stats socket; nothing else changed."""
    text = EXAMPLE.read_text()
    text, binds = re.subn(r"(?m)^(\s*bind) :10300$", rf"\1 127.0.0.1:{frontend}", text)
    text, sockets = re.subn(r"(?m)^(\s*stats socket) \S+", rf"\1 {stats_socket}", text)
    ports = iter(replicas)
    text, servers = re.subn(
        r"(?m)^(\s*server replica\d) \S+", lambda m: f"{m[1]} 127.0.0.1:{next(ports)}", text
    )
    assert (binds, sockets, servers) == (1, 1, 2), "the example's layout changed"
    return text


async def haproxy_stats(stats_socket: Path) -> dict[str, dict[str, str]]:
    """``show stat`` of the backend's servers, by server name."""
    reader, writer = await asyncio.open_unix_connection(str(stats_socket))
    writer.write(b"show stat\n")
    await writer.drain()
    text = (await reader.read()).decode()
    writer.close()
    rows = csv.DictReader(text.removeprefix("# ").splitlines())
    return {
        row["svname"]: row
        for row in rows
        if row["pxname"] == "wyoming-60db" and row["svname"].startswith("replica")
    }


async def wait_for_status(stats_socket: Path, server: str, status: str) -> None:
    """Until HAProxy's health check has put ``server`` in ``status``."""
    async with asyncio.timeout(3 * WAIT):
        while True:
            with contextlib.suppress(OSError, KeyError):
                if (await haproxy_stats(stats_socket))[server]["status"] == status:
                    return
            await asyncio.sleep(0.2)


@dataclass
class LimitSpy:
    """Watches the emulator's per-account limiter: peak demand and refusals."""

    emulator: Emulator
    peak: dict[str, int] = field(default_factory=lambda: {"stt": 0, "tts": 0})
    refused: dict[str, int] = field(default_factory=lambda: {"stt": 0, "tts": 0})

    def __post_init__(self) -> None:
        limiter = self.emulator._state.limiter
        acquire = limiter.try_acquire

        def spy(service: str, identity: str, limit: int) -> bool:
            granted = acquire(service, identity, limit)
            if not granted:
                self.refused[service] += 1
            self.peak[service] = max(self.peak[service], limiter.total(service))
            return granted

        limiter.try_acquire = spy  # type: ignore[method-assign]


async def transcribe(port: int, text: str) -> str:
    """One HA-shaped STT request through the balancer, audio paced faster than real time."""
    async with asyncio.timeout(3 * WAIT), AsyncTcpClient("127.0.0.1", port) as client:
        for number, event in enumerate(ha_stt_events(speech(text))):
            await client.write_event(event)
            if number % 10 == 0:
                await asyncio.sleep(0.02)  # 100 ms of audio per 20 ms: sessions overlap
        events = await read_until(client, ["transcript", "error"])
    last = events[-1]
    return str(last.data["text"]) if last.type == "transcript" else f"error: {last.data}"


async def synthesize(port: int, text: str) -> str:
    async with asyncio.timeout(3 * WAIT), AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text).event())
        events = await read_until(client, ["audio-stop", "error"])
    last = events[-1]
    return heard(audio_of(events)) if last.type == "audio-stop" else f"error: {last.data}"


@dataclass
class Cluster:
    port: int
    stats_socket: Path
    logs: list[Path]
    replicas: list[asyncio.subprocess.Process]


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, emulator: Emulator, shares: list[list[str]]
) -> AsyncIterator[Cluster]:
    """Two replicas (each with its ``shares`` flags) and HAProxy from the example."""
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"replica{n}.log" for n in (1, 2)]
    replicas = []
    async with contextlib.AsyncExitStack() as stack:
        for port, log, flags in zip(ports, logs, shares, strict=True):
            argv = server_argv(
                "--uri", f"tcp://127.0.0.1:{port}", "--api-url", emulator.base_url,
                "--debug", "--log-format", LOG_FORMAT, *flags,
            )  # fmt: skip
            env = {"SIXTYDB_API_KEY": TEST_KEY}
            replicas.append(await stack.enter_async_context(running(argv, log, env)))
        for port in ports:
            await wait_for_port(port, 3 * WAIT)
        # A unix socket path must be short (108 bytes): not under pytest's tmp_path.
        sockets = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="60db-")))
        frontend, stats_socket = free_port(), sockets / "haproxy.sock"
        config = tmp_path / "haproxy.cfg"
        config.write_text(loopback_config(frontend, ports, stats_socket))
        assert HAPROXY is not None
        check = await asyncio.create_subprocess_exec(
            HAPROXY, "-c", "-q", "-f", str(config), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await check.communicate()
        assert check.returncode == 0, output.decode()
        await stack.enter_async_context(
            running([HAPROXY, "-db", "-f", str(config)], tmp_path / "haproxy.log")
        )
        for server in ("replica1", "replica2"):
            await wait_for_status(stats_socket, server, "UP")
        yield Cluster(frontend, stats_socket, logs, replicas)


def served(log: Path) -> int:
    """Transcripts a replica sent (its --debug log says so)."""
    return log.read_text().count("DEBUG:wyoming_60db.stt_stream:Transcript (")


async def run_load(front: Cluster) -> tuple[list[str], list[str], list[str], list[str]]:
    stt_texts = [f"request {n}, over there" for n in range(STT_REQUESTS)]
    tts_texts = [f"answer {n}." for n in range(TTS_REQUESTS)]
    results = await asyncio.gather(
        *(transcribe(front.port, text) for text in stt_texts),
        *(synthesize(front.port, text) for text in tts_texts),
    )
    return (
        [tonecode.normalize(text) for text in stt_texts],
        list(results[:STT_REQUESTS]),
        [tonecode.normalize(text) for text in tts_texts],
        list(results[STT_REQUESTS:]),
    )


async def test_two_replicas_share_one_account(tmp_path: Path) -> None:
    settings = EmulatorSettings(
        stt_concurrency=ACCOUNT_STT, tts_concurrency=ACCOUNT_TTS, concurrency_counts="connections"
    )
    async with Emulator(settings) as emulator:
        spy = LimitSpy(emulator)
        shares = [
            ["--stt-sessions", "4", "--tts-sessions", "3"],
            ["--stt-sessions", "4", "--tts-sessions", "2"],
        ]
        async with cluster(tmp_path, emulator, shares) as front:
            stt_expected, stt_got, tts_expected, tts_got = await run_load(front)
            stats = await haproxy_stats(front.stats_socket)
            sessions = len(started_sessions(emulator))
            # A replica logs a transcript just after sending it.
            await eventually(lambda: sum(map(served, front.logs)) >= STT_REQUESTS, "the logs")
            transcripts = [served(log) for log in front.logs]
            # One replica goes away: the other serves every request.
            front.replicas[1].send_signal(signal.SIGTERM)
            async with asyncio.timeout(WAIT):
                await front.replicas[1].wait()
            after = await asyncio.gather(*(transcribe(front.port, "still here") for _ in range(4)))
            assert after == ["still here"] * 4
            await wait_for_status(front.stats_socket, "replica2", "DOWN")
            await eventually(lambda: served(front.logs[0]) >= transcripts[0] + 4, "the log")
            logs = [log.read_text() for log in front.logs]

    # Every request got its answer: those over a replica's share waited for a slot.
    assert stt_got == stt_expected
    assert tts_got == tts_expected
    # HAProxy spread the connections over both replicas (leastconn: about half each).
    per_replica = [int(stats[name]["stot"]) for name in ("replica1", "replica2")]
    assert sum(per_replica) == STT_REQUESTS + TTS_REQUESTS
    assert min(per_replica) >= (STT_REQUESTS + TTS_REQUESTS) // 4, per_replica
    assert sum(transcripts) == STT_REQUESTS and min(transcripts) > 0, transcripts
    assert sessions == STT_REQUESTS  # one 60db session per request
    assert not [line for log in logs for line in log.splitlines() if "WARNING" in line], logs
    # The health check speaks Wyoming (describe → info): a layer-7 pass.
    assert {row["check_status"] for row in stats.values()} == {"L7OK"}
    # The account as a whole: never more than its limits, and 60db never refused.
    assert spy.refused == {"stt": 0, "tts": 0}
    assert spy.peak["stt"] <= ACCOUNT_STT and spy.peak["tts"] <= ACCOUNT_TTS
    assert spy.peak["stt"] > 4, "both replicas should have used their share at once"


async def test_without_shares_the_replicas_overrun_the_account(tmp_path: Path) -> None:
    """The control: each replica believing it owns all 8 sessions gets refused by 60db."""
    settings = EmulatorSettings(stt_concurrency=ACCOUNT_STT, concurrency_counts="connections")
    async with Emulator(settings) as emulator:
        spy = LimitSpy(emulator)
        async with cluster(tmp_path, emulator, [[], []]) as front:
            await asyncio.gather(
                *(transcribe(front.port, f"request {n}") for n in range(STT_REQUESTS))
            )
    assert spy.refused["stt"] > 0
