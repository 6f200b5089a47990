"""The asyncio helpers the pipelines and the Wyoming server share.

Ending requests whose client has gone quiet: a client may send ``transcribe``
or ``synthesize-start`` and then nothing (a crashed satellite, a dropped Wi-Fi
link that left the TCP connection open). Each open request holds one of the
account's few 60db sessions, so silence must end it after a bounded time.

Cancelling tasks for certain: on Python 3.11, ``asyncio.wait_for`` swallows a
cancellation that arrives in the same loop iteration as the awaited result
(CPython gh-86296, fixed in 3.12). The client core avoids ``wait_for``, but
libraries below it may not, and a lost ``cancel()`` would let a request run on
after its client left. So tasks are cancelled again until they have ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Final, TypeVar

_Item = TypeVar("_Item")

_RECHECK_SECONDS: Final = 0.05


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


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, whatever it swallows."""
    every = list(tasks)
    pending = {task for task in every if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECHECK_SECONDS)
    for task in every:
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" warning


async def run_together(first: Awaitable[None], second: Awaitable[None]) -> None:
    """Run both; the first failure cancels the other and is raised."""
    tasks = [asyncio.ensure_future(first), asyncio.ensure_future(second)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # raise the failure, if any
        await asyncio.gather(*tasks)
    finally:
        await cancel_and_wait(tasks)
