"""One authenticated 60db WebSocket: connect, handshake, read, close.

A background reader drains the socket from the moment it opens. That keeps
answering 60db's keepalive pings (§2.1: a ping every 30 s, 10 s to answer) even
while a pre-warmed connection sits idle, and it notices a closed socket at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp

from . import protocol
from .config import ClientConfig
from .errors import (
    ConnectionLostError,
    ProtocolError,
    SixtyDbError,
    SixtyDbTimeoutError,
    error_for_http_status,
)
from .protocol import Account, JsonObject
from .vocabulary import CloseCode, ServerMessage

_LOGGER = logging.getLogger(__name__)

# 60db documents no frame limit; 3P clients allow 10 MB (§2.7). TTS chunks are ~1 KB.
MAX_MESSAGE_BYTES: Final = 10 * 1024 * 1024
_NORMAL_CLOSES: Final = {CloseCode.NORMAL, CloseCode.GOING_AWAY}
# Closes that outlived the caller that started them (it was cancelled): held
# here so the event loop's weak references don't let them vanish half-way.
_CLOSING: Final[set[asyncio.Task[None]]] = set()


class Wakeup:
    """Inbox marker that makes a waiting reader re-check its deadline."""


_WAKEUP: Final = Wakeup()


class Channel:
    """A WebSocket to ``/ws/stt`` or ``/ws/tts`` after 60db's handshake."""

    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, service: str, config: ClientConfig
    ) -> None:
        self.service = service
        self.account: Account | None = None
        self.connected_early = False
        self.reused = False
        """True once the connection has carried a request (the pool reuses it)."""
        self._ws = ws
        self._config = config
        self._inbox: asyncio.Queue[JsonObject | BaseException | Wakeup | None] = asyncio.Queue()
        self._outcome: BaseException | None = None
        self._ended = False
        self._closing: asyncio.Task[None] | None = None
        self._close_callbacks: list[Callable[[], None]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def closed(self) -> bool:
        """True once the socket is closed or its reader has stopped."""
        return self._ended or self._ws.closed

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send one JSON message."""
        await self._send(self._ws.send_str(protocol.encode(message)))

    async def send_bytes(self, data: bytes) -> None:
        """Send one binary frame."""
        await self._send(self._ws.send_bytes(data))

    async def receive(self, timeout: float | None) -> JsonObject | Wakeup | None:
        """The next message; ``None`` once 60db closed the socket normally.

        Raises the typed error for an error close, garbage or a lost connection,
        and ``SixtyDbTimeoutError`` when nothing arrives within ``timeout``.
        """
        if self._ended and self._inbox.empty():
            self._raise_outcome()
            return None
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
        # cancellation that races with the result (CPython gh-86296).
        try:
            async with asyncio.timeout(timeout):
                item = await self._inbox.get()
        except TimeoutError:
            raise SixtyDbTimeoutError(
                f"60db {self.service} sent nothing for {timeout:.1f} s"
            ) from None
        if item is None:
            self._raise_outcome()
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def wake(self) -> None:
        """Interrupt a pending ``receive`` so its caller can re-evaluate."""
        self._inbox.put_nowait(_WAKEUP)

    async def handshake(self) -> Account:
        """Wait for ``connection_established`` in either style (§9.2)."""
        while True:
            message = await self.receive(self._config.timeouts.connect)
            if message is None:
                raise ConnectionLostError(f"60db closed the {self.service} connection during login")
            if isinstance(message, Wakeup):
                continue
            name = protocol.kind(message)
            if name == ServerMessage.CONNECTION_ESTABLISHED:
                self.account = protocol.account(message)
                return self.account
            if name == ServerMessage.CONNECTED:
                # §9.1: some servers announce the upstream before the handshake ends.
                self.connected_early = True
            elif name == ServerMessage.ERROR:
                raise self.scrub(protocol.error(message, service=self.service))
            # "connecting" and unknown messages: nothing to do (§9, tolerant reader).

    def on_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the socket has closed, whoever closed it."""
        if self._ended:
            callback()
        elif callback not in self._close_callbacks:  # a reused socket is registered once
            self._close_callbacks.append(callback)

    def close_soon(self) -> asyncio.Task[None]:
        """Start closing now; the close finishes even if nobody awaits it.

        Closing a WebSocket politely takes a network round trip. A caller
        cancelled during that wait (a client that hung up) must not leave the
        socket half-closed, so the close runs as its own task, bounded by the
        close timeout.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
            _CLOSING.add(self._closing)
            self._closing.add_done_callback(_CLOSING.discard)
        return self._closing

    async def aclose(self) -> None:
        """Close politely, but never wait longer than the close timeout."""
        await asyncio.shield(self.close_soon())

    async def _close(self) -> None:
        # The reader keeps running meanwhile: aiohttp hands it the closing
        # handshake, and a cancelled reader would make aiohttp drop the TCP
        # connection without waiting for 60db's close frame.
        try:
            if not self._ws.closed:
                async with asyncio.timeout(self._config.timeouts.close):
                    await self._ws.close()
        except (TimeoutError, aiohttp.ClientError, OSError):
            pass
        finally:
            self._reader.cancel()
            self._mark_ended()

    def _mark_ended(self) -> None:
        self._ended = True
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            callback()

    def scrub(self, error: SixtyDbError) -> SixtyDbError:
        """Remove credentials from an error's text before anyone sees it."""
        clean = self._config.redact(error.message)
        if clean != error.message:
            error.message = clean
            error.args = (clean,)
        return error

    async def _send(self, operation: Any) -> None:
        if self.closed:
            operation.close()  # the send coroutine will never run
            raise (
                self._unread_error()
                or self._outcome
                or ConnectionLostError(f"60db {self.service} connection is closed")
            )
        try:
            await operation
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as err:
            raise ConnectionLostError(
                f"sending to 60db {self.service} failed: {type(err).__name__}"
            ) from None

    def _unread_error(self) -> SixtyDbError | None:
        """An error frame 60db sent just before closing, which says more than the close."""
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, dict) and protocol.kind(item) == ServerMessage.ERROR:
                return self.scrub(protocol.error(item, service=self.service))
        return None

    def _raise_outcome(self) -> None:
        if self._outcome is not None:
            raise self._outcome

    async def _read(self) -> None:
        try:
            while True:
                message = await self._ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._inbox.put_nowait(self._decode(message.data))
                elif message.type is aiohttp.WSMsgType.BINARY:
                    self._inbox.put_nowait(
                        ProtocolError(f"60db {self.service} sent an unexpected binary frame")
                    )
                else:
                    self._outcome = self._close_outcome(message)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self._outcome = ConnectionLostError(
                f"60db {self.service} connection failed: {type(err).__name__}"
            )
        finally:
            self._inbox.put_nowait(None)
            self._mark_ended()

    def _decode(self, data: str) -> JsonObject | SixtyDbError:
        try:
            return protocol.decode(data)
        except ProtocolError as err:
            return self.scrub(err)

    def _close_outcome(self, message: aiohttp.WSMessage) -> SixtyDbError | None:
        code = self._ws.close_code
        if message.type is aiohttp.WSMsgType.CLOSE:
            code = message.data
        reason = message.extra if isinstance(message.extra, str) else ""
        implied = protocol.close_error(code, reason, service=self.service)
        if implied is not None:
            return self.scrub(implied)
        if code in _NORMAL_CLOSES:
            return None
        detail = f"close code {code}" if code else "the connection dropped"
        return ConnectionLostError(f"60db {self.service} connection lost ({detail})")


