"""Pre-warmed connections and 60db's concurrency slots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

from .errors import ConcurrencyLimitError, SixtyDbError

_LOGGER = logging.getLogger(__name__)


class Poolable(Protocol):
    """What the pool needs to know about a connection."""

    @property
    def closed(self) -> bool: ...

    async def aclose(self) -> None: ...


T = TypeVar("T", bound=Poolable)


class WarmPool(Generic[T]):
    """Keeps ``size`` authenticated connections ready, so a request skips the handshake.

    A single-use connection (STT: 60db closes it after ``session_stopped``) is
    replaced in the background as soon as it is taken. A ``reusable`` one (TTS)
    is expected back, so it is replaced only if it is discarded. Connections
    idle longer than ``max_idle`` seconds are recycled: 60db documents no idle
    timeout, and a half-dead socket would cost a failed request.
    """

    def __init__(
        self,
        factory: Callable[[], Awaitable[T]],
        *,
        name: str,
        size: int = 1,
        reusable: bool = False,
        max_idle: float = 240.0,
    ) -> None:
        self._factory = factory
        self._name = name
        self._size = size
        self._max_idle = max_idle
        self._idle: list[tuple[float, T]] = []
        self._filling = 0
        self._reusable = reusable
        self._lent = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self.last_error: SixtyDbError | None = None

    @property
    def idle_count(self) -> int:
        """Connections ready to use right now."""
        return sum(1 for _, item in self._idle if not item.closed)

    async def take(self) -> T:
        """A ready connection, or a new one when none is warm."""
        self._drop_stale()
        if self._reusable:
            self._lent += 1
        if self._idle:
            _, item = self._idle.pop()
            self.refill()
            return item
        self.refill(extra=1)
        try:
            return await self._factory()
        except BaseException:
            self._lent -= self._reusable
            raise

    def give_back(self, item: T) -> None:
        """Return a connection that can carry another request."""
        self._lent -= self._reusable
        self._drop_stale()
        if self._closed or item.closed or len(self._idle) >= self._size:
            self._close_later(item)
            self.refill()
            return
        self._idle.append((time.monotonic(), item))

    def adopt(self, item: T) -> None:
        """Keep a connection opened outside the pool as a warm one."""
        self._lent += self._reusable
        self.give_back(item)

    def discard(self, item: T) -> None:
        """Close a taken connection that must not be reused, and replace it."""
        self._lent -= self._reusable
        self._close_later(item)
        self.refill()

    def refill(self, extra: int = 0) -> None:
        """Open connections in the background until ``size`` are warm."""
        if self._closed:
            return
        missing = self._size - len(self._idle) - self._filling - self._lent - extra
        for _ in range(max(0, missing)):
            self._filling += 1
            self._spawn(self._fill_one())

    async def aclose(self) -> None:
        """Close every idle connection and stop refilling."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        # Warm-ups are cancelled; closes under way finish (each is bounded by
        # Timeouts.close), so no socket is left half-closed.
        await asyncio.gather(*self._tasks, *self._closing, return_exceptions=True)
        idle, self._idle = self._idle, []
        await asyncio.gather(*(item.aclose() for _, item in idle), return_exceptions=True)

    async def _fill_one(self) -> None:
        try:
            item = await self._factory()
        except SixtyDbError as err:
            # A failed warm-up is not a failed request: the next request
            # connects itself and reports the error to its caller.
            self.last_error = err
            _LOGGER.debug("Pre-warming a 60db %s connection failed: %s", self._name, err)
            return
        finally:
            self._filling -= 1
        self.last_error = None
        if self._closed:
            await item.aclose()
            return
        self._idle.append((time.monotonic(), item))

    def _drop_stale(self) -> None:
        now = time.monotonic()
        keep: list[tuple[float, T]] = []
        for since, item in self._idle:
            if item.closed or now - since > self._max_idle:
                self._close_later(item)
            else:
                keep.append((since, item))
        self._idle = keep

    def _close_later(self, item: T) -> None:
        task = asyncio.get_running_loop().create_task(item.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class Slots:
    """60db's per-account concurrency limit, enforced before 60db has to.

    60db rejects the request over its limit with no queueing (§6). Waiting here
    for a short while turns a burst into a brief delay instead of an error.
    """

    def __init__(self, service: str, limit: int, wait: float) -> None:
        self.service = service
        self.limit = limit
        self._wait = wait
        self._semaphore = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold one slot for the body of the ``async with``."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Take a slot, waiting at most the queue time."""
        try:
            async with asyncio.timeout(self._wait):  # not wait_for: gh-86296 on 3.11
                await self._semaphore.acquire()
        except TimeoutError:
            raise ConcurrencyLimitError(
                f"all {self.limit} 60db {self.service.upper()} sessions are busy; "
                f"waited {self._wait:.1f} s for one",
                service=self.service,
                limit=self.limit,
            ) from None

    def release(self) -> None:
        """Give a slot back."""
        self._semaphore.release()
