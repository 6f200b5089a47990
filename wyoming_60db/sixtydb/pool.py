"""Pre-warmed connections and 60db's concurrency slots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, Generic, Protocol, TypeVar

from .errors import ConcurrencyLimitError, SixtyDbError

_LOGGER = logging.getLogger(__name__)

# A failed warm-up is retried after 1 s, then 2, 4, … up to a minute: 60db
# being down must not turn into a connection storm, and it must be noticed
# again soon after it comes back.
BACKOFF_FIRST: Final = 1.0
BACKOFF_MAX: Final = 60.0
# 60db frees a session a moment after its socket has closed for us. A request
# that holds one of our slots yet is refused for concurrency has met that lag:
# it tries once more after this pause.
LIMIT_RETRY_DELAY: Final = 0.25


class Poolable(Protocol):
    """What the pool needs to know about a connection."""

    @property
    def closed(self) -> bool: ...

    def on_closed(self, callback: Callable[[], None]) -> None: ...

    def close_soon(self) -> asyncio.Task[None]: ...


T = TypeVar("T", bound=Poolable)


class WarmPool(Generic[T]):
    """Keeps up to ``size`` authenticated connections ready, so a request skips the login.

    A home is idle most of the day, so the first request after a quiet spell is
    the normal case: a background keeper replaces connections that closed or
    failed to open (with a backoff), long before a request needs them. One
    idle for ``max_idle`` seconds is renewed make-before-break: it stays usable
    until its replacement has logged in (or, at the latest, for another
    ``max_idle``), so a request never meets the gap. A single-use connection
    (STT: 60db closes it after ``session_stopped``) is replaced as soon as it
    is taken; a ``reusable`` one (TTS) is expected back.

    ``room()`` says how many more connections the account may open now (its
    free concurrency slots). Warm connections never take more than that: if
    60db counts connections rather than sessions, a warm socket beside a full
    set of sessions would push the last session over the limit.
    """

    def __init__(
        self,
        factory: Callable[[], Awaitable[T]],
        *,
        name: str,
        size: int = 1,
        reusable: bool = False,
        max_idle: float = 240.0,
        room: Callable[[], int] = lambda: 1 << 30,
    ) -> None:
        self._factory = factory
        self._name = name
        self._size = size
        self._max_idle = max_idle
        self._reusable = reusable
        self._room = room
        self._idle: list[tuple[float, T]] = []
        self._filling = 0
        self._waiters: deque[asyncio.Future[T | None]] = deque()
        self._lent = 0
        self._failures = 0
        self._retry_at = 0.0
        self._wake = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False
        self.last_error: SixtyDbError | None = None

    @property
    def idle_count(self) -> int:
        """Connections ready to use right now."""
        return sum(1 for _, item in self._idle if not item.closed)

    async def take(self) -> T:
        """A ready connection: a warm one, one about to be ready, or a new one."""
        self._lent += self._reusable
        try:
            item = self._pop_idle() or await self._wait_for_warm_up()
            self.refill()  # a replacement, now, in the background
            if item is not None:
                return item
            return await self._open_for_request()
        except BaseException:
            self._lent -= self._reusable
            raise

    def give_back(self, item: T) -> None:
        """Return a connection that can carry another request."""
        self._lent -= self._reusable
        if self._closed or item.closed or self._fresh_count() >= self._size:
            self._close(item)
        else:
            self._keep_idle(item)
        self.refill()

    def adopt(self, item: T) -> None:
        """Keep a connection opened outside the pool as a warm one."""
        self._lent += self._reusable
        self.give_back(item)

    def discard(self, item: T) -> asyncio.Task[None]:
        """Close a taken connection that must not be reused; it is replaced."""
        self._lent -= self._reusable
        closing = item.close_soon()
        self.refill()
        return closing

    def refill(self) -> None:
        """Make sure the keeper runs and looks at the pool now."""
        if self._closed or self._size <= 0:
            return
        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(self._keep())
        self._wake.set()

    async def aclose(self) -> None:
        """Stop the keeper and close every warm connection."""
        self._closed = True
        tasks = [*self._tasks, *([self._keeper] if self._keeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        idle, self._idle = self._idle, []
        # Each close is bounded by Timeouts.close, and finishes even if we are cancelled.
        closes = [*self._closing, *(item.close_soon() for _, item in idle)]
        await asyncio.gather(*closes, return_exceptions=True)

    # ------------------------------------------------------------------ taking

    def _pop_idle(self) -> T | None:
        """The newest usable idle connection (one due for renewal still serves)."""
        while self._idle:
            since, item = self._idle.pop()
            if not item.closed and time.monotonic() - since < 2 * self._max_idle:
                return item
            self._close(item)
        return None

    async def _wait_for_warm_up(self) -> T | None:
        """Wait for a connection already being opened, rather than open a second one."""
        if self._filling <= len(self._waiters):
            return None
        waiter: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and (item := waiter.result()):
                self._keep_idle(item)  # handed over just as we were cancelled
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def _open_for_request(self) -> T:
        try:
            return await self._factory()
        except ConcurrencyLimitError:
            # The request holds one of our slots, so 60db is counting something
            # we have let go of: a session that just ended, or a warm socket
            # still closing. Let those finish, then try once more (with a warm
            # socket, if one became ready meanwhile).
            if self._closing:
                await asyncio.shield(asyncio.gather(*self._closing, return_exceptions=True))
            await asyncio.sleep(LIMIT_RETRY_DELAY)
            return self._pop_idle() or await self._factory()

    # ------------------------------------------------------------------ keeping

    async def _keep(self) -> None:
        while not self._closed:
            self._wake.clear()
            self._recycle_stale()
            self._top_up()
            await self._sleep(self._next_deadline())

    async def _sleep(self, until: float | None) -> None:
        delay = None if until is None else max(0.0, until - time.monotonic())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    def _recycle_stale(self) -> None:
        """Close idle connections that are gone, or overdue with no replacement in sight."""
        now = time.monotonic()
        keep = []
        for since, item in self._idle:
            if item.closed or now - since >= 2 * self._max_idle:
                self._close(item)
            else:
                keep.append((since, item))
        self._idle = keep

    def _top_up(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        fresh = self._fresh_count()
        # Sockets still closing, or due for renewal, may still count at 60db.
        room = self._room() - len(self._closing) - (len(self._idle) - fresh)
        wanted = min(self._size - self._lent, room)
        for _ in range(wanted - fresh - self._filling):
            self._filling += 1
            task = asyncio.get_running_loop().create_task(self._fill_one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _next_deadline(self) -> float | None:
        now = time.monotonic()
        deadlines = [
            since + self._max_idle * (1 if now - since < self._max_idle else 2)
            for since, _ in self._idle
        ]
        if self._retry_at > time.monotonic():
            deadlines.append(self._retry_at)
        return min(deadlines, default=None)

    async def _fill_one(self) -> None:
        item: T | None = None
        try:
            item = await self._factory()
        except SixtyDbError as err:
            # A failed warm-up is not a failed request: a request connects
            # itself and reports the error to its caller.
            self._failures += 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (self._failures - 1))
            self._retry_at = time.monotonic() + delay
            self.last_error = err
            _LOGGER.debug("Pre-warming a 60db %s connection failed: %s", self._name, err)
        finally:
            self._filling -= 1
            self._wake.set()
            self._hand_over(item)

    def _hand_over(self, item: T | None) -> None:
        """Give a finished warm-up to a waiting request, else keep it idle."""
        if item is not None:
            self._failures = 0
            self.last_error = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)  # None: that request connects itself
                return
        if item is not None:
            if self._closed:
                self._close(item)
            else:
                self._keep_idle(item)

    def _close(self, item: T) -> None:
        """Close a connection no request holds; it counts against the room until closed."""
        closing = item.close_soon()
        if not closing.done():
            self._closing.add(closing)
            closing.add_done_callback(self._closed_one)

    def _closed_one(self, closing: asyncio.Task[None]) -> None:
        self._closing.discard(closing)
        self._wake.set()

    def _keep_idle(self, item: T) -> None:
        self._idle.append((time.monotonic(), item))
        item.on_closed(self._wake.set)
        if self._fresh_count() >= self._size:
            self._retire_renewed()

    def _fresh_count(self) -> int:
        now = time.monotonic()
        return sum(1 for since, _ in self._idle if now - since < self._max_idle)

    def _retire_renewed(self) -> None:
        """Close the connections a fresh one has just replaced."""
        now = time.monotonic()
        for since, item in self._idle:
            if now - since >= self._max_idle:
                self._close(item)
        self._idle = [(since, item) for since, item in self._idle if now - since < self._max_idle]


class Slots:
    """60db's per-account concurrency limit, enforced before 60db has to.

    60db rejects the request over its limit with no queueing (§6). Waiting here
    for a short while turns a burst into a brief delay instead of an error.
    """

    def __init__(
        self,
        service: str,
        limit: int,
        wait: float,
        on_release: Callable[[], None] = lambda: None,
    ) -> None:
        self.service = service
        self.limit = limit
        self._wait = wait
        self._on_release = on_release
        self._semaphore = asyncio.Semaphore(limit)
        self._held = 0

    @property
    def free(self) -> int:
        """Slots nobody holds right now."""
        return self.limit - self._held

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
        self._held += 1

    def release(self) -> None:
        """Give a slot back (synchronous, so it cannot be lost to a cancellation)."""
        self._held -= 1
        self._semaphore.release()
        self._on_release()

    def release_after(self, closing: asyncio.Future[None]) -> None:
        """Give the slot back once ``closing`` (a socket's close) is over.

        60db may count a socket until its close completes; the callback runs
        even when whoever started the close has been cancelled.
        """
        closing.add_done_callback(lambda _: self.release())
