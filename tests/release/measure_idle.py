"""Memory and idle CPU of the server, for Raspberry Pi users to plan by.

    .venv/bin/python tests/release/measure_idle.py [IDLE_SECONDS]   # default 30

Measures two set-ups, each on a free loopback port:
- ``server``: ``wyoming-60db --api-key … --api-url`` pointed at the 60db emulator running
  as a separate process, as a real deployment talks to 60db: only the server is measured;
- ``demo``: ``wyoming-60db --demo``, which runs the emulator inside the server's process.

For each: wait until ``describe`` answers, speak one sentence (the TTS path is then
loaded), let start-up settle, then read VmRSS, VmHWM and CPU time from /proc before and
after IDLE_SECONDS of idling. The server keeps two warm connections open meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wyoming.client import AsyncTcpClient
from wyoming.info import Describe
from wyoming.tts import Synthesize

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.release.test_package import free_port  # noqa: E402


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            fields[key] = int(value.split()[0])
    return fields


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def exchange(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                while (event := await client.read_event()) is not None:
                    if event.type == "info":
                        break
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text="Welcome home.").event())
        while (event := await client.read_event()) is not None:
            if event.type == "audio-stop":
                break


def measure(argv: list[str | Path], port: int, idle: float, scratch: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIXTYDB_")}
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=scratch, env=env
    )
    try:
        asyncio.run(exchange(port))
        time.sleep(2)  # let start-up work (warm connections) settle
        before, cpu_before, start = status(process.pid), cpu_seconds(process.pid), time.monotonic()
        time.sleep(idle)
        after, cpu_after = status(process.pid), cpu_seconds(process.pid)
        elapsed = time.monotonic() - start
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    used = cpu_after - cpu_before
    return (
        f"RSS {before['VmRSS'] / 1024:.1f} MiB before idle, {after['VmRSS'] / 1024:.1f} MiB after"
        f" (peak {after['VmHWM'] / 1024:.1f}); idle CPU {used:.2f} CPU-s in {elapsed:.0f} s"
        f" = {100 * used / elapsed:.3f} % of one core"
    )


def main() -> None:
    idle = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    bin_dir = Path(sys.executable).parent
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {idle:.0f} s idle each")
    with tempfile.TemporaryDirectory() as scratch:
        emulator_port, port = free_port(), free_port()
        emulator = subprocess.Popen(
            [sys.executable, "-m", "wyoming_60db.emulator", "--host", "127.0.0.1",
             "--port", str(emulator_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=scratch,
        )  # fmt: skip
        try:
            time.sleep(2)
            server: list[str | Path] = [
                bin_dir / "wyoming-60db", "--uri", f"tcp://127.0.0.1:{port}",
                "--api-key", "sk_test_measure", "--api-url", f"http://127.0.0.1:{emulator_port}",
            ]  # fmt: skip
            print("server:", measure(server, port, idle, scratch))
        finally:
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(timeout=10)
        port = free_port()
        demo: list[str | Path] = [
            bin_dir / "wyoming-60db",
            "--demo",
            "--uri",
            f"tcp://127.0.0.1:{port}",
        ]
        print("demo:  ", measure(demo, port, idle, scratch))


if __name__ == "__main__":
    main()