async def open_channel(
    session: aiohttp.ClientSession, config: ClientConfig, service: str, path: str
) -> Channel:
    """Connect to one of 60db's WebSockets and complete its login handshake."""
    url = config.websocket_url(path)
    ws: aiohttp.ClientWebSocketResponse | None = None
    channel: Channel | None = None
    try:
        async with asyncio.timeout(config.timeouts.connect):
            ws = await session.ws_connect(
                url, autoping=True, max_msg_size=MAX_MESSAGE_BYTES, compress=0
            )
            channel = Channel(ws, service, config)
            await channel.handshake()
            return channel
    except TimeoutError:
        error: SixtyDbError = SixtyDbTimeoutError(
            f"60db {service} login took longer than {config.timeouts.connect:.0f} s"
        )
    except aiohttp.WSServerHandshakeError as err:
        error = error_for_http_status(err.status, service=service, upgrade=True)
    except (aiohttp.ClientError, OSError) as err:
        detail = config.redact(str(err)) or type(err).__name__
        error = ConnectionLostError(f"cannot connect to 60db at {config.rest_base}: {detail}")
    except SixtyDbError as err:
        error = err
    except BaseException:
        await _discard(channel, ws)
        raise
    await _discard(channel, ws)
    raise error


async def _discard(channel: Channel | None, ws: aiohttp.ClientWebSocketResponse | None) -> None:
    if channel is not None:
        await channel.aclose()
    elif ws is not None:
        await ws.close()
