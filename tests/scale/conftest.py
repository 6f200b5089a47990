"""Helpers for tests that run the server as separate processes on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from tests.conftest import wait_for_port as wait_for_port  # noqa: PLC0414 - re-exported
from tests.server.conftest import WAIT


@contextlib.asynccontextmanager
async def running(
    argv: list[str], log: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A process whose output goes to ``log``; stopped (SIGTERM, then SIGKILL) on exit."""
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=clean_environment(env),
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(WAIT):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``SIXTYDB_*`` settings, plus ``extra``."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SIXTYDB_")}
    return {**kept, **(extra or {})}


def server_argv(*argv: str) -> list[str]:
    """``wyoming-60db`` with ``argv``, from this interpreter."""
    return [sys.executable, "-m", "wyoming_60db", *argv]
