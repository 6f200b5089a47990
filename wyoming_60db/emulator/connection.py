"""One server-side WebSocket: ordered sends, a reader task, faults, recording.

All server→client frames go through ``Connection.send`` so that message counts
(for ``Fault.after_messages``), the ``extra_fields`` knob and the record apply
uniformly (``Fault.after_audio_chunks`` counts the sends marked as audio
chunks).  A dedicated reader task keeps draining the socket, so a client close
is noticed even while the session is busy or stalled, and client messages are
tagged "early" if they arrive before ``connection_established`` (§1.4).

The socket is created with ``autoclose=False``: the reader answers a client's
close frame itself, after the ``close_delay`` knob, and every close the
emulator starts waits the same delay (emulator shutdown excepted).  A delay
ends early when the client's TCP connection goes away or the emulator stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import WSMsgType, web

from wyoming_60db.sixtydb.vocabulary import CloseCode

from .frames import Frame
from .recorder import WsRecord, elide_audio
from .settings import EmulatorSettings, Fault
from .state import EmulatorState

_LOGGER = logging.getLogger(__name__)

GARBAGE_FRAME: Final = "\x00not json{"
_CLOSE_TIMEOUT: Final = 2.0
_CLOSE_DELAY_POLL: Final = 0.05  # how often a close delay checks that the peer is still there

ErrorFrameBuilder = Callable[[str, str | None, dict[str, Any] | None], Frame]


class ConnectionGone(Exception):
    """The socket is closed, dropped or stalled for good: unwind the session."""


@dataclass(frozen=True)
class Incoming:
    data: str | bytes  # str for text frames, bytes for binary frames
    early: bool  # arrived before connection_established was sent


class Connection:
    """Wraps a prepared ``WebSocketResponse`` for one emulated session."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        service: str,
        state: EmulatorState,
        record: WsRecord,
        error_frame: ErrorFrameBuilder,
    ) -> None:
        self.ws = ws
        self.service = service
        self.state = state
        self.record = record
        self.established = False
        self.sent_count = 0
        self.audio_received = 0
        self.audio_chunks_sent = 0
        self._request = request
        self._error_frame = error_frame
        self._fault: Fault | None = state.take_fault(service)
        self._stalled = False
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[Incoming | None] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._close_now = asyncio.Event()  # emulator stop / abort: skip close delays
        self._reader: asyncio.Task[None] | None = None
        # concurrency_counts="connections": the identity whose slot this socket holds.
        self._slot_identity: str | None = None

    @property
    def settings(self) -> EmulatorSettings:
        return self.state.settings

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.state.connections.add(self)
        self._reader = asyncio.create_task(self._read_loop())
        async with self._lock:
            await self._check_fault()  # after_messages=0: right after accept

    async def finish(self) -> None:
        """Release everything; the handler returns right after."""
        try:
            if not self.ws.closed:
                await self._close_ws(CloseCode.NORMAL, b"")
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
        finally:
            if self._reader is not None:
                self._reader.cancel()  # no-op unless finish itself was cancelled
            if self.record.close_code is None:
                self.record.close_code = self.ws.close_code
            self.release_connection_slot()
            self.state.connections.discard(self)

    async def shutdown(self) -> None:
        """Emulator stop: wake stalled senders and close with 1001 (going away)."""
        self._gone.set()
        self._close_now.set()
        if not self.ws.closed:
            await self._close_ws(CloseCode.GOING_AWAY, b"emulator stopping", delayed=False)

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        transport = self._request.transport
        if transport is not None:
            transport.abort()
        self._gone.set()
        self._close_now.set()

    # ------------------------------------------------------------------ concurrency

    def take_connection_slot(self, identity: str, limit: int) -> bool:
        """``concurrency_counts="connections"``: count this socket until it closes."""
        if self._slot_identity is not None:
            return True
        if not self.state.limiter.try_acquire(self.service, identity, limit):
            return False
        self._slot_identity = identity
        return True

    def release_connection_slot(self) -> None:
        identity, self._slot_identity = self._slot_identity, None
        if identity is not None:
            self.state.limiter.release(self.service, identity)

    @property
    def holds_connection_slot(self) -> bool:
        """True when this socket already counts: its sessions/contexts must not."""
        return self._slot_identity is not None

    async def close(self, code: int, reason: str = "") -> None:
        """Close with ``code`` (and ``reason``, ≤123 bytes per RFC 6455)."""
        async with self._lock:
            self.record.close_code = code
            await self._close_ws(code, reason.encode()[:123])

    async def _close_ws(self, code: int, reason: bytes, *, delayed: bool = True) -> None:
        if delayed:
            await self._close_delay()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code=code, message=reason), _CLOSE_TIMEOUT)
        if not self.ws.closed:
            self.abort()

    async def _answer_close(self) -> None:
        """Answer the client's close frame as aiohttp's autoclose would, after ``close_delay``."""
        await self._close_delay()
        if not self.ws.closed:
            await self.ws.close(drain=False)

    async def _close_delay(self) -> None:
        """Wait ``close_delay`` before the emulator's close frame.

        Ends early once the socket is closed by someone else, the client's TCP
        connection is gone, or the emulator stops (``_close_now``).  With a zero
        delay it returns without suspending, so closes behave exactly as before.
        """
        seconds = self.settings.close_delay
        if seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not (self.ws.closed or self._close_now.is_set() or self._peer_lost()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._close_now.wait(), min(remaining, _CLOSE_DELAY_POLL))

    def _peer_lost(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()

    async def pause(self, seconds: float) -> None:
        """An emulated latency that ends early (ConnectionGone) if the socket goes."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gone.wait(), seconds)
        if self._gone.is_set():
            raise ConnectionGone("socket closed during a pause")

    # ------------------------------------------------------------------ sending

    async def send(self, frame: Frame, *, audio_chunk: bool = False) -> None:
        """Send one JSON frame, then apply a pending fault that is now due.

        ``audio_chunk`` marks a TTS ``audio_chunk`` frame (``after_audio_chunks``).
        """
        async with self._lock:
            await self._send_locked(frame)
            if audio_chunk:
                self.audio_chunks_sent += 1
            await self._check_fault()

    async def send_error(
        self, message: str, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        await self.send(self._error_frame(message, code, details))

    async def reject(
        self,
        message: str,
        code: str,
        close_code: int,
        details: dict[str, Any] | None = None,
        frame: bool = True,
    ) -> None:
        """Error frame (optional) then close; used for auth/credits/limits/validation."""
        if frame:
            await self.send_error(message, code, details)
        self.record.ended = f"error:{code}"
        await self.close(close_code, code)

    async def _send_locked(self, frame: Frame) -> None:
        if self.ws.closed or self._gone.is_set():
            raise ConnectionGone("socket closed")
        frame = self._decorate(frame)
        try:
            await self.ws.send_str(json.dumps(frame, separators=(",", ":")))
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionGone(str(exc)) from exc
        self.sent_count += 1
        self.record.sent.append(elide_audio(frame))

    def _decorate(self, frame: Frame) -> Frame:
        """``extra_fields`` knob: unknown fields a tolerant reader must ignore."""
        if not self.state.settings.extra_fields:
            return frame
        extra = {"x_emulator_seq": self.sent_count, "x_region": "emulator-local"}
        if len(frame) == 1 and "type" not in frame:
            ((key, value),) = frame.items()
            if isinstance(value, dict):
                return {key: {**value, **extra}}  # keep the §3.1 single outer key
            return frame  # e.g. {"context_created": true}: nowhere to put extras
        return {**frame, **extra}

    # ------------------------------------------------------------------ faults

    async def count_audio(self, nbytes: int) -> None:
        """Account received audio bytes (``Fault.after_audio_bytes``)."""
        self.audio_received += nbytes
        if self._fault is not None:
            async with self._lock:
                await self._check_fault()

    async def _check_fault(self) -> None:
        fault = self._fault
        if fault is None or not self._fault_due(fault):
            return
        self._fault = None
        _LOGGER.debug("firing fault %s on %s", fault, self.service)
        self.state.record_fault(self.service, fault)
        if fault.kind == "garbage":
            try:
                await self.ws.send_str(GARBAGE_FRAME)
            except (ConnectionError, RuntimeError) as exc:
                raise ConnectionGone(str(exc)) from exc
            self.record.sent.append({"garbage": GARBAGE_FRAME})
            return
        self.record.ended = f"fault:{fault.kind}"
        if fault.kind == "drop":
            self.abort()
        elif fault.kind == "stall":
            self._stalled = True
            await self._gone.wait()  # until the client leaves or the emulator stops
        else:  # "error"
            await self._send_locked(self._error_frame(fault.message, fault.code, None))
            self.record.close_code = CloseCode.INTERNAL_ERROR
            await self._close_ws(CloseCode.INTERNAL_ERROR, fault.message.encode()[:123])
        raise ConnectionGone(f"fault:{fault.kind}")

    def _fault_due(self, fault: Fault) -> bool:
        triggers = (
            (fault.after_messages, self.sent_count),
            (fault.after_audio_bytes, self.audio_received),
            (fault.after_audio_chunks, self.audio_chunks_sent),
        )
        armed = [(threshold, count) for threshold, count in triggers if threshold is not None]
        return not armed or any(count >= threshold for threshold, count in armed)

    # ------------------------------------------------------------------ receiving

    async def _read_loop(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    if not self._stalled:  # a stalled server ignores input
                        self._queue.put_nowait(Incoming(msg.data, not self.established))
                elif msg.type is WSMsgType.CLOSE:
                    await self._answer_close()  # the socket has autoclose=False
                    break
                elif msg.type is not WSMsgType.ERROR:
                    break  # CLOSING / CLOSED
        except Exception:  # the socket died under us: same as a close
            _LOGGER.debug("reader stopped", exc_info=True)
        finally:
            self._gone.set()
            self._queue.put_nowait(None)

    async def next(self) -> Incoming | None:
        """Next client frame after the handshake; None once the socket is closed."""
        while True:
            item = await self._queue.get()
            if item is None:
                self._queue.put_nowait(None)  # keep answering None
                return None
            if not item.early:
                return item
            await self.handle_early(item)

    async def wait_handshake(self, seconds: float) -> None:
        """Emulated auth time (``connect_latency``); early frames are handled now."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                return
            if item is None:
                self._queue.put_nowait(None)
                raise ConnectionGone("client closed during handshake")
            await self.handle_early(item)

    async def handle_early(self, item: Incoming) -> None:
        """§1.4: frames before ``connection_established`` are dropped (or refused)."""
        self.record.early_messages += 1
        self.record.received.append(describe_incoming(item.data))
        if self.state.settings.early_messages == "error":
            await self.send_error(
                "Message received before connection established", "connection_not_established"
            )


def describe_incoming(data: str | bytes) -> dict[str, Any]:
    """Recordable form of a client frame (audio elided)."""
    if isinstance(data, bytes):
        return {"binary_frame": len(data)}
    try:
        parsed = json.loads(data)
    except ValueError:
        return {"invalid_json": data[:200]}
    if isinstance(parsed, dict):
        described: dict[str, Any] = elide_audio(parsed)
        return described
    return {"non_object": parsed}
