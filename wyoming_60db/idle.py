"""Ending requests whose client has gone quiet (the server's and the integration's).

A client may send ``transcribe`` or ``synthesize-start`` and then nothing
(a crashed satellite, a dropped Wi-Fi link that left the TCP connection open).
Each open request holds one of the account's few 60db sessions, so silence
must end it after a bounded time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

_Item = TypeVar("_Item")


class QuietStream(Exception):
    """The caller's stream yielded nothing within the allowed time."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"nothing arrived for {seconds:g} s")
        self.seconds = seconds


async def next_or_quiet(items: AsyncIterator[_Item], seconds: float) -> _Item | None:
    """The next item, ``None`` at the end, :class:`QuietStream` after ``seconds`` of nothing.

    For pull-style streams (Home Assistant's audio and text generators). A
    ``TimeoutError`` the stream raises itself passes through unchanged. A
    coroutine, not a generator, so that the deadline never spans a ``yield``.
    """
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            return await anext(items)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        if not deadline.expired():
            raise
        raise QuietStream(seconds) from None


class IdleTimer:
    """Calls ``on_idle`` once nothing has ``touch``-ed it for ``limit`` seconds.

    ``touch`` runs for every audio chunk, so it only stores a time: the one
    timer is re-armed when it fires, not on every touch, and no task is needed.
    """

    def __init__(self, limit: float, on_idle: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._on_idle = on_idle
        self._last = self._loop.time()
        self._handle = self._loop.call_at(self._last + limit, self._check)

    def touch(self) -> None:
        """The client is still there."""
        self._last = self._loop.time()

    def cancel(self) -> None:
        """Stop watching (the request ended or no longer waits for the client)."""
        self._handle.cancel()

    def _check(self) -> None:
        deadline = self._last + self._limit
        if self._loop.time() < deadline:
            self._handle = self._loop.call_at(deadline, self._check)
        else:
            self._on_idle()
