"""Reading Wyoming events straight off the transport, with a lean path for audio.

Home Assistant sends 100 audio chunks a second per satellite. Read through
``asyncio.StreamReader`` and an awaiting read loop, every chunk costs a reader
wake-up, a coroutine step, an ``Event`` and a dispatch; on a small machine that
was about twice what merely receiving the bytes costs. Here ``data_received``
parses what arrived and hands an ``audio-chunk`` synchronously to the
connection's ``lean_audio`` (the open transcription takes it, or declines);
every other event, and every chunk while an earlier event still waits to be
routed, goes in order to a queue that the connection's routing awaits.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any, Final, cast

from .wire import EventLimits, EventParser, MalformedEvent, RawEvent

# Back-pressure: with this many events waiting to be routed, stop reading
# (and parsing) until routing is down to the low mark.
QUEUE_HIGH: Final = 64
QUEUE_LOW: Final = 16

LeanAudio = Callable[[dict[str, Any], "bytes | None"], bool]
"""Takes an ``audio-chunk`` (data, payload) at once and returns True, or declines."""
OnOpen = Callable[["EventProtocol", asyncio.StreamWriter], None]


class _End:
    """The queue's last item: the peer closed or hung up."""


_END: Final = _End()


class EventProtocol(asyncio.streams.FlowControlMixin, asyncio.Protocol):
    """One client connection's bytes in, events out; writes through a ``StreamWriter``.

    ``FlowControlMixin`` gives the writer its ``drain()`` (pause/resume writing).
    """

    def __init__(self, limits: EventLimits, on_open: OnOpen) -> None:
        loop = asyncio.get_running_loop()
        super().__init__(loop)
        self._loop = loop
        self._parser = EventParser(limits)
        self._on_open = on_open
        self._transport: asyncio.Transport | None = None
        self._queue: collections.deque[RawEvent | MalformedEvent | _End] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None  # routing waits for an event
        self._reading_paused = False
        self._parsing_stopped = False  # a malformed event, the end, or discarding
        self._closed = loop.create_future()
        self._stirred = asyncio.Event()  # while draining: bytes arrived or the peer left
        self._peer_done = False
        self.activity = 0
        """Reads so far: the drain watchdog's sign that the client is still there."""
        self.lean_audio: LeanAudio | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed into events."""
        return self._parser.buffered

    @property
    def waiting(self) -> int:
        """Events parsed and waiting to be routed."""
        return len(self._queue)

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (other event loops' are not asyncio.Transport subclasses).
        self._transport = cast("asyncio.Transport", transport)
        self._on_open(self, asyncio.StreamWriter(self._transport, self, None, self._loop))

    def data_received(self, data: bytes) -> None:
        self.activity += 1
        if self._parsing_stopped:
            self._stirred.set()  # draining: read and discard
            return
        self._parser.feed(data)
        self._parse()

    def eof_received(self) -> bool:
        self._end_of_input()
        return True  # keep the transport open: an error may still be on its way out

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # wakes writers waiting in drain()
        self._end_of_input()
        if not self._closed.done():
            self._closed.set_result(None)

    def _get_close_waiter(self, stream: asyncio.StreamWriter) -> asyncio.Future[None]:
        """For ``StreamWriter.wait_closed()``."""
        return self._closed

    # ------------------------------------------------------------------ events

    async def next_event(self) -> RawEvent | None:
        """The next event to route, or None once the client has closed.

        Raises :class:`MalformedEvent` where the stream stopped making sense,
        after every event before it.
        """
        while not self._queue:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._queue[0]
        if isinstance(item, _End):
            return None  # stays queued: every later call returns None as well
        self._queue.popleft()
        if self._reading_paused and len(self._queue) <= QUEUE_LOW:
            self._catch_up()
        if isinstance(item, MalformedEvent):
            self._queue.appendleft(_END)
            raise item
        return item

    def _parse(self, bound: int = QUEUE_HIGH) -> None:
        parser = self._parser
        try:
            while len(self._queue) < bound:
                event = parser.next_event()
                if event is None:
                    return
                # Only when routing is idle: waiting, with nothing queued before this chunk.
                lean = self.lean_audio
                if (
                    event.type == "audio-chunk"
                    and self._waiter is not None
                    and lean is not None
                    and lean(event.data, event.payload)
                ):
                    continue
                self._put(event)
            self._pause_reading()
        except MalformedEvent as err:
            self._parsing_stopped = True  # the next event's position is unknown
            self._put(err)

    def _catch_up(self) -> None:
        """Routing is down to the low mark: parse what is buffered, then read again."""
        self._parse()
        if len(self._queue) < QUEUE_HIGH and self._transport is not None:
            self._reading_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            if not self._transport.is_closing():
                self._transport.pause_reading()

    def _put(self, item: RawEvent | MalformedEvent | _End) -> None:
        self._queue.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None  # later chunks of this read queue up behind this event
            if not waiter.done():
                waiter.set_result(None)

    def _end_of_input(self) -> None:
        if self._peer_done:
            return
        self._peer_done = True
        self._stirred.set()
        if not self._parsing_stopped:
            # Events held back by back-pressure are still routed, then a last
            # header the peer did not end with a line break (as readline() would).
            self._parse(bound=len(self._queue) + QUEUE_HIGH + self._parser.buffered)
        if not self._parsing_stopped:
            self._parsing_stopped = True
            try:
                last = self._parser.end()
            except MalformedEvent as err:
                self._put(err)
            else:
                if last is not None:
                    self._put(last)
        self._put(_END)

    # ------------------------------------------------------------------ after an error

    async def drain(self, seconds: float, idle_seconds: float) -> None:
        """Read and discard until the client stops sending, hangs up, or ``seconds`` pass."""
        self._parsing_stopped = True
        self._queue.clear()
        if self._reading_paused and self._transport is not None:
            self._reading_paused = False
            if not self._transport.is_closing():
                self._transport.resume_reading()
        deadline = self._loop.time() + seconds
        while not self._peer_done and (remaining := deadline - self._loop.time()) > 0:
            self._stirred.clear()
            try:
                async with asyncio.timeout(min(idle_seconds, remaining)):
                    await self._stirred.wait()
            except TimeoutError:
                return
