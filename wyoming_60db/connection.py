"""The mechanics of one Wyoming connection: reading, bounded writes, failure, tasks.

Events of one connection are routed one at a time (home-assistant.md §1), so
every wait on 60db runs as a task and ``describe``/``ping`` stay responsive.
Any failure ends the connection the same way: an ``error`` event, a
half-close, and reading on for a moment before closing, because closing a
socket that still holds unread input sends a TCP reset and the client can lose
the ``error`` in that race.

What the events mean is the subclass's business (``handler.py``): it routes
them in :meth:`Connection.route` and may take audio chunks on the lean path in
:meth:`Connection.take_audio`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

from wyoming.error import Error
from wyoming.event import Event, async_write_event

from .wire import MalformedEvent, RequestError

if TYPE_CHECKING:
    from .event_protocol import EventProtocol
    from .settings import ServerSettings
    from .state import Connection as Tracked

_LOGGER = logging.getLogger(__name__)


class ClientGone(Exception):
    """The client stopped reading or hung up; nothing more can be sent."""


class Connection:
    """One client connection: routes its events until it leaves or fails."""

    expected_errors: ClassVar[tuple[type[Exception], ...]] = (RequestError,)
    """Errors that are the request's fate, not a bug: logged without a traceback."""

    def __init__(
        self,
        events: EventProtocol | None,
        writer: asyncio.StreamWriter,
        settings: ServerSettings,
        registry: set[Tracked],
    ) -> None:
        """``events``: None on stdio, where wyoming's server reads and calls ``handle_event``."""
        self._events = events
        self.writer = writer
        self._settings = settings
        self._registry = registry
        self._peer = peer_text(writer.get_extra_info("peername"))
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._failed = False
        self._gone = False
        self._draining = False
        self.finished = asyncio.Event()
        if events is not None:
            events.lean_audio = self._lean_audio

    # ------------------------------------------------------------------ the subclass's part

    async def route(self, event: Event) -> None:
        """Act on one event (raising ``expected_errors`` or :class:`ClientGone`)."""

    def take_audio(self, payload: bytes | None) -> bool:
        """Take an ``audio-chunk`` synchronously, or return False to have it routed."""
        return False

    async def release(self) -> None:
        """Let go of every request of this connection (it is ending or failed)."""

    def _describe_error(self, error: BaseException) -> tuple[str, str]:
        """``(text, code)`` of the ``error`` event for ``error``."""
        if isinstance(error, RequestError):
            return error.text, error.code
        return "internal server error", "internal_error"

    @property
    def busy(self) -> bool:
        """True while a request is in flight (graceful shutdown waits for it)."""
        return any(not task.done() for task in self._tasks)

    # ------------------------------------------------------------------ the connection

    async def run(self) -> None:
        """Route events until the client leaves or an error ends the connection."""
        self._registry.add(self)
        try:
            await self._read_events()
            if self._failed and not self._gone and self._events is not None:
                self._draining = True
                settings = self._settings
                await self._events.drain(settings.drain_seconds, settings.drain_idle_seconds)
        finally:
            try:
                await self.release()
            finally:  # also when shutdown cancels us half-way through the cleanup
                self.writer.close()
                self._registry.discard(self)
                self.finished.set()

    async def _read_events(self) -> None:
        assert self._events is not None, "run() needs an EventProtocol"
        while not (self._failed or self._gone):
            try:
                raw = await self._events.next_event()
            except MalformedEvent as err:
                await self._fail(err)
                return
            if raw is None:
                return
            if not await self.handle_event(raw.event()):
                return

    async def handle_event(self, event: Event) -> bool:
        """Act on one event; False ends the connection."""
        if self._failed or self._gone:
            return False
        try:
            await self.route(event)
        except ClientGone:
            self._gone = True
        except self.expected_errors as err:
            await self._fail(err)
        except Exception as err:  # our bug (the client's mistakes are decode()'s MalformedEvent)
            _LOGGER.exception("Handling %s from %s failed", event.type, self._peer)
            await self._fail(err)
        return not (self._failed or self._gone)

    def _lean_audio(self, data: dict[str, Any], payload: bytes | None) -> bool:
        """The lean path's ``handle_event``: no coroutine, task or ``Event`` per chunk."""
        if self._failed or self._gone:
            return False
        try:
            return self.take_audio(payload)
        except ClientGone:
            self._gone = True
        except self.expected_errors as err:
            self._fail_soon(err)
        except Exception as err:  # our bug, as in handle_event
            _LOGGER.exception("Handling audio-chunk from %s failed", self._peer)
            self._fail_soon(err)
        return True

    async def _send(self, event: Event) -> None:
        """Write one event, bounded: a client that stops reading is dropped."""
        if self._gone:
            raise ClientGone
        try:
            async with asyncio.timeout(self._settings.write_timeout):
                await async_write_event(event, self.writer)
        except (TimeoutError, ConnectionError, OSError, RuntimeError):
            self._gone = True
            self._abort()
            raise ClientGone from None

    # ------------------------------------------------------------------ failure

    async def _fail(self, error: BaseException) -> None:
        """Send ``error(text, code)`` once, then half-close and let the reader drain."""
        if self._failed or self._gone:
            return
        self._failed = True
        await self._report(error)

    def _fail_soon(self, error: BaseException) -> None:
        """:meth:`_fail` from synchronous code: failed at once, reported by a task."""
        if self._failed or self._gone:
            return
        self._failed = True
        self._start_task(self._report(error), track=False)

    def _on_stream_error(self, error: BaseException) -> None:
        """For streams that fail on their own (60db, an idle client)."""
        if isinstance(error, ClientGone):
            self._gone = True
            return
        self._fail_soon(error)

    async def _report(self, error: BaseException) -> None:
        text, code = self._describe_error(error)
        _LOGGER.warning("Request from %s failed (%s): %s", self._peer, code, text)
        await self.release()
        try:
            await self._send(Error(text=text, code=code).event())
        except ClientGone:
            return
        if self.writer.can_write_eof():
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                self.writer.write_eof()
        self._start_task(self._watch_drain(), track=False)

    async def _watch_drain(self) -> None:
        """Hang up a client that neither sends nor closes after an error.

        The routing may be waiting for an event that never comes.
        """
        seen = -1
        while not self._draining and self._activity() != seen:
            seen = self._activity()
            await asyncio.sleep(self._settings.drain_idle_seconds)
        if not self._draining:
            self._abort()

    def _activity(self) -> int:
        return 0 if self._events is None else self._events.activity

    def _abort(self) -> None:
        transport = self.writer.transport
        if not transport.is_closing():
            transport.close()

    # ------------------------------------------------------------------ tasks

    def _start_task(
        self, coro: Coroutine[Any, Any, None], *, track: bool = True
    ) -> asyncio.Task[None]:
        """Run ``coro`` for this connection; a failure in it ends the connection.

        ``track``: a request (``busy``, see ``_request_tasks``), not housekeeping.
        """
        task = asyncio.get_running_loop().create_task(self._guard(coro))
        # The loop keeps only weak references: hold every task until it ends.
        tasks = self._tasks if track else self._background
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    async def _guard(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except ClientGone:
            self._gone = True
        except self.expected_errors as err:
            await self._fail(err)
        except Exception as err:  # a bug must still answer the client
            _LOGGER.exception("Request from %s failed unexpectedly", self._peer)
            await self._fail(err)

    def _request_tasks(self) -> list[asyncio.Task[None]]:
        """The requests in flight, except the caller's own task."""
        current = asyncio.current_task()
        return [task for task in self._tasks if task is not current]


def peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else "local client"
